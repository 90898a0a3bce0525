"""The tf.data pipeline: streaming, in-graph tokenization, length filtering, bucketing, padding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import tensorflow as tf

from nmt_keras.data.corpus import ParallelCorpus, corpus_shards
from nmt_keras.text.tokenizer import PAD_ID, Tokenizer

if TYPE_CHECKING:
    from nmt_keras.config import CorpusFiles

DEFAULT_BUCKET_WIDTH = 2
_TOKENIZE_CHUNK = 1024
# Shards read at once, their lines interleaved.
_INTERLEAVED_SHARDS = 4


def make_dataset(
    corpus: ParallelCorpus,
    source_tokenizer: Tokenizer,
    target_tokenizer: Tokenizer,
    *,
    batch_size: int | None = None,
    max_tokens: int | None = None,
    max_length: int,
    shuffle: bool,
    seed: int = 0,
    bucket_width: int = DEFAULT_BUCKET_WIDTH,
    pad_to_bucket: bool = False,
) -> tf.data.Dataset:
    """Batches sentence pairs held in memory for `keras.Model.fit` (see `batch_pairs`).

    Args:
        corpus: Sentence pairs.
        source_tokenizer: Tokenizer of the source language.
        target_tokenizer: Tokenizer of the target language (may be the same object).
        batch_size: Sentences per batch. Exactly one of `batch_size` and `max_tokens`.
        max_tokens: Token budget per batch (see `batch_pairs`).
        max_length: Longest sequence kept, `<s>` and `</s>` included.
        shuffle: Whether to shuffle all the pairs (reshuffled every epoch).
        seed: Shuffle seed; the batches come in the same order for the same seed.
        bucket_width: Width of the length buckets, in tokens.
        pad_to_bucket: Pad both sides of every batch to its bucket's longest length, so
            that batches take one of a few shapes (for XLA, see `batch_pairs`).

    Returns:
        The batched, prefetched dataset of one pass over `corpus`.

    Raises:
        ValueError: If the corpus is empty, or as `batch_pairs`.
    """
    if len(corpus) == 0:
        raise ValueError("Expected a non-empty corpus. Received: 0 pairs")
    pairs = tf.data.Dataset.from_tensor_slices((list(corpus.sources), list(corpus.targets)))
    return batch_pairs(
        pairs,
        source_tokenizer,
        target_tokenizer,
        batch_size=batch_size,
        max_tokens=max_tokens,
        max_length=max_length,
        shuffle_buffer=len(corpus) if shuffle else None,
        seed=seed,
        bucket_width=bucket_width,
        pad_to_bucket=pad_to_bucket,
    )


def stream_dataset(
    files: CorpusFiles,
    source_tokenizer: Tokenizer,
    target_tokenizer: Tokenizer,
    *,
    batch_size: int | None = None,
    max_tokens: int | None = None,
    max_length: int,
    shuffle_buffer: int,
    seed: int = 0,
    bucket_width: int = DEFAULT_BUCKET_WIDTH,
    pad_to_bucket: bool = False,
    max_pairs: int | None = None,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Streams a corpus of any size from its files into batches.

    The files (`corpus_shards(files)`: aligned files or TSV, plain or gzip, one or many
    shards per side) are read line by line by `tf.data.TextLineDataset`; every pass
    visits the shards in a new random order, four at a time interleaved, and shuffles
    their pairs through a buffer of `shuffle_buffer` pairs. Nothing proportional to the
    corpus is held in memory or embedded in the graph, so the corpus may be far larger
    than memory. Run `nmt_keras.data.corpus.scan_corpus` first to validate the files:
    this pipeline assumes well-formed UTF-8 and aligned shards.

    Args:
        files: The split to stream.
        source_tokenizer: Tokenizer of the source language.
        target_tokenizer: Tokenizer of the target language (may be the same object).
        batch_size: Sentences per batch. Exactly one of `batch_size` and `max_tokens`.
        max_tokens: Token budget per batch (see `batch_pairs`).
        max_length: Longest sequence kept, `<s>` and `</s>` included.
        shuffle_buffer: Pairs in the shuffle buffer; a corpus no larger is shuffled
            whole every pass.
        seed: Seed of the shard order and the shuffle.
        bucket_width: Width of the length buckets, in tokens.
        pad_to_bucket: Pad both sides of every batch to its bucket's longest length, so
            that batches take one of a few shapes (for XLA, see `batch_pairs`).
        max_pairs: Train on a fixed random subset of this many pairs (kept in memory,
            reshuffled every pass), None for the whole stream.
        repeat: Repeat the passes forever (bound each epoch with `steps_per_epoch`)
            instead of making one pass per iteration.

    Returns:
        The batched, prefetched dataset.

    Raises:
        CorpusError: If a file pattern matches nothing.
        ValueError: As `batch_pairs`.
    """
    if shuffle_buffer < 1:
        raise ValueError(f"Expected shuffle_buffer >= 1. Received: shuffle_buffer={shuffle_buffer}")
    pairs = _shard_lines(corpus_shards(files), seed)
    if max_pairs is not None:
        # The first pairs of the first shuffled pass, kept for every later pass.
        pairs = pairs.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
        pairs = pairs.take(max_pairs).cache()
        shuffle_buffer = max_pairs
    dataset = batch_pairs(
        pairs,
        source_tokenizer,
        target_tokenizer,
        batch_size=batch_size,
        max_tokens=max_tokens,
        max_length=max_length,
        shuffle_buffer=shuffle_buffer,
        seed=seed,
        bucket_width=bucket_width,
        pad_to_bucket=pad_to_bucket,
    )
    return dataset.repeat() if repeat else dataset


