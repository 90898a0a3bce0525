"""Typed, frozen experiment configuration: YAML in, unknown keys rejected.

A configuration is a tree of frozen dataclasses. `Config.from_dict` checks every key and
every value's type against the dataclass fields, so a typo (`model.untis`) or a wrong type
(`model.units: "big"`) is an error that names the key, never a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import yaml

from nmt_keras import rules
from nmt_keras.atomic import atomic_write
from nmt_keras.errors import NmtKerasError
from nmt_keras.evaluation import check_bleu_tokenize


class ConfigError(NmtKerasError, ValueError):
    """A configuration file, key or value is invalid."""


#: The `tf.distribute` strategies of `nmt-keras train --strategy` (see
#: `nmt_keras.training.trainer.make_strategy`).
STRATEGIES = ("default", "mirrored", "multi_worker")


# PyYAML follows YAML 1.1, which reads `1e-4` (no dot) as a string; such a string is
# accepted where a float is expected, so `learning_rate: 1e-4` and `--set
# training.learning_rate=1e-4` work. Any other string is still a type error.
_EXPONENT_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def check_positive(path: str, value: int | float | None) -> None:
    """Raises ConfigError naming `path` unless `value` is None or positive."""
    if value is not None and value <= 0:
        raise ConfigError(f"Expected {path} to be positive. Received: {path}={value}")


def check_rule(rule, path: str, *values) -> None:
    """Applies a rule (`rule(*values, prefix=...)`, e.g. of `nmt_keras.rules`) to a section."""
    try:
        rule(*values, prefix=f"{path}.")
    except ValueError as error:
        raise ConfigError(str(error)) from None


def check_fraction(path: str, value: float) -> None:
    """Raises ConfigError naming `path` unless `value` is in [0, 1)."""
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"Expected {path} to be in [0, 1). Received: {path}={value}")


@dataclasses.dataclass(frozen=True)
class CorpusFiles:
    """One split of a parallel corpus: two aligned files, or one TSV file, or shards of them.

    Each path may be a glob pattern (`corpus/train.*.de.gz`) naming many shards; the
    i-th source shard is aligned with the i-th target shard in sorted path order.

    Attributes:
        source: Source-language file, one sentence a line (plain or .gz).
        target: Target-language file aligned line by line with `source`.
        tsv: A single `source<TAB>target` file instead of `source` and `target`.
    """

    source: str | None = None
    target: str | None = None
    tsv: str | None = None

    def validate(self, path: str) -> None:
        """Checks that exactly one of (source and target) or tsv is set."""
        pair = self.source is not None and self.target is not None
        single = self.source is not None or self.target is not None
        if self.tsv is not None and single:
            raise ConfigError(f"Expected either {path}.tsv or {path}.source/target, not both.")
        if self.tsv is None and not pair:
            raise ConfigError(
                f"Expected {path} to set both source and target, or tsv. "
                f"Received: source={self.source!r}, target={self.target!r}"
            )


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Corpus files and batching.

    Attributes:
        train: Training split.
        valid: Validation split (loss, BLEU each epoch, early stopping).
        test: Optional test split, used by `evaluate` when no files are given.
        max_length: Maximum tokens per sentence including <s> and </s>; longer pairs are
            dropped from training and counted.
        batch_size: Sentence pairs per batch; exclusive with `max_tokens`.
        max_tokens: Token budget per batch (length-bucketed); exclusive with `batch_size`.
        max_train_pairs: Train on a fixed subset of N pairs, the first of the seeded
            shuffle (uniform when the corpus fits `shuffle_buffer`; None: all).
        max_valid_pairs: Validate (loss and BLEU) on a random sample of at most N
            validation pairs.
        shuffle_buffer: Training pairs in the shuffle buffer: a corpus no larger is
            shuffled whole every epoch; a larger one streams through the buffer, its
            shards visited in a new order every pass (shuffle a big corpus on disk
            first, or split it into shards).
        shuffle_seed: Seed of the corpus shuffle.
    """

    train: CorpusFiles = dataclasses.field(default_factory=CorpusFiles)
    valid: CorpusFiles = dataclasses.field(default_factory=CorpusFiles)
    test: CorpusFiles | None = None
    max_length: int = 64
    batch_size: int | None = 64
    max_tokens: int | None = None
    max_train_pairs: int | None = None
    max_valid_pairs: int = 10_000
    shuffle_buffer: int = 200_000
    shuffle_seed: int = 0

    def validate(self, path: str) -> None:
        """Checks splits, lengths and that exactly one batching mode is set."""
        self.train.validate(f"{path}.train")
        self.valid.validate(f"{path}.valid")
        if self.test is not None:
            self.test.validate(f"{path}.test")
        if self.max_length < 3:
            raise ConfigError(
                f"Expected {path}.max_length >= 3 (<s>, a token, </s>). "
                f"Received: {path}.max_length={self.max_length}"
            )
        if (self.batch_size is None) == (self.max_tokens is None):
            raise ConfigError(
                f"Expected exactly one of {path}.batch_size and {path}.max_tokens. "
                f"Received: batch_size={self.batch_size}, max_tokens={self.max_tokens}"
            )
        check_positive(f"{path}.batch_size", self.batch_size)
        check_positive(f"{path}.max_tokens", self.max_tokens)
        check_positive(f"{path}.max_train_pairs", self.max_train_pairs)
        check_positive(f"{path}.max_valid_pairs", self.max_valid_pairs)
        check_positive(f"{path}.shuffle_buffer", self.shuffle_buffer)


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    """SentencePiece models trained on the training split.

    Attributes:
        vocab_size: Pieces per model: an upper bound on tiny corpora, raised for a side
            whose script needs more when `character_coverage` is `auto`.
        joint: One model shared by source and target instead of one per language.
        model_type: SentencePiece algorithm.
        character_coverage: Fraction of the training text's characters that get a piece of
            their own, or `auto`: per side, the whole alphabet when it fits in half of the
            pieces left after the special and byte pieces (any alphabetic script), else
            its most frequent characters up to that half but never under 98% of the text,
            the side's vocabulary growing when they need more (Chinese, Japanese). See
            `nmt_keras.text.sentencepiece_training.size_alphabet`.
        byte_fallback: Spell characters without a piece as UTF-8 bytes (256 of the
            pieces), so unseen characters survive a round trip instead of becoming
            `<unk>`.
        sample_size: The models are trained on a uniform random sample of at most this
            many training pairs (SentencePiece's `input_sentence_size`), so their
            training time and memory do not grow with the corpus.
    """

    vocab_size: int = 8000
    joint: bool = False
    model_type: Literal["unigram", "bpe", "char", "word"] = "unigram"
    character_coverage: float | Literal["auto"] = "auto"
    byte_fallback: bool = True
    sample_size: int = 100_000

    def validate(self, path: str) -> None:
        """Checks the vocabulary size and character coverage."""
        if self.vocab_size < 8:
            raise ConfigError(
                f"Expected {path}.vocab_size >= 8. Received: {path}.vocab_size={self.vocab_size}"
            )
        check_rule(rules.check_character_coverage, path, self.character_coverage)
        check_positive(f"{path}.sample_size", self.sample_size)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The model family and its sizes.

    Attributes:
        type: `seq2seq` (fixed context vector, Cho et al. 2014), `bahdanau` (additive
            attention before the RNN step), `luong` (attention after the RNN step) or
            `transformer` (multi-head self-attention, Vaswani et al. 2017; `units` is
            d_model and must equal `embedding_dim`; `rnn`, `bidirectional`, `residual` and
            the RNN attention options do not apply).
        rnn: Recurrent cell of encoder and decoder.
        embedding_dim: Token embedding size (source and target).
        units: Hidden size of every RNN (per direction in a bidirectional encoder the
            encoder uses units // 2 so its outputs have `units` features).
        encoder_layers: Stacked encoder RNN layers.
        decoder_layers: Stacked decoder RNN layers.
        bidirectional: Whether the encoder reads the source in both directions.
        residual: Residual connections between stacked RNN layers (from the second on).
        dropout: Dropout rate on embeddings and between layers.
        attention_units: Hidden size of additive (Bahdanau, Luong concat) scores.
        attention_normalize: Weight-normalised Bahdanau score.
        score_mode: Luong score: `dot`, `general` or `concat`.
        score_scale: Learned scalar on Luong scores.
        input_feeding: Luong input feeding (the previous attentional vector is fed into
            the next RNN step); off lets the RNN run over the whole target at once.
        window_mode: Luong attention over the whole source (`global`) or a window
            of it (Luong et al. 2015, sec. 3.2): `local-m` centres the window on the
            target position, `local-p` on a predicted position with a Gaussian weighting.
            Local windows need `type: luong`.
        half_window: Half-width D of a local window (Luong et al. use 10).
        num_heads: Transformer attention heads (divide `units`).
        ff_dim: Transformer feed-forward inner size.
        shared_target_embeddings: Transformer: tie the target embedding and the output
            projection.
        alignment_head: Transformer: the cross-attention head of the last decoder layer
            that fills the alignment outputs (Python indexing); None averages the heads.
    """

    type: Literal["seq2seq", "bahdanau", "luong", "transformer"] = "bahdanau"
    rnn: Literal["gru", "lstm"] = "gru"
    embedding_dim: int = 256
    units: int = 256
    encoder_layers: int = 1
    decoder_layers: int = 1
    bidirectional: bool = True
    residual: bool = False
    dropout: float = 0.1
    attention_units: int = 256
    attention_normalize: bool = False
    score_mode: Literal["dot", "general", "concat"] = "general"
    score_scale: bool = False
    input_feeding: bool = False
    window_mode: Literal["global", "local-m", "local-p"] = "global"
    half_window: int = 10
    num_heads: int = 4
    ff_dim: int = 1024
    shared_target_embeddings: bool = False
    alignment_head: int | None = None

    def validate(self, path: str) -> None:
        """Checks sizes, the dropout rate, local attention and the Transformer's shape."""
        for name in ("embedding_dim", "units", "encoder_layers", "decoder_layers"):
            check_positive(f"{path}.{name}", getattr(self, name))
        check_positive(f"{path}.attention_units", self.attention_units)
        check_positive(f"{path}.half_window", self.half_window)
        check_positive(f"{path}.num_heads", self.num_heads)
        check_positive(f"{path}.ff_dim", self.ff_dim)
        if self.type == "transformer":
            self._validate_transformer(path)
        if self.window_mode != "global" and self.type != "luong":
            raise ConfigError(
                f"Expected {path}.window_mode=global unless {path}.type=luong. "
                f"Received: {path}.window_mode={self.window_mode}, "
                f"{path}.type={self.type}"
            )
        check_fraction(f"{path}.dropout", self.dropout)
        check_rule(rules.check_bidirectional_units, path, self.units, self.bidirectional)

    def _validate_transformer(self, path: str) -> None:
        """Checks d_model (`units`) against the embedding size, heads and alignment head."""
        if self.embedding_dim != self.units:
            raise ConfigError(
                f"Expected {path}.embedding_dim == {path}.units (d_model) for a transformer. "
                f"Received: embedding_dim={self.embedding_dim}, units={self.units}"
            )
        check_rule(rules.check_num_heads, path, self.units, self.num_heads)
        check_rule(rules.check_alignment_head, path, self.alignment_head, self.num_heads)


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Optimisation, callbacks and validation decoding.

    Attributes:
        epochs: Maximum epochs.
        steps_per_epoch: Batches per epoch, drawn from an endless stream of the training
            data (None: an epoch is one pass over it). Every epoch ends with validation
            and checkpoints, so big corpora want short epochs.
        checkpoint_every_steps: Also back the run up every N batches inside an epoch; an
            interrupted run resumes from the latest backup, on a freshly shuffled stream
            (None: back up at the end of every epoch only).
        log_every_steps: Log one line of training metrics every N batches, as well as one
            per epoch (None: per epoch only). A terminal gets Keras's progress bar.
        learning_rate: Adam learning rate; with `warmup_steps`, the peak rate.
        warmup_steps: Warm the rate up linearly over this many steps, then decay it with
            the inverse square root of the step (Vaswani et al. 2017, eq. 3); None keeps
            it constant.
        lr_decay: `cosine` anneals the rate to zero along a half cosine over the
            wall-clock budget `max_minutes` (after the linear warm-up when
            `warmup_steps` is set, replacing its inverse-sqrt decay); `none` leaves it.
        clipnorm: Gradient norm clipping (None: off).
        label_smoothing: Label smoothing of the cross-entropy.
        early_stopping_patience: Epochs without improvement of `monitor` before stopping
            (None: off).
        monitor: Quantity checkpoints and early stopping follow.
        bleu_samples: Validation pairs decoded for BLEU each epoch, a random sample of
            them (seeded by `seed`); 0 turns the validation BLEU off.
        bleu_tokenize: sacreBLEU tokenizer of the validation BLEU and of `nmt-keras
            evaluate`: `auto` picks `zh`, `ja-mecab`, `ko-mecab` or `13a` from the
            references' script (`nmt_keras.evaluation.bleu_tokenizer_for`), or any name in
            `nmt_keras.evaluation.BLEU_TOKENIZE_CHOICES`.
        max_decode_length: Maximum generated tokens at inference.
        max_minutes: Wall-clock training budget; training stops after the epoch that
            crosses it (None: no budget).
        mixed_precision: Train with the `mixed_float16` policy.
        jit_compile: Compile the training and validation steps with XLA
            (`keras.Model.compile(jit_compile=True)`). Batches are then padded to their
            length bucket's longest length (`pad_to_bucket` of `nmt_keras.data.pipeline`),
            so XLA compiles one program per bucket, once (on 2 CPU cores about 8 s each,
            7 minutes for Multi30k). Steps then run 1.1-1.3x faster, so it pays off in
            long runs of `steps_per_epoch` batches (one-pass epochs end with partial
            batches, new shapes every epoch). Multi-worker training (`fit_distributed`)
            runs without XLA. See benchmarks/RESULTS.md.
    """

    epochs: int = 10
    steps_per_epoch: int | None = None
    checkpoint_every_steps: int | None = None
    log_every_steps: int | None = None
    learning_rate: float = 1e-3
    warmup_steps: int | None = None
    lr_decay: Literal["none", "cosine"] = "none"
    clipnorm: float | None = 1.0
    label_smoothing: float = 0.1
    early_stopping_patience: int | None = 3
    monitor: Literal["val_loss", "val_bleu"] = "val_loss"
    bleu_samples: int = 500
    bleu_tokenize: str = "auto"
    max_decode_length: int = 64
    max_minutes: float | None = None
    mixed_precision: bool = False
    jit_compile: bool = False

    def validate(self, path: str) -> None:
        """Checks counts, rates, budgets and the BLEU tokenizer."""
        for name in (
            "epochs",
            "steps_per_epoch",
            "checkpoint_every_steps",
            "log_every_steps",
            "learning_rate",
            "warmup_steps",
            "clipnorm",
        ):
            check_positive(f"{path}.{name}", getattr(self, name))
        check_positive(f"{path}.early_stopping_patience", self.early_stopping_patience)
        check_positive(f"{path}.max_decode_length", self.max_decode_length)
        check_positive(f"{path}.max_minutes", self.max_minutes)
        check_fraction(f"{path}.label_smoothing", self.label_smoothing)
        if self.bleu_samples < 0:
            raise ConfigError(
                f"Expected {path}.bleu_samples >= 0. Received: {path}.bleu_samples="
                f"{self.bleu_samples}"
            )
        if self.lr_decay == "cosine" and self.max_minutes is None:
            raise ConfigError(
                f"Expected {path}.max_minutes to be set when {path}.lr_decay=cosine "
                "(the rate decays over the budget)."
            )
        if self.monitor == "val_bleu" and self.bleu_samples == 0:
            raise ConfigError(f"Expected {path}.bleu_samples > 0 when {path}.monitor=val_bleu.")
        try:
            check_bleu_tokenize(self.bleu_tokenize, f"{path}.bleu_tokenize")
        except ValueError as error:
            raise ConfigError(str(error)) from None


class YamlConfig:
    """Behaviour shared by the top-level configs: YAML in and out, overrides, validation.

    A subclass is a frozen dataclass whose fields are sections (dataclasses) or values,
    with a `validate()` that checks every section and returns self.
    """

    def validate(self) -> YamlConfig:
        """Checks every section; returns self."""
        raise NotImplementedError(f"{type(self).__name__} must implement validate().")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> YamlConfig:
        """Builds and validates a config from nested mappings.

        Raises:
            ConfigError: naming the first unknown key or mistyped value.
        """
        return _build(cls, values, "").validate()

    @classmethod
    def from_yaml(cls, path: str, overrides: Sequence[str] = ()) -> YamlConfig:
        """Reads a YAML file, applies `key.path=value` overrides and validates.

        Relative corpus paths are relative to the working directory: recipes are run
        from the repository root.

        Args:
            path: YAML file.
            overrides: Strings such as `model.units=128`; values are parsed as YAML.

        Raises:
            ConfigError: unreadable file, invalid YAML, unknown key or bad value.
        """
        try:
            with open(path, encoding="utf-8") as file:
                values = yaml.safe_load(file)
        except FileNotFoundError:
            raise ConfigError(f"Config file not found: {path}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: invalid YAML: {_one_line(error)}") from None
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level.")
        for override in overrides:
            _apply_override(values, override)
        try:
            return cls.from_dict(values)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None

    def to_dict(self) -> dict[str, Any]:
        """Returns the config as nested plain dicts (YAML-serialisable)."""
        return dataclasses.asdict(self)

    def to_yaml(self, path: str) -> None:
        """Writes the config as YAML atomically (temporary file, then rename)."""
        with atomic_write(path, "w", encoding="utf-8") as file:
            yaml.safe_dump(self.to_dict(), file, sort_keys=False, allow_unicode=True)

    def replace(self, **sections: Any) -> YamlConfig:
        """Returns a copy with whole sections or top-level fields replaced."""
        return dataclasses.replace(self, **sections).validate()


@dataclasses.dataclass(frozen=True)
class Config(YamlConfig):
    """A complete experiment: data, tokenizers, model and training.

    Attributes:
        name: Experiment name (used for run and export directories).
        seed: Seed of weight initialisation and data order.
        data: Corpus and batching.
        tokenizer: SentencePiece settings.
        model: Model family and sizes.
        training: Optimisation and callbacks.
    """

    name: str = "nmt"
    seed: int = 0
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = dataclasses.field(default_factory=TokenizerConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)

    def validate(self) -> Config:
        """Validates every section and returns self."""
        self.data.validate("data")
        self.tokenizer.validate("tokenizer")
        self.model.validate("model")
        self.training.validate("training")
        return self


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _apply_override(values: dict[str, Any], override: str) -> None:
    """Applies `a.b.c=value` to nested dicts, parsing the value as YAML."""
    key, separator, raw = override.partition("=")
    if not separator or not key:
        raise ConfigError(f"Expected --set key.path=value. Received: {override!r}")
    *parents, leaf = key.strip().split(".")
    node = values
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"Cannot set {key}: {part} is not a section.")
        node = child
    try:
        node[leaf] = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ConfigError(f"Cannot parse the value of --set {override!r}.") from None


def _build(cls: type, values: Any, path: str) -> Any:
    """Builds dataclass `cls` from a mapping, checking keys and value types."""
    where = path or "the config"
    if not isinstance(values, Mapping):
        raise ConfigError(f"Expected {where} to be a mapping. Received: {values!r}")
    hints = typing.get_type_hints(cls)
    fields = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        name = f"{path}.{unknown[0]}" if path else unknown[0]
        expected = ", ".join(sorted(fields))
        raise ConfigError(f"Unknown config key '{name}'. Expected one of: {expected}")
    kwargs = {
        key: _convert(hints[key], value, f"{path}.{key}" if path else key)
        for key, value in values.items()
    }
    return cls(**kwargs)


def _convert(hint: Any, value: Any, path: str) -> Any:
    """Checks `value` against type `hint`, building nested dataclasses."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, path)
            except ConfigError as error:
                errors.append(error)
        raise errors[0]
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(
                f"Expected {path} to be one of {', '.join(map(str, choices))}. "
                f"Received: {path}={value!r}"
            )
        return value
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path)
    if hint is str and isinstance(value, datetime.date):
        # YAML reads an unquoted 2011-11-01 as a date; where text is expected, it is its text.
        return (
            value.isoformat(sep=" ", timespec="minutes")
            if isinstance(value, datetime.datetime)
            else value.isoformat()
        )
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value):
        return float(value)
    if hint in (int, float) and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(
            f"Expected {path} to be of type {hint.__name__}. Received: {path}={value!r}"
        )
    return value
