"""Greedy search over a model-agnostic `next_fn`, in a `tf.while_loop` that TF Serving runs."""

from typing import Any

import tensorflow as tf

from nmt_keras.search.next_fn import NextFn
from nmt_keras.search.result import SearchResult
from nmt_keras.search.token_loop import token_by_token_search


def _most_probable_tokens(log_probs: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
    """float32 `(batch, vocab)` log-probabilities -> int32 `(batch,)` argmax tokens."""
    del step  # Greedy choices do not depend on the step.
    return tf.argmax(log_probs, axis=-1, output_type=tf.int32)


def greedy_search(
    next_fn: NextFn,
    initial_state: Any,
    *,
    batch_size: int | tf.Tensor,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    max_length: int | tf.Tensor,
) -> SearchResult:
    """Decodes by taking the most probable token at every step.

    The loop is `token_by_token_search`'s: a `tf.while_loop` of core TensorFlow ops that
    stock TensorFlow Serving runs, that drops each sequence from the decoding batch once it
    has emitted EOS and stops when none is left or after `max_length` steps.

    Args:
        next_fn: The model's step function (see `nmt_keras.search.next_fn.NextFn`).
        initial_state: The `state` passed to `next_fn` at step 0, one row per sequence.
        batch_size: int32 scalar, the number of sequences.
        bos_id: Token fed to `next_fn` at step 0.
        eos_id: Token that ends a sequence.
        pad_id: Token emitted after the EOS.
        max_length: int32 scalar >= 1, the maximum number of generated tokens including EOS.

    Returns:
        A `SearchResult` with `tokens (batch, time)`, `lengths (batch,)`, `scores (batch,)` and
        `attention (batch, time, src_len)` or None.

    Raises:
        ValueError: If `max_length` is a Python int smaller than 1 or is not a scalar.
    """
    return token_by_token_search(
        next_fn,
        initial_state,
        select_tokens=_most_probable_tokens,
        batch_size=batch_size,
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=pad_id,
        max_length=max_length,
    )
