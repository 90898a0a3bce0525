"""Wires a config into `model.fit`: corpora, tokenizers, datasets, model, callbacks."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import logging
import os
import random
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence

import keras
import tensorflow as tf

from nmt_keras.config import STRATEGIES, Config, ConfigError, TokenizerConfig
from nmt_keras.data.corpus import CorpusScan, ParallelCorpus, filter_pairs, scan_corpus, subsample
from nmt_keras.data.pipeline import make_dataset, stream_dataset
from nmt_keras.models import build_model
from nmt_keras.run import RunPaths
from nmt_keras.run_directory import RunError
from nmt_keras.text.sentencepiece_training import (
    AUTO_COVERAGE,
    VocabularyTooSmallError,
    train_sentencepiece,
)
from nmt_keras.text.tokenizer import PAD_ID, Tokenizer
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
from nmt_keras.training.multi_worker import (
    agreed,
    chief_value,
    fit_distributed,
    is_chief,
    multi_worker_strategy,
)
from nmt_keras.training.schedules import WarmupInverseSqrt
from nmt_keras.translator import Translator

logger = logging.getLogger(__name__)


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy named `name` (one of `STRATEGIES`).

    `default` is one device, `mirrored` every GPU (else every logical CPU) of this
    machine, `multi_worker` the workers of `TF_CONFIG` (see `multi_worker`).

    Raises:
        ValueError: for an unknown strategy name, or a missing or malformed `TF_CONFIG`.
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"Expected strategy to be one of {', '.join(STRATEGIES)}. Received: strategy={name}"
        )
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multi_worker":
        return multi_worker_strategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices])


def _divisible_batches(dataset: tf.data.Dataset, replicas: int) -> tf.data.Dataset:
    """Keeps the batches whose size splits evenly over `replicas`.

    Keras builds a distributed model from the replica-mean of the first batch, which
    fails when replicas get different sizes. Full bucket batches are kept (sizes are
    multiples of 2, 4, 8), so only some of the last, partial batch of a bucket is lost,
    and shuffling puts other pairs there every epoch.
    """
    if replicas == 1:
        return dataset
    return dataset.filter(lambda inputs, labels: tf.shape(labels)[0] % replicas == 0)


def _check_resumable(paths: RunPaths, config: Config) -> None:
    """Refuses to continue a run directory trained with another model or tokenizer."""
    if not os.path.isfile(paths.config):
        return
    previous = Config.from_yaml(paths.config)
    for section in ("model", "tokenizer"):
        before, now = getattr(previous, section), getattr(config, section)
        for field in dataclasses.fields(before):
            old, new = getattr(before, field.name), getattr(now, field.name)
            if old != new:
                raise RunError(
                    f"{paths.root} was trained with {section}.{field.name}={old!r}, not {new!r}: "
                    "use another --run-dir or the same config"
                )


def _tokenizers(
    paths: RunPaths, config: Config, corpus: ParallelCorpus
) -> tuple[Tokenizer, Tokenizer]:
    """Loads the run's SentencePiece models, or trains and saves them on `corpus`.

    Raises:
        ConfigError: naming the `tokenizer` settings to change when the vocabulary cannot
            hold the pieces they need.
    """
    if os.path.isfile(paths.source_tokenizer) and os.path.isfile(paths.target_tokenizer):
        return Tokenizer.from_file(paths.source_tokenizer), Tokenizer.from_file(
            paths.target_tokenizer
        )
    settings = config.tokenizer

    def train(sentences, side: str) -> bytes:
        try:
            return train_sentencepiece(
                sentences,
                settings.vocab_size,
                model_type=settings.model_type,
                character_coverage=settings.character_coverage,
                byte_fallback=settings.byte_fallback,
            )
        except VocabularyTooSmallError as error:
            raise ConfigError(
                f"The {side} SentencePiece model needs {error.required} pieces at "
                f"tokenizer.character_coverage={settings.character_coverage} and "
                f"tokenizer.byte_fallback={str(settings.byte_fallback).lower()}, more than "
                f"tokenizer.vocab_size={settings.vocab_size}: "
                + _vocabulary_advice(settings, error.required)
            ) from error

    if settings.joint:
        joint = list(corpus.sources) + list(corpus.targets)
        source_model = target_model = train(joint, "joint")
    else:
        source_model = train(corpus.sources, "source")
        target_model = train(corpus.targets, "target")
    source, target = Tokenizer(source_model), Tokenizer(target_model)
    sides = [("joint", source)] if settings.joint else [("source", source), ("target", target)]
    for side, tokenizer in sides:
        if tokenizer.vocab_size > settings.vocab_size:
            logger.warning(
                "the %s SentencePiece model has %d pieces, more than tokenizer.vocab_size=%d: "
                "tokenizer.character_coverage=auto made room for the characters of its script",
                side,
                tokenizer.vocab_size,
                settings.vocab_size,
            )
    source.save(paths.source_tokenizer)
    target.save(paths.target_tokenizer)
    return source, target


def _vocabulary_advice(settings: TokenizerConfig, required: int) -> str:
    """What to change when the vocabulary cannot hold the pieces the settings need."""
    advice = [f"raise tokenizer.vocab_size to at least {required}"]
    if settings.character_coverage != AUTO_COVERAGE:
        advice.append(f"set tokenizer.character_coverage={AUTO_COVERAGE}")
    if settings.byte_fallback:
        advice.append("set tokenizer.byte_fallback=false")
    return ", or ".join(advice)


def _best_so_far(paths: RunPaths, monitor: str) -> float | None:
    """The best `monitor` value in the history of an interrupted run, if any."""
    if not os.path.isfile(paths.history):
        return None
    with open(paths.history, newline="", encoding="utf-8") as file:
        values = [float(row[monitor]) for row in csv.DictReader(file) if row.get(monitor)]
    if not values:
        return None
    return min(values) if "loss" in monitor else max(values)


def _callbacks(
    paths: RunPaths, config: Config, translator: Translator, valid: ParallelCorpus
) -> list[keras.callbacks.Callback]:
    """The callbacks in the order their logs depend on: BLEU first, loggers last."""
    settings = config.training
    callbacks: list[keras.callbacks.Callback] = []
    if settings.bleu_samples:
        # A random sample, not the first pairs: validation files are often sorted by
        # length (Tatoeba's are), and the best checkpoint would be the best on the shortest.
        sample = subsample(valid, settings.bleu_samples, config.seed)
        callbacks.append(
            BleuCallback(
                translator, sample.sources, sample.targets, tokenize=settings.bleu_tokenize
            )
        )
    callbacks.append(
        keras.callbacks.BackupAndRestore(
            paths.backup,
            save_freq=settings.checkpoint_every_steps or "epoch",
            double_checkpoint=True,
        )
    )
    callbacks.append(
        WeightsCheckpoint(
            paths.checkpoint("last"),
            paths.checkpoint("best"),
            monitor=settings.monitor,
            initial_best=_best_so_far(paths, settings.monitor),
        )
    )
    if settings.early_stopping_patience:
        mode = "min" if "loss" in settings.monitor else "max"
        callbacks.append(
            keras.callbacks.EarlyStopping(
                settings.monitor, patience=settings.early_stopping_patience, mode=mode
            )
        )
    if settings.max_minutes:
        callbacks.append(TimeBudget(settings.max_minutes))
    if settings.lr_decay == "cosine":
        callbacks.append(
            CosineBudgetDecay(settings.learning_rate, settings.max_minutes, settings.warmup_steps)
        )
    if settings.log_every_steps:
        callbacks.append(StepLog(settings.log_every_steps, print_fn=logger.info))
    callbacks.append(keras.callbacks.TensorBoard(paths.logs))
    if translator.model.has_attention and len(valid):
        callbacks.append(AttentionImage(translator, valid.sources[0], paths.logs))
    callbacks.append(keras.callbacks.CSVLogger(paths.history, append=True))
    return callbacks


def _learning_rate(config: Config) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The constant rate, or the warm-up inverse-sqrt schedule peaking at it.

    Under `lr_decay: cosine` the optimizer starts from the constant rate and
    `CosineBudgetDecay` sets it before every batch.
    """
    settings = config.training
    if settings.warmup_steps is None or settings.lr_decay == "cosine":
        return settings.learning_rate
    return WarmupInverseSqrt(settings.learning_rate, settings.warmup_steps)


