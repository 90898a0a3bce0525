"""Reading, validating, sampling and length-filtering parallel corpora, streamed from files."""

from __future__ import annotations

import dataclasses
import glob
import gzip
import itertools
import math
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from nmt_keras.errors import NmtKerasError

if TYPE_CHECKING:
    from nmt_keras.config import CorpusFiles

LengthFn = Callable[[Sequence[str]], Sequence[int]]
"""Maps a list of sentences to their token lengths (`<s>` and `</s>` included)."""


# Bytes read and decoded at a time, and lines handled at a time: large enough that the
# per-line work runs in C.
_CHUNK_BYTES = 1 << 20
_CHUNK_LINES = 8192


class CorpusError(NmtKerasError, ValueError):
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


def corpus_shards(files: CorpusFiles) -> tuple[CorpusFiles, ...]:
    """Expands a split's glob patterns into its shards, in sorted path order.

    `source`, `target` and `tsv` may each be a file or a glob pattern (`train.*.en.gz`);
    the i-th source file is aligned with the i-th target file in sorted order.

    Raises:
        CorpusError: If a pattern matches no file, or the source and target patterns
            match different numbers of files.
    """
    if files.tsv is not None:
        return tuple(dataclasses.replace(files, tsv=path) for path in _expand(files.tsv))
    sources, targets = _expand(files.source), _expand(files.target)
    if len(sources) != len(targets):
        raise CorpusError(
            f"Expected as many source as target files. Received: {files.source} matches "
            f"{len(sources)} files, {files.target} matches {len(targets)}"
        )
    return tuple(
        dataclasses.replace(files, source=source, target=target)
        for source, target in zip(sources, targets, strict=True)
    )


def iter_pairs(files: CorpusFiles) -> Iterator[tuple[str, str]]:
    """Streams the sentence pairs of a split, validating every line as it is read.

    Reads the shards of `corpus_shards(files)` in order, plain text or gzip (`.gz`), one
    line at a time: lines are split on newline characters only (never on U+2028 and the
    like) and stripped of surrounding whitespace. Memory does not grow with the corpus.

    Yields:
        `(source, target)` strings.

    Raises:
        CorpusError: When it meets a missing or empty file, a line that is not UTF-8, a
            TSV line without exactly two tab-separated fields, or aligned files with
            different line counts; the one-line message names the file and line.
    """
    for sources, targets in _pair_chunks(files):
        for source, target in zip(sources, targets, strict=True):
            yield source.strip(), target.strip()


def read_parallel(source_path: str | os.PathLike, target_path: str | os.PathLike) -> ParallelCorpus:
    """Reads two aligned files into memory (see `iter_pairs` for the format).

    Raises:
        CorpusError: As `iter_pairs`.
    """
    return _collect(_aligned_chunks(os.fspath(source_path), os.fspath(target_path)))


def read_tsv(path: str | os.PathLike) -> ParallelCorpus:
    """Reads `source<TAB>target` lines into memory (see `iter_pairs` for the format).

    Raises:
        CorpusError: As `iter_pairs`.
    """
    return _collect(_tsv_chunks(os.fspath(path)))


def read_corpus(files: CorpusFiles) -> ParallelCorpus:
    """Reads one split of a config into memory: aligned files or TSV, one or many shards.

    Raises:
        CorpusError: As `iter_pairs`.
    """
    return _collect(_pair_chunks(files))


@dataclasses.dataclass(frozen=True)
class CorpusScan:
    """What one streaming pass over a split found.

    Attributes:
        pairs: Sentence pairs in the split.
        sample: A uniform random sample of at most the requested size, in corpus order
            (the whole split when it is no bigger).
    """

    pairs: int
    sample: ParallelCorpus


def scan_corpus(files: CorpusFiles, sample_size: int, seed: int) -> CorpusScan:
    """Validates a split in one streaming pass and draws a random sample of its pairs.

    Reservoir sampling (Li 1994, "Algorithm L") keeps memory bounded by `sample_size`
    whatever the corpus size, so tokenizers can be trained and statistics taken on a
    corpus that does not fit in memory.

    Args:
        files: The split.
        sample_size: Most pairs to keep.
        seed: Seed of the sample.

    Returns:
        The pair count and the sample.

    Raises:
        CorpusError: As `iter_pairs`.
    """
    if sample_size < 1:
        raise ValueError(f"Expected sample_size >= 1. Received: sample_size={sample_size}")
    rng = random.Random(seed)
    reservoir: list[tuple[int, str, str]] = []
    weight = math.exp(math.log(rng.random()) / sample_size)
    next_pick = sample_size + int(math.log(rng.random()) / math.log(1 - weight))
    count = 0
    for sources, targets in _pair_chunks(files):
        if len(reservoir) < sample_size:
            taken = range(count, min(count + len(sources), sample_size))
            reservoir += zip(taken, sources, targets, strict=False)
        while next_pick < count + len(sources):
            offset = next_pick - count
            reservoir[rng.randrange(sample_size)] = (next_pick, sources[offset], targets[offset])
            weight *= math.exp(math.log(rng.random()) / sample_size)
            next_pick += 1 + int(math.log(rng.random()) / math.log(1 - weight))
        count += len(sources)
    reservoir.sort()
    return CorpusScan(
        count, _collect([([s for _, s, _ in reservoir], [t for _, _, t in reservoir])])
    )


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


