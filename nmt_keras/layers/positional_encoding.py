"""Sinusoidal positional encoding of the Transformer (Vaswani et al. 2017, sec. 3.5)."""

from __future__ import annotations

import math

import keras
from keras import ops


def sinusoidal_positions(positions, depth: int, max_wavelength: float = 10000.0):
    """The sinusoids of Vaswani et al. 2017, sec. 3.5, for the given positions.

        PE(pos, 2i)     = sin(pos / max_wavelength^(2i / depth))
        PE(pos, 2i + 1) = cos(pos / max_wavelength^(2i / depth))

    Args:
        positions: `(length,)` positions, any int or float dtype.
        depth: Even encoding size.
        max_wavelength: The base of the wavelengths (10000 in the paper).

    Returns:
        float32 `(length, depth)`, sines on even and cosines on odd features.
    """
    positions = ops.cast(positions, "float32")
    # 1 / max_wavelength^(2i / depth) for i in [0, depth / 2): (depth / 2,)
    exponents = ops.arange(0, depth, 2, dtype="float32") / float(depth)
    inverse_wavelengths = ops.exp(-math.log(max_wavelength) * exponents)
    # (length, 1) * (1, depth / 2) -> (length, depth / 2)
    angles = ops.expand_dims(positions, 1) * ops.expand_dims(inverse_wavelengths, 0)
    # Interleave: (length, depth / 2, 2) -> (length, depth)
    encoding = ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1)
    return ops.reshape(encoding, (-1, depth))


@keras.saving.register_keras_serializable(package="nmt_keras")
class PositionalEncoding(keras.layers.Layer):
    """Scales token embeddings by sqrt(d_model) and adds sinusoidal positions.

    The input of both Transformer stacks (Vaswani et al. 2017, sec. 3.4 for the scaling,
    sec. 3.5 for the encoding): x_t * sqrt(d_model) + PE(start + t). The encoding is
    computed on the fly, so there is no maximum length; `start` places a slice of a
    sequence, e.g. the single token of decoding step `start`.

    Args:
        max_wavelength: The base of the wavelengths (10000 in the paper).

    Call args:
        inputs: float `(batch, time, d_model)` embeddings, `d_model` even.
        start: int scalar (Python or tensor), the position of `inputs[:, 0]`.

    Returns:
        `(batch, time, d_model)` in the layer's compute dtype.

    Raises:
        ValueError: If `d_model` is odd.

    Example:
        >>> import numpy as np
        >>> from nmt_keras.layers import PositionalEncoding
        >>> outputs = PositionalEncoding()(np.zeros((1, 3, 4), "float32"))
        >>> np.asarray(outputs[0], 'float64').round(3).tolist()  # zero embeddings: PE(t) alone
        [[0.0, 1.0, 0.0, 1.0], [0.841, 0.54, 0.01, 1.0], [0.909, -0.416, 0.02, 1.0]]
    """

    def __init__(self, max_wavelength: float = 10000.0, **kwargs):
        super().__init__(**kwargs)
        self.max_wavelength = max_wavelength

    def build(self, input_shape):
        """Checks that the embedding size is even."""
        if input_shape[-1] % 2:
            raise ValueError(
                f"Expected an even embedding size. Received: input_shape={tuple(input_shape)}"
            )

    def call(self, inputs, start=0):
        """Returns the scaled embeddings plus positions; see the class docstring."""
        depth = inputs.shape[-1]
        time = ops.shape(inputs)[1]
        positions = ops.cast(ops.arange(time), "float32") + ops.cast(start, "float32")
        encoding = sinusoidal_positions(positions, depth, self.max_wavelength)
        # (time, d_model) broadcasts over the batch.
        return inputs * math.sqrt(depth) + ops.cast(encoding, inputs.dtype)

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(max_wavelength=self.max_wavelength)
        return config