def train(
    config: Config,
    run_dir: str,
    strategy: str = "default",
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> keras.callbacks.History:
    """Trains `config` into `run_dir`, resuming it if an earlier run was interrupted.

    Writes the tokenizers and the config first, then checkpoints every epoch (see
    `nmt_keras.run`). Running it again on the same directory continues from the last
    completed epoch with the same tokenizers.

    Args:
        config: The experiment.
        run_dir: Where the run lives.
        strategy: `default`, `mirrored` (`tf.distribute.MirroredStrategy`) or
            `multi_worker` (`tf.distribute.MultiWorkerMirroredStrategy` from `TF_CONFIG`:
            run the same call on every worker; only the chief writes `run_dir`).
        callbacks: Extra callbacks, run after the built-in ones (so they see the epoch's
            `val_bleu` and the checkpoints it wrote).

    Returns:
        The Keras `History` of this call.

    Raises:
        CorpusError: a corpus file is missing or malformed (names file and line).
        RunError: `run_dir` holds a run of another model or tokenizer.
        ConfigError: the data leaves nothing to train on, or the tokenizer settings do not
            fit it (names the setting to change).
    """
    distribution = make_strategy(strategy)
    with _run_paths_of_this_worker(RunPaths(run_dir), distribution) as paths:
        _check_resumable(paths, config)
        valid_corpus = scan_corpus(
            config.data.valid, config.data.max_valid_pairs, config.seed
        ).sample
        os.makedirs(paths.root, exist_ok=True)
        keras.utils.set_random_seed(config.seed)
        # Tokenizers before the config: a tokenizer setting that does not fit the corpus
        # leaves no config behind that the corrected command would refuse to resume.
        tokenizers = _scan_training_corpus(paths, config)
        _check_same_tokenizers(distribution, tokenizers)
        config.to_yaml(paths.config)
        previous_policy = keras.mixed_precision.global_policy()
        if config.training.mixed_precision:
            keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            return _fit(config, paths, distribution, tokenizers, valid_corpus, callbacks)
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)


