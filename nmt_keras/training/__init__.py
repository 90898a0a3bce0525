"""Training with `keras.Model.fit`: the loss, metric, schedule and callbacks, and the trainer.

The pieces a hand-written `fit` script needs are importable from here: the padding-masked
loss and accuracy, the warm-up schedule, and the callbacks the recipes use (validation
BLEU, best/last checkpoints, a wall-clock budget, a cosine over that budget, attention
images in TensorBoard, a log line every N steps). `fit_distributed` is `fit` for many
workers (`multi_worker_strategy`); `train` runs a whole recipe from a `Config`.
"""

from nmt_keras.training.callbacks import (
    AttentionImage,
    BleuCallback,
    CosineBudgetDecay,
    StepLog,
    TimeBudget,
    WeightsCheckpoint,
)
from nmt_keras.training.losses import MaskedCrossEntropy
from nmt_keras.training.metrics import MaskedAccuracy
from nmt_keras.training.multi_worker import fit_distributed, is_chief, multi_worker_strategy
from nmt_keras.training.schedules import WarmupInverseSqrt
from nmt_keras.training.trainer import make_strategy, train

__all__ = [
    "AttentionImage",
    "BleuCallback",
    "CosineBudgetDecay",
    "MaskedAccuracy",
    "MaskedCrossEntropy",
    "StepLog",
    "TimeBudget",
    "WarmupInverseSqrt",
    "WeightsCheckpoint",
    "fit_distributed",
    "is_chief",
    "make_strategy",
    "multi_worker_strategy",
    "train",
]
