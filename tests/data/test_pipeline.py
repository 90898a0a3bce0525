import random

import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.data.corpus import ParallelCorpus
from nmt_keras.data.pipeline import make_dataset, padding_fraction
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


def test_cache_gives_same_batches(corpus, tokenizer, tmp_path):
    def epochs(**kwargs):
        dataset = make_dataset(
            corpus, tokenizer, tokenizer, batch_size=8, max_length=64, shuffle=True, **kwargs
        )
        return [[s.tolist() for s, _, _ in batches(dataset)] for _ in range(2)]

    plain = epochs()
    assert plain[0] != plain[1]  # Reshuffled every epoch.
    assert epochs(cache=True) == plain
    assert epochs(cache=str(tmp_path / "cache")) == plain


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
