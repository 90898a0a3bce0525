"""A `Dense` layer applied position by position through one 2-D matrix product."""

from __future__ import annotations

import keras
from keras import ops


def positionwise_dense(dense: keras.layers.Dense, sequence):
    """Applies `dense` to every position of `sequence`, as `dense(sequence)` does.

    On the TensorFlow backend `Dense` multiplies a rank-3 input with `tf.tensordot`, which
    computes its transpose permutation at run time when the batch size is unknown. Inside
    a `tf.while_loop` (the decoders' teacher-forced scan) the loop's gradient then needs
    that permutation as a loop value, which XLA cannot compile (`jit_compile=True`:
    "must be a compile-time constant"). Folding the positions into the rows makes it one
    `(batch * time, dim) @ (dim, units)` product, the one `tf.tensordot` makes after its
    transpose, so the results agree to float rounding.

    Args:
        dense: A `keras.layers.Dense`.
        sequence: `(batch, time, dim)`.

    Returns:
        `(batch, time, dense.units)`, `dense`'s output for every position.
    """
    batch, time = ops.shape(sequence)[0], ops.shape(sequence)[1]
    rows = dense(ops.reshape(sequence, (-1, sequence.shape[-1])))  # (batch * time, units)
    return ops.reshape(rows, (batch, time, dense.units))