@contextlib.contextmanager
def _run_paths_of_this_worker(
    paths: RunPaths, distribution: tf.distribute.Strategy
) -> Iterator[RunPaths]:
    """The run directory this process writes: `paths` on the chief, else a temporary one.

    Every worker of a multi-worker run does the same work, callbacks included, but only
    the chief writes the run (tokenizers, config, checkpoints, logs, backups); the others
    write theirs into a directory removed when training ends.
    """
    if is_chief(distribution):
        yield paths
        return
    with tempfile.TemporaryDirectory(prefix="nmt-keras-worker-") as directory:
        yield RunPaths(directory)


def _check_same_tokenizers(
    distribution: tf.distribute.Strategy, tokenizers: tuple[Tokenizer, Tokenizer]
) -> None:
    """Refuses to train when the workers of a multi-worker run hold different tokenizers.

    Every worker samples the same files with the same seed and trains its SentencePiece
    models from that sample, so they agree unless the workers see different files.

    Raises:
        RunError: naming the files to check.
    """
    if not isinstance(distribution, tf.distribute.MultiWorkerMirroredStrategy):
        return
    digest = hashlib.sha256(b"".join(tokenizer.model_proto for tokenizer in tokenizers))
    if not agreed(distribution, int.from_bytes(digest.digest()[:6], "big")):
        raise RunError(
            "The workers made different SentencePiece models: every worker must read the "
            "same data.train files (and the chief's run directory, when it resumes)"
        )


def _scan_training_corpus(paths: RunPaths, config: Config) -> tuple[Tokenizer, Tokenizer]:
    """Validates the training corpus in one pass and gets the tokenizers from its sample.

    The sample lives only as long as this call, so it takes no memory during training.

    Raises:
        CorpusError: a training file is missing or malformed (names file and line).
        ConfigError: as `_tokenizers` and `_report_filtering`.
    """
    scan = scan_corpus(config.data.train, config.tokenizer.sample_size, config.seed)
    tokenizers = _tokenizers(paths, config, scan.sample)
    _report_filtering(config, tokenizers, scan)
    return tokenizers


