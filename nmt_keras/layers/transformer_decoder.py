"""The pre-norm Transformer decoder with a self-attention cache for stepwise decoding."""

from __future__ import annotations

import keras
from keras import ops

from nmt_keras.layers.feed_forward import FeedForward
from nmt_keras.layers.multi_head_attention import MultiHeadAttention
from nmt_keras.layers.positional_encoding import PositionalEncoding
from nmt_keras.layers.shared_embedding import SharedEmbedding, embedding_initializer
from nmt_keras.layers.transformer_encoder import LAYER_NORM_EPSILON
from nmt_keras.rules import check_alignment_head


@keras.saving.register_keras_serializable(package="nmt_keras")
class TransformerDecoderLayer(keras.layers.Layer):
    """One pre-norm decoder layer: causal self-attention, cross-attention, feed-forward.

    Vaswani et al. 2017, sec. 3.1, with each sublayer wrapped as
    x + Dropout(Sublayer(LayerNorm(x))) (pre-norm: Wang et al. 2019, Xiong et al. 2020).

    The queries are the last `tgt_len` positions of the self-attention keys: the keys and
    values of this call's inputs are appended to `past_keys` / `past_values` (the cache of
    earlier positions, if any) along time, and query i sees every key up to its own
    position. Teacher forcing passes no cache; decoding passes one token and the cache.

    Args:
        units: Model size d_model.
        num_heads: Attention heads.
        ff_dim: Inner size of the feed-forward network.
        dropout: Dropout on sublayer outputs and attention weights.

    Call args:
        inputs: float `(batch, tgt_len, units)`.
        memory_keys: `(batch, src_len, num_heads, depth)`, the encoder output projected by
            `cross_attention.project_key_value()`.
        memory_values: `(batch, src_len, num_heads, depth)`, likewise.
        memory_mask: bool `(batch, src_len)`, True on real source tokens.
        past_keys: optional `(batch, past_len, num_heads, depth)` self-attention cache.
        past_values: optional `(batch, past_len, num_heads, depth)` self-attention cache.
        training: Whether dropout is active.

    Returns:
        `(outputs, cross_weights, keys, values)`: `(batch, tgt_len, units)`, float32
        `(batch, num_heads, tgt_len, src_len)` cross-attention weights, and the cache
        extended by this call, each `(batch, past_len + tgt_len, num_heads, depth)`.

    Example:
        >>> import numpy as np
        >>> from nmt_keras.layers import TransformerDecoderLayer
        >>> layer = TransformerDecoderLayer(units=16, num_heads=4, ff_dim=32)
        >>> layer.build((None, None, 16))  # builds the projections used below
        >>> memory = np.ones((2, 5, 16), "float32")  # encoder outputs
        >>> memory_mask = np.array([[True] * 5, [True, True, True, False, False]])
        >>> memory_keys, memory_values = layer.cross_attention.project_key_value(memory)
        >>> outputs, cross_weights, keys, values = layer(
        ...     np.ones((2, 3, 16), "float32"), memory_keys, memory_values, memory_mask
        ... )
        >>> tuple(outputs.shape), tuple(cross_weights.shape), tuple(keys.shape)
        ((2, 3, 16), (2, 4, 3, 5), (2, 3, 4, 4))
    """

    def __init__(self, units: int, num_heads: int, ff_dim: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.dropout = dropout

        def norm(name):
            return keras.layers.LayerNormalization(
                epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name=name
            )

        self.self_attention_norm = norm("self_attention_norm")
        self.self_attention = MultiHeadAttention(
            units, num_heads, dropout=dropout, dtype=self.dtype_policy, name="self_attention"
        )
        self.cross_attention_norm = norm("cross_attention_norm")
        self.cross_attention = MultiHeadAttention(
            units, num_heads, dropout=dropout, dtype=self.dtype_policy, name="cross_attention"
        )
        self.feed_forward_norm = norm("feed_forward_norm")
        self.feed_forward = FeedForward(units, ff_dim, dtype=self.dtype_policy, name="feed_forward")
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="dropout")

    def build(self, input_shape):
        """Builds every sublayer for `(batch, tgt_len, units)` inputs."""
        for sublayer in (
            self.self_attention_norm,
            self.self_attention,
            self.cross_attention_norm,
            self.cross_attention,
            self.feed_forward_norm,
            self.feed_forward,
        ):
            sublayer.build(input_shape)

    def call(
        self,
        inputs,
        memory_keys,
        memory_values,
        memory_mask,
        past_keys=None,
        past_values=None,
        training=None,
    ):
        """Decodes one layer; see the class docstring."""
        normed = self.self_attention_norm(inputs)
        keys, values = self.self_attention.project_key_value(normed)
        if past_keys is not None:
            keys = ops.concatenate([past_keys, keys], axis=1)
            values = ops.concatenate([past_values, values], axis=1)
        attended = self.self_attention.attend(
            normed, keys, values, use_causal_mask=True, training=training
        )
        outputs = inputs + self.dropout_layer(attended, training=training)

        attended, cross_weights = self.cross_attention.attend(
            self.cross_attention_norm(outputs),
            memory_keys,
            memory_values,
            key_mask=memory_mask,
            return_attention_scores=True,
            training=training,
        )
        outputs = outputs + self.dropout_layer(attended, training=training)

        transformed = self.feed_forward(self.feed_forward_norm(outputs))
        outputs = outputs + self.dropout_layer(transformed, training=training)
        return outputs, cross_weights, keys, values

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            units=self.units, num_heads=self.num_heads, ff_dim=self.ff_dim, dropout=self.dropout
        )
        return config