def batch_pairs(
    pairs: tf.data.Dataset,
    source_tokenizer: Tokenizer,
    target_tokenizer: Tokenizer,
    *,
    batch_size: int | None = None,
    max_tokens: int | None = None,
    max_length: int,
    shuffle_buffer: int | None,
    seed: int = 0,
    bucket_width: int = DEFAULT_BUCKET_WIDTH,
    pad_to_bucket: bool = False,
) -> tf.data.Dataset:
    """Turns `(source, target)` string pairs into padded, length-bucketed batches.

    Pairs are shuffled (as strings, before any work is spent on them), tokenized inside
    the tf.data graph by the tokenizers (`<s> x </s>`), and dropped when a side is empty
    or longer than `max_length` tokens. For a target `<s> y </s>` the decoder input is
    `<s> y` and the labels are `y </s>`. Pairs are grouped by
    `max(source_len, target_len)` into buckets `bucket_width` tokens wide and padded with
    `PAD_ID` to the longest sequence of their batch, or with `pad_to_bucket` to the longest
    length of their bucket: then both sides of a batch have that one length, so the
    batches come in at most `max_length // bucket_width + 1` lengths, and XLA
    (`jit_compile`), which compiles a program per shape, compiles each once.

    Each element is `(inputs, labels)`:
        inputs["source"]: int32 `(batch, src_len)`.
        inputs["target"]: int32 `(batch, tgt_len)`, decoder input `<s> y`.
        labels: int32 `(batch, tgt_len)`, `y </s>`.

    Args:
        pairs: Dataset of `(source, target)` scalar strings.
        source_tokenizer: Tokenizer of the source language.
        target_tokenizer: Tokenizer of the target language (may be the same object).
        batch_size: Sentences per batch. Exactly one of `batch_size` and `max_tokens`.
        max_tokens: Token budget per batch: a bucket whose sequences have at most `n`
            tokens gets batches of `max_tokens // n` sentences, so neither
            `inputs["source"]` nor `inputs["target"]` exceeds `max_tokens` elements.
        max_length: Longest sequence kept, `<s>` and `</s>` included.
        shuffle_buffer: Pairs in the shuffle buffer (reshuffled every pass), None to keep
            the order.
        seed: Shuffle seed; the batches come in the same order for the same seed.
        bucket_width: Width of the length buckets, in tokens.
        pad_to_bucket: Pad both sides of every batch to its bucket's longest length, so
            that batches take one of a few shapes (for XLA, see above).

    Returns:
        The batched, prefetched dataset.

    Raises:
        ValueError: If not exactly one of `batch_size`/`max_tokens` is given, or an
            argument is out of range.
    """
    if (batch_size is None) == (max_tokens is None):
        raise ValueError(
            "Expected exactly one of batch_size and max_tokens. "
            f"Received: batch_size={batch_size}, max_tokens={max_tokens}"
        )
    if max_length < 3:
        raise ValueError(f"Expected max_length >= 3. Received: max_length={max_length}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"Expected batch_size >= 1. Received: batch_size={batch_size}")
    if max_tokens is not None and max_tokens < max_length:
        raise ValueError(
            "Expected max_tokens >= max_length, so that the longest pair fits a batch. "
            f"Received: max_tokens={max_tokens}, max_length={max_length}"
        )
    if bucket_width < 1:
        raise ValueError(f"Expected bucket_width >= 1. Received: bucket_width={bucket_width}")

    def tokenize(sources: tf.Tensor, targets: tf.Tensor):
        """(chunk,) strings -> ragged ids of the pairs with both sides in (2, max_length]."""
        source = source_tokenizer.tokenize(sources)  # (chunk, (src_len))
        target = target_tokenizer.tokenize(targets)  # (chunk, (tgt_len + 1))
        source_lengths, target_lengths = source.row_lengths(), target.row_lengths()
        # A side of length 2 is `<s> </s>`: an empty sentence.
        fits = (source_lengths > 2) & (source_lengths <= max_length)
        fits &= (target_lengths > 2) & (target_lengths <= max_length)
        source = tf.ragged.boolean_mask(source, fits)  # (kept, (src_len))
        target = tf.ragged.boolean_mask(target, fits)  # (kept, (tgt_len + 1))
        return source, target

    if shuffle_buffer is not None:
        pairs = pairs.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = pairs.batch(_TOKENIZE_CHUNK)
    dataset = dataset.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.unbatch().map(_shift_target, num_parallel_calls=tf.data.AUTOTUNE)

    boundaries = list(range(bucket_width + 1, max_length + 1, bucket_width))
    if pad_to_bucket and boundaries[-1:] != [max_length + 1]:
        # The last bucket must be bounded too: it pads to max_length.
        boundaries.append(max_length + 1)
    if batch_size is not None:
        bucket_batch_sizes = [batch_size] * (len(boundaries) + 1)
    else:
        upper_bounds = [boundary - 1 for boundary in boundaries] + [max_length]
        bucket_batch_sizes = [max_tokens // upper for upper in upper_bounds]
    pad = tf.constant(PAD_ID, tf.int32)
    dataset = dataset.bucket_by_sequence_length(
        element_length_func=_padded_length,
        bucket_boundaries=boundaries,
        bucket_batch_sizes=bucket_batch_sizes,
        padding_values=({"source": pad, "target": pad}, pad),
        pad_to_bucket_boundary=pad_to_bucket,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def padding_fraction(dataset: tf.data.Dataset) -> float:
    """Fraction of `PAD_ID` among all `inputs["source"]` and `inputs["target"]` elements.

    Args:
        dataset: A dataset made by `make_dataset` (one pass is consumed).

    Returns:
        Padding tokens divided by all tokens, in `[0, 1]`.

    Raises:
        ValueError: If the dataset has no tokens.
    """

    def count(inputs, labels):
        del labels  # Padded exactly like inputs["target"].
        tensors = (inputs["source"], inputs["target"])
        pads = tf.add_n([tf.reduce_sum(tf.cast(t == PAD_ID, tf.int64)) for t in tensors])
        total = tf.add_n([tf.size(t, out_type=tf.int64) for t in tensors])
        return pads, total

    zero = tf.constant(0, tf.int64)
    pads, total = dataset.map(count).reduce(
        (zero, zero), lambda acc, x: (acc[0] + x[0], acc[1] + x[1])
    )
    if int(total) == 0:
        raise ValueError("Expected a dataset with tokens. Received: an empty dataset")
    return int(pads) / int(total)


def _shift_target(source: tf.Tensor, target: tf.Tensor):
    """Splits `<s> y </s>` into decoder input `<s> y` and labels `y </s>`.

    Args:
        source: int32 `(src_len,)`.
        target: int32 `(tgt_len + 1,)`.

    Returns:
        `({"source": (src_len,), "target": (tgt_len,)}, labels (tgt_len,))`, dense tensors
        (the map also turns the unbatched ragged elements into plain tensors).
    """
    return {"source": source, "target": target[:-1]}, target[1:]


def _padded_length(inputs, labels) -> tf.Tensor:
    """Bucketing key: the longer of the source and the target sequence, a scalar int32."""
    del labels  # As long as inputs["target"].
    return tf.maximum(tf.size(inputs["source"]), tf.size(inputs["target"]))


def _shard_lines(shards: Sequence[CorpusFiles], seed: int) -> tf.data.Dataset:
    """`(source, target)` line pairs of the shards, shards in a seeded order.

    Lines keep their surrounding whitespace (the carriage returns of CRLF files too): the
    tokenizers' normalization removes it, and a line of only whitespace tokenizes as
    empty and is dropped.

    Every iteration (every `repeat`) visits the shards in a new order and interleaves
    up to `_INTERLEAVED_SHARDS` of them.
    """
    tsv = shards[0].tsv is not None
    columns = (
        [[shard.tsv] for shard in shards]
        if tsv
        else [[shard.source, shard.target] for shard in shards]
    )
    compressions = [["GZIP" if path.endswith(".gz") else "" for path in row] for row in columns]
    files = tf.data.Dataset.from_tensor_slices((columns, compressions))
    files = files.shuffle(len(shards), seed=seed, reshuffle_each_iteration=True)

    def read_shard(paths: tf.Tensor, compression: tf.Tensor) -> tf.data.Dataset:
        """paths: string `(1,)` (a TSV) or `(2,)` (source, target) -> line pairs."""
        if tsv:
            lines = tf.data.TextLineDataset(paths[0], compression_type=compression[0])
            return lines.map(_split_tsv)
        sources = tf.data.TextLineDataset(paths[0], compression_type=compression[0])
        targets = tf.data.TextLineDataset(paths[1], compression_type=compression[1])
        return tf.data.Dataset.zip(sources, targets)

    return files.interleave(
        read_shard,
        cycle_length=min(len(shards), _INTERLEAVED_SHARDS),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def _split_tsv(line: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`source<TAB>target` -> the two fields, scalar strings."""
    fields = tf.strings.split(line, "\t", maxsplit=1)
    return fields[0], fields[1]
