"""The results searches return: `SearchResult` (every search) and `BeamSearchResult`."""

from typing import NamedTuple

import tensorflow as tf


class SearchResult(NamedTuple):
    """Output of a search over a `next_fn`, all tensors with batch first.

    Attributes:
        tokens: int32 `(batch, time)`. Generated tokens without BOS, including the EOS, then
            PAD after it; `time <= max_length`.
        lengths: int32 `(batch,)`. Number of generated tokens including the EOS; `max_length`
            for a sequence that never emitted EOS.
        scores: float32 `(batch,)`. Sum of the log-probabilities of the generated tokens up to
            and including the EOS.
        attention: float32 `(batch, time, src_len)` or None when the `next_fn` returns no
            attention. Zeros after the end of each sequence.
    """

    tokens: tf.Tensor
    lengths: tf.Tensor
    scores: tf.Tensor
    attention: tf.Tensor | None


class BeamSearchResult(NamedTuple):
    """Output of `beam_search`: the best hypothesis and the n-best list of every sentence.

    Attributes:
        best: The best hypothesis (the first of the n-best list) as a `SearchResult`: its
            `scores` are its plain summed log-probabilities, comparable with greedy search,
            and its `attention` is its own attention history, zeros after its end.
        nbest_tokens: int32 `(batch, n_best, time)`. Hypotheses best first, PAD after the EOS.
        nbest_lengths: int32 `(batch, n_best)`. Lengths including the EOS; `max_length` for
            a hypothesis that never emitted EOS.
        nbest_scores: float32 `(batch, n_best)`. GNMT scores `s(Y, X)` (Wu et al. 2016,
            eq. 14), descending.
        nbest_log_probs: float32 `(batch, n_best)`. Summed log-probabilities of the same
            hypotheses.
    """

    best: SearchResult
    nbest_tokens: tf.Tensor
    nbest_lengths: tf.Tensor
    nbest_scores: tf.Tensor
    nbest_log_probs: tf.Tensor
