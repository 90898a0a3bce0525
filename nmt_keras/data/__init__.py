"""Parallel corpora: reading, validation, filtering and the tf.data pipeline."""

from nmt_keras.data.corpus import (
    CorpusError,
    FilterReport,
    ParallelCorpus,
    filter_pairs,
    read_corpus,
    read_parallel,
    read_tsv,
    subsample,
)
from nmt_keras.data.pipeline import make_dataset, padding_fraction

__all__ = [
    "CorpusError",
    "FilterReport",
    "ParallelCorpus",
    "filter_pairs",
    "make_dataset",
    "padding_fraction",
    "read_corpus",
    "read_parallel",
    "read_tsv",
    "subsample",
]
