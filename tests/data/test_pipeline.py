import gzip
import random

import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.config import CorpusFiles
from nmt_keras.data.corpus import CorpusError, ParallelCorpus
from nmt_keras.data.pipeline import make_dataset, padding_fraction, stream_dataset
from nmt_keras.text.sentencepiece_training import train_sentencepiece
from nmt_keras.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer

WORDS = "a dog cat man woman runs sleeps reads in the park street book red big".split()


@pytest.fixture(scope="module")
def corpus():
    rng = random.Random(0)
    sources, targets = [], []
    for _ in range(120):
        words = rng.choices(WORDS, k=rng.randint(1, 12))
        sources.append(" ".join(words))
        targets.append(" ".join(reversed(words + rng.choices(WORDS, k=rng.randint(0, 3)))))
    return ParallelCorpus(sources, targets)


@pytest.fixture(scope="module")
def tokenizer(corpus):
    return Tokenizer(train_sentencepiece(corpus.sources + corpus.targets, vocab_size=40))


def batches(dataset):
    return [(x["source"].numpy(), x["target"].numpy(), y.numpy()) for x, y in dataset]


def test_shapes_dtypes_and_label_shift(corpus, tokenizer):
    dataset = make_dataset(corpus, tokenizer, tokenizer, batch_size=8, max_length=64, shuffle=False)
    inputs_spec, labels_spec = dataset.element_spec
    assert inputs_spec["source"].dtype == tf.int32 and labels_spec.dtype == tf.int32
    assert inputs_spec["source"].shape.as_list() == [None, None]
    seen = 0
    for source, target, labels in batches(dataset):
        assert source.shape[0] == target.shape[0] == labels.shape[0] <= 8
        assert target.shape == labels.shape
        for src_row, tgt_row, label_row in zip(source, target, labels, strict=True):
            src_row = src_row[src_row != PAD_ID]
            n = int((tgt_row != PAD_ID).sum())
            assert (tgt_row[n:] == PAD_ID).all() and (label_row[n:] == PAD_ID).all()
            assert src_row[0] == BOS_ID and src_row[-1] == EOS_ID
            assert tgt_row[0] == BOS_ID and EOS_ID not in tgt_row
            assert label_row[n - 1] == EOS_ID and BOS_ID not in label_row
            np.testing.assert_array_equal(tgt_row[1:n], label_row[: n - 1])
            seen += 1
    assert seen == len(corpus)


def test_round_trips_every_pair(corpus, tokenizer):
    dataset = make_dataset(corpus, tokenizer, tokenizer, batch_size=16, max_length=64, shuffle=True)
    pairs = set()
    for source, target, _ in batches(dataset):
        sources = tokenizer.detokenize(source).numpy()
        targets = tokenizer.detokenize(target).numpy()
        pairs.update((s.decode(), t.decode()) for s, t in zip(sources, targets, strict=True))
    assert pairs == set(zip(corpus.sources, corpus.targets, strict=True))


def test_max_length_filters_long_pairs(corpus, tokenizer):
    max_length = 12
    dataset = make_dataset(
        corpus, tokenizer, tokenizer, batch_size=8, max_length=max_length, shuffle=False
    )
    lengths = zip(
        tokenizer.token_lengths(corpus.sources),
        tokenizer.token_lengths(corpus.targets),
        strict=True,
    )
    expected = sum(max(pair) <= max_length for pair in lengths)
    count = 0
    for source, target, _ in batches(dataset):
        assert source.shape[1] <= max_length and target.shape[1] <= max_length - 1
        count += source.shape[0]
    assert 0 < count == expected < len(corpus)


@pytest.mark.parametrize("batching", [{"batch_size": 8}, {"max_tokens": 100}])
def test_pad_to_bucket_gives_each_bucket_one_length(corpus, tokenizer, batching):
    max_length, width = 15, 4
    dataset = make_dataset(
        corpus,
        tokenizer,
        tokenizer,
        max_length=max_length,
        shuffle=True,
        bucket_width=width,
        pad_to_bucket=True,
        **batching,
    )
    unpadded = make_dataset(
        corpus, tokenizer, tokenizer, max_length=max_length, shuffle=True, **batching
    )
    lengths, pairs = set(), 0
    for source, target, labels in batches(dataset):
        assert source.shape[1] == target.shape[1] == labels.shape[1]
        longest = max(int((source != PAD_ID).sum(1).max()), int((target != PAD_ID).sum(1).max()))
        # The bucket [length - width + 1, length] holds the batch's longest side.
        assert source.shape[1] in (*range(width, max_length, width), max_length)
        assert source.shape[1] - width < longest <= source.shape[1]
        if "max_tokens" in batching:
            assert source.size <= batching["max_tokens"]
        lengths.add(source.shape[1])
        pairs += source.shape[0]
    assert pairs == sum(source.shape[0] for source, _, _ in batches(unpadded))
    assert 1 < len(lengths) <= max_length // width + 1


def test_token_budget(corpus, tokenizer):
    dataset = make_dataset(
        corpus, tokenizer, tokenizer, max_tokens=100, max_length=64, shuffle=True
    )
    sizes = []
    for source, target, _ in batches(dataset):
        assert source.size <= 100 and target.size <= 100
        sizes.append(source.shape[0])
    assert sum(sizes) == len(corpus) and max(sizes) > 2


def test_same_seed_same_order(corpus, tokenizer):
    def first_epoch(seed):
        dataset = make_dataset(
            corpus, tokenizer, tokenizer, batch_size=8, max_length=64, shuffle=True, seed=seed
        )
        return [source.tolist() for source, _, _ in batches(dataset)]

    assert first_epoch(1) == first_epoch(1)
    assert first_epoch(1) != first_epoch(2)


