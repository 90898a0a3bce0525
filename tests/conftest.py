"""Shared fixtures: tiny parallel corpora written on the fly (tests never need ../shared)."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tests.toy_data import TOY_PAIRS, write_lines  # noqa: E402


@pytest.fixture
def toy_corpus(tmp_path):
    """Writes TOY_PAIRS as train.src / train.tgt and returns (source_path, target_path)."""
    source = write_lines(tmp_path / "train.src", [source for source, _ in TOY_PAIRS])
    target = write_lines(tmp_path / "train.tgt", [target for _, target in TOY_PAIRS])
    return source, target
