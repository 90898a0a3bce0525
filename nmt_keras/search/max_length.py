"""Validation of the `max_length` argument every search takes."""

import tensorflow as tf


def max_length_tensor(max_length: int | tf.Tensor) -> tf.Tensor:
    """Converts `max_length` to an int32 scalar that is checked to be >= 1 when it is used.

    Args:
        max_length: int or int32 scalar tensor, the maximum number of generated tokens
            including EOS.

    Returns:
        The int32 scalar, with a runtime assertion that it is positive.

    Raises:
        ValueError: If `max_length` is a Python int smaller than 1 or is not a scalar.
    """
    if isinstance(max_length, int) and max_length < 1:
        raise ValueError(f"Expected max_length >= 1. Received: max_length={max_length}")
    max_length = tf.convert_to_tensor(max_length, dtype=tf.int32)
    if max_length.shape.rank != 0:
        raise ValueError(f"Expected a scalar max_length. Received: max_length={max_length}")
    with tf.control_dependencies(
        [tf.debugging.assert_positive(max_length, message="Expected max_length >= 1.")]
    ):
        return tf.identity(max_length)
