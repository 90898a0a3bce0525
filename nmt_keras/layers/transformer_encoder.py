"""The pre-norm Transformer encoder (Vaswani et al. 2017, sec. 3.1; Xiong et al. 2020)."""

from __future__ import annotations

import keras
from keras import ops

from nmt_keras.layers.feed_forward import FeedForward
from nmt_keras.layers.multi_head_attention import MultiHeadAttention
from nmt_keras.layers.positional_encoding import PositionalEncoding
from nmt_keras.layers.shared_embedding import embedding_initializer

#: Layer normalisation epsilon of every Transformer sublayer.
LAYER_NORM_EPSILON = 1e-6


@keras.saving.register_keras_serializable(package="nmt_keras")
class TransformerEncoderLayer(keras.layers.Layer):
    """One pre-norm encoder layer: self-attention, then the feed-forward network.

    Each sublayer is wrapped as x + Dropout(Sublayer(LayerNorm(x))), the pre-norm
    placement of Wang et al. 2019 and Xiong et al. 2020 (the paper's sec. 3.1 puts the
    norm after the residual sum); dropout on sublayer outputs is sec. 5.4.

    Args:
        units: Model size d_model.
        num_heads: Attention heads.
        ff_dim: Inner size of the feed-forward network.
        dropout: Dropout on sublayer outputs and attention weights.

    Call args:
        inputs: float `(batch, src_len, units)`.
        padding_mask: bool `(batch, src_len)`, True on real tokens.
        training: Whether dropout is active.

    Returns:
        `(batch, src_len, units)`.

    Example:
        >>> import numpy as np
        >>> from nmt_keras.layers import TransformerEncoderLayer
        >>> layer = TransformerEncoderLayer(units=16, num_heads=4, ff_dim=32)
        >>> inputs = np.ones((2, 4, 16), "float32")
        >>> padding_mask = np.array([[True] * 4, [True, True, False, False]])
        >>> tuple(layer(inputs, padding_mask=padding_mask).shape)
        (2, 4, 16)
    """

    def __init__(self, units: int, num_heads: int, ff_dim: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.dropout = dropout
        self.self_attention_norm = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name="self_attention_norm"
        )
        self.self_attention = MultiHeadAttention(
            units, num_heads, dropout=dropout, dtype=self.dtype_policy, name="self_attention"
        )
        self.feed_forward_norm = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name="feed_forward_norm"
        )
        self.feed_forward = FeedForward(units, ff_dim, dtype=self.dtype_policy, name="feed_forward")
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="dropout")

    def build(self, input_shape):
        """Builds every sublayer for `(batch, src_len, units)` inputs."""
        for sublayer in (
            self.self_attention_norm,
            self.self_attention,
            self.feed_forward_norm,
            self.feed_forward,
        ):
            sublayer.build(input_shape)

    def call(self, inputs, padding_mask, training=None):
        """Encodes one layer; see the class docstring."""
        normed = self.self_attention_norm(inputs)
        attended = self.self_attention(normed, normed, key_mask=padding_mask, training=training)
        outputs = inputs + self.dropout_layer(attended, training=training)
        transformed = self.feed_forward(self.feed_forward_norm(outputs))
        return outputs + self.dropout_layer(transformed, training=training)

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            units=self.units, num_heads=self.num_heads, ff_dim=self.ff_dim, dropout=self.dropout
        )
        return config


@keras.saving.register_keras_serializable(package="nmt_keras")
class TransformerEncoder(keras.layers.Layer):
    """Embeddings with positions, N pre-norm encoder layers and a final LayerNorm.

    Vaswani et al. 2017, sec. 3.1 (the stack), 3.4 (embeddings scaled by sqrt(d_model)),
    3.5 (positions) and 5.4 (dropout on the embedded input), with the pre-norm layers of
    Xiong et al. 2020, which end the stack with one more LayerNorm.

    Args:
        vocab_size: Source vocabulary size (id 0 is padding).
        units: Model size d_model.
        num_heads: Attention heads.
        ff_dim: Inner size of the feed-forward networks.
        num_layers: Stacked layers N.
        dropout: Dropout rate.

    Call args:
        tokens: int `(batch, src_len)` source ids, 0-padded.
        training: Whether dropout is active.

    Returns:
        `(outputs, mask)`: `(batch, src_len, units)` and the bool `(batch, src_len)` mask
        of real tokens.

    Example:
        >>> import numpy as np
        >>> from nmt_keras.layers import TransformerEncoder
        >>> encoder = TransformerEncoder(
        ...     vocab_size=20, units=16, num_heads=4, ff_dim=32, num_layers=2
        ... )
        >>> outputs, mask = encoder(np.array([[1, 5, 7, 2], [1, 9, 2, 0]]))
        >>> tuple(outputs.shape), np.asarray(mask).tolist()[1]
        ((2, 4, 16), [True, True, True, False])
    """

    def __init__(
        self,
        vocab_size: int,
        units: int,
        num_heads: int,
        ff_dim: int,
        num_layers: int,
        dropout: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.units = units
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.num_layers = num_layers
        self.dropout = dropout
        self.embedding = keras.layers.Embedding(
            vocab_size,
            units,
            embeddings_initializer=embedding_initializer(units),
            dtype=self.dtype_policy,
            name="embedding",
        )
        self.positional_encoding = PositionalEncoding(
            dtype=self.dtype_policy, name="positional_encoding"
        )
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="dropout")
        self.encoder_layers = [
            TransformerEncoderLayer(
                units, num_heads, ff_dim, dropout, dtype=self.dtype_policy, name=f"layer_{index}"
            )
            for index in range(num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name="final_norm"
        )

    def build(self, tokens_shape):
        """Builds every sublayer for `(batch, src_len)` ids."""
        self.embedding.build(tokens_shape)
        features_shape = (*tokens_shape, self.units)
        self.positional_encoding.build(features_shape)
        for layer in self.encoder_layers:
            layer.build(features_shape)
        self.final_norm.build(features_shape)

    def call(self, tokens, training=None):
        """Encodes `(batch, src_len)` ids; see the class docstring."""
        mask = ops.not_equal(tokens, 0)  # (batch, src_len)
        outputs = self.positional_encoding(self.embedding(tokens))
        outputs = self.dropout_layer(outputs, training=training)
        for layer in self.encoder_layers:
            outputs = layer(outputs, padding_mask=mask, training=training)
        return self.final_norm(outputs), mask

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            units=self.units,
            num_heads=self.num_heads,
            ff_dim=self.ff_dim,
            num_layers=self.num_layers,
            dropout=self.dropout,
        )
        return config
