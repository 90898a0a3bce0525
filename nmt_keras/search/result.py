"""The result every search (greedy, beam, sampling) returns."""

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
