"""Multi-head scaled dot-product attention (Vaswani et al. 2017, sec. 3.2)."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from nmt_keras.layers.attention import MASK_VALUE
from nmt_keras.rules import check_num_heads


def causal_mask(query_length, key_length):
    """Which keys each query may see when the queries are the last positions of the keys.

    Query i sits at position `key_length - query_length + i` and sees keys j up to that
    position. With equal lengths this is the usual lower-triangular mask; with one query
    (a decoding step over a cache) every key is visible.

    Args:
        query_length: int scalar.
        key_length: int scalar >= `query_length`.

    Returns:
        bool `(query_length, key_length)`.
    """
    # (query_length, 1) positions of the queries among the keys.
    query_positions = ops.expand_dims(ops.arange(query_length) + (key_length - query_length), 1)
    key_positions = ops.expand_dims(ops.arange(key_length), 0)  # (1, key_length)
    return key_positions <= query_positions


@keras.saving.register_keras_serializable(package="nmt_keras")
class MultiHeadAttention(keras.layers.MultiHeadAttention):
    """Keras's multi-head attention, with keys and values that can be projected ahead of time.

    Implements Vaswani et al. 2017, sec. 3.2.1 eq. 1 and sec. 3.2.2:

        Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V
        MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,
            head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)

    with d_k = d_v = units / num_heads, K = V = the memory. It is
    `keras.layers.MultiHeadAttention` (its projections, `(units, heads, depth)` kernels,
    and dropout) with what a decoder adds, as keras-hub's `CachedMultiHeadAttention` does:
    `project_key_value(memory)` is split out of the call so a decoder projects the
    encoder memory once per sentence and keeps a self-attention cache of projected keys
    and values; `attend()` takes them as they are. `call(query, memory)` does both.

    Masked positions get weight exactly 0; the softmax runs in float32, so the layer works
    under the `"mixed_float16"` policy (Keras's own softmax runs in the compute dtype). A
    query with no visible key gets all-zero weights and a zero context before the output
    projection (Keras's gives it uniform weights). Dropout applies to the weights used for
    the context; the returned weights are the undropped distribution.

    Args:
        units: Model size d_model, the size of queries, memory and outputs.
        num_heads: Number of heads h; must divide `units`.
        dropout: Dropout rate on the attention weights.
        **kwargs: Other `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call args:
        query: float `(batch, tgt_len, units)`.
        memory: float `(batch, src_len, units)`, the sequence attended over.
        key_mask: optional bool `(batch, src_len)`, True on real positions.
        use_causal_mask: Whether query i only sees keys up to its own position.
        return_attention_scores: Whether to also return the weights.
        training: Whether dropout is active.

    Returns:
        `(batch, tgt_len, units)`, or `(outputs, weights)` with float32 per-head weights
        `(batch, num_heads, tgt_len, src_len)` when `return_attention_scores=True`.

    Raises:
        ValueError: If `num_heads` does not divide `units`.

    Example:
        >>> import numpy as np
        >>> from nmt_keras.layers import MultiHeadAttention
        >>> rng = np.random.default_rng(0)
        >>> query = rng.normal(size=(2, 3, 16)).astype("float32")
        >>> memory = rng.normal(size=(2, 5, 16)).astype("float32")
        >>> mask = np.array([[True] * 5, [True, True, True, False, False]])
        >>> attention = MultiHeadAttention(units=16, num_heads=4)
        >>> outputs, weights = attention(
        ...     query, memory, key_mask=mask, return_attention_scores=True
        ... )
        >>> tuple(outputs.shape), tuple(weights.shape)  # weights: (batch, heads, tgt, src)
        ((2, 3, 16), (2, 4, 3, 5))

        Causal self-attention: query i sees keys 0 .. i.

        >>> _, weights = attention(query, query, use_causal_mask=True, return_attention_scores=True)
        >>> (np.asarray(weights[0, 0]) > 0).astype(int).tolist()
        [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    """

    def __init__(self, units: int, num_heads: int, dropout: float = 0.0, **kwargs):
        check_num_heads(units, num_heads)
        super().__init__(num_heads, key_dim=units // num_heads, dropout=dropout, **kwargs)
        # The call takes explicit masks; Keras's implicit ones would not reach it.
        self.supports_masking = False
        self.units = units

    def build(self, query_shape, memory_shape=None):
        """Builds the projections; the memory has the query's shape when not given."""
        super().build(query_shape, query_shape if memory_shape is None else memory_shape)

    def project_key_value(self, memory):
        """Projects a memory into per-head keys and values.

        Args:
            memory: float `(batch, src_len, units)`.

        Returns:
            `(keys, values)`, each `(batch, src_len, num_heads, depth)`.

        Raises:
            ValueError: If the layer has not been built yet.
        """
        if not self.built:
            raise ValueError(
                f"Expected layer '{self.name}' to be built before project_key_value(). "
                "Call the layer once, or call build(query_shape). Received: an unbuilt layer."
            )
        return self.key_dense(memory), self.value_dense(memory)

    def attend(
        self,
        query,
        keys,
        values,
        key_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
    ):
        """Attends from `query` over projected `keys` and `values`.

        Args:
            query: float `(batch, tgt_len, units)`.
            keys: `(batch, src_len, num_heads, depth)` from `project_key_value()`.
            values: `(batch, src_len, num_heads, depth)` from `project_key_value()`.
            key_mask: optional bool `(batch, src_len)`, True on real positions.
            use_causal_mask: Whether query i only sees keys up to its position; the
                queries are the last `tgt_len` positions of the keys (see `causal_mask`).
            return_attention_scores: Whether to also return the weights.
            training: Whether dropout is active.

        Returns:
            As the layer call.
        """
        # Scaling the queries, not the scores, keeps float16 products small.
        queries = self.query_dense(query) * (self.key_dim**-0.5)  # (batch, tgt, heads, depth)
        scores = ops.einsum("bqhd,bkhd->bhqk", queries, keys)  # (batch, heads, tgt, src)
        scores = ops.cast(scores, "float32")
        visible = None
        if key_mask is not None:
            # (batch, src_len) -> (batch, 1, 1, src_len)
            visible = ops.cast(key_mask, "bool")[:, None, None, :]
        if use_causal_mask:
            shape = ops.shape(scores)
            causal = causal_mask(shape[2], shape[3])  # (tgt, src), broadcast over batch, heads
            visible = causal if visible is None else ops.logical_and(visible, causal)
        if visible is not None:
            scores = ops.where(visible, scores, MASK_VALUE)
        # keras.ops.softmax warns on a single key (the first decoding step); same op.
        weights = tf.nn.softmax(scores, axis=-1)
        if visible is not None:
            # No-op where a query sees a key; a query that sees none gets zeros.
            weights = ops.where(visible, weights, 0.0)
        dropped = self._dropout_layer(ops.cast(weights, values.dtype), training=training)
        context = ops.einsum("bhqk,bkhd->bqhd", dropped, values)  # (batch, tgt, heads, depth)
        outputs = self.output_dense(context)
        if return_attention_scores:
            return outputs, weights
        return outputs

    def call(
        self,
        query,
        memory,
        key_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
    ):
        """Projects `memory` and attends over it; see the class docstring."""
        keys, values = self.project_key_value(memory)
        return self.attend(
            query,
            keys,
            values,
            key_mask=key_mask,
            use_causal_mask=use_causal_mask,
            return_attention_scores=return_attention_scores,
            training=training,
        )

    def compute_output_spec(self, query, memory, return_attention_scores=False, **kwargs):
        """The outputs of a symbolic call (Keras's layer takes other arguments)."""
        outputs = keras.KerasTensor(query.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return outputs
        # (batch, heads, tgt_len, src_len)
        weights_shape = (query.shape[0], self.num_heads, query.shape[1], memory.shape[1])
        return outputs, keras.KerasTensor(weights_shape, dtype="float32")

    def get_config(self):
        """Returns the constructor arguments (the configs of earlier releases load too)."""
        config = keras.layers.Layer.get_config(self)
        config.update(units=self.units, num_heads=self.num_heads, dropout=self.dropout)
        return config