@keras.saving.register_keras_serializable(package="nmt_keras")
class TransformerDecoder(keras.layers.Layer):
    """Target embeddings with positions, N pre-norm decoder layers, LayerNorm, logits.

    Vaswani et al. 2017, sec. 3.1 (the stack), 3.4 (scaled embeddings, optionally shared
    with the output projection), 3.5 (positions), 5.4 (dropout on the embedded input),
    with the pre-norm layers of Xiong et al. 2020 and their final LayerNorm.

    Teacher forcing (`call`) runs causal self-attention over the whole target. Inference
    (`step`) decodes one token at `position`, carrying per-layer caches of projected
    self-attention keys and values that grow by one position a step; it gives the logits
    of teacher forcing. Both read a memory from `prepare_memory()`, in which every
    layer's cross-attention keys and values are projected once per sentence.

    The alignment returned with the logits is the cross-attention of the last layer:
    averaged over heads when `alignment_head` is None, else that one head, indexed as a
    Python sequence (`-1` is the last head). It is 0 on source padding and each row sums
    to 1 over the real source tokens.

    Args:
        vocab_size: Target vocabulary size.
        units: Model size d_model.
        num_heads: Attention heads.
        ff_dim: Inner size of the feed-forward networks.
        num_layers: Stacked layers N.
        dropout: Dropout rate.
        shared_embeddings: Tie the input embedding and the output projection.
        alignment_head: None, or the head in `[-num_heads, num_heads)` whose
            weights are the alignment.

    Call args:
        tokens: int `(batch, tgt_len)` decoder inputs (`<s> y_1 .. y_{n-1}`).
        memory: From `prepare_memory()`.
        return_attention_scores: Also return the alignment.
        training: Whether dropout is active.

    Returns:
        Logits, float32 `(batch, tgt_len, vocab_size)`, or `(logits, alignment)` with the
        float32 `(batch, tgt_len, src_len)` alignment when `return_attention_scores=True`.

    Raises:
        ValueError: If `alignment_head` is out of range.

    Example:
        >>> import numpy as np
        >>> source = np.array([[1, 5, 7, 2], [1, 9, 2, 0]])  # 0-padded ids
        >>> target_in = np.array([[1, 4, 6], [1, 8, 0]])  # <s> y_1 .. y_{n-1}
        >>> from nmt_keras.layers import TransformerDecoder, TransformerEncoder
        >>> sizes = dict(units=16, num_heads=4, ff_dim=32, num_layers=2)
        >>> encoder = TransformerEncoder(vocab_size=20, **sizes)
        >>> decoder = TransformerDecoder(vocab_size=30, **sizes)
        >>> memory = decoder.prepare_memory(*encoder(source))
        >>> logits, alignment = decoder(target_in, memory, return_attention_scores=True)
        >>> tuple(logits.shape), tuple(alignment.shape)
        ((2, 3, 30), (2, 3, 4))

        Inference runs `step()` one token at a time with a growing cache:

        >>> cache = decoder.initial_cache(memory)
        >>> step_logits, cache, _ = decoder.step(target_in[:, 0], cache, memory, 0)
        >>> bool(np.allclose(step_logits, logits[:, 0], atol=1e-5))
        True
    """

    def __init__(
        self,
        vocab_size: int,
        units: int,
        num_heads: int,
        ff_dim: int,
        num_layers: int,
        dropout: float = 0.0,
        shared_embeddings: bool = False,
        alignment_head: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_alignment_head(alignment_head, num_heads)
        self.vocab_size = vocab_size
        self.units = units
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.num_layers = num_layers
        self.dropout = dropout
        self.shared_embeddings = shared_embeddings
        self.alignment_head = alignment_head

        if shared_embeddings:
            self.embedding = SharedEmbedding(vocab_size, units, dtype="float32", name="embedding")
            self.output_projection = None
        else:
            self.embedding = keras.layers.Embedding(
                vocab_size,
                units,
                embeddings_initializer=embedding_initializer(units),
                dtype=self.dtype_policy,
                name="embedding",
            )
            # Logits stay float32 under mixed precision so the softmax is stable.
            self.output_projection = keras.layers.Dense(
                vocab_size, dtype="float32", name="output_projection"
            )
        self.positional_encoding = PositionalEncoding(
            dtype=self.dtype_policy, name="positional_encoding"
        )
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="dropout")
        self.decoder_layers = [
            TransformerDecoderLayer(
                units, num_heads, ff_dim, dropout, dtype=self.dtype_policy, name=f"layer_{index}"
            )
            for index in range(num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name="final_norm"
        )

    def build(self, tokens_shape):
        """Builds every sublayer for `(batch, tgt_len)` ids."""
        self.embedding.build(tokens_shape)
        features_shape = (*tokens_shape, self.units)
        self.positional_encoding.build(features_shape)
        for layer in self.decoder_layers:
            layer.build(features_shape)
        self.final_norm.build(features_shape)
        if self.output_projection is not None:
            self.output_projection.build(features_shape)

    def prepare_memory(self, outputs, mask) -> dict:
        """Projects the encoder outputs into every layer's cross-attention keys and values.

        Args:
            outputs: Encoder outputs `(batch, src_len, units)`.
            mask: bool `(batch, src_len)`, True on real source tokens.

        Returns:
            `{"mask": (batch, src_len), "keys": [...], "values": [...]}`, one
            `(batch, src_len, num_heads, depth)` tensor per layer in each list.
        """
        if not self.built:
            self.build((None, None))
        keys, values = [], []
        for layer in self.decoder_layers:
            layer_keys, layer_values = layer.cross_attention.project_key_value(outputs)
            keys.append(layer_keys)
            values.append(layer_values)
        return {"mask": mask, "keys": keys, "values": values}

    def initial_cache(self, memory: dict) -> dict:
        """The empty self-attention cache before the first target token.

        Returns:
            `{"keys": [...], "values": [...]}`, one `(batch, 0, num_heads, depth)` tensor
            per layer in each list, in the compute dtype.
        """
        batch_size = ops.shape(memory["mask"])[0]
        empty = ops.zeros(
            (batch_size, 0, self.num_heads, self.units // self.num_heads), self.compute_dtype
        )
        return {
            "keys": [empty] * self.num_layers,
            "values": [empty] * self.num_layers,
        }

    def _project(self, features):
        """`(batch, time, units)` -> float32 logits `(batch, time, vocab_size)`."""
        if self.output_projection is None:
            return self.embedding(features, reverse=True)
        return self.output_projection(features)

    def _alignment(self, cross_weights):
        """`(batch, heads, tgt_len, src_len)` -> `(batch, tgt_len, src_len)`."""
        if self.alignment_head is None:
            return ops.mean(cross_weights, axis=1)
        return cross_weights[:, self.alignment_head]

    def _decode(self, tokens, memory: dict, start, cache: dict | None, training=None):
        """Decodes `(batch, time)` ids at positions `start ..` after the cached ones.

        Returns:
            `(logits, cache, alignment)`: `(batch, time, vocab_size)`, the cache extended
            by `time` positions and `(batch, time, src_len)`.
        """
        embedded = self.positional_encoding(self.embedding(tokens), start=start)
        outputs = self.dropout_layer(embedded, training=training)
        keys, values = [], []
        for index, layer in enumerate(self.decoder_layers):
            outputs, cross_weights, layer_keys, layer_values = layer(
                outputs,
                memory["keys"][index],
                memory["values"][index],
                memory["mask"],
                past_keys=None if cache is None else cache["keys"][index],
                past_values=None if cache is None else cache["values"][index],
                training=training,
            )
            keys.append(layer_keys)
            values.append(layer_values)
        logits = self._project(self.final_norm(outputs))
        return logits, {"keys": keys, "values": values}, self._alignment(cross_weights)

    def call(self, tokens, memory: dict, return_attention_scores=False, training=None):
        """Teacher forcing over a whole target; see the class docstring."""
        logits, _, alignment = self._decode(tokens, memory, 0, None, training)
        return (logits, alignment) if return_attention_scores else logits

    def step(self, tokens, cache: dict, memory: dict, position, training=None):
        """Decodes one token: the `next_fn` of a search.

        Args:
            tokens: int `(batch,)` previous target ids.
            cache: From `initial_cache()` or the previous step, with `position` entries.
            memory: From `prepare_memory()`.
            position: int scalar, the position of `tokens` in the target (the step).
            training: Whether dropout is active.

        Returns:
            `(logits, cache, alignment)`: float32 `(batch, vocab_size)`, the cache with
            one more position and float32 `(batch, src_len)`.
        """
        tokens = ops.expand_dims(tokens, 1)  # (batch, 1)
        logits, cache, alignment = self._decode(tokens, memory, position, cache, training)
        return logits[:, 0], cache, alignment[:, 0]

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
            shared_embeddings=self.shared_embeddings,
            alignment_head=self.alignment_head,
        )
        return config