def _report_filtering(
    config: Config, tokenizers: tuple[Tokenizer, Tokenizer], scan: CorpusScan
) -> None:
    """Logs what the length filter keeps, measured on the tokenizers' training sample.

    Raises:
        ConfigError: If the filter keeps none of the sample.
    """
    source, target = tokenizers
    _, report = filter_pairs(
        scan.sample, source.token_lengths, target.token_lengths, config.data.max_length
    )
    whole = len(scan.sample) == scan.pairs
    where = "" if whole else f" of a random sample of {len(scan.sample)} of {scan.pairs} pairs"
    logger.info("training pairs: %s%s", report, where)
    if not report.kept:
        raise ConfigError(f"No training pair is left after filtering: {report}{where}")


def _stream_seed(paths: RunPaths, config: Config, distribution: tf.distribute.Strategy) -> int:
    """The training stream's seed: the config's, or a new one for a resumed run.

    A run resumed from a backup (see `BackupAndRestore`) starts a freshly shuffled
    stream instead of replaying the batches the interrupted run already trained on.
    Every worker of a multi-worker run takes the chief's seed, the one with the backup.
    """
    seed = config.data.shuffle_seed
    metadata = os.path.join(paths.backup, "training_metadata.json")
    if os.path.isfile(metadata):
        with open(metadata, encoding="utf-8") as file:
            position = json.load(file)
        resumed_at = f"{config.data.shuffle_seed}:{position['epoch']}:{position['batch']}"
        seed = random.Random(resumed_at).randrange(2**31)
    if isinstance(distribution, tf.distribute.MultiWorkerMirroredStrategy):
        seed = int(chief_value(distribution, seed))
    return seed


def _fit(
    config: Config,
    paths: RunPaths,
    distribution: tf.distribute.Strategy,
    tokenizers: tuple[Tokenizer, Tokenizer],
    valid_corpus: ParallelCorpus,
    extra_callbacks: Sequence[keras.callbacks.Callback],
) -> keras.callbacks.History:
    """Datasets, model and `model.fit`, under the dtype policy already set."""
    source_tokenizer, target_tokenizer = tokenizers
    data = config.data
    batching = dict(
        batch_size=data.batch_size,
        max_tokens=data.max_tokens,
        max_length=data.max_length,
        pad_to_bucket=config.training.jit_compile,
    )
    train_data = stream_dataset(
        data.train,
        source_tokenizer,
        target_tokenizer,
        shuffle_buffer=data.shuffle_buffer,
        seed=_stream_seed(paths, config, distribution),
        max_pairs=data.max_train_pairs,
        repeat=config.training.steps_per_epoch is not None,
        **batching,
    )
    valid_data = make_dataset(
        valid_corpus, source_tokenizer, target_tokenizer, shuffle=False, **batching
    )
    replicas = distribution.num_replicas_in_sync
    train_data = _divisible_batches(train_data, replicas)
    valid_data = _divisible_batches(valid_data, replicas)

    with distribution.scope():
        model = build_model(config.model, source_tokenizer.vocab_size, target_tokenizer.vocab_size)
        model.compile(
            optimizer=keras.optimizers.Adam(
                _learning_rate(config), clipnorm=config.training.clipnorm
            ),
            loss=MaskedCrossEntropy(PAD_ID, config.training.label_smoothing),
            metrics=[MaskedAccuracy(PAD_ID)],
            jit_compile=config.training.jit_compile,
        )
    translator = Translator(
        model,
        source_tokenizer,
        target_tokenizer,
        max_source_length=data.max_length,
        max_decode_length=config.training.max_decode_length,
    )
    fit_arguments = dict(
        validation_data=valid_data,
        epochs=config.training.epochs,
        steps_per_epoch=config.training.steps_per_epoch,
        callbacks=[*_callbacks(paths, config, translator, valid_corpus), *extra_callbacks],
        verbose=(1 if sys.stdout.isatty() else 2) if is_chief(distribution) else 0,
    )
    if isinstance(distribution, tf.distribute.MultiWorkerMirroredStrategy):
        # `model.fit` fails under this strategy in Keras 3 (see `multi_worker`).
        return fit_distributed(model, distribution, train_data, **fit_arguments)
    with warnings.catch_warnings():
        # Bucketed datasets have unknown length, so Keras learns an epoch's end from the
        # iterator running out and warns each time; the training data repeats whenever
        # steps_per_epoch is set, so running out is always the expected end of a pass.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        # The dataset shuffles itself, with the config's seed.
        return model.fit(train_data, shuffle=False, **fit_arguments)
