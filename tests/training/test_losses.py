import keras
import numpy as np
import pytest

from nmt_keras.training.losses import MaskedCrossEntropy

# Two sentences of three target positions over a vocabulary of 4; label 0 is padding.
LABELS = np.array([[1, 2, 0], [3, 3, 1]], dtype="int32")
LOGITS = np.array(
    [
        [[0.0, 1.0, 2.0, 3.0], [1.0, 0.0, -1.0, 0.5], [5.0, -5.0, 2.0, 0.0]],
        [[0.2, 0.1, 0.0, 1.0], [-1.0, -2.0, 0.0, 3.0], [0.0, 0.0, 0.0, 0.0]],
    ],
    dtype="float32",
)


def log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def reference(labels, logits, smoothing=0.0, pad_id=0):
    """Mean over non-pad tokens of (1 - e) * -log p(y) + e * mean_v -log p(v)."""
    log_probs = log_softmax(logits.astype("float64"))
    total, count = 0.0, 0
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1]):
            if labels[b, t] == pad_id:
                continue
            nll = -log_probs[b, t, labels[b, t]]
            uniform = -log_probs[b, t].mean()
            total += (1 - smoothing) * nll + smoothing * uniform
            count += 1
    return total / max(count, 1)


def test_hand_computed_value_without_smoothing():
    # Token 0,0: logits 0..3, label 1 -> -log(e^1 / (1 + e + e^2 + e^3)).
    first = -(1.0 - np.log(1 + np.e + np.e**2 + np.e**3))
    # Token 1,2: uniform logits -> log 4.
    last = np.log(4.0)
    value = float(MaskedCrossEntropy()(LABELS, LOGITS))
    log_probs = log_softmax(LOGITS.astype("float64"))
    expected = (
        first - log_probs[0, 1, 2] - log_probs[1, 0, 3] - log_probs[1, 1, 3] + last
    ) / 5  # five real tokens
    assert value == pytest.approx(expected, rel=1e-5)
    assert value == pytest.approx(reference(LABELS, LOGITS), rel=1e-5)


@pytest.mark.parametrize("smoothing", [0.1, 0.3])
def test_hand_computed_value_with_label_smoothing(smoothing):
    value = float(MaskedCrossEntropy(label_smoothing=smoothing)(LABELS, LOGITS))
    assert value == pytest.approx(reference(LABELS, LOGITS, smoothing), rel=1e-5)
    assert value != pytest.approx(reference(LABELS, LOGITS), rel=1e-3)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_matches_keras_categorical_crossentropy_on_real_tokens(smoothing):
    keep = LABELS != 0
    one_hot = np.eye(4, dtype="float32")[LABELS[keep]]
    keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing)
    expected = float(keras_loss(one_hot, LOGITS[keep]))
    value = float(MaskedCrossEntropy(label_smoothing=smoothing)(LABELS, LOGITS))
    assert value == pytest.approx(expected, rel=1e-5)


def test_pad_labels_are_ignored_whatever_their_logits():
    changed = LOGITS.copy()
    changed[0, 2] = [100.0, -100.0, 30.0, 7.0]  # the pad position
    loss = MaskedCrossEntropy(label_smoothing=0.1)
    assert float(loss(LABELS, changed)) == pytest.approx(float(loss(LABELS, LOGITS)), rel=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_more_padding_does_not_change_the_value(smoothing):
    rng = np.random.default_rng(0)
    labels = np.concatenate([LABELS, np.zeros((2, 4), "int32")], axis=1)
    logits = np.concatenate([LOGITS, rng.normal(size=(2, 4, 4)).astype("float32")], axis=1)
    extra_rows_labels = np.concatenate([labels, np.zeros((1, 7), "int32")], axis=0)
    extra_rows_logits = np.concatenate(
        [logits, rng.normal(size=(1, 7, 4)).astype("float32")], axis=0
    )
    loss = MaskedCrossEntropy(label_smoothing=smoothing)
    base = float(loss(LABELS, LOGITS))
    assert float(loss(labels, logits)) == pytest.approx(base, rel=1e-6)
    assert float(loss(extra_rows_labels, extra_rows_logits)) == pytest.approx(base, rel=1e-6)


def test_average_is_over_tokens_not_sentences():
    # A one-token sentence and a two-token sentence: the mean is over the 3 tokens.
    labels = np.array([[1, 0], [2, 2]], "int32")
    logits = np.zeros((2, 2, 4), "float32")
    logits[0, 0, 1] = 3.0
    log_probs = log_softmax(logits.astype("float64"))
    expected = -(log_probs[0, 0, 1] + log_probs[1, 0, 2] + log_probs[1, 1, 2]) / 3
    assert float(MaskedCrossEntropy()(labels, logits)) == pytest.approx(expected, rel=1e-6)


def test_custom_pad_id():
    labels = np.array([[1, 2, 3]], "int32")
    logits = LOGITS[:1]
    value = float(MaskedCrossEntropy(pad_id=3)(labels, logits))
    assert value == pytest.approx(reference(labels, logits, pad_id=3), rel=1e-6)
    assert value != pytest.approx(reference(labels, logits, pad_id=0), rel=1e-3)


def test_all_padding_gives_zero():
    labels = np.zeros((2, 3), "int32")
    value = MaskedCrossEntropy(label_smoothing=0.1)(labels, LOGITS)
    assert float(value) == 0.0
    assert np.isfinite(float(value))


def test_float16_logits_give_a_float32_value():
    value = MaskedCrossEntropy()(LABELS, LOGITS.astype("float16"))
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    assert float(value) == pytest.approx(reference(LABELS, LOGITS), rel=1e-3)


def test_perfect_prediction_has_near_zero_loss():
    logits = np.full((2, 3, 4), -50.0, "float32")
    for b in range(2):
        for t in range(3):
            logits[b, t, LABELS[b, t]] = 50.0
    assert float(MaskedCrossEntropy()(LABELS, logits)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("smoothing", [-0.1, 1.0, 1.5])
def test_invalid_label_smoothing(smoothing):
    with pytest.raises(ValueError, match="label_smoothing"):
        MaskedCrossEntropy(label_smoothing=smoothing)


def test_config_round_trip():
    loss = MaskedCrossEntropy(pad_id=2, label_smoothing=0.2)
    config = loss.get_config()
    assert config["pad_id"] == 2 and config["label_smoothing"] == 0.2
    restored = MaskedCrossEntropy.from_config(config)
    assert (restored.pad_id, restored.label_smoothing, restored.name) == (2, 0.2, loss.name)
    assert float(restored(LABELS, LOGITS)) == pytest.approx(float(loss(LABELS, LOGITS)))
    serialized = keras.saving.serialize_keras_object(loss)
    deserialized = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(deserialized, MaskedCrossEntropy)
    assert deserialized.label_smoothing == 0.2
