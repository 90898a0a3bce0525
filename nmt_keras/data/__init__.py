"""Parallel corpora: streaming reads, validation, sampling, filtering and the tf.data pipeline."""

from nmt_keras.data.corpus import (
    CorpusError,
    CorpusScan,
    FilterReport,
    ParallelCorpus,
    corpus_shards,
    filter_pairs,
    iter_pairs,
    read_corpus,
    read_parallel,
    read_tsv,
    scan_corpus,
    subsample,
)
from nmt_keras.data.pipeline import batch_pairs, make_dataset, padding_fraction, stream_dataset

__all__ = [
    "CorpusError",
    "CorpusScan",
    "FilterReport",
    "ParallelCorpus",
    "batch_pairs",
    "corpus_shards",
    "filter_pairs",
    "iter_pairs",
    "make_dataset",
    "padding_fraction",
    "read_corpus",
    "read_parallel",
    "read_tsv",
    "scan_corpus",
    "stream_dataset",
    "subsample",
]