def test_reshuffled_every_epoch(corpus, tokenizer):
    dataset = make_dataset(corpus, tokenizer, tokenizer, batch_size=8, max_length=64, shuffle=True)
    first, second = ([s.tolist() for s, _, _ in batches(dataset)] for _ in range(2))
    assert first != second


def write_shards(directory, corpus, shards: int, suffix: str = ""):
    """Writes the corpus as `shards` aligned file pairs, gzip when suffix is `.gz`."""
    for index in range(shards):
        rows = range(index, len(corpus), shards)
        for side, sentences in (("src", corpus.sources), ("tgt", corpus.targets)):
            text = "".join(f"{sentences[row]}\n" for row in rows).encode()
            path = directory / f"train.{index:02d}.{side}{suffix}"
            path.write_bytes(gzip.compress(text) if suffix == ".gz" else text)
    return CorpusFiles(
        source=str(directory / f"train.*.src{suffix}"),
        target=str(directory / f"train.*.tgt{suffix}"),
    )


def stream_pairs(dataset, tokenizer, steps=None):
    """The (source, target) sentences of a batched dataset, decoded, in order."""
    pairs = []
    for source, target, _ in batches(dataset.take(steps) if steps else dataset):
        sources = tokenizer.detokenize(source).numpy()
        targets = tokenizer.detokenize(target).numpy()
        pairs += [(s.decode(), t.decode()) for s, t in zip(sources, targets, strict=True)]
    return pairs


@pytest.mark.parametrize(("shards", "suffix"), [(1, ""), (3, ".gz")])
def test_stream_reads_every_pair_of_every_shard_once_per_pass(
    corpus, tokenizer, tmp_path, shards, suffix
):
    files = write_shards(tmp_path, corpus, shards, suffix)
    dataset = stream_dataset(
        files, tokenizer, tokenizer, batch_size=8, max_length=64, shuffle_buffer=1000
    )
    expected = sorted(zip(corpus.sources, corpus.targets, strict=True))
    first, second = stream_pairs(dataset, tokenizer), stream_pairs(dataset, tokenizer)
    assert sorted(first) == sorted(second) == expected
    assert first != second  # A new order every pass.


def test_stream_reads_tsv_and_drops_empty_and_long_pairs(tokenizer, tmp_path):
    lines = ["a dog\tthe cat", "\tthe man", "a cat\t", " in the park \t the big book "]
    lines.append("a " * 70 + "\tlong")
    (tmp_path / "pairs.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    dataset = stream_dataset(
        CorpusFiles(tsv=str(tmp_path / "pairs.tsv")),
        tokenizer,
        tokenizer,
        batch_size=8,
        max_length=64,
        shuffle_buffer=10,
    )
    assert sorted(stream_pairs(dataset, tokenizer)) == [
        ("a dog", "the cat"),
        ("in the park", "the big book"),
    ]


def test_repeated_stream_is_endless_and_seeded(corpus, tokenizer, tmp_path):
    files = write_shards(tmp_path, corpus, 2)

    def first_batches(seed):
        dataset = stream_dataset(
            files,
            tokenizer,
            tokenizer,
            batch_size=8,
            max_length=64,
            shuffle_buffer=50,
            seed=seed,
            repeat=True,
        )
        return stream_pairs(dataset, tokenizer, steps=40)

    pairs = first_batches(1)
    assert len(pairs) > 2 * len(corpus)
    assert pairs == first_batches(1) != first_batches(2)


def test_max_pairs_keeps_one_subset_for_every_pass(corpus, tokenizer, tmp_path):
    files = write_shards(tmp_path, corpus, 2)
    dataset = stream_dataset(
        files, tokenizer, tokenizer, batch_size=8, max_length=64, shuffle_buffer=50, max_pairs=30
    )
    first, second = stream_pairs(dataset, tokenizer), stream_pairs(dataset, tokenizer)
    assert len(first) == 30 and sorted(first) == sorted(second) and first != second


def test_stream_rejects_a_pattern_without_files(tokenizer, tmp_path):
    files = CorpusFiles(source=str(tmp_path / "*.src"), target=str(tmp_path / "*.tgt"))
    with pytest.raises(CorpusError, match=r"\*\.src \(none\)"):
        stream_dataset(files, tokenizer, tokenizer, batch_size=8, max_length=64, shuffle_buffer=1)


def test_padding_fraction(corpus, tokenizer):
    dataset = make_dataset(corpus, tokenizer, tokenizer, batch_size=8, max_length=64, shuffle=False)
    pads = total = 0
    for source, target, _ in batches(dataset):
        pads += (source == PAD_ID).sum() + (target == PAD_ID).sum()
        total += source.size + target.size
    assert padding_fraction(dataset) == pytest.approx(pads / total)
    wide = make_dataset(
        corpus, tokenizer, tokenizer, batch_size=8, max_length=64, shuffle=False, bucket_width=64
    )
    assert padding_fraction(dataset) < padding_fraction(wide)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of batch_size and max_tokens"),
        ({"batch_size": 8, "max_tokens": 100}, "exactly one of batch_size and max_tokens"),
        ({"batch_size": 0}, "batch_size >= 1"),
        ({"max_tokens": 10}, "max_tokens >= max_length"),
        ({"batch_size": 8, "bucket_width": 0}, "bucket_width >= 1"),
        ({"batch_size": 8, "max_length": 2}, "max_length >= 3"),
    ],
)
def test_bad_arguments(corpus, tokenizer, kwargs, match):
    kwargs = {"max_length": 64, "shuffle": False, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_dataset(corpus, tokenizer, tokenizer, **kwargs)
