"""What every translation model shares: an encoder, a decoder and the search-state layout."""

from __future__ import annotations

import keras
import tensorflow as tf


class EncoderDecoder(keras.Model):
    """Base of the translation models: composes an encoder and a decoder layer.

    A subclass defines `teacher_forced(source, target)`, `initial_search_state(source)`
    and `next_fn(tokens, state, step)`. Its search state is a dict whose `"memory"` entry
    is computed once per source sentence (encoder outputs, projected keys) and whose
    other entries change with every generated token.

    Args:
        encoder: The encoder layer.
        decoder: The decoder layer.
        **kwargs: `keras.Model` arguments (`name`, `dtype`, ...).
    """

    def __init__(self, encoder: keras.layers.Layer, decoder: keras.layers.Layer, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder

    def call(self, inputs, training=None):
        """Teacher-forced logits for `{"source": ids, "target": decoder input ids}`."""
        logits, _ = self.teacher_forced(inputs["source"], inputs["target"], training)
        return logits

    def state_reorder_flags(self, state: dict) -> dict:
        """Which search-state tensors a beam search reorders by parent beam.

        The memory is the same for every beam of a sentence, so it is flagged False and
        `nmt_keras.search.beam_search` leaves it in place; everything else is True.
        """
        return {
            key: tf.nest.map_structure(lambda _, static=key == "memory": not static, value)
            for key, value in state.items()
        }

    def get_config(self):
        """Returns the encoder's and the decoder's configs."""
        config = super().get_config()
        config.update(encoder=_serialize(self.encoder), decoder=_serialize(self.decoder))
        return config

    @classmethod
    def from_config(cls, config):
        """Rebuilds the encoder and the decoder, then the model."""
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)


def _serialize(layer: keras.layers.Layer) -> dict:
    """The layer's Keras config, without the shapes of its first call: the model builds it."""
    serialized = keras.saving.serialize_keras_object(layer)
    serialized.pop("build_config", None)
    return serialized
