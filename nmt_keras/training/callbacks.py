"""Keras callbacks of the training loop: BLEU, attention images, checkpoints, budget, progress."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from nmt_keras.evaluation import score
from nmt_keras.plotting import attention_image
from nmt_keras.translator import Translator


class BleuCallback(keras.callbacks.Callback):
    """Decodes validation sentences each epoch and logs sacreBLEU and chrF (`evaluation.score`).

    Adds `val_bleu` and `val_chrf` to the epoch logs, so callbacks after it in the list
    (checkpoints, early stopping, TensorBoard, CSV) see them.

    Args:
        translator: Translator of the model being trained.
        sources: Validation source sentences.
        references: Their reference translations.
        batch_size: Sentences decoded per batch.
        tokenize: BLEU tokenizer, as `training.bleu_tokenize`.
    """

    def __init__(
        self,
        translator: Translator,
        sources: Sequence[str],
        references: Sequence[str],
        batch_size: int = 128,
        tokenize: str = "auto",
    ):
        super().__init__()
        if len(sources) != len(references):
            raise ValueError(
                "Expected as many references as sources. "
                f"Received: {len(sources)} sources, {len(references)} references"
            )
        self.translator = translator
        self.sources = list(sources)
        self.references = list(references)
        self.batch_size = batch_size
        self.tokenize = tokenize

    def on_epoch_end(self, epoch, logs=None):
        """Translates the validation sentences and scores them."""
        hypotheses = self.translator.translate_all(self.sources, self.batch_size)
        scores = score(hypotheses, self.references, self.tokenize)
        if logs is not None:
            logs["val_bleu"] = scores.bleu
            logs["val_chrf"] = scores.chrf


class WeightsCheckpoint(keras.callbacks.Callback):
    """Saves the latest and the best weights after every epoch, atomically.

    Each file is written under a temporary name and renamed into place, so an
    interruption never leaves a truncated checkpoint behind.

    Args:
        last_path: Weights file overwritten every epoch (`*.weights.h5`).
        best_path: Weights file overwritten when `monitor` improves.
        monitor: Log key to follow; `val_loss` is minimised, anything else maximised.
        initial_best: Best value already reached (when resuming a run), if any.
    """

    def __init__(
        self,
        last_path: str,
        best_path: str,
        monitor: str = "val_loss",
        initial_best: float | None = None,
    ):
        super().__init__()
        self.last_path = last_path
        self.best_path = best_path
        self.monitor = monitor
        self.minimize = "loss" in monitor
        if initial_best is None:
            initial_best = math.inf if self.minimize else -math.inf
        self.best = initial_best

    def _save(self, path: str) -> None:
        temporary = path.removesuffix(".weights.h5") + ".tmp.weights.h5"
        self.model.save_weights(temporary)
        os.replace(temporary, path)

    def _improved(self, value: float) -> bool:
        return value < self.best if self.minimize else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        """Writes `last`, and `best` when the monitored value improved."""
        os.makedirs(os.path.dirname(self.last_path), exist_ok=True)
        self._save(self.last_path)
        value = (logs or {}).get(self.monitor)
        if value is not None and self._improved(float(value)):
            self.best = float(value)
            self._save(self.best_path)


class StepLog(keras.callbacks.Callback):
    """Prints the training metrics every `every` batches: progress inside a long epoch.

    Keras prints one line per epoch (`verbose=2`) when its output is not a terminal; a
    log or CI job training on a big corpus also gets a line such as
    `epoch 1 step 2000: loss 3.2104 - masked_accuracy 0.4210 (8.3 steps/s)`.

    Example:
        >>> model.fit(dataset, epochs=1, steps_per_epoch=10_000, callbacks=[StepLog(1000)])

    Args:
        every: Batches between lines.
        print_fn: Called with each line, like `model.summary(print_fn=...)`: `print` by
            default, `logging.getLogger(...).info` to send the lines to a log.
    """

    def __init__(self, every: int, print_fn=print):
        super().__init__()
        if every < 1:
            raise ValueError(f"Expected every >= 1. Received: every={every}")
        self.every = every
        self.print_fn = print_fn
        self._epoch = 0
        self._since = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        """Remembers the epoch for the log lines."""
        self._epoch = epoch
        self._since = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        """Logs every `every`-th batch of the epoch."""
        if (batch + 1) % self.every:
            return
        now = time.monotonic()
        metrics = " - ".join(f"{name} {float(value):.4f}" for name, value in (logs or {}).items())
        steps_per_second = self.every / max(now - self._since, 1e-9)
        self.print_fn(
            f"epoch {self._epoch + 1} step {batch + 1}: {metrics} ({steps_per_second:.1f} steps/s)"
        )
        self._since = now


class TimeBudget(keras.callbacks.Callback):
    """Stops training once a wall-clock budget is spent.

    Checked after every batch, so a budget is kept to within one step; the interrupted
    epoch still ends normally (validation, checkpoints).

    Args:
        minutes: The budget.
    """

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds = minutes * 60.0
        self.start = None

    def on_train_begin(self, logs=None):
        """Starts the clock."""
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        """Stops the model when the budget is spent."""
        if time.monotonic() - self.start >= self.seconds:
            self.model.stop_training = True


class CosineBudgetDecay(keras.callbacks.Callback):
    """Anneals the learning rate to zero along a half cosine over a wall-clock budget.

    The cosine schedule of Loshchilov & Hutter 2017 (SGDR, eq. 5, one cycle, eta_min = 0),
    with time in place of steps:

        lr(t) = peak * 0.5 * (1 + cos(pi * min(t / T, 1)))

    where t is the time since training began and T the budget, so a run ends at a rate of
    zero whatever the machine's speed and whatever its validation costs. With
    `warmup_steps`, the rate is also multiplied by min(1, step / warmup_steps) (step
    counted from 1), the linear warm-up of Vaswani et al. 2017, sec. 5.3.

    The rate is set before every batch, so the run is not bit-reproducible across
    machines of different speeds. As with `TimeBudget`, the clock starts with each `fit`
    call, so a resumed run anneals over a fresh budget. Adds `learning_rate` (the rate at
    the epoch's end) to the epoch logs.

    Args:
        peak_learning_rate: The rate at t = 0 (after the warm-up), > 0.
        minutes: The budget T, > 0.
        warmup_steps: Steps of linear warm-up (None: none).

    Raises:
        ValueError: If `peak_learning_rate`, `minutes` or `warmup_steps` is not positive.
    """

    def __init__(self, peak_learning_rate: float, minutes: float, warmup_steps: int | None = None):
        super().__init__()
        for name, value in (
            ("peak_learning_rate", peak_learning_rate),
            ("minutes", minutes),
            ("warmup_steps", 1 if warmup_steps is None else warmup_steps),
        ):
            if value <= 0:
                raise ValueError(f"Expected {name} > 0. Received: {name}={value}")
        self.peak_learning_rate = float(peak_learning_rate)
        self.seconds = minutes * 60.0
        self.warmup_steps = warmup_steps
        self.start = None

    def on_train_begin(self, logs=None):
        """Starts the clock."""
        self.start = time.monotonic()

    def learning_rate(self, seconds: float, step: int) -> float:
        """The rate `seconds` into the budget at the 1-based optimizer `step`."""
        progress = min(seconds / self.seconds, 1.0)
        rate = self.peak_learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))
        if self.warmup_steps is not None:
            rate *= min(1.0, step / self.warmup_steps)
        return rate

    def on_train_batch_begin(self, batch, logs=None):
        """Sets the rate for this batch."""
        step = int(self.model.optimizer.iterations.numpy()) + 1
        self.model.optimizer.learning_rate = self.learning_rate(time.monotonic() - self.start, step)

    def on_epoch_end(self, epoch, logs=None):
        """Logs the current rate."""
        if logs is not None:
            logs["learning_rate"] = float(
                keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
            )


class AttentionImage(keras.callbacks.Callback):
    """Logs the attention heatmap of one fixed sentence to TensorBoard after every epoch.

    The sentence is translated by the model being trained and its alignment rendered as
    `nmt-keras plot-attention` draws it, under the tag `attention` of the `attention`
    writer in `log_dir`, so TensorBoard's Images tab shows how the alignment forms epoch
    by epoch, beside the loss and BLEU curves.

    Args:
        translator: Translator of the model being trained (a model with attention).
        sentence: The source sentence to align, e.g. the first validation sentence.
        log_dir: The TensorBoard log directory of the run.
    """

    def __init__(self, translator: Translator, sentence: str, log_dir: str):
        super().__init__()
        self.translator = translator
        self.sentence = sentence
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "attention"))

    def on_epoch_end(self, epoch, logs=None):
        """Aligns the sentence and writes the heatmap for this epoch."""
        alignment = self.translator.align(self.sentence)
        pixels = attention_image(
            alignment.weights,
            alignment.source_tokens,
            alignment.target_tokens,
            title=f"{self.sentence} → {alignment.translation}",
        )
        with self.writer.as_default():
            tf.summary.image("attention", pixels[np.newaxis], step=epoch)
        self.writer.flush()

    def on_train_end(self, logs=None):
        """Closes the event file."""
        self.writer.close()
