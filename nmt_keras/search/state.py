"""Shape invariants of the search state that a `next_fn` carries through a `tf.while_loop`."""

from typing import Any

import tensorflow as tf


def _relax_all_but_last(tensor: tf.Tensor) -> tf.TensorShape:
    """`(d0, ..., dn)` -> `(None, ..., None, dn)`; `(batch,)` -> `(None,)`; scalars kept."""
    shape = tensor.shape
    if shape.rank is None or shape.rank == 0:
        return shape
    if shape.rank == 1:
        return tf.TensorShape([None])
    return tf.TensorShape([None] * (shape.rank - 1)).concatenate(shape[-1:])


def state_shape_invariants(state: Any) -> Any:
    """Shape invariants for a search state: only the last dimension of a tensor is fixed.

    The batch dimension changes between calls (and, in beam search, is `batch * beam`),
    so a `(batch,)` tensor is fully relaxed; the middle dimensions may grow from step to
    step, as a Transformer's self-attention cache `(batch, time, heads, depth)` does. The
    feature dimension stays fixed so the model's weights still apply.

    Args:
        state: A `tf.nest` structure of tensors.

    Returns:
        The same structure of `tf.TensorShape`s.
    """
    return tf.nest.map_structure(_relax_all_but_last, state)
