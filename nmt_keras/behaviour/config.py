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
        end: `YYYY-MM-DD`: evaluation targets are the invoices before it; None: every
            invoice from the cutoff on. A validation run sets `cutoff` and `end` to a
            window before the real cutoff.
        history_length: Most recent events (invoice lines) a model or a baseline reads.
        min_item_count: Items bought fewer times before the cutoff are unknown to the
            models (they still count as misses in the evaluation).
        validation_days: Length of the validation window that ends at the cutoff: a
            baseline's hyperparameters are chosen on the invoices in it, counting only
            what came before it, and never on the evaluation invoices.
    """

    transactions: str = "../shared/data/online-retail/online_retail.csv.gz"
    cutoff: str = "2011-11-01"
    end: str | None = None
    history_length: int = 512
    min_item_count: int = 1
    validation_days: int = 30

    def validate(self, path: str) -> None:
        """Checks the date and the sizes."""
        from nmt_keras.behaviour.examples import parse_date

        dates = {"cutoff": self.cutoff, "end": self.end}
        for name, date in dates.items():
            try:
                dates[name] = None if date is None else parse_date(date)
            except ValueError as error:
                raise ConfigError(f"{path}.{name}: {error}") from None
        if dates["end"] is not None and dates["end"] <= dates["cutoff"]:
            raise ConfigError(
                f"Expected {path}.end after {path}.cutoff. "
                f"Received: cutoff={self.cutoff}, end={self.end}"
            )
        for name in ("history_length", "min_item_count", "validation_days"):
            check_positive(f"{path}.{name}", getattr(self, name))


@dataclasses.dataclass(frozen=True)
class BehaviourModelConfig:
    """The model family and its sizes (see `NextPurchaseModel`).

    Attributes:
        family: One of `families.FAMILIES`: a baseline or a `NextPurchaseModel` family.
        units: Embedding, state and user-vector size.
        num_layers: Recurrent or self-attention layers.
        num_heads: Heads of the self-attention family.
        attention_units: Hidden size of Bahdanau's score and of the repeat decoder's.
        dropout: Encoder dropout.
        repeat: Add RepeatNet's repeat mode: attend over the customer's past products with
            their purchase statistics, and gate it with the family's explore scores.
        sequence_length: Most recent events the encoder reads (the repeat mode reads all
            `data.history_length`); None reads them all.
    """

    family: str = "self-attention"
    units: int = 64
    num_layers: int = 1
    num_heads: int = 4
    attention_units: int = 32
    dropout: float = 0.1
    repeat: bool = False
    sequence_length: int | None = 50

    def validate(self, path: str) -> None:
        """Checks the family and the sizes."""
        check_rule(check_family, path, self.family)
        for name in ("units", "num_layers", "num_heads", "attention_units", "sequence_length"):
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
