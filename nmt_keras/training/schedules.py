"""Learning-rate schedules."""

from __future__ import annotations

import keras
from keras import ops


def _check_warmup_steps(warmup_steps: int) -> None:
    """Raises a ValueError unless `warmup_steps` >= 1."""
    if warmup_steps < 1:
        raise ValueError(f"Expected warmup_steps >= 1. Received: warmup_steps={warmup_steps}")


@keras.saving.register_keras_serializable(package="nmt_keras")
class WarmupInverseSqrt(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup, then decay with the inverse square root of the step.

    The schedule of Vaswani et al. 2017, sec. 5.3, eq. 3 ("Noam"):

        lrate = d_model^-0.5 * min(step^-0.5, step * warmup_steps^-1.5)

    which rises linearly to its peak d_model^-0.5 * warmup_steps^-0.5 at
    `step = warmup_steps` and then decays as step^-0.5. This class is parametrised by
    that peak, so the same curve reads

        lrate = peak_learning_rate * min(step / warmup_steps, sqrt(warmup_steps / step))

    `from_model_size()` builds the paper's form, with an optional `scale` factor.

    The step is counted from 1: the optimizer's first update (iteration 0) uses
    step = 1, so no update has a zero learning rate.

    Args:
        peak_learning_rate: The learning rate at the end of the warmup, > 0.
        warmup_steps: Steps of linear warmup, >= 1.

    Raises:
        ValueError: If `peak_learning_rate` <= 0 or `warmup_steps` < 1.
    """

    def __init__(self, peak_learning_rate: float, warmup_steps: int = 4000):
        if peak_learning_rate <= 0:
            raise ValueError(
                "Expected peak_learning_rate > 0. "
                f"Received: peak_learning_rate={peak_learning_rate}"
            )
        _check_warmup_steps(warmup_steps)
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)

    @classmethod
    def from_model_size(
        cls, d_model: int, warmup_steps: int = 4000, scale: float = 1.0
    ) -> WarmupInverseSqrt:
        """The schedule of eq. 3 for a model of size `d_model`, multiplied by `scale`.

        The peak is scale * d_model^-0.5 * warmup_steps^-0.5.

        Raises:
            ValueError: If `d_model` < 1, `scale` <= 0 or `warmup_steps` < 1.
        """
        if d_model < 1:
            raise ValueError(f"Expected d_model >= 1. Received: d_model={d_model}")
        if scale <= 0:
            raise ValueError(f"Expected scale > 0. Received: scale={scale}")
        _check_warmup_steps(warmup_steps)
        return cls(scale * (d_model * warmup_steps) ** -0.5, warmup_steps)

    def __call__(self, step):
        """The learning rate for the 0-based optimizer iteration `step`, float32."""
        step = ops.cast(step, "float32") + 1.0
        warmup = float(self.warmup_steps)
        return self.peak_learning_rate * ops.minimum(step / warmup, ops.sqrt(warmup / step))

    def get_config(self):
        """Returns the constructor arguments."""
        return {"peak_learning_rate": self.peak_learning_rate, "warmup_steps": self.warmup_steps}
