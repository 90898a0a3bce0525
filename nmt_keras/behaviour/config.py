"""Typed configuration of a next-purchase experiment: YAML in, unknown keys rejected."""

from __future__ import annotations

import dataclasses

from nmt_keras.behaviour.families import check_family
from nmt_keras.config import ConfigError, YamlConfig, check_fraction, check_positive, check_rule


@dataclasses.dataclass(frozen=True)
class BehaviourDataConfig:
    """The transactions and the time split.

    Attributes:
        transactions: Invoice-line CSV (plain or .gz) in the Online Retail layout.
        cutoff: `YYYY-MM-DD`: training targets are invoices before it, evaluation targets
            the purchase invoices on or after it.
        history_length: Most recent events (invoice lines) a model reads.
        min_item_count: Items bought fewer times before the cutoff are unknown to the
            models (they still count as misses in the evaluation).
    """

    transactions: str = "../shared/data/online-retail/online_retail.csv.gz"
    cutoff: str = "2011-11-01"
    history_length: int = 50
    min_item_count: int = 1

    def validate(self, path: str) -> None:
        """Checks the date and the sizes."""
        from nmt_keras.behaviour.examples import parse_date

        try:
            parse_date(self.cutoff)
        except ValueError as error:
            raise ConfigError(f"{path}.cutoff: {error}") from None
        check_positive(f"{path}.history_length", self.history_length)
        check_positive(f"{path}.min_item_count", self.min_item_count)


@dataclasses.dataclass(frozen=True)
class BehaviourModelConfig:
    """The model family and its sizes (see `NextPurchaseModel`).

    Attributes:
        family: One of `families.FAMILIES`: a baseline or a `NextPurchaseModel` family.
        units: Embedding, state and user-vector size.
        num_layers: Recurrent or self-attention layers.
        num_heads: Heads of the self-attention family.
        attention_units: Hidden size of Bahdanau's score.
        dropout: Encoder dropout.
    """

    family: str = "self-attention"
    units: int = 64
    num_layers: int = 1
    num_heads: int = 4
    attention_units: int = 32
    dropout: float = 0.1

    def validate(self, path: str) -> None:
        """Checks the family and the sizes."""
        check_rule(check_family, path, self.family)
        for name in ("units", "num_layers", "num_heads", "attention_units"):
            check_positive(f"{path}.{name}", getattr(self, name))
        check_fraction(f"{path}.dropout", self.dropout)
        if self.family == "self-attention" and self.units % self.num_heads:
            raise ConfigError(
                f"Expected {path}.num_heads to divide {path}.units. "
                f"Received: units={self.units}, num_heads={self.num_heads}"
            )


@dataclasses.dataclass(frozen=True)
class BehaviourTrainingConfig:
    """Optimisation and evaluation.

    Attributes:
        batch_size: (history, next basket) examples per step.
        negatives: Sampled negative items per step.
        max_basket: Items of a next basket trained on (a random subset of a larger one).
        learning_rate: Adam's learning rate.
        epochs: Most passes over the training pairs.
        max_minutes: Wall-clock budget of the fit; None trains all `epochs`.
        top_k: Products recommended and scored (Recall@k, NDCG@k, HitRate@k).
    """

    batch_size: int = 64
    negatives: int = 256
    max_basket: int = 32
    learning_rate: float = 1e-3
    epochs: int = 5
    max_minutes: float | None = None
    top_k: int = 10

    def validate(self, path: str) -> None:
        """Checks that every size is positive."""
        names = ("batch_size", "negatives", "max_basket", "learning_rate", "epochs")
        for name in (*names, "max_minutes", "top_k"):
            check_positive(f"{path}.{name}", getattr(self, name))


@dataclasses.dataclass(frozen=True)
class BehaviourConfig(YamlConfig):
    """A next-purchase experiment: data, model and training.

    Attributes:
        name: Experiment name (used for run and export directories).
        seed: Seed of weight initialisation, data order and negative sampling.
        data: Transactions and time split.
        model: Family and sizes.
        training: Optimisation and evaluation.
    """

    name: str = "retail"
    seed: int = 0
    data: BehaviourDataConfig = dataclasses.field(default_factory=BehaviourDataConfig)
    model: BehaviourModelConfig = dataclasses.field(default_factory=BehaviourModelConfig)
    training: BehaviourTrainingConfig = dataclasses.field(default_factory=BehaviourTrainingConfig)

    def validate(self) -> BehaviourConfig:
        """Validates every section and returns self."""
        self.data.validate("data")
        self.model.validate("model")
        self.training.validate("training")
        return self
