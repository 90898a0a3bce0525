import keras
import numpy as np
import pytest

from nmt_keras.training.metrics import MaskedAccuracy

# Labels (0 = pad) and logits whose argmax is given by PREDICTED.
LABELS = np.array([[1, 2, 3, 0], [2, 2, 0, 0]], "int32")
PREDICTED = np.array([[1, 3, 3, 1], [2, 1, 0, 2]], "int32")


def logits_for(predicted, vocab=5, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.uniform(-1.0, 0.0, size=predicted.shape + (vocab,)).astype("float32")
    np.put_along_axis(logits, predicted[..., None], 2.0, axis=-1)
    return logits


def test_hand_computed_accuracy():
    # Real tokens: (1,1) ok, (2,3) wrong, (3,3) ok, (2,2) ok, (2,1) wrong -> 3 / 5.
    metric = MaskedAccuracy()
    metric.update_state(LABELS, logits_for(PREDICTED))
    assert float(metric.result()) == pytest.approx(3 / 5)


def test_predictions_on_padding_do_not_count():
    predicted = PREDICTED.copy()
    predicted[0, 3] = 0  # a "correct" pad prediction
    predicted[1, 2:] = 4
    metric = MaskedAccuracy()
    metric.update_state(LABELS, logits_for(predicted))
    assert float(metric.result()) == pytest.approx(3 / 5)


def test_accumulates_over_batches_weighted_by_tokens():
    metric = MaskedAccuracy()
    metric.update_state(LABELS, logits_for(PREDICTED))  # 3 / 5
    metric.update_state(np.array([[4, 0, 0, 0]], "int32"), logits_for(np.array([[4, 1, 1, 1]])))
    assert float(metric.result()) == pytest.approx(4 / 6)  # not the mean of 3/5 and 1
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_probabilities_work_like_logits():
    logits = logits_for(PREDICTED)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    metric = MaskedAccuracy()
    metric.update_state(LABELS, probabilities)
    assert float(metric.result()) == pytest.approx(3 / 5)


def test_sample_weight_multiplies_the_mask():
    metric = MaskedAccuracy()
    weights = np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]], "float32")
    metric.update_state(LABELS, logits_for(PREDICTED), sample_weight=weights)
    assert float(metric.result()) == pytest.approx(2 / 3)  # first sentence only


def test_custom_pad_id():
    labels = np.array([[1, 2, 3]], "int32")
    metric = MaskedAccuracy(pad_id=3)
    metric.update_state(labels, logits_for(np.array([[1, 0, 3]])))
    assert float(metric.result()) == pytest.approx(1 / 2)


def test_all_padding_gives_zero():
    metric = MaskedAccuracy()
    metric.update_state(np.zeros((2, 3), "int32"), logits_for(np.zeros((2, 3), "int32")))
    assert float(metric.result()) == 0.0


def test_name_and_config_round_trip():
    metric = MaskedAccuracy(pad_id=2)
    assert metric.name == "accuracy"
    restored = MaskedAccuracy.from_config(metric.get_config())
    assert restored.pad_id == 2 and restored.name == "accuracy"
    deserialized = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(metric)
    )
    assert isinstance(deserialized, MaskedAccuracy) and deserialized.pad_id == 2
