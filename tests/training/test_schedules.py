import keras
import numpy as np
import pytest

from nmt_keras.training.schedules import WarmupInverseSqrt


def noam(step, d_model, warmup):
    """Vaswani et al. 2017, eq. 3."""
    return d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_from_model_size_is_equation_3_counted_from_one(scale):
    schedule = WarmupInverseSqrt.from_model_size(512, warmup_steps=4000, scale=scale)
    for iteration in [0, 1, 999, 3998, 3999, 4000, 9999, 99999]:
        expected = scale * noam(iteration + 1, 512, 4000)
        np.testing.assert_allclose(float(schedule(iteration)), expected, rtol=1e-6)


def test_peak_at_the_end_of_warmup():
    schedule = WarmupInverseSqrt(peak_learning_rate=1e-3, warmup_steps=10)
    rates = np.array([float(schedule(iteration)) for iteration in range(40)])
    assert rates[0] == pytest.approx(1e-4)
    assert rates.argmax() == 9 and rates[9] == pytest.approx(1e-3)
    np.testing.assert_allclose(rates[:10], 1e-4 * np.arange(1, 11), rtol=1e-6)
    np.testing.assert_allclose(rates[39], 1e-3 * np.sqrt(10 / 40), rtol=1e-6)
    assert schedule(np.int64(5)).dtype == "float32"


def test_peak_and_model_size_forms_agree():
    by_size = WarmupInverseSqrt.from_model_size(256, warmup_steps=100)
    assert by_size.peak_learning_rate == pytest.approx((256 * 100) ** -0.5)
    by_peak = WarmupInverseSqrt(by_size.peak_learning_rate, 100)
    for iteration in [0, 50, 500]:
        assert float(by_size(iteration)) == pytest.approx(float(by_peak(iteration)))


def test_serialization_and_use_in_an_optimizer():
    schedule = WarmupInverseSqrt(peak_learning_rate=5e-4, warmup_steps=8)
    assert schedule.get_config() == {"peak_learning_rate": 5e-4, "warmup_steps": 8}
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(restored, WarmupInverseSqrt)
    assert restored.get_config() == schedule.get_config()
    optimizer = keras.optimizers.Adam(learning_rate=schedule)
    assert float(optimizer.learning_rate) == pytest.approx(5e-4 / 8)
    config = optimizer.get_config()
    assert config["learning_rate"]["registered_name"] == "nmt_keras>WarmupInverseSqrt"
    restored_optimizer = keras.optimizers.Adam.from_config(config)
    assert float(restored_optimizer.learning_rate) == pytest.approx(5e-4 / 8)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(peak_learning_rate=0.0), "peak_learning_rate=0.0"),
        (dict(peak_learning_rate=1e-3, warmup_steps=0), "warmup_steps=0"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WarmupInverseSqrt(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(d_model=0), "d_model=0"),
        (dict(d_model=8, scale=-1.0), "scale=-1.0"),
        (dict(d_model=8, warmup_steps=0), "warmup_steps=0"),
    ],
)
def test_invalid_model_size_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WarmupInverseSqrt.from_model_size(**kwargs)
