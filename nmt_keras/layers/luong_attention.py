"""Attention of Luong, Pham and Manning (2015): dot, general and concat scores, global or local."""

import keras
from keras import ops

from nmt_keras.layers.attention import Attention
from nmt_keras.layers.positionwise import positionwise_dense

_SCORE_MODES = ("dot", "general", "concat")
_WINDOW_MODES = ("global", "local-m", "local-p")


@keras.saving.register_keras_serializable(package="nmt_keras")
class LuongAttention(Attention):
    """Global or local attention, Luong et al. 2015, sec. 3.1-3.2, eq. 7-10.

    "Effective Approaches to Attention-based Neural Machine Translation",
    https://arxiv.org/abs/1508.04025. The score of the current decoder state `h_t` (the
    query) against a source state `h_s` (the value) is one of (eq. 8)

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

    With `score_scale=True` the score is multiplied by a learned scalar `g` initialised to 1, as
    the `scale` option of the TensorFlow Addons `LuongAttention` (for `concat` this is
    redundant with `v_a`, but allowed).

    `window_mode` picks global attention (sec. 3.1, every real source token) or local
    attention (sec. 3.2), where query t attends only to the source positions s in the
    window `|s - p_t| <= D` around an aligned position p_t, `D = half_window`:

        local-m: p_t = t, the query's target position, clipped to the last real source
                 token (S - 1) so that a target longer than its source still attends
                 somewhere; a_t = softmax over the window (eq. 7).
        local-p: p_t = S sigmoid(v_p^T tanh(W_p h_t)) (eq. 9), a real number in [0, S];
                 a_t(s) = align(h_t, h_s) exp(-(s - p_t)^2 / (2 sigma^2)),
                 sigma = D / 2 (eq. 10), with align the softmax over the window.

    S is the number of real tokens of each source sentence. Source positions index the
    encoder memory, which starts with `<s>` at position 0; target position t is the index
    of the token the query predicts in the decoder's `<s> y_1 .. y_n` (so the query that
    predicts y_1 has t = 1). Local-m therefore aligns target token y_t with source token
    x_t, `<s>` with `<s>`. As in the paper, local-p weights do not sum to 1: the Gaussian
    of eq. 10 scales the softmax down away from p_t (at most by exp(-2) at the window's
    edge). Padding and positions outside the window get weight exactly 0 in every mode.
    `W_p` `(dim_q, dim_q)` and `v_p` `(dim_q,)` exist only with `"local-p"`.

    Only local-m reads the `positions` call argument, and it requires it: pass the target
    position t of every query. Luong et al. use D = 10.

    Masking, the softmax, hard attention and the call arguments are those of `Attention`.

    Args:
        score_mode: `"dot"`, `"general"` or `"concat"`. `"dot"` needs `dim_q == dim_v`.
        score_scale: whether to multiply the score by a learned scalar.
        units: hidden size of `concat` (dimension of `v_a`); None uses the query depth.
            Only valid with `score_mode="concat"`.
        window_mode: `"global"`, `"local-m"` or `"local-p"`.
        half_window: the half-width D of a local window (ignored by global attention).
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
        >>> import numpy as np
        >>> from nmt_keras.layers import LuongAttention
        >>> rng = np.random.default_rng(0)
        >>> query = rng.normal(size=(2, 3, 16)).astype("float32")  # decoder states
        >>> value = rng.normal(size=(2, 5, 16)).astype("float32")  # encoder outputs
        >>> mask = np.array([[True] * 5, [True, True, True, False, False]])
        >>> attention = LuongAttention(score_mode="general")
        >>> context, weights = attention(query, value, mask=mask, return_attention_scores=True)
        >>> tuple(context.shape), tuple(weights.shape)
        ((2, 3, 16), (2, 3, 5))

        Local-m attention: query t sees source positions t - 1 .. t + 1.

        >>> local = LuongAttention(score_mode="general", window_mode="local-m", half_window=1)
        >>> _, weights = local(
        ...     query, value, mask=mask, positions=np.array([1, 2, 3]), return_attention_scores=True
        ... )
        >>> (np.asarray(weights[0]) > 0).astype(int).tolist()
        [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1]]
    """

    def __init__(
        self,
        score_mode="dot",
        score_scale=False,
        units=None,
        window_mode="global",
        half_window=10,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if score_mode not in _SCORE_MODES:
            raise ValueError(
                f"Expected score_mode to be one of {_SCORE_MODES}. "
                f"Received: score_mode={score_mode!r}"
            )
        if not isinstance(score_scale, bool):
            raise ValueError(
                f"Expected score_scale to be a bool. Received: score_scale={score_scale!r}"
            )
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
        if window_mode not in _WINDOW_MODES:
            raise ValueError(
                f"Expected window_mode to be one of {_WINDOW_MODES}. "
                f"Received: window_mode={window_mode!r}"
            )
        if isinstance(half_window, bool) or not isinstance(half_window, int) or half_window < 1:
            raise ValueError(f"Expected half_window >= 1. Received: half_window={half_window!r}")
        self.score_mode = score_mode
        self.score_scale = score_scale
        self.units = units
        self.window_mode = window_mode
        self.half_window = half_window

    def build(self, query_shape, value_shape):
        """Creates the projections of the score mode (g with score_scale; W_p, v_p for local-p)."""
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
        if self.score_scale:
            self.attention_g = self.add_weight(name="attention_g", shape=(), initializer="ones")
        if self.window_mode == "local-p":
            # W_p and v_p of eq. 9.
            self.position_dense = keras.layers.Dense(
                query_dim, use_bias=False, dtype=self.dtype_policy, name="position_dense"
            )
            self.position_dense.build(query_shape)
            self.position_v = self.add_weight(
                name="position_v", shape=(query_dim,), initializer="glorot_uniform"
            )

    def _project_key(self, value):
        if self.score_mode == "dot":
            return value
        # (batch, src_len, dim_v) -> (batch, src_len, dim_q) for general,
        # (batch, src_len, units) for concat.
        return self.key_dense(value)

    def _score(self, query, key):
        if self.score_mode == "concat":
            # (batch, tgt_len, dim_q) -> (batch, tgt_len, units)
            scores = self._additive_score(
                positionwise_dense(self.query_dense, query), key, self.attention_v
            )
        else:
            # (batch, tgt_len, dim_q) x (batch, src_len, dim_q) -> (batch, tgt_len, src_len)
            scores = ops.einsum("btd,bsd->bts", query, key)
        if self.score_scale:
            scores = self.attention_g * scores
        return scores

    def _window(self, query, value, mask, positions):
        """The local window around p_t and, for local-p, the Gaussian of eq. 10."""
        if self.window_mode == "global":
            return super()._window(query, value, mask, positions)
        if mask is None:
            mask = ops.ones(ops.shape(value)[:2], dtype="bool")
        # S, the real length of each source sentence: (batch,) -> (batch, 1).
        lengths = ops.sum(ops.cast(mask, "float32"), axis=-1, keepdims=True)
        if self.window_mode == "local-m":
            centers = ops.minimum(_target_positions(positions), lengths - 1.0)
        else:
            if positions is not None:
                raise ValueError(
                    "Expected no positions with window_mode='local-p', which predicts the "
                    "aligned position from the query (eq. 9). "
                    f"Received: positions of shape {tuple(positions.shape)}"
                )
            centers = lengths * self._predicted_alignment(query)
        # (batch, tgt_len, 1) and (src_len,) -> distances s - p_t (batch, tgt_len, src_len).
        source_positions = ops.cast(ops.arange(ops.shape(value)[1]), "float32")
        distances = source_positions - ops.expand_dims(centers, axis=-1)
        allowed = ops.logical_and(
            ops.abs(distances) <= float(self.half_window), ops.expand_dims(mask, axis=1)
        )
        if self.window_mode == "local-m":
            return allowed, None
        sigma = self.half_window / 2.0
        return allowed, ops.exp(-ops.square(distances) / (2.0 * sigma**2))

    def _predicted_alignment(self, query):
        """sigmoid(v_p^T tanh(W_p h_t)) of eq. 9, float32 `(batch, tgt_len)`."""
        # (batch, tgt_len, dim_q) . (dim_q,) -> (batch, tgt_len)
        logits = ops.einsum(
            "btd,d->bt", ops.tanh(positionwise_dense(self.position_dense, query)), self.position_v
        )
        return ops.sigmoid(ops.cast(logits, "float32"))

    def get_config(self):
        """Returns the constructor arguments, for `from_config`."""
        config = super().get_config()
        config.update(
            {
                "score_mode": self.score_mode,
                "score_scale": self.score_scale,
                "units": self.units,
                "window_mode": self.window_mode,
                "half_window": self.half_window,
            }
        )
        return config


def _target_positions(positions):
    """Local-m's p_t = t: `positions` `(batch, tgt_len)` or `(tgt_len,)` to float32 2-D.

    Returns:
        float32 `(batch, tgt_len)`, or `(1, tgt_len)` for positions shared by every sentence.

    Raises:
        ValueError: if `positions` is None or not of rank 1 or 2.
    """
    if positions is None:
        raise ValueError(
            "Expected positions, the target position of every query, with "
            "window_mode='local-m'. Received: positions=None"
        )
    positions = ops.cast(positions, "float32")
    if len(positions.shape) == 1:
        return ops.expand_dims(positions, axis=0)  # (tgt_len,) -> (1, tgt_len)
    if len(positions.shape) != 2:
        raise ValueError(
            "Expected positions of shape (batch, tgt_len) or (tgt_len,). "
            f"Received: positions.shape={tuple(positions.shape)}"
        )
    return positions
