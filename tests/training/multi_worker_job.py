"""One worker of the two-worker test: `python -m tests.training.multi_worker_job OUT_DIR`.

Reads its place in the cluster from `TF_CONFIG`, trains a tiny Bahdanau model with
`fit_distributed` and writes `OUT_DIR/worker{index}.npz` (initial and final weights)
and `OUT_DIR/worker{index}.json` (history, batch losses, learning rates).

The callbacks make the workers disagree where `fit_distributed` must reconcile them:
the chief alone resumes from epoch 1, each worker sets its own learning rate, and
worker 1 alone stops training in the middle of the last epoch.
"""

import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from nmt_keras.config import ModelConfig
from nmt_keras.models import build_model
from nmt_keras.text.tokenizer import PAD_ID
from nmt_keras.training.losses import MaskedCrossEntropy
from nmt_keras.training.metrics import MaskedAccuracy
from nmt_keras.training.multi_worker import fit_distributed, is_chief, multi_worker_strategy

VOCAB = 30
EPOCHS = 3
RESUMED_EPOCH = 1  # the chief "restores" this epoch, as BackupAndRestore would
STOP_AT_BATCH = 1  # of the last epoch, on worker 1 only
LEARNING_RATES = (0.01, 0.03)  # per worker; they must agree on the mean


def toy_batches(pairs_per_length: int, seed: int) -> tf.data.Dataset:
    """Global batches of 4 pairs, padded per batch to lengths 5, 7 and 9."""
    rng = np.random.default_rng(seed)
    datasets = []
    for length in (5, 7, 9):
        source = rng.integers(1, VOCAB, (pairs_per_length, length), dtype=np.int32)
        target = rng.integers(1, VOCAB, (pairs_per_length, length - 1), dtype=np.int32)
        target[:, -1] = PAD_ID
        pairs = tf.data.Dataset.from_tensor_slices(({"source": source, "target": target}, target))
        datasets.append(pairs.batch(4))
    batches = datasets[0]
    for dataset in datasets[1:]:
        batches = batches.concatenate(dataset)
    return batches


class DisagreeingWorker(keras.callbacks.Callback):
    """Does what a worker-local callback may do, and records what the worker saw."""

    def __init__(self, index: int):
        super().__init__()
        self.index = index
        self.batch_losses = []
        self.learning_rates = []

    def on_train_begin(self, logs=None):
        if self.index == 0:
            self.model._initial_epoch = RESUMED_EPOCH

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = LEARNING_RATES[self.index]

    def on_train_batch_end(self, batch, logs=None):
        self.batch_losses.append(float(logs["loss"]))
        self.learning_rates.append(float(self.model.optimizer.learning_rate.numpy()))
        if self.index == 1 and self.epoch == EPOCHS - 1 and batch == STOP_AT_BATCH:
            self.model.stop_training = True


def main(out_dir: str) -> None:
    strategy = multi_worker_strategy()  # before TensorFlow runs anything
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    keras.utils.set_random_seed(1)
    with strategy.scope():
        model = build_model(
            ModelConfig(
                type="bahdanau",
                embedding_dim=16,
                units=16,
                attention_units=16,
                bidirectional=False,
            ),
            VOCAB,
            VOCAB,
        )
        model.compile(
            optimizer=keras.optimizers.Adam(0.01, clipnorm=1.0),
            loss=MaskedCrossEntropy(PAD_ID, 0.1),
            metrics=[MaskedAccuracy(PAD_ID)],
        )
    initial = model.get_weights()
    recorder = DisagreeingWorker(index)
    history = fit_distributed(
        model,
        strategy,
        toy_batches(8, seed=0),
        epochs=EPOCHS,
        validation_data=toy_batches(4, seed=1),
        callbacks=[recorder],
        verbose=0,
    )
    final = model.get_weights()
    np.savez(
        os.path.join(out_dir, f"worker{index}.npz"),
        **{f"initial{i}": weights for i, weights in enumerate(initial)},
        **{f"final{i}": weights for i, weights in enumerate(final)},
    )
    report = {
        "chief": is_chief(strategy),
        "history": history.history,
        "batch_losses": recorder.batch_losses,
        "learning_rates": recorder.learning_rates,
    }
    with open(os.path.join(out_dir, f"worker{index}.json"), "w", encoding="utf-8") as file:
        json.dump(report, file)


if __name__ == "__main__":
    main(sys.argv[1])
