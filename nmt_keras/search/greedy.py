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

    The loop is a `tf.while_loop` over `TensorArray`s with core TensorFlow ops only, so it
    runs eagerly, inside a `tf.function` with unknown batch size and source length, and in a
    SavedModel served by stock TensorFlow Serving. It stops as soon as every sequence has
    emitted EOS, or after `max_length` steps. A finished sequence emits PAD; `next_fn` keeps
    being called on it (with PAD as its input token) and its outputs for that row are ignored.

    Args:
        next_fn: `next_fn(tokens, state, step) -> (logits, state, attention)`. `tokens` is
            int32 `(batch,)`, the previously emitted tokens (BOS at step 0); `state` is any
            `tf.nest` structure of tensors with batch as dimension 0 whose last dimension is
            constant across steps (the others may change: a decoder cache can grow along
            time); `step` is an int32 scalar. `logits` is float `(batch, vocab)` of any float
            dtype; `attention` is float `(batch, src_len)`, or None for every step.
        initial_state: The `state` passed to `next_fn` at step 0.
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
