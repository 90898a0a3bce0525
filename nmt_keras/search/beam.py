"""Beam search with GNMT scoring over a model-agnostic `next_fn`, in one `tf.while_loop`."""

from typing import Any, NamedTuple

import tensorflow as tf

from nmt_keras.search.gnmt_scoring import gnmt_coverage_penalty, gnmt_length_penalty
from nmt_keras.search.max_length import max_length_tensor
from nmt_keras.search.next_fn import NextFn
from nmt_keras.search.result import BeamSearchResult, SearchResult
from nmt_keras.search.state import state_shape_invariants

_NEG_INF = float("-inf")


class _Hypotheses(NamedTuple):
    """A set of hypotheses per sentence (the alive beam, or the finished n-best).

    Attributes:
        tokens: int32 `(batch, hypotheses, time)`, PAD after the EOS.
        lengths: int32 `(batch, hypotheses)`, EOS included.
        log_probs: float32 `(batch, hypotheses)`, summed log-probabilities; -inf for an empty
            slot.
        scores: float32 `(batch, hypotheses)`, GNMT scores `s(Y, X)`; -inf for an empty slot.
        attention: float32 `(batch, hypotheses, time, src_len)`, zeros after the end;
            `(batch, hypotheses, 0, 0)` when `next_fn` returns no attention.
    """

    tokens: tf.Tensor
    lengths: tf.Tensor
    log_probs: tf.Tensor
    scores: tf.Tensor
    attention: tf.Tensor


def _empty_hypotheses(batch_size: tf.Tensor, size: int, log_probs: tf.Tensor) -> _Hypotheses:
    """`size` zero-length hypotheses per sentence with the given `(size,)` log-probabilities."""
    log_probs = tf.tile(log_probs[tf.newaxis], [batch_size, 1])  # (size,) -> (batch, size)
    return _Hypotheses(
        tokens=tf.zeros([batch_size, size, 0], tf.int32),
        lengths=tf.zeros([batch_size, size], tf.int32),
        log_probs=log_probs,
        scores=log_probs,
        attention=tf.zeros([batch_size, size, 0, 0], tf.float32),
    )


def _hypotheses_invariants(size: int) -> _Hypotheses:
    """Shape invariants of `_Hypotheses` of `size` per sentence: batch and time vary."""
    return _Hypotheses(
        tokens=tf.TensorShape([None, size, None]),
        lengths=tf.TensorShape([None, size]),
        log_probs=tf.TensorShape([None, size]),
        scores=tf.TensorShape([None, size]),
        attention=tf.TensorShape([None, size, None, None]),
    )


def _gather(hypotheses: _Hypotheses, indices: tf.Tensor) -> _Hypotheses:
    """Picks hypotheses by int32 `(batch, k)` indices along the hypothesis axis."""
    return tf.nest.map_structure(lambda x: tf.gather(x, indices, batch_dims=1), hypotheses)


def _concat(first: _Hypotheses, second: _Hypotheses) -> _Hypotheses:
    """Joins two sets along the hypothesis axis, `first` before `second`."""
    return tf.nest.map_structure(lambda a, b: tf.concat([a, b], axis=1), first, second)


def _top(hypotheses: _Hypotheses, ranking: tf.Tensor, k: int) -> _Hypotheses:
    """The `k` hypotheses of highest float32 `(batch, hypotheses)` ranking, best first.

    `tf.math.top_k` puts the lower index first among equal values, so on a tie the
    hypothesis that comes first in the set wins.
    """
    return _gather(hypotheses, tf.math.top_k(ranking, k=k).indices)


