"""Reading, validating and length-filtering parallel corpora."""

from __future__ import annotations

import dataclasses
import gzip
import os
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nmt_keras.config import CorpusFiles

LengthFn = Callable[[Sequence[str]], Sequence[int]]
"""Maps a list of sentences to their token lengths (`<s>` and `</s>` included)."""


class CorpusError(ValueError):
    """A corpus file is missing or malformed; the one-line message names the file and line."""


@dataclasses.dataclass(frozen=True)
class ParallelCorpus:
    """Sentence pairs: `sources[i]` translates to `targets[i]`.

    Attributes:
        sources: Source sentences.
        targets: Target sentences, as many as `sources`.
    """

    sources: tuple[str, ...]
    targets: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "targets", tuple(self.targets))
        if len(self.sources) != len(self.targets):
            raise ValueError(
                "Expected as many sources as targets. "
                f"Received: {len(self.sources)} sources, {len(self.targets)} targets"
            )

    def __len__(self) -> int:
        return len(self.sources)


@dataclasses.dataclass(frozen=True)
class FilterReport:
    """What `filter_pairs` kept and dropped.

    Attributes:
        kept: Pairs kept.
        empty: Pairs dropped because a side is empty.
        too_long: Pairs dropped because a side has more than `max_length` tokens.
        max_length: The length limit, `<s>` and `</s>` included.
    """

    kept: int
    empty: int
    too_long: int
    max_length: int

    @property
    def total(self) -> int:
        """Pairs seen."""
        return self.kept + self.empty + self.too_long

    def __str__(self) -> str:
        return (
            f"kept {self.kept} of {self.total} pairs (dropped {self.empty} empty, "
            f"{self.too_long} longer than {self.max_length} tokens)"
        )


def read_parallel(source_path: str | os.PathLike, target_path: str | os.PathLike) -> ParallelCorpus:
    """Reads two aligned files, one sentence a line, plain text or gzip (`.gz`).

    Lines are split on newline characters only (never on U+2028 and the like) and
    stripped of surrounding whitespace.

    Raises:
        CorpusError: If a file is missing, is not UTF-8, is empty, or the two files
            have different line counts.
    """
    sources = _read_lines(source_path)
    targets = _read_lines(target_path)
    if len(sources) != len(targets):
        raise CorpusError(
            f"Expected aligned files with equal line counts. Received: {os.fspath(source_path)} "
            f"has {len(sources)} lines, {os.fspath(target_path)} has {len(targets)} lines"
        )
    return ParallelCorpus(tuple(sources), tuple(targets))


def read_tsv(path: str | os.PathLike) -> ParallelCorpus:
    """Reads `source<TAB>target` lines, plain text or gzip (`.gz`).

    Raises:
        CorpusError: If the file is missing, is not UTF-8, is empty, or a line does not
            have exactly two tab-separated fields.
    """
    sources, targets = [], []
    for number, line in enumerate(_read_lines(path, strip=False), start=1):
        fields = line.split("\t")
        if len(fields) != 2:
            raise CorpusError(
                f"Expected 2 tab-separated fields (source<TAB>target). "
                f"Received: {len(fields)} at {os.fspath(path)}:{number}"
            )
        sources.append(fields[0].strip())
        targets.append(fields[1].strip())
    return ParallelCorpus(tuple(sources), tuple(targets))


def read_corpus(files: CorpusFiles) -> ParallelCorpus:
    """Reads one split of a config: two aligned files or one TSV file.

    Raises:
        CorpusError: As `read_parallel` and `read_tsv`.
    """
    if files.tsv is not None:
        return read_tsv(files.tsv)
    return read_parallel(files.source, files.target)


def subsample(corpus: ParallelCorpus, count: int, seed: int) -> ParallelCorpus:
    """A random `count` of the pairs (all of them when there are fewer), in corpus order."""
    if count >= len(corpus):
        return corpus
    chosen = sorted(random.Random(seed).sample(range(len(corpus)), count))
    return ParallelCorpus(
        tuple(corpus.sources[index] for index in chosen),
        tuple(corpus.targets[index] for index in chosen),
    )


def filter_pairs(
    corpus: ParallelCorpus,
    source_length_fn: LengthFn,
    target_length_fn: LengthFn,
    max_length: int,
) -> tuple[ParallelCorpus, FilterReport]:
    """Drops pairs with an empty side or with a side longer than `max_length` tokens.

    Args:
        corpus: Pairs to filter.
        source_length_fn: Token lengths of a list of source sentences, `<s>`/`</s>`
            included, e.g. `Tokenizer.token_lengths`.
        target_length_fn: The same for target sentences.
        max_length: Longest allowed sequence, `<s>` and `</s>` included.

    Returns:
        The kept pairs, in their original order, and counts of what was dropped.
    """
    if max_length < 3:
        raise ValueError(f"Expected max_length >= 3. Received: max_length={max_length}")
    pairs = [(s, t) for s, t in zip(corpus.sources, corpus.targets, strict=True) if s and t]
    empty = len(corpus) - len(pairs)
    source_lengths = source_length_fn([s for s, _ in pairs])
    target_lengths = target_length_fn([t for _, t in pairs])
    kept = [
        pair
        for pair, source_length, target_length in zip(
            pairs, source_lengths, target_lengths, strict=True
        )
        if source_length <= max_length and target_length <= max_length
    ]
    report = FilterReport(
        kept=len(kept), empty=empty, too_long=len(pairs) - len(kept), max_length=max_length
    )
    return ParallelCorpus(tuple(s for s, _ in kept), tuple(t for _, t in kept)), report


def _read_lines(path: str | os.PathLike, strip: bool = True) -> list[str]:
    """Returns the lines of a UTF-8 text file (gzip if its name ends in `.gz`)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CorpusError(f"Expected an existing corpus file. Received: {path} (not found)")
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except (OSError, EOFError) as error:
        raise CorpusError(f"Could not read corpus file {path}: {error}") from error
    raw_lines = data.split(b"\n")
    if raw_lines[-1] == b"":
        raw_lines.pop()
    if not raw_lines:
        raise CorpusError(f"Expected a non-empty corpus. Received: {path} has no lines")
    lines = []
    for number, raw in enumerate(raw_lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise CorpusError(
                f"Expected UTF-8 text. Received: invalid byte at {path}:{number} "
                f"(column {error.start + 1})"
            ) from error
        lines.append(line.strip() if strip else line.rstrip("\r"))
    return lines
