"""Base class for attention over a source memory: masking, softmax and the context."""

import keras
import tensorflow as tf
from keras import ops

#: The score of a masked position. Scores are masked after the cast to float32, so one
#: large negative value serves every compute dtype: -1e9 is finite in float32 (it would
#: overflow to -inf in float16) and exp(-1e9 - max_score) underflows to exactly 0.
MASK_VALUE = -1e9


@keras.saving.register_keras_serializable(package="nmt_keras")
class Attention(keras.layers.Layer):
    """Base class for attention of a decoder query over an encoder memory.

    Subclasses define how keys are computed from the memory (`_project_key`) and how a
    query is scored against them (`_score`, returning `(batch, tgt_len, src_len)`); a
    local attention also restricts each query to a window (`_window`). This base class
    owns the rest:

        a_ij = softmax_j(score(q_i, k_j))        (masked j get weight exactly 0)
        c_i  = sum_j a_ij v_j

    The softmax runs over the positions `_window` allows (by default every real source
    token) and a window's prior, if any, multiplies the weights after it. The softmax runs
    in float32 and the weights are cast back to the value dtype, so the layer works under
    the `"mixed_float16"` policy. Padded source positions get weight exactly 0 and, without
    a prior, the weights of each query sum to 1 over the real positions; a query whose
    source is entirely padding gets all-zero weights and a zero context. Weights are
    returned, never stored on the layer.

    With `hard=True` the weights are replaced by the one-hot of their argmax, so the
    context is the single source vector with the highest weight: hard attention (Xu et al.
    2015, "Show, Attend and Tell", https://arxiv.org/abs/1502.03044, sec. 4.1, taking the
    most probable location instead of sampling it) in place of the soft attention of
    sec. 4.2. It is an inference option: the argmax has no gradient.

    Keys are the part of the score that depends only on the memory. A decoder computes them
    once per source sentence with `project_key(value)` and passes them as `key=` to every
    step instead of re-projecting the memory each time.

    Call arguments:
        query: float tensor `(batch, tgt_len, dim_q)`.
        value: float tensor `(batch, src_len, dim_v)`, the encoder memory.
        mask: optional bool tensor `(batch, src_len)`, True for real tokens, False for
            padding. None attends to every position.
        key: optional output of `project_key(value)` for this same `value`. None computes
            it inside the call.
        positions: target positions of the queries, int or float `(batch, tgt_len)` or
            `(tgt_len,)`, for a local attention that places its window by position
            (`LuongAttention(window_mode="local-m")`); None otherwise.
        return_attention_scores: if True, also return the attention weights.
        hard: if True, attend to the argmax source position only (one-hot weights).
        training: unused, accepted for API compatibility with Keras layers.

    Returns:
        The context `(batch, tgt_len, dim_v)`, or the tuple `(context, weights)` with
        weights `(batch, tgt_len, src_len)` when `return_attention_scores=True`.

    Example:
        A subclass defines the keys and the score; this one is Luong's dot score:

        >>> import numpy as np
        >>> from keras import ops
        >>> from nmt_keras.layers import Attention
        >>> class DotAttention(Attention):
        ...     def _project_key(self, value):
        ...         return value
        ...
        ...     def _score(self, query, key):
        ...         return ops.einsum("btd,bsd->bts", query, key)
        >>> query, value = np.ones((2, 3, 8), "float32"), np.ones((2, 5, 8), "float32")
        >>> mask = np.array([[True] * 5, [True, True, False, False, False]])
        >>> context, weights = DotAttention()(
        ...     query, value, mask=mask, return_attention_scores=True
        ... )
        >>> tuple(context.shape), tuple(weights.shape)
        ((2, 3, 8), (2, 3, 5))
        >>> [round(float(w), 2) for w in weights[1, 0]]  # equal scores, padding gets 0
        [0.5, 0.5, 0.0, 0.0, 0.0]
    """

    def project_key(self, value):
        """Projects the memory into the keys used by the score.

        Args:
            value: float tensor `(batch, src_len, dim_v)`.

        Returns:
            The key tensor to pass as `key=` to every call with this `value`.

        Raises:
            ValueError: if the layer has not been built yet.
        """
        if not self.built:
            raise ValueError(
                f"Expected layer '{self.name}' to be built before project_key(). Call the "
                "layer once, or call build(query_shape, value_shape). Received: an unbuilt "
                "layer."
            )
        return self._project_key(value)

    def _project_key(self, value):
        """Returns the keys for `value`; see `project_key`."""
        raise NotImplementedError(f"{type(self).__name__} must implement _project_key().")

    def _score(self, query, key):
        """Returns the unnormalised scores `(batch, tgt_len, src_len)`."""
        raise NotImplementedError(f"{type(self).__name__} must implement _score().")

    def _additive_score(self, processed_query, processed_key, attention_v):
        """Additive score `v^T tanh(q_i + k_j)` for already projected queries and keys.

        Args:
            processed_query: `(batch, tgt_len, units)`.
            processed_key: `(batch, src_len, units)`.
            attention_v: `(units,)`.

        Returns:
            Scores `(batch, tgt_len, src_len)`.
        """
        # (batch, tgt_len, units) -> (batch, tgt_len, 1, units)
        processed_query = ops.expand_dims(processed_query, axis=2)
        # (batch, src_len, units) -> (batch, 1, src_len, units)
        processed_key = ops.expand_dims(processed_key, axis=1)
        # Broadcast sum: (batch, tgt_len, src_len, units).
        features = ops.tanh(processed_query + processed_key)
        # (batch, tgt_len, src_len, units) . (units,) -> (batch, tgt_len, src_len)
        return ops.einsum("btsu,u->bts", features, attention_v)

    def _window(self, query, value, mask, positions):
        """The source positions each query may attend to, and a prior on their weights.

        Global attention allows every real source token and has no prior; a local
        attention overrides this.

        Args:
            query: `(batch, tgt_len, dim_q)`.
            value: `(batch, src_len, dim_v)`.
            mask: bool `(batch, src_len)` or None, as in `call`.
            positions: as in `call`.

        Returns:
            `(allowed, prior)`: a bool tensor broadcastable to `(batch, tgt_len, src_len)`
            (None allows every position) and a float32 `(batch, tgt_len, src_len)` factor
            on the weights after the softmax (None for no factor).

        Raises:
            ValueError: if `positions` is given, as global attention does not use them.
        """
        del query, value
        if positions is not None:
            raise ValueError(
                "Expected positions only with a position-aligned local attention. "
                f"Received: positions of shape {tuple(positions.shape)} for the global attention "
                f"'{self.name}'"
            )
        if mask is None:
            return None, None
        # (batch, src_len) -> (batch, 1, src_len), broadcast over tgt_len.
        return ops.expand_dims(mask, axis=1), None

    def call(
        self,
        query,
        value,
        mask=None,
        key=None,
        positions=None,
        return_attention_scores=False,
        hard=False,
        training=None,
    ):
        """Attends from `query` over `value`; arguments and shapes are in the class docstring."""
        if key is None:
            key = self._project_key(value)
        if mask is not None:
            mask = ops.cast(mask, "bool")
        scores = ops.cast(self._score(query, key), "float32")  # (batch, tgt_len, src_len)
        allowed, prior = self._window(query, value, mask, positions)
        if allowed is not None:
            scores = ops.where(allowed, scores, MASK_VALUE)
        # keras.ops.softmax warns on a single source position (a one-event history); same op.
        weights = tf.nn.softmax(scores, axis=-1)
        if allowed is not None:
            # No-op where a row allows a real token; a row that allows none would otherwise
            # get a uniform distribution over padding.
            weights = ops.where(allowed, weights, 0.0)
        if prior is not None:
            weights = weights * prior
        if hard:
            weights = _one_hot_argmax(weights)
        weights = ops.cast(weights, value.dtype)
        # (batch, tgt_len, src_len) @ (batch, src_len, dim_v) -> (batch, tgt_len, dim_v)
        context = ops.matmul(weights, value)
        if return_attention_scores:
            return context, weights
        return context

    def compute_mask(self, query, previous_mask=None):
        """Returns the query's mask: the context has one vector per query position.

        The source mask (`previous_mask` when `mask=` is passed) is consumed here.
        """
        return getattr(query, "_keras_mask", None)


def _one_hot_argmax(weights):
    """Hard attention: the one-hot of the highest weight of each query.

    Args:
        weights: float32 `(batch, tgt_len, src_len)`, zero where a position is not allowed.

    Returns:
        float32 `(batch, tgt_len, src_len)`, 1 at the first argmax of each row; an all-zero
        row (a query that may attend nowhere) stays all zero.
    """
    src_len = ops.shape(weights)[-1]
    one_hot = ops.one_hot(ops.argmax(weights, axis=-1), src_len, dtype="float32")
    # Allowed positions have a positive weight, so a zero maximum marks an all-zero row.
    attends = ops.cast(ops.max(weights, axis=-1, keepdims=True) > 0.0, "float32")
    return one_hot * attends
