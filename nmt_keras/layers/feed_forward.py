"""The position-wise feed-forward network of the Transformer's layers."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="nmt_keras")
class FeedForward(keras.layers.Layer):
    """The position-wise feed-forward network (Vaswani et al. 2017, sec. 3.3, eq. 2).

        FFN(x) = max(0, x W_1 + b_1) W_2 + b_2

    Args:
        units: Input and output size d_model.
        ff_dim: Inner size d_ff.

    Call args:
        inputs: float `(batch, time, units)`.

    Returns:
        `(batch, time, units)`.

    Example:
        >>> import numpy as np
        >>> from nmt_keras.layers import FeedForward
        >>> feed_forward = FeedForward(units=16, ff_dim=64)
        >>> tuple(feed_forward(np.ones((2, 3, 16), "float32")).shape)
        (2, 3, 16)
    """

    def __init__(self, units: int, ff_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.ff_dim = ff_dim
        self.inner_dense = keras.layers.Dense(
            ff_dim, activation="relu", dtype=self.dtype_policy, name="inner"
        )
        self.output_dense = keras.layers.Dense(units, dtype=self.dtype_policy, name="output")

    def build(self, input_shape):
        """Builds both linear transformations."""
        self.inner_dense.build(input_shape)
        self.output_dense.build((*input_shape[:-1], self.ff_dim))

    def call(self, inputs):
        """Applies eq. 2 at every position."""
        return self.output_dense(self.inner_dense(inputs))

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(units=self.units, ff_dim=self.ff_dim)
        return config