def _top_extensions(
    alive_log_probs: tf.Tensor, step_log_probs: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The `2 * beam` most probable one-token extensions of every sentence's alive beam.

    At most `beam` of them end in EOS (one per parent), so at least `beam` continue.

    Args:
        alive_log_probs: float32 `(batch, beam)`, summed log-probabilities of the beam.
        step_log_probs: float32 `(batch * beam, vocab)`, log-probabilities of the next token;
            `vocab >= 2`.

    Returns:
        `(log_probs, parents, tokens)`, each `(batch, 2 * beam)`, most probable first: the
        extensions' summed log-probabilities (float32), their parents' beam indices and
        their new tokens (int32).
    """
    batch_size, beam_size = tf.shape(alive_log_probs)[0], alive_log_probs.shape[1]
    vocab = tf.shape(step_log_probs)[-1]
    # (batch, beam, 1) + (batch, beam, vocab) -> (batch, beam * vocab)
    extended = alive_log_probs[:, :, tf.newaxis] + tf.reshape(
        step_log_probs, [batch_size, beam_size, vocab]
    )
    extended = tf.reshape(extended, [batch_size, beam_size * vocab])
    log_probs, ids = tf.math.top_k(extended, k=2 * beam_size)
    return log_probs, ids // vocab, ids % vocab


def _reorder(state: Any, rows: tf.Tensor, reorder_flags: Any) -> Any:
    """Gathers `rows` of every state tensor flagged True (all when `reorder_flags` is None)."""
    if reorder_flags is None:
        return tf.nest.map_structure(lambda x: tf.gather(x, rows), state)
    return tf.nest.map_structure(
        lambda x, reorder: tf.gather(x, rows) if reorder else x, state, reorder_flags
    )


def _state_rows(parents: tf.Tensor) -> tf.Tensor:
    """int32 `(batch, beam)` parent beam indices -> `(batch * beam,)` rows of the state."""
    batch_size, beam_size = tf.shape(parents)[0], parents.shape[1]
    rows = parents + beam_size * tf.range(batch_size)[:, tf.newaxis]
    return tf.reshape(rows, [batch_size * beam_size])


def _settled(
    alive: _Hypotheses, finished: _Hypotheses, best_length_penalty: tf.Tensor
) -> tf.Tensor:
    """Whether no alive hypothesis can still enter a sentence's finished n-best list.

    An alive hypothesis's log-probability only decreases as it grows, its GNMT length
    penalty is at most `best_length_penalty` (the one at `max_length`, since `alpha >= 0`) and
    its coverage penalty is at most 0, so `max(alive log-prob) / best_length_penalty` bounds
    every score it can reach. Finished scores are sorted, so the last is the n_best-th, and
    a later hypothesis that ties with it does not displace it.

    Args:
        alive: The alive beam, `log_probs (batch, beam)`.
        finished: The finished n-best, `scores (batch, n_best)` descending.
        best_length_penalty: float32 scalar, `lp(max_length)`.

    Returns:
        bool `(batch,)`.
    """
    best_reachable_score = tf.reduce_max(alive.log_probs, axis=1) / best_length_penalty
    return finished.scores[:, -1] >= best_reachable_score


def _sentences_still_searching(
    searching: tf.Tensor,
    sentences: tf.Tensor,
    alive: _Hypotheses,
    tokens: tf.Tensor,
    state: Any,
    beam_size: int,
) -> tuple[tf.Tensor, _Hypotheses, tf.Tensor, Any]:
    """Drops the settled sentences from the search, and nothing when none settled.

    Args:
        searching: bool `(active,)`, whether each sentence is still searching.
        sentences: int32 `(active,)`, the batch index of each searching sentence.
        alive: Their alive beams, `(active, beam, ...)`.
        tokens: int32 `(active * beam,)`, the alive hypotheses' last tokens.
        state: The `next_fn` state, `active * beam` rows, the beams of a sentence adjacent.
        beam_size: Alive hypotheses per sentence.

    Returns:
        `(sentences, alive, tokens, state)` of the sentences still searching.
    """

    def keep_searching():
        rows = tf.repeat(searching, beam_size)  # (active * beam,)
        return (
            tf.boolean_mask(sentences, searching),
            tf.nest.map_structure(lambda x: tf.boolean_mask(x, searching), alive),
            tf.boolean_mask(tokens, rows),
            tf.nest.map_structure(lambda x: tf.boolean_mask(x, rows), state),
        )

    return tf.cond(
        tf.reduce_all(searching), lambda: (sentences, alive, tokens, state), keep_searching
    )


def _validate(
    beam_size: int,
    n_best: int,
    length_penalty: float,
    coverage_penalty: float,
    source_lengths: tf.Tensor | None,
) -> None:
    """Raises a `ValueError` on invalid static `beam_search` arguments."""
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"Expected beam_size >= 1. Received: beam_size={beam_size}")
    if not isinstance(n_best, int) or not 1 <= n_best <= beam_size:
        raise ValueError(
            f"Expected 1 <= n_best <= beam_size. Received: n_best={n_best}, beam_size={beam_size}"
        )
    if length_penalty < 0:
        raise ValueError(f"Expected length_penalty >= 0. Received: length_penalty={length_penalty}")
    if coverage_penalty < 0:
        raise ValueError(
            f"Expected coverage_penalty >= 0. Received: coverage_penalty={coverage_penalty}"
        )
    if coverage_penalty > 0 and source_lengths is None:
        raise ValueError(
            "Expected source_lengths when coverage_penalty > 0. "
            f"Received: source_lengths=None, coverage_penalty={coverage_penalty}"
        )


def beam_search(
    next_fn: NextFn,
    initial_state: Any,
    *,
    batch_size: int | tf.Tensor,
    beam_size: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    max_length: int | tf.Tensor,
    length_penalty: float = 0.0,
    coverage_penalty: float = 0.0,
    n_best: int = 1,
    source_lengths: tf.Tensor | None = None,
    reorder_flags: Any = None,
) -> BeamSearchResult:
    """Decodes by beam search, ranking finished hypotheses by the GNMT score.

    The `beam_size` alive hypotheses of every sentence are extended by every token; of the
    `2 * beam_size` most probable extensions, those ending in EOS within the first
    `beam_size` become finished hypotheses, and the `beam_size` most probable others stay
    alive (as in fairseq, so `beam_size=1` is greedy search). Alive hypotheses are ranked by
    log-probability; finished ones by the GNMT score (Wu et al. 2016, "Google's Neural Machine
    Translation System", eq. 14)

        s(Y, X) = log P(Y|X) / lp(Y) + cp(X; Y),  lp(Y) = ((5 + |Y|) / 6)^alpha,
        cp(X; Y) = beta * sum_j log(min(sum_i p_ij, 1.0)),

    with `|Y|` counting the EOS, and the best `n_best` are kept. A sentence is settled once
    its `n_best`-th finished score is at least the best score an alive hypothesis can still
    reach: its log-probability only decreases, `lp` is largest at `max_length` when
    `alpha > 0`, and `cp <= 0`. A settled sentence leaves the search (the result is the same
    as when running it to `max_length`): its alive beam and its rows of the state are dropped,
    so `next_fn` only computes the sentences still searching. The search stops when none is
    left, or after `max_length` steps, when alive hypotheses (of length `max_length`, without
    EOS) compete with the finished ones.

    The state is tiled to `batch * beam_size` rows (the beams of a sentence adjacent) and
    reordered by the chosen parent beams at every step, except the tensors that
    `reorder_flags` marks False: those are the same for every beam of a sentence (an
    encoder's memory, keys projected once per sentence; OpenNMT-tf's "state reorder
    flags"), so the reordering would copy them to themselves. The loop is a
    `tf.while_loop` with core TensorFlow ops only, so it runs eagerly, inside a `tf.function`
    with unknown batch size and source length, and in a SavedModel served by stock
    TensorFlow Serving.

    Args:
        next_fn: The model's step function (see `nmt_keras.search.next_fn.NextFn`), called
            on `beam_size` rows for each sentence still searching.
        initial_state: The `state` of the `batch_size` sentences at step 0 (not tiled).
        batch_size: int32 scalar, the number of sentences.
        beam_size: Alive hypotheses kept per sentence, >= 1.
        bos_id: Token fed to `next_fn` at step 0.
        eos_id: Token that ends a hypothesis.
        pad_id: Token written after the EOS.
        max_length: int32 scalar >= 1, the maximum number of generated tokens including EOS.
        length_penalty: GNMT `alpha` >= 0; 0 ranks by plain log-probability.
        coverage_penalty: GNMT `beta` >= 0; 0 is off. Needs a `next_fn` that returns
            attention, and `source_lengths`.
        n_best: Hypotheses returned per sentence, in `[1, beam_size]`.
        source_lengths: int32 `(batch,)` number of real source positions, the ones the
            coverage penalty sums over; used only when `coverage_penalty > 0`.
        reorder_flags: None (reorder every state tensor), or a structure like
            `initial_state` of Python bools, False for a tensor that is the same for every
            beam of a sentence. A tensor flagged False that differs between the beams of
            a sentence gives wrong results.

    Returns:
        A `BeamSearchResult`. When fewer than `n_best` hypotheses exist at all (a tiny
        vocabulary), the remaining slots are empty: length 0, PAD tokens, -inf scores.

    Raises:
        ValueError: If `beam_size < 1`, `n_best` is not in `[1, beam_size]`, a penalty is
            negative, `coverage_penalty > 0` without `source_lengths` or with a `next_fn`
            that returns no attention, or `max_length` is a Python int smaller than 1 or is
            not a scalar, or `reorder_flags` is not shaped like `initial_state`.
    """
    _validate(beam_size, n_best, length_penalty, coverage_penalty, source_lengths)
    if reorder_flags is not None:
        try:
            tf.nest.assert_same_structure(initial_state, reorder_flags)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"Expected reorder_flags shaped like initial_state. Received: {error}"
            ) from None
    max_length = max_length_tensor(max_length)
    batch_size = tf.convert_to_tensor(batch_size, dtype=tf.int32)
    if coverage_penalty > 0:
        source_lengths = tf.convert_to_tensor(source_lengths, dtype=tf.int32)
    initial_state = tf.nest.map_structure(
        lambda x: tf.repeat(tf.convert_to_tensor(x), beam_size, axis=0), initial_state
    )
    # The most favourable length penalty an alive hypothesis can still get.
    best_length_penalty = gnmt_length_penalty(max_length, length_penalty)

    def score(
        log_probs: tf.Tensor, lengths: tf.Tensor, attention: tf.Tensor, sentences: tf.Tensor
    ) -> tf.Tensor:
        """GNMT scores `(active, hypotheses)` of the hypotheses of `sentences (active,)`.

        `attention` is `(active, hypotheses, time, src_len)`.
        """
        scores = log_probs / gnmt_length_penalty(lengths, length_penalty)
        if coverage_penalty > 0:
            source_mask = tf.sequence_mask(
                tf.gather(source_lengths, sentences), tf.shape(attention)[-1]
            )
            scores += gnmt_coverage_penalty(attention, source_mask, coverage_penalty)
        return scores

    # next_fn decides statically whether it returns attention; the body records that choice
    # on its first run (the trace, in a graph).
    returns_attention: list[bool] = []

    def merge_finished(finished, sentences, candidates):
        """Keeps each decoding sentence's n-best of its finished list and `candidates`.

        Returns:
            `(finished, merged)`: the batch's finished lists with the decoding sentences'
            updated, and those sentences' own new lists, `(active, n_best, ...)`.
        """
        rows = sentences[:, tf.newaxis]  # (active, 1): scatter indices into the batch
        own = tf.nest.map_structure(lambda x: tf.gather(x, sentences), finished)
        merged = _concat(own, candidates)
        merged = _top(merged, merged.scores, n_best)
        # Without attention the (batch, n_best, 0, 0) history is empty: nothing to scatter.
        fields = _Hypotheses._fields if returns_attention[0] else _Hypotheses._fields[:-1]
        finished = finished._replace(
            **{
                name: tf.tensor_scatter_nd_update(
                    getattr(finished, name), rows, getattr(merged, name)
                )
                for name in fields
            }
        )
        return finished, merged

    def cond(step, sentences, tokens, state, alive, finished):
        # At least one step runs, so every output has a time step (even batch 0).
        decoding = tf.logical_or(tf.equal(step, 0), tf.size(sentences) > 0)
        return tf.logical_and(step < max_length, decoding)

    def body(step, sentences, tokens, state, alive, finished):
        logits, state, attention = next_fn(tokens, state, step)
        if not returns_attention:
            returns_attention.append(attention is not None)
        if coverage_penalty > 0 and attention is None:
            raise ValueError(
                "Expected a next_fn that returns attention when coverage_penalty > 0. "
                f"Received: attention=None, coverage_penalty={coverage_penalty}"
            )
        active = tf.shape(sentences)[0]
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)  # (active*beam, V)
        top_log_probs, parents, new_tokens = _top_extensions(alive.log_probs, log_probs)

        alive_attention, finished_attention = alive.attention, finished.attention
        if attention is not None:
            # Histories start as (sentences, hypotheses, 0, 0): give them the source length.
            src_len = tf.shape(attention)[-1]
            step_attention = tf.reshape(
                tf.cast(attention, tf.float32), [active, beam_size, 1, src_len]
            )
            alive_attention = tf.concat(
                [tf.reshape(alive_attention, [active, beam_size, step, src_len]), step_attention],
                axis=2,
            )
            finished_attention = tf.pad(
                tf.reshape(finished_attention, [batch_size, n_best, step, src_len]),
                [[0, 0], [0, 0], [0, 1], [0, 0]],
            )
        candidate_attention = tf.gather(alive_attention, parents, batch_dims=1)
        candidate_lengths = tf.fill(tf.shape(parents), step + 1)
        candidates = _Hypotheses(
            tokens=tf.concat(
                [tf.gather(alive.tokens, parents, batch_dims=1), new_tokens[:, :, tf.newaxis]],
                axis=2,
            ),
            lengths=candidate_lengths,
            log_probs=top_log_probs,
            scores=score(top_log_probs, candidate_lengths, candidate_attention, sentences),
            attention=candidate_attention,
        )

        ends = tf.equal(new_tokens, eos_id)  # (active, 2 * beam)
        within_beam = tf.range(2 * beam_size) < beam_size  # (2 * beam,)
        finishes = tf.logical_and(ends, within_beam)
        finished = finished._replace(
            tokens=tf.pad(finished.tokens, [[0, 0], [0, 0], [0, 1]], constant_values=pad_id),
            attention=finished_attention,
        )
        finished, own_finished = merge_finished(
            finished,
            sentences,
            candidates._replace(
                log_probs=tf.where(finishes, candidates.log_probs, _NEG_INF),
                scores=tf.where(finishes, candidates.scores, _NEG_INF),
            ),
        )

        continuing = candidates._replace(
            log_probs=tf.where(ends, _NEG_INF, candidates.log_probs),
            scores=tf.where(ends, _NEG_INF, candidates.scores),
        )
        alive_choice = tf.math.top_k(continuing.log_probs, k=beam_size).indices  # (active, beam)
        alive = _gather(continuing, alive_choice)
        parent_rows = _state_rows(tf.gather(parents, alive_choice, batch_dims=1))
        state = _reorder(state, parent_rows, reorder_flags)
        tokens = tf.reshape(alive.tokens[:, :, -1], [active * beam_size])
        searching = tf.logical_not(_settled(alive, own_finished, best_length_penalty))
        sentences, alive, tokens, state = _sentences_still_searching(
            searching, sentences, alive, tokens, state, beam_size
        )
        return step + 1, sentences, tokens, state, alive, finished

    first_beam_only = tf.where(tf.range(beam_size) == 0, 0.0, _NEG_INF)  # (beam,)
    loop_vars = (
        tf.constant(0, tf.int32),
        tf.range(batch_size),
        tf.fill([batch_size * beam_size], tf.constant(bos_id, tf.int32)),
        initial_state,
        _empty_hypotheses(batch_size, beam_size, first_beam_only),
        _empty_hypotheses(batch_size, n_best, tf.fill([n_best], _NEG_INF)),
    )
    shape_invariants = (
        tf.TensorShape([]),
        tf.TensorShape([None]),
        tf.TensorShape([None]),
        state_shape_invariants(initial_state),
        _hypotheses_invariants(beam_size),
        _hypotheses_invariants(n_best),
    )
    _, sentences, _, _, alive, finished = tf.while_loop(
        cond, body, loop_vars, shape_invariants=shape_invariants
    )
    # Alive hypotheses remain only where max_length cut a search off; there they compete
    # with the finished ones, which win ties.
    nbest, _ = merge_finished(finished, sentences, alive)

    nbest_time = tf.maximum(tf.reduce_max(nbest.lengths), 1)
    best_lengths = nbest.lengths[:, 0]
    best_time = tf.maximum(tf.reduce_max(best_lengths), 1)
    best_attention = None
    if returns_attention[0]:
        best_attention = nbest.attention[:, 0, :best_time]
    best = SearchResult(
        tokens=nbest.tokens[:, 0, :best_time],
        lengths=best_lengths,
        scores=nbest.log_probs[:, 0],
        attention=best_attention,
    )
    return BeamSearchResult(
        best=best,
        nbest_tokens=nbest.tokens[:, :, :nbest_time],
        nbest_lengths=nbest.lengths,
        nbest_scores=nbest.scores,
        nbest_log_probs=nbest.log_probs,
    )
