"""The run directory: everything a training run writes and inference reads back.

RUN/
config.yaml               the experiment config, as trained
source.spm, target.spm    SentencePiece models (the same bytes when joint)
checkpoints/
last.weights.h5         weights after the latest epoch
best.weights.h5         weights of the best epoch by `training.monitor`
backup/                   Keras BackupAndRestore state while training runs
logs/                     TensorBoard
history.csv               per-epoch metrics
"""

from __future__ import annotations

import dataclasses
import os

import keras

from nmt_keras.config import Config
from nmt_keras.decoding import GREEDY, DecodingOptions
from nmt_keras.models import build_model
from nmt_keras.run_directory import RunDirectory, RunError
from nmt_keras.text.tokenizer import Tokenizer
from nmt_keras.translator import Translator

CHECKPOINTS = ("best", "last")


@dataclasses.dataclass(frozen=True)
class RunPaths(RunDirectory):
    """The files of one translation run directory.

    Attributes:
        root: The run directory.
    """

    @property
    def source_tokenizer(self) -> str:
        """The source SentencePiece model."""
        return os.path.join(self.root, "source.spm")

    @property
    def target_tokenizer(self) -> str:
        """The target SentencePiece model."""
        return os.path.join(self.root, "target.spm")

    @property
    def checkpoints(self) -> str:
        """The directory of weight checkpoints."""
        return os.path.join(self.root, "checkpoints")

    def checkpoint(self, which: str) -> str:
        """The `best` or `last` weights file."""
        if which not in CHECKPOINTS:
            raise RunError(f"Expected checkpoint best or last. Received: checkpoint={which}")
        return os.path.join(self.checkpoints, f"{which}.weights.h5")

    @property
    def backup(self) -> str:
        """Keras BackupAndRestore state, for resuming an interrupted run."""
        return os.path.join(self.root, "backup")

    @property
    def logs(self) -> str:
        """TensorBoard logs."""
        return os.path.join(self.root, "logs")

    @property
    def history(self) -> str:
        """Per-epoch metrics as CSV."""
        return os.path.join(self.root, "history.csv")


@dataclasses.dataclass(frozen=True)
class TrainedRun:
    """A trained model loaded from a run directory, ready to translate.

    Attributes:
        paths: The run's files.
        config: The experiment config it was trained with.
        source_tokenizer: Source tokenizer.
        target_tokenizer: Target tokenizer.
        model: The model with the checkpoint's weights.
    """

    paths: RunPaths
    config: Config
    source_tokenizer: Tokenizer
    target_tokenizer: Tokenizer
    model: keras.Model

    def translator(
        self,
        max_decode_length: int | None = None,
        decoding: DecodingOptions = GREEDY,
    ) -> Translator:
        """An in-graph translator for this run's model and tokenizers.

        Args:
            max_decode_length: Generated tokens at most (default: the config's).
            decoding: The search and its settings (default: greedy).
        """
        return Translator(
            self.model,
            self.source_tokenizer,
            self.target_tokenizer,
            max_source_length=self.config.data.max_length,
            max_decode_length=max_decode_length or self.config.training.max_decode_length,
            decoding=decoding,
        )


def load_run(run_dir: str, checkpoint: str = "best") -> TrainedRun:
    """Loads a run directory's config, tokenizers and weights.

    Args:
        run_dir: A directory written by `nmt-keras train`.
        checkpoint: `best` or `last`; `best` falls back to `last` when a run stopped
            before any epoch improved on its monitor.

    Raises:
        RunError: naming the missing file when the directory is not a complete run.
    """
    paths = RunPaths(run_dir)
    paths.require(paths.config, paths.source_tokenizer, paths.target_tokenizer)
    weights = paths.checkpoint(checkpoint)
    if not os.path.isfile(weights) and checkpoint == "best":
        weights = paths.checkpoint("last")
    if not os.path.isfile(weights):
        raise RunError(f"No checkpoint in {paths.checkpoints}: train first (missing {weights})")
    config = Config.from_yaml(paths.config)
    source_tokenizer = Tokenizer.from_file(paths.source_tokenizer)
    target_tokenizer = Tokenizer.from_file(paths.target_tokenizer)
    model = build_model(config.model, source_tokenizer.vocab_size, target_tokenizer.vocab_size)
    model.load_weights(weights)
    return TrainedRun(paths, config, source_tokenizer, target_tokenizer, model)
