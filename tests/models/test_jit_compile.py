"""Training under XLA (`jit_compile=True`) computes what training without it computes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.config import ModelConfig
from nmt_keras.models import build_model
from nmt_keras.training.losses import MaskedCrossEntropy

SIZES = dict(embedding_dim=8, units=8, attention_units=8, dropout=0.0)
# Each decoder whose teacher-forced scan projects a query inside its loop, and one each
# of the families without such a loop.
FAMILIES = {
    "bahdanau": dict(type="bahdanau"),
    "bahdanau-normalized-lstm-2-layers": dict(
        type="bahdanau", rnn="lstm", attention_normalize=True, decoder_layers=2, residual=True
    ),
    "luong-concat-feeding-lstm": dict(
        type="luong", score_mode="concat", input_feeding=True, rnn="lstm"
    ),
    "luong-local-p-feeding": dict(
        type="luong", window_mode="local-p", half_window=2, input_feeding=True
    ),
    "luong-general": dict(type="luong"),
    "seq2seq": dict(type="seq2seq"),
    "transformer": dict(type="transformer", num_heads=2, ff_dim=16),
}
FAST = {"bahdanau"}  # XLA compiles each for seconds; the rest run with `make test-all`.


def _batches():
    """Two batches whose batch size is unknown to the traced step, as `tf.data` gives."""
    rng = np.random.default_rng(0)
    source = rng.integers(3, 20, (8, 7)).astype("int32")
    target = rng.integers(3, 20, (8, 5)).astype("int32")
    labels = rng.integers(3, 20, (8, 5)).astype("int32")
    source[::2, -2:] = 0
    target[1::2, -1:] = labels[1::2, -1:] = 0
    inputs = {"source": source, "target": target}
    dataset = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(4)
    assert dataset.element_spec[1].shape.as_list() == [None, 5]
    return dataset


def _train(family: str, jit_compile: bool):
    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(**{**SIZES, **FAMILIES[family]}), 20, 20)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=MaskedCrossEntropy(label_smoothing=0.1),
        jit_compile=jit_compile,
    )
    history = model.fit(_batches(), epochs=2, shuffle=False, verbose=0)
    return history.history["loss"], model.get_weights()


@pytest.mark.parametrize(
    "family",
    [name if name in FAST else pytest.param(name, marks=pytest.mark.slow) for name in FAMILIES],
)
def test_xla_training_matches_training_without_it(family):
    losses, weights = _train(family, jit_compile=False)
    xla_losses, xla_weights = _train(family, jit_compile=True)
    np.testing.assert_allclose(xla_losses, losses, rtol=1e-4)
    assert losses[1] < losses[0]
    for xla_weight, weight in zip(xla_weights, weights, strict=True):
        np.testing.assert_allclose(xla_weight, weight, atol=1e-4)
