"""Global attention of Luong, Pham and Manning (2015): dot, general and concat scores."""

import keras
from keras import ops

from nmt_keras.layers.attention import Attention

_SCORE_MODES = ("dot", "general", "concat")


@keras.saving.register_keras_serializable(package="nmt_keras")
class LuongAttention(Attention):
    """Global attention, Luong et al. 2015, eq. 8.

    "Effective Approaches to Attention-based Neural Machine Translation",
    https://arxiv.org/abs/1508.04025. The score of the current decoder state `h_t` (the
    query) against a source state `h_s` (the value) is one of

        dot:     h_t^T h_s
        general: h_t^T W_a h_s
        concat:  v_a^T tanh(W_a [h_t; h_s])

    giving scores and weights of shape `(batch, tgt_len, src_len)`. `concat` is computed
    with `W_a` split into a query and a key part, `W_q h_t + W_k h_s`, broadcast to
    `(batch, tgt_len, src_len, units)`; this equals `W_a [h_t; h_s]` without materialising
    the concatenation.

    The key computed once per source sentence by `project_key(value)` is `h_s` itself for
    `dot`, `W_a h_s` `(batch, src_len, dim_q)` for `general` and `W_k h_s`
    `(batch, src_len, units)` for `concat`.

    With `scale=True` the score is multiplied by a learned scalar `g` initialised to 1, as
    the `scale` option of the TensorFlow Addons `LuongAttention` (for `concat` this is
    redundant with `v_a`, but allowed).

    Masking, the softmax and the call arguments are those of `Attention`.

    Args:
        score_mode: `"dot"`, `"general"` or `"concat"`. `"dot"` needs `dim_q == dim_v`.
        scale: whether to multiply the score by a learned scalar.
        units: hidden size of `concat` (dimension of `v_a`); None uses the query depth.
            Only valid with `score_mode="concat"`.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
        >>> attention = LuongAttention(score_mode="general")
        >>> context, weights = attention(
        ...     query, value, mask=source_mask, return_attention_scores=True
        ... )  # (batch, tgt_len, dim_v), (batch, tgt_len, src_len)
    """

    def __init__(self, score_mode="dot", scale=False, units=None, **kwargs):
        super().__init__(**kwargs)
        if score_mode not in _SCORE_MODES:
            raise ValueError(
                f"Expected score_mode to be one of {_SCORE_MODES}. "
                f"Received: score_mode={score_mode!r}"
            )
        if not isinstance(scale, bool):
            raise ValueError(f"Expected scale to be a bool. Received: scale={scale!r}")
        if units is not None:
            if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
                raise ValueError(
                    f"Expected units to be a positive integer or None. Received: units={units!r}"
                )
            if score_mode != "concat":
                raise ValueError(
                    "Expected units only with score_mode='concat'. "
                    f"Received: units={units!r}, score_mode={score_mode!r}"
                )
        self.score_mode = score_mode
        self.scale = scale
        self.units = units

    def build(self, query_shape, value_shape):
        """Creates the projections the score mode needs (and g when scale)."""
        query_dim = query_shape[-1]
        if self.score_mode == "dot" and query_dim != value_shape[-1]:
            raise ValueError(
                "Expected query and value of the same depth for score_mode='dot' (use "
                "'general' to project the value). "
                f"Received: query_shape={tuple(query_shape)}, value_shape={tuple(value_shape)}"
            )
        if self.score_mode == "general":
            # W_a: dim_v -> dim_q.
            self.key_dense = keras.layers.Dense(
                query_dim, use_bias=False, dtype=self.dtype_policy, name="key_dense"
            )
            self.key_dense.build(value_shape)
        if self.score_mode == "concat":
            units = self.units or query_dim
            self.query_dense = keras.layers.Dense(
                units, use_bias=False, dtype=self.dtype_policy, name="query_dense"
            )
            self.query_dense.build(query_shape)
            self.key_dense = keras.layers.Dense(
                units, use_bias=False, dtype=self.dtype_policy, name="key_dense"
            )
            self.key_dense.build(value_shape)
            self.attention_v = self.add_weight(
                name="attention_v", shape=(units,), initializer="glorot_uniform"
            )
        if self.scale:
            self.attention_g = self.add_weight(name="attention_g", shape=(), initializer="ones")

    def _project_key(self, value):
        if self.score_mode == "dot":
            return value
        # (batch, src_len, dim_v) -> (batch, src_len, dim_q) for general,
        # (batch, src_len, units) for concat.
        return self.key_dense(value)

    def _score(self, query, key):
        if self.score_mode == "concat":
            # (batch, tgt_len, dim_q) -> (batch, tgt_len, units)
            scores = self._additive_score(self.query_dense(query), key, self.attention_v)
        else:
            # (batch, tgt_len, dim_q) x (batch, src_len, dim_q) -> (batch, tgt_len, src_len)
            scores = ops.einsum("btd,bsd->bts", query, key)
        if self.scale:
            scores = self.attention_g * scores
        return scores

    def get_config(self):
        """Returns the constructor arguments, for `from_config`."""
        config = super().get_config()
        config.update({"score_mode": self.score_mode, "scale": self.scale, "units": self.units})
        return config
