"""How a translator decodes: greedy, beam or sampling, chosen by `DecodingOptions`."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import tensorflow as tf

from nmt_keras.errors import NmtKerasError
from nmt_keras.search import beam_search, greedy_search, sample
from nmt_keras.search.result import SearchResult
from nmt_keras.text.tokenizer import BOS_ID, EOS_ID, PAD_ID


class DecodingError(NmtKerasError, ValueError):
    """Decoding options that are invalid, or that the model cannot run."""


@dataclasses.dataclass(frozen=True)
class DecodingOptions:
    """The search a translator runs, and its settings.

    Greedy search is the default; `beam_size > 1` selects beam search with the GNMT
    length and coverage penalties (Wu et al. 2016, eq. 14); `sampling` draws every token
    from the model's distribution instead (temperature, top-k). `hard_attention`
    replaces the soft attention average by the argmax source position at every step
    (Xu et al. 2015, sec. 4.1), whatever the search.

    Attributes:
        beam_size: Hypotheses kept per sentence; 1 is greedy search.
        length_penalty: GNMT alpha; 0 ranks hypotheses by plain log-probability.
        coverage_penalty: GNMT beta; 0 is off. Needs a model with attention.
        n_best: Hypotheses returned per sentence (at most `beam_size`).
        sampling: Sample tokens instead of searching.
        temperature: Divides the logits before sampling.
        top_k: Sample among the k most probable tokens (0: all).
        seed: Seed of the sampler (None: a different draw every call).
        hard_attention: Attend to the single most probable source position.
    """

    beam_size: int = 1
    length_penalty: float = 0.0
    coverage_penalty: float = 0.0
    n_best: int = 1
    sampling: bool = False
    temperature: float = 1.0
    top_k: int = 0
    seed: int | None = None
    hard_attention: bool = False

    def __post_init__(self):
        if self.beam_size < 1:
            raise DecodingError(f"Expected beam_size >= 1. Received: beam_size={self.beam_size}")
        if not 1 <= self.n_best <= self.beam_size:
            raise DecodingError(
                "Expected 1 <= n_best <= beam_size. "
                f"Received: n_best={self.n_best}, beam_size={self.beam_size}"
            )
        if self.length_penalty < 0 or self.coverage_penalty < 0:
            raise DecodingError(
                "Expected length_penalty >= 0 and coverage_penalty >= 0. Received: "
                f"length_penalty={self.length_penalty}, coverage_penalty={self.coverage_penalty}"
            )
        if self.sampling and self.beam_size > 1:
            raise DecodingError(
                f"Expected beam_size=1 when sampling. Received: beam_size={self.beam_size}"
            )
        if self.temperature <= 0:
            raise DecodingError(
                f"Expected temperature > 0. Received: temperature={self.temperature}"
            )
        if self.top_k < 0:
            raise DecodingError(f"Expected top_k >= 0. Received: top_k={self.top_k}")

    @property
    def uses_beam(self) -> bool:
        """Whether beam search runs (and n-best lists exist)."""
        return self.beam_size > 1


#: The default search: greedy, soft attention.
GREEDY = DecodingOptions()


class Decoded(NamedTuple):
    """What `decode` returns.

    Attributes:
        best: The best (or only) hypothesis of every sentence.
        nbest_tokens: int32 `(batch, n_best, time)`, or None without beam search.
        nbest_lengths: int32 `(batch, n_best)`, or None.
        nbest_scores: float32 `(batch, n_best)` log-probabilities, in the beam's ranking
            order (by the penalised score, so not always descending), or None.
    """

    best: SearchResult
    nbest_tokens: tf.Tensor | None = None
    nbest_lengths: tf.Tensor | None = None
    nbest_scores: tf.Tensor | None = None


def check_supported(model: Any, options: DecodingOptions) -> None:
    """Raises a `DecodingError` when `model` cannot decode with `options`.

    Args:
        model: A model with `has_attention` and `supports_hard_attention`.
        options: The search and its settings.
    """
    if options.coverage_penalty and not model.has_attention:
        raise DecodingError(
            "Expected a model with attention for coverage_penalty. "
            "Received: a fixed-context model (model.type=seq2seq)"
        )
    if options.hard_attention and not model.supports_hard_attention:
        raise DecodingError(
            "Expected an RNN model with attention for hard_attention. "
            f"Received: a {type(model).__name__} without a single attention to harden"
        )


def decode(
    model: Any,
    source: tf.Tensor,
    options: DecodingOptions,
    max_length: tf.Tensor,
) -> Decoded:
    """Runs the search `options` names on a model's `next_fn`.

    Args:
        model: A model with `initial_search_state(source)`, `next_fn(tokens, state, step)`
            (with a `hard_attention` keyword when `supports_hard_attention`),
            `state_reorder_flags(state)`, `has_attention` and `supports_hard_attention`
            (an `nmt_keras.models.EncoderDecoder`).
        source: int32 `(batch, src_len)` source ids, 0-padded.
        options: The search and its settings.
        max_length: int32 scalar, generated tokens at most (</s> included).

    Returns:
        The `Decoded` hypotheses.

    Raises:
        DecodingError: see `check_supported`.
    """
    check_supported(model, options)
    next_fn = model.next_fn
    if options.hard_attention:
        next_fn = functools.partial(model.next_fn, hard_attention=True)
    state = model.initial_search_state(source)
    common = dict(
        batch_size=tf.shape(source)[0],
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        pad_id=PAD_ID,
        max_length=max_length,
    )
    if options.sampling:
        result = sample(
            next_fn,
            state,
            temperature=options.temperature,
            top_k=options.top_k,
            seed=options.seed,
            **common,
        )
        return Decoded(result)
    if not options.uses_beam:
        return Decoded(greedy_search(next_fn, state, **common))
    source_lengths = tf.reduce_sum(tf.cast(source != PAD_ID, tf.int32), axis=1)
    beams = beam_search(
        next_fn,
        state,
        beam_size=options.beam_size,
        length_penalty=options.length_penalty,
        coverage_penalty=options.coverage_penalty,
        n_best=options.n_best,
        source_lengths=source_lengths,
        reorder_flags=model.state_reorder_flags(state),
        **common,
    )
    return Decoded(beams.best, beams.nbest_tokens, beams.nbest_lengths, beams.nbest_log_probs)
