"""One embedding table for a decoder's input tokens and its output projection."""

from __future__ import annotations

import keras


def embedding_initializer(units: int) -> keras.initializers.Initializer:
    """N(0, units^-0.5): N(0, 1) after the sqrt(units) input scaling."""
    return keras.initializers.RandomNormal(stddev=units**-0.5)


@keras.saving.register_keras_serializable(package="nmt_keras")
class SharedEmbedding(keras.layers.ReversibleEmbedding):
    """One table for the target input embedding and the output projection.

    Vaswani et al. 2017, sec. 3.4 (after Press & Wolf 2017): the pre-softmax linear
    transformation is the transposed embedding matrix, logits = x E^T. This is Keras's
    `ReversibleEmbedding` with tied weights, named by this project's options and
    initialised N(0, units^-0.5) (`embedding_initializer`). Create it with
    `dtype="float32"`, so logits stay float32 under the `"mixed_float16"` policy; the
    embeddings it looks up are then float32, and the next layer casts them.

    Args:
        vocab_size: Vocabulary size V.
        units: Embedding size d_model.
        **kwargs: Other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call args:
        inputs: int `(batch, time)` ids, or with `reverse=True` float
            `(batch, time, units)` features.
        reverse: Whether to project features to logits instead of looking up ids.

    Returns:
        `(batch, time, units)` embeddings, or `(batch, time, vocab_size)` logits.

    Example:
        >>> import numpy as np
        >>> from nmt_keras.layers import SharedEmbedding
        >>> embedding = SharedEmbedding(vocab_size=30, units=16)
        >>> features = embedding(np.array([[1, 4, 6]]))  # ids -> (1, 3, 16)
        >>> logits = embedding(features, reverse=True)  # features -> (1, 3, 30)
        >>> tuple(features.shape), tuple(logits.shape)
        ((1, 3, 16), (1, 3, 30))
    """

    def __init__(self, vocab_size: int, units: int, **kwargs):
        super().__init__(
            vocab_size, units, embeddings_initializer=embedding_initializer(units), **kwargs
        )
        self.vocab_size = vocab_size
        self.units = units

    def get_config(self):
        """Returns the constructor arguments (the configs of earlier releases load too)."""
        config = keras.layers.Layer.get_config(self)
        config.update(vocab_size=self.vocab_size, units=self.units)
        return config
