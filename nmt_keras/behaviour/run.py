"""A trained next-purchase run on disk: config, vocabulary, weights and metrics."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from nmt_keras.atomic import atomic_write
from nmt_keras.behaviour.config import BehaviourConfig
from nmt_keras.behaviour.families import BASELINES
from nmt_keras.behaviour.featurizer import EventFeaturizer
from nmt_keras.behaviour.model import NextPurchaseModel
from nmt_keras.behaviour.recommender import Recommender
from nmt_keras.config import ConfigError
from nmt_keras.run_directory import RunDirectory, RunError

VOCABULARY_FILE = "vocabulary.txt"
WEIGHTS_FILE = "model.weights.h5"
METRICS_FILE = "metrics.json"
# A history of one unknown product, which builds every weight of a model.
_ONE_EVENT = ([["?"]], [[0]], [[1.0]], [[1.0]])


@dataclasses.dataclass(frozen=True)
class BehaviourRunPaths(RunDirectory):
    """The files of a next-purchase run directory."""

    @property
    def vocabulary(self) -> str:
        """The featurizer's item codes, one a line, in id order."""
        return self.file(VOCABULARY_FILE)

    @property
    def weights(self) -> str:
        """The model's weights."""
        return self.file(WEIGHTS_FILE)

    @property
    def metrics(self) -> str:
        """The evaluation on the time split, as JSON."""
        return self.file(METRICS_FILE)


def build_model(config: BehaviourConfig, num_ids: int) -> NextPurchaseModel:
    """The `NextPurchaseModel` a config describes, over `num_ids` item ids.

    Raises:
        RunError: If the config names a baseline, which has no model.
    """
    if config.model.family in BASELINES:
        raise RunError(f"The baseline {config.model.family!r} has no model to build.")
    model = config.model
    return NextPurchaseModel(
        num_ids,
        family=model.family,
        units=model.units,
        num_layers=model.num_layers,
        num_heads=model.num_heads,
        attention_units=model.attention_units,
        dropout=model.dropout,
        negatives=config.training.negatives,
        repeat=model.repeat,
        sequence_length=model.sequence_length,
    )


def write_metrics(run_dir: str, metrics: dict) -> None:
    """Writes `metrics.json` atomically."""
    with atomic_write(BehaviourRunPaths(run_dir).metrics, "w", encoding="utf-8") as file:
        json.dump(metrics, file, indent=2)
        file.write("\n")


def save_run(
    run_dir: str, config: BehaviourConfig, featurizer: EventFeaturizer, model: NextPurchaseModel
) -> None:
    """Writes the config, the vocabulary (one code a line) and the weights, each atomically."""
    paths = BehaviourRunPaths(run_dir)
    config.to_yaml(paths.config)
    with atomic_write(paths.vocabulary, "w", encoding="utf-8") as file:
        file.writelines(f"{code}\n" for code in featurizer.vocabulary)
    temporary = paths.weights.removesuffix(".weights.h5") + ".tmp.weights.h5"
    model.save_weights(temporary)
    os.replace(temporary, paths.weights)


def load_recommender(run_dir: str, k: int | None = None) -> tuple[BehaviourConfig, Recommender]:
    """Rebuilds a trained run's recommender.

    Args:
        run_dir: A directory written by `save_run`.
        k: Products per history; defaults to the config's `training.top_k`.

    Returns:
        `(config, recommender)`.

    Raises:
        RunError: If a file is missing or the run is a baseline's.
        ConfigError: If the config is invalid.
    """
    paths = BehaviourRunPaths(run_dir)
    paths.require(paths.config)
    config = BehaviourConfig.from_yaml(paths.config)
    if config.model.family in BASELINES:
        raise RunError(f"{run_dir} is the baseline {config.model.family!r}: it has no model.")
    paths.require(paths.vocabulary, paths.weights)
    with open(paths.vocabulary, encoding="utf-8") as file:
        featurizer = EventFeaturizer([line.rstrip("\n") for line in file])
    model = build_model(config, featurizer.num_ids)
    # One training call on one event builds every weight before the load.
    event = featurizer(*_ONE_EVENT, statistics=model.repeat)
    model({**event, "basket": np.full((1, 1), model.first_item_id)})
    model.load_weights(paths.weights)
    try:
        return config, Recommender(featurizer, model, config.training.top_k if k is None else k)
    except ValueError as error:
        raise ConfigError(str(error)) from None
