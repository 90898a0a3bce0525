"""The single-hypothesis decoding loop that greedy search and sampling share."""

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from nmt_keras.search.max_length import max_length_tensor
from nmt_keras.search.next_fn import NextFn
from nmt_keras.search.result import SearchResult
from nmt_keras.search.state import state_shape_invariants

#: `select_tokens(log_probs, step) -> tokens`: float32 `(batch, vocab)` log-probabilities and
#: the int32 scalar step -> the int32 `(batch,)` tokens to emit.
TokenSelector = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def _rows_still_decoding(
    rows: tf.Tensor, tokens: tf.Tensor, state: Any, continuing: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, Any]:
    """Keeps the `continuing` rows of the decoding batch, and all of them when none ended.

    Args:
        rows: int32 `(active,)`, the batch row of each decoding sequence.
        tokens: int32 `(active,)`, the tokens just emitted.
        state: The `next_fn` state, batch-major.
        continuing: bool `(active,)`, whether each sequence is still decoding.

    Returns:
        `(rows, tokens, state)` of the sequences still decoding.
    """

    def keep_continuing():
        return tf.nest.map_structure(
            lambda x: tf.boolean_mask(x, continuing), (rows, tokens, state)
        )

    return tf.cond(tf.reduce_all(continuing), lambda: (rows, tokens, state), keep_continuing)


def token_by_token_search(
    next_fn: NextFn,
    initial_state: Any,
    *,
    select_tokens: TokenSelector,
    batch_size: int | tf.Tensor,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    max_length: int | tf.Tensor,
) -> SearchResult:
    """Decodes one hypothesis per sequence, emitting the token `select_tokens` picks each step.

    The loop is a `tf.while_loop` over `TensorArray`s with core TensorFlow ops only, so it
    runs eagerly, inside a `tf.function` with unknown batch size and source length, and in a
    SavedModel served by stock TensorFlow Serving. It stops as soon as every sequence has
    emitted EOS, or after `max_length` steps.

    A sequence leaves the decoding batch at the step it emits EOS: its rows are dropped from
    the state (`tf.boolean_mask`), so `next_fn` only computes the sequences still decoding
    and a step costs in proportion to them, not to the batch (a batch of short sentences and
    one long one no longer decodes the long one's length for every row). The outputs are
    scattered back to the batch rows; finished rows hold PAD.

    Args:
        next_fn: The model's step function (see `nmt_keras.search.next_fn.NextFn`). Its
            `tokens` and `state` have one row per sequence still decoding, in batch order.
        initial_state: The `state` passed to `next_fn` at step 0, one row per sequence.
        select_tokens: Picks the emitted tokens from the step's log-probabilities.
        batch_size: int32 scalar, the number of sequences.
        bos_id: Token fed to `next_fn` at step 0.
        eos_id: Token that ends a sequence.
        pad_id: Token emitted after the EOS.
        max_length: int32 scalar >= 1, the maximum number of generated tokens including EOS.

    Returns:
        A `SearchResult` with `tokens (batch, time)`, `lengths (batch,)`, `scores (batch,)`
        (the summed log-probabilities of the emitted tokens under `next_fn`'s logits) and
        `attention (batch, time, src_len)` (zero after a row's EOS) or None.

    Raises:
        ValueError: If `max_length` is a Python int smaller than 1 or is not a scalar.
    """
    max_length = max_length_tensor(max_length)
    batch_size = tf.convert_to_tensor(batch_size, dtype=tf.int32)
    initial_state = tf.nest.map_structure(tf.convert_to_tensor, initial_state)

    # next_fn decides statically whether it returns attention; the body records that choice
    # on its first run (the trace, in a graph).
    returns_attention: list[bool] = []

    def cond(step, rows, tokens, state, lengths, scores, token_ta, attention_ta):
        # At least one step runs, so the TensorArrays are never stacked empty (even batch 0).
        decoding = tf.logical_or(tf.equal(step, 0), tf.size(rows) > 0)
        return tf.logical_and(step < max_length, decoding)

    def body(step, rows, tokens, state, lengths, scores, token_ta, attention_ta):
        logits, state, attention = next_fn(tokens, state, step)
        if not returns_attention:
            returns_attention.append(attention is not None)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)  # (active, vocab)
        tokens = select_tokens(log_probs, step)  # (active,)
        batch_rows = rows[:, tf.newaxis]  # (active, 1): scatter indices into the batch
        scores = tf.tensor_scatter_nd_add(
            scores, batch_rows, tf.gather(log_probs, tokens, batch_dims=1)
        )
        lengths = tf.tensor_scatter_nd_add(lengths, batch_rows, tf.ones_like(tokens))
        token_ta = token_ta.write(
            step, tf.tensor_scatter_nd_update(tf.fill([batch_size], pad_id), batch_rows, tokens)
        )
        if attention is not None:
            attention = tf.cast(attention, tf.float32)  # (active, src_len)
            batch_shape = tf.stack([batch_size, tf.shape(attention)[1]])
            attention_ta = attention_ta.write(
                step, tf.scatter_nd(batch_rows, attention, batch_shape)
            )
        rows, tokens, state = _rows_still_decoding(
            rows, tokens, state, continuing=tf.not_equal(tokens, eos_id)
        )
        return step + 1, rows, tokens, state, lengths, scores, token_ta, attention_ta

    loop_vars = (
        tf.constant(0, tf.int32),
        tf.range(batch_size),
        tf.fill([batch_size], tf.constant(bos_id, tf.int32)),
        initial_state,
        tf.zeros([batch_size], tf.int32),
        tf.zeros([batch_size], tf.float32),
        tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None]),
        tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=[None, None]),
    )
    vector = tf.TensorShape([None])  # (batch,) or (active,)
    flow = tf.TensorShape([])  # A TensorArray's invariant is its scalar flow.
    shape_invariants = (
        tf.TensorShape([]),
        vector,
        vector,
        state_shape_invariants(initial_state),
        vector,
        vector,
        flow,
        flow,
    )
    _, _, _, _, lengths, scores, token_ta, attention_ta = tf.while_loop(
        cond, body, loop_vars, shape_invariants=shape_invariants
    )
    tokens = tf.transpose(token_ta.stack())  # (time, batch) -> (batch, time)
    attention = None
    if returns_attention[0]:
        # (time, batch, src_len) -> (batch, time, src_len)
        attention = tf.transpose(attention_ta.stack(), [1, 0, 2])
    return SearchResult(tokens=tokens, lengths=lengths, scores=scores, attention=attention)
