"""RepeatNet's repeat mode: attend over the customer's own past products and copy one."""

from __future__ import annotations

import keras
from keras import ops

from nmt_keras.layers import BahdanauAttention
from nmt_keras.layers.attention import MASK_VALUE

#: Log-probability of what cannot happen (a product outside the repeat set, a sampled
#: negative left out of a softmax): the attention layers' masked score, whose exp() is
#: exactly 0 in float32.
LOG_ZERO = MASK_VALUE


@keras.saving.register_keras_serializable(package="nmt_keras")
class RepeatDecoder(keras.layers.Layer):
    """The repeat mode and the mode gate of RepeatNet, over a customer's purchase statistics.

    Ren et al., "RepeatNet: A Repeat Aware Neural Recommendation Machine for Session-based
    Recommendation", AAAI 2019, https://arxiv.org/abs/1812.02646. A customer's next
    product is either one they bought before (repeat mode) or a new one (explore mode):

        P(i) = P(repeat) P_r(i) + P(explore) P_e(i)                      (eq. 1)

    This layer gives `P(repeat)`, `P(explore) = 1 - P(repeat)` and `P_r`; the explore
    distribution `P_e` over the rest of the catalogue is the caller's.

    The repeat set holds one element per distinct past product, at the event of its last
    purchase. Element `j` is `z_j = relu(W_f f_j + b) + e_j`, its purchase statistics
    `f_j` (`purchase_statistics`: counts, recency, gaps between purchases, quantities)
    and its item embedding `e_j`. The repeat decoder attends over the set with the user's
    state `u` as the query, RepeatNet's eq. 7-8, with Bahdanau's additive score (this
    project's `BahdanauAttention`); the attention weights are the copy distribution:

        P_r(j) = softmax_j(v^T tanh(W_u u + W_z z_j))   over the repeat set

    The mode gate reads the state and the repeat context `c_r = sum_j P_r(j) z_j`
    (eq. 5-6, with a sigmoid for the two modes): `P(repeat) = sigmoid(w^T [u; c_r] + b)`,
    and 0 for a customer without past products.

    Args:
        units: Size of the elements `z_j` (the item embedding's size).
        attention_units: Hidden size of the additive score.

    Call args:
        statistics: float `(batch, history_len, NUM_STATISTICS)`.
        repeat_set: bool `(batch, history_len)`, True on the set's elements.
        item_embeddings: float `(batch, history_len, units)`, each event's item embedding.
        user: float `(batch, user_dim)`, the customer's state.

    Returns:
        `(repeat_log_probs, explore_log_gate)`: float32 `(batch, history_len)`,
        `log P(repeat) + log P_r(j)` on the set's elements and `LOG_ZERO` elsewhere, and
        float32 `(batch,)`, `log P(explore)` (0 for a customer without past products).

    Example:
        >>> import numpy as np
        >>> from nmt_keras.behaviour.purchase_statistics import NUM_STATISTICS
        >>> from nmt_keras.behaviour.repeat_decoder import RepeatDecoder
        >>> decoder = RepeatDecoder(units=8, attention_units=4)
        >>> repeat_set = np.array([[True, False, True], [False, False, False]])
        >>> repeat, explore = decoder(
        ...     np.ones((2, 3, NUM_STATISTICS), "float32"), repeat_set,
        ...     np.ones((2, 3, 8), "float32"), np.ones((2, 8), "float32"),
        ... )
        >>> probabilities = np.exp(repeat).sum(-1) + np.exp(explore)  # the two modes
        >>> [round(float(p), 4) for p in probabilities], float(explore[1])
        ([1.0, 1.0], 0.0)
    """

    def __init__(self, units: int, attention_units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.attention_units = attention_units
        self.statistics_projection = keras.layers.Dense(
            units, activation="relu", dtype=self.dtype_policy, name="statistics_projection"
        )
        self.attention = BahdanauAttention(
            attention_units, dtype=self.dtype_policy, name="repeat_attention"
        )
        self.gate = keras.layers.Dense(1, dtype=self.dtype_policy, name="mode_gate")

    def build(self, statistics_shape, repeat_set_shape, item_embeddings_shape, user_shape):
        """Builds the projection, the attention and the gate."""
        self.statistics_projection.build(statistics_shape)
        elements_shape = (*item_embeddings_shape[:-1], self.units)
        self.attention.build((user_shape[0], 1, user_shape[-1]), elements_shape)
        self.gate.build((user_shape[0], user_shape[-1] + self.units))

    def call(self, statistics, repeat_set, item_embeddings, user):
        """See the class docstring."""
        repeat_set = ops.cast(repeat_set, "bool")
        elements = self.statistics_projection(statistics) + item_embeddings  # (batch, len, units)
        # (batch, units) -> (batch, 1, units): one query per customer.
        context, weights = self.attention(
            ops.expand_dims(user, 1), elements, mask=repeat_set, return_attention_scores=True
        )
        logit = self.gate(ops.concatenate([user, context[:, 0]], axis=-1))[:, 0]  # (batch,)
        logit = ops.cast(logit, "float32")
        has_set = ops.any(repeat_set, axis=1)
        explore_log_gate = ops.where(has_set, ops.log_sigmoid(-logit), 0.0)
        weights = ops.cast(weights[:, 0], "float32")  # (batch, len), 0 off the set
        repeat_log_probs = ops.where(
            repeat_set,
            ops.expand_dims(ops.log_sigmoid(logit), 1) + ops.log(ops.maximum(weights, 1e-30)),
            LOG_ZERO,
        )
        return repeat_log_probs, explore_log_gate

    def compute_output_shape(self, statistics_shape, *_):
        """`((batch, history_len), (batch,))`."""
        return statistics_shape[:2], statistics_shape[:1]

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(units=self.units, attention_units=self.attention_units)
        return config