def _expand(pattern: str) -> list[str]:
    """The files a path or glob pattern names, sorted."""
    if not glob.has_magic(pattern):
        return [pattern]
    paths = sorted(path for path in glob.glob(pattern) if os.path.isfile(path))
    if not paths:
        raise CorpusError(f"Expected corpus files matching a pattern. Received: {pattern} (none)")
    return paths


def _pair_chunks(files: CorpusFiles) -> Iterator[tuple[list[str], list[str]]]:
    """Streams a split as aligned chunks of source and target lines, not yet stripped."""
    for shard in corpus_shards(files):
        if shard.tsv is not None:
            yield from _tsv_chunks(shard.tsv)
        else:
            yield from _aligned_chunks(shard.source, shard.target)


def _aligned_chunks(source_path: str, target_path: str) -> Iterator[tuple[list[str], list[str]]]:
    """Streams two aligned files in aligned chunks of lines (see `iter_pairs`)."""
    source_count = target_count = 0
    chunks = itertools.zip_longest(
        _fixed_chunks(_line_chunks(source_path)), _fixed_chunks(_line_chunks(target_path))
    )
    for sources, targets in chunks:
        source_count += len(sources or ())
        target_count += len(targets or ())
        if source_count != target_count:
            for sources, targets in chunks:
                source_count += len(sources or ())
                target_count += len(targets or ())
            raise CorpusError(
                f"Expected aligned files with equal line counts. Received: {source_path} has "
                f"{source_count} lines, {target_path} has {target_count} lines"
            )
        yield sources, targets


def _tsv_chunks(path: str) -> Iterator[tuple[list[str], list[str]]]:
    """Streams `source<TAB>target` lines in chunks of fields (see `iter_pairs`)."""
    count = 0
    for lines in _line_chunks(path):
        rows = [line.split("\t") for line in lines]
        for number, fields in enumerate(rows, start=count + 1):
            if len(fields) != 2:
                raise CorpusError(
                    f"Expected 2 tab-separated fields (source<TAB>target). "
                    f"Received: {len(fields)} at {path}:{number}"
                )
        count += len(rows)
        yield [source for source, _ in rows], [target for _, target in rows]


def _fixed_chunks(chunks: Iterable[list[str]]) -> Iterator[list[str]]:
    """Regroups lines into chunks of `_CHUNK_LINES` (the last may be shorter)."""
    pending: list[str] = []
    for chunk in chunks:
        pending += chunk
        while len(pending) >= _CHUNK_LINES:
            yield pending[:_CHUNK_LINES]
            del pending[:_CHUNK_LINES]
    if pending:
        yield pending


def _line_chunks(path: str) -> Iterator[list[str]]:
    """The lines of a UTF-8 text file (gzip if named `.gz`), a block of bytes at a time.

    Lines are split on newline characters only and keep their other whitespace.
    """
    if not os.path.isfile(path):
        raise CorpusError(f"Expected an existing corpus file. Received: {path} (not found)")
    opener = gzip.open if path.endswith(".gz") else open
    count = 0
    try:
        with opener(path, "rb") as file:
            while block := file.read(_CHUNK_BYTES):
                if not block.endswith(b"\n"):
                    block += file.readline()
                lines = _decode(block, path, first_line=count + 1)
                count += len(lines)
                yield lines
    except (OSError, EOFError) as error:
        raise CorpusError(f"Could not read corpus file {path}: {error}") from error
    if count == 0:
        raise CorpusError(f"Expected a non-empty corpus. Received: {path} has no lines")


def _decode(block: bytes, path: str, first_line: int) -> list[str]:
    """The lines of a block of whole lines, naming the first byte that is not UTF-8."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as error:
        number = first_line + block.count(b"\n", 0, error.start)
        column = error.start - block.rfind(b"\n", 0, error.start)
        raise CorpusError(
            f"Expected UTF-8 text. Received: invalid byte at {path}:{number} (column {column})"
        ) from error
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _collect(chunks: Iterable[tuple[list[str], list[str]]]) -> ParallelCorpus:
    """The stripped pairs of aligned chunks, in memory."""
    sources: list[str] = []
    targets: list[str] = []
    for source_chunk, target_chunk in chunks:
        sources += [source.strip() for source in source_chunk]
        targets += [target.strip() for target in target_chunk]
    return ParallelCorpus(tuple(sources), tuple(targets))
