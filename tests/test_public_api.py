"""What a Keras user's own `fit` script imports from the package tops, without deep paths."""

import importlib

import keras
import pytest

PACKAGES = [
    "nmt_keras.data",
    "nmt_keras.export",
    "nmt_keras.layers",
    "nmt_keras.models",
    "nmt_keras.training",
]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_is_importable_and_documented(package):
    module = importlib.import_module(package)
    assert module.__all__ == sorted(module.__all__)
    for name in module.__all__:
        value = getattr(module, name)
        assert (value.__doc__ or "").strip(), f"{package}.{name} has no docstring"


def test_a_fit_script_finds_the_training_pieces_at_the_top():
    from nmt_keras.data import read_corpus, subsample
    from nmt_keras.training import (
        BleuCallback,
        MaskedAccuracy,
        MaskedCrossEntropy,
        WarmupInverseSqrt,
        WeightsCheckpoint,
    )

    assert isinstance(MaskedCrossEntropy(0, 0.1), keras.losses.Loss)
    assert isinstance(MaskedAccuracy(0), keras.metrics.Metric)
    assert isinstance(WarmupInverseSqrt(1e-3, 100), keras.optimizers.schedules.LearningRateSchedule)
    assert issubclass(BleuCallback, keras.callbacks.Callback)
    assert issubclass(WeightsCheckpoint, keras.callbacks.Callback)
    assert callable(read_corpus) and callable(subsample)
