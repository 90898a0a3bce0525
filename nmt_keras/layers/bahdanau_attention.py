"""Additive attention of Bahdanau, Cho and Bengio (2015)."""

import math

import keras
from keras import ops

from nmt_keras.layers.attention import Attention
from nmt_keras.layers.positionwise import positionwise_dense


@keras.saving.register_keras_serializable(package="nmt_keras")
class BahdanauAttention(Attention):
    """Additive attention, Bahdanau et al. 2015, eq. 6 and appendix A.1.2.

    "Neural Machine Translation by Jointly Learning to Align and Translate",
    https://arxiv.org/abs/1409.0473. The score of decoder state `s_{i-1}` (the query)
    against encoder annotation `h_j` (the value) is

        e_ij = v^T tanh(W_s s_{i-1} + W_h h_j)

    giving scores and weights of shape `(batch, tgt_len, src_len)`. The key is
    `W_h h_j`, shape `(batch, src_len, units)`, computed once per source sentence by
    `project_key(value)`.

    With `normalize=True` the score uses weight normalisation (Salimans & Kingma 2016,
    https://arxiv.org/abs/1602.07868) and a bias inside the tanh, as the
    `normalize=True` option of the tf.contrib / TensorFlow Addons `BahdanauAttention`:

        e_ij = (g v / ||v||)^T tanh(W_s s_{i-1} + W_h h_j + b)

    with the scalar `g` initialised to `sqrt(1 / units)` and `b` to zeros.

    Masking, the softmax, hard attention and the call arguments are those of `Attention`;
    this attention is global, so `positions` stays None.

    Args:
        units: size of the hidden layer of the alignment model (dimension of `v`).
        normalize: whether to use the weight-normalised form with a bias.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
        >>> import numpy as np
        >>> from nmt_keras.layers import BahdanauAttention
        >>> rng = np.random.default_rng(0)
        >>> query = rng.normal(size=(2, 3, 16)).astype("float32")  # decoder states
        >>> value = rng.normal(size=(2, 5, 16)).astype("float32")  # encoder outputs
        >>> mask = np.array([[True] * 5, [True, True, True, False, False]])
        >>> attention = BahdanauAttention(units=8)
        >>> context, weights = attention(query, value, mask=mask, return_attention_scores=True)
        >>> tuple(context.shape), tuple(weights.shape)
        ((2, 3, 16), (2, 3, 5))
        >>> bool(np.allclose(np.sum(weights, axis=-1), 1.0)), float(np.max(weights[1, :, 3:]))
        (True, 0.0)
    """

    def __init__(self, units, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise ValueError(f"Expected units to be a positive integer. Received: units={units!r}")
        if not isinstance(normalize, bool):
            raise ValueError(f"Expected normalize to be a bool. Received: normalize={normalize!r}")
        self.units = units
        self.normalize = normalize

    def build(self, query_shape, value_shape):
        """Creates W_s, W_h, v (and g, b when normalize)."""
        self.query_dense = keras.layers.Dense(
            self.units, use_bias=False, dtype=self.dtype_policy, name="query_dense"
        )
        self.query_dense.build(query_shape)
        self.key_dense = keras.layers.Dense(
            self.units, use_bias=False, dtype=self.dtype_policy, name="key_dense"
        )
        self.key_dense.build(value_shape)
        self.attention_v = self.add_weight(
            name="attention_v", shape=(self.units,), initializer="glorot_uniform"
        )
        if self.normalize:
            self.attention_g = self.add_weight(
                name="attention_g",
                shape=(),
                initializer=keras.initializers.Constant(math.sqrt(1.0 / self.units)),
            )
            self.attention_b = self.add_weight(
                name="attention_b", shape=(self.units,), initializer="zeros"
            )

    def _project_key(self, value):
        # (batch, src_len, dim_v) -> (batch, src_len, units)
        return self.key_dense(value)

    def _score(self, query, key):
        # (batch, tgt_len, dim_q) -> (batch, tgt_len, units)
        processed_query = positionwise_dense(self.query_dense, query)
        attention_v = self.attention_v
        if self.normalize:
            # The bias is the same for every (i, j), so it is added before the broadcast.
            processed_query = processed_query + self.attention_b
            attention_v = (
                self.attention_g * attention_v * ops.rsqrt(ops.sum(ops.square(attention_v)))
            )
        return self._additive_score(processed_query, key, attention_v)

    def get_config(self):
        """Returns the constructor arguments, for `from_config`."""
        config = super().get_config()
        config.update({"units": self.units, "normalize": self.normalize})
        return config
