"""The tf.data pipeline: in-graph tokenization, length filtering, bucketing and padding."""

from __future__ import annotations

import tensorflow as tf

from nmt_keras.data.corpus import ParallelCorpus
from nmt_keras.text.tokenizer import PAD_ID, Tokenizer

DEFAULT_BUCKET_WIDTH = 2
_TOKENIZE_CHUNK = 1024


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
    cache: bool | str = False,
) -> tf.data.Dataset:
    """Builds padded, length-bucketed `(inputs, labels)` batches for `keras.Model.fit`.

    Sentences are tokenized inside the tf.data graph by the tokenizers (`<s> x </s>`);
    pairs with a side longer than `max_length` tokens are dropped. For a target
    `<s> y </s>` the decoder input is `<s> y` and the labels are `y </s>`. Pairs are
    grouped by `max(source_len, target_len)` into buckets `bucket_width` tokens wide and
    padded with `PAD_ID` to the longest sequence of their batch.

    Each element is `(inputs, labels)`:
        inputs["source"]: int32 `(batch, src_len)`.
        inputs["target"]: int32 `(batch, tgt_len)`, decoder input `<s> y`.
        labels: int32 `(batch, tgt_len)`, `y </s>`.

    Args:
        corpus: Sentence pairs.
        source_tokenizer: Tokenizer of the source language.
        target_tokenizer: Tokenizer of the target language (may be the same object).
        batch_size: Sentences per batch. Exactly one of `batch_size` and `max_tokens`.
        max_tokens: Token budget per batch: a bucket whose sequences have at most `n`
            tokens gets batches of `max_tokens // n` sentences, so neither
            `inputs["source"]` nor `inputs["target"]` exceeds `max_tokens` elements.
        max_length: Longest sequence kept, `<s>` and `</s>` included.
        shuffle: Whether to shuffle the pairs (reshuffled every epoch).
        seed: Shuffle seed; the batches come in the same order for the same seed.
        bucket_width: Width of the length buckets, in tokens.
        cache: `True` caches the tokenized pairs in memory, a string caches them in that
            file, so later epochs skip tokenization. Shuffling happens after the cache.

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
    if len(corpus) == 0:
        raise ValueError("Expected a non-empty corpus. Received: 0 pairs")

    def tokenize(sources: tf.Tensor, targets: tf.Tensor):
        """(chunk,) strings -> ragged ids of the pairs within `max_length`."""
        source = source_tokenizer.tokenize(sources)  # (chunk, (src_len))
        target = target_tokenizer.tokenize(targets)  # (chunk, (tgt_len + 1))
        fits = (source.row_lengths() <= max_length) & (target.row_lengths() <= max_length)
        source = tf.ragged.boolean_mask(source, fits)  # (kept, (src_len))
        target = tf.ragged.boolean_mask(target, fits)  # (kept, (tgt_len + 1))
        return source, target

    dataset = tf.data.Dataset.from_tensor_slices((list(corpus.sources), list(corpus.targets)))
    dataset = dataset.batch(_TOKENIZE_CHUNK)
    dataset = dataset.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.unbatch().map(_shift_target, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache("" if cache is True else cache)
    if shuffle:
        dataset = dataset.shuffle(len(corpus), seed=seed, reshuffle_each_iteration=True)

    boundaries = list(range(bucket_width + 1, max_length + 1, bucket_width))
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
