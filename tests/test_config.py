import dataclasses
import os

import pytest
import yaml

from nmt_keras.behaviour.config import BehaviourConfig
from nmt_keras.config import (
    Config,
    ConfigError,
    CorpusFiles,
    DataConfig,
    ModelConfig,
    TokenizerConfig,
    TrainingConfig,
)


def minimal() -> dict:
    """The smallest valid config: the corpus files are the only required settings."""
    return {
        "data": {
            "train": {"source": "train.es", "target": "train.en"},
            "valid": {"tsv": "valid.tsv"},
        }
    }


def with_section(section: str, **values) -> dict:
    config = minimal()
    config.setdefault(section, {}).update(values)
    return config


def write_yaml(tmp_path, values, name="config.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return str(path)


def test_minimal_config_takes_documented_defaults():
    config = Config.from_dict(minimal())
    assert config.data.train == CorpusFiles(source="train.es", target="train.en")
    assert config.data.valid == CorpusFiles(tsv="valid.tsv")
    assert config.data.test is None
    assert config.model == ModelConfig()
    assert config.training == TrainingConfig()
    assert config.tokenizer == TokenizerConfig()
    assert (config.name, config.seed) == ("nmt", 0)
    assert isinstance(config.data, DataConfig)


def test_nested_values_are_built_into_dataclasses():
    values = minimal()
    values["data"]["test"] = {"source": "t.es", "target": "t.en"}
    values["model"] = {"type": "luong", "score_mode": "dot", "units": 64, "rnn": "lstm"}
    config = Config.from_dict(values)
    assert config.data.test == CorpusFiles(source="t.es", target="t.en")
    assert config.model.type == "luong"
    assert config.model.score_mode == "dot"
    assert config.model.units == 64
    assert config.model.rnn == "lstm"


def test_config_is_frozen():
    config = Config.from_dict(minimal())
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.model.units = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "other"


@pytest.mark.parametrize(
    "values, message",
    [
        (with_section("model", untis=128), "Unknown config key 'model.untis'"),
        ({**minimal(), "modle": {}}, "Unknown config key 'modle'"),
        (with_section("training", epoch=3), "Unknown config key 'training.epoch'"),
    ],
)
def test_unknown_keys_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(values)


def test_unknown_key_error_lists_the_expected_keys():
    with pytest.raises(ConfigError) as info:
        Config.from_dict(with_section("model", untis=128))
    assert "units" in str(info.value) and "embedding_dim" in str(info.value)


def test_unknown_nested_corpus_key_is_named():
    values = minimal()
    values["data"]["train"]["sorce"] = "x"
    with pytest.raises(ConfigError, match=r"Unknown config key 'data\.train\.sorce'"):
        Config.from_dict(values)


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("model", "units", "big", r"Expected model\.units to be of type int"),
        ("model", "units", 1.5, r"Expected model\.units to be of type int"),
        ("model", "units", True, r"Expected model\.units to be of type int"),
        ("model", "bidirectional", "yes", r"Expected model\.bidirectional to be of type bool"),
        ("training", "learning_rate", "fast", r"training\.learning_rate"),
        ("training", "learning_rate", False, r"training\.learning_rate"),
        ("data", "batch_size", "64", r"data\.batch_size"),
        ("training", "clipnorm", [1.0], r"training\.clipnorm"),
        (None, "name", 3, r"Expected name to be of type str"),
    ],
)
def test_wrong_types_are_named(section, key, value, message):
    values = minimal()
    if section is None:
        values[key] = value
    else:
        values.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(values)


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("model", "type", "rnnsearch"),
        ("model", "rnn", "rnn"),
        ("model", "score_mode", "Dot"),
        ("model", "window_mode", "local"),
        ("tokenizer", "model_type", "wordpiece"),
        ("training", "monitor", "val_acc"),
    ],
)
def test_bad_literal_values_name_the_key_and_the_choices(section, key, value):
    with pytest.raises(ConfigError) as info:
        Config.from_dict(with_section(section, **{key: value}))
    message = str(info.value)
    assert f"{section}.{key}" in message
    assert repr(value) in message


def test_literal_error_lists_the_choices():
    with pytest.raises(ConfigError, match="seq2seq, bahdanau, luong, transformer"):
        Config.from_dict(with_section("model", type="rnnsearch"))


def test_int_is_accepted_for_float_and_converted():
    config = Config.from_dict(with_section("training", learning_rate=1, clipnorm=2))
    assert config.training.learning_rate == 1.0
    assert isinstance(config.training.learning_rate, float)
    assert isinstance(config.training.clipnorm, float)


def test_exponent_floats_without_a_dot_are_floats(tmp_path):
    # YAML 1.1 (PyYAML) resolves `1e-4` to a string; a learning rate is written that way.
    path = tmp_path / "lr.yaml"
    path.write_text(
        yaml.safe_dump(minimal()) + "training:\n  learning_rate: 1e-4\n  max_minutes: 5E1\n",
        encoding="utf-8",
    )
    config = Config.from_yaml(str(path), overrides=["training.clipnorm=2.5e+0"])
    assert config.training.learning_rate == pytest.approx(1e-4)
    assert config.training.max_minutes == pytest.approx(50.0)
    assert config.training.clipnorm == pytest.approx(2.5)
    assert isinstance(config.training.learning_rate, float)


@pytest.mark.parametrize("value", ["1e-4", "nan", "inf", "0.1", "1e"])
def test_strings_are_not_ints_or_arbitrary_floats(value):
    with pytest.raises(ConfigError, match=r"model\.units to be of type int"):
        Config.from_dict(with_section("model", units=value))
    if value in ("nan", "inf", "0.1", "1e"):
        with pytest.raises(ConfigError, match=r"model\.dropout to be of type float"):
            Config.from_dict(with_section("model", dropout=value))


def test_optional_values_accept_none():
    config = Config.from_dict(
        with_section("training", clipnorm=None, early_stopping_patience=None, max_minutes=None)
    )
    assert config.training.clipnorm is None
    assert config.training.early_stopping_patience is None


def test_section_must_be_a_mapping():
    values = {**minimal(), "model": 5}
    with pytest.raises(ConfigError, match="Expected model to be a mapping"):
        Config.from_dict(values)


@pytest.mark.parametrize(
    "section, values, message",
    [
        ("model", {"units": 0}, r"model\.units to be positive"),
        (
            "model",
            {"units": 7, "bidirectional": True},
            r"even model\.units with model\.bidirectional=True",
        ),
        ("model", {"dropout": 1.0}, r"model\.dropout to be in \[0, 1\)"),
        ("model", {"dropout": -0.1}, r"model\.dropout"),
        ("model", {"encoder_layers": 0}, r"model\.encoder_layers"),
        ("model", {"attention_units": -1}, r"model\.attention_units"),
        ("model", {"type": "luong", "half_window": 0}, r"model\.half_window to be positive"),
        (
            "model",
            {"type": "bahdanau", "window_mode": "local-p"},
            r"model\.window_mode=global unless model\.type=luong",
        ),
        ("model", {"type": "seq2seq", "window_mode": "local-m"}, r"model\.window_mode"),
        (
            "model",
            {"type": "transformer", "embedding_dim": 128, "units": 256},
            r"model\.embedding_dim == model\.units \(d_model\)",
        ),
        (
            "model",
            {"type": "transformer", "num_heads": 3},
            r"model\.num_heads to divide model\.units",
        ),
        (
            "model",
            {"type": "transformer", "alignment_head": 4},
            r"model\.alignment_head to be None or in",
        ),
        ("model", {"num_heads": 0}, r"model\.num_heads to be positive"),
        ("model", {"ff_dim": 0}, r"model\.ff_dim to be positive"),
        ("training", {"warmup_steps": 0}, r"training\.warmup_steps to be positive"),
        ("data", {"max_length": 2}, r"data\.max_length >= 3"),
        ("data", {"max_tokens": 500}, r"exactly one of data\.batch_size and data\.max_tokens"),
        ("data", {"batch_size": None}, r"exactly one of data\.batch_size and data\.max_tokens"),
        ("data", {"batch_size": -4}, r"data\.batch_size to be positive"),
        ("data", {"max_train_pairs": 0}, r"data\.max_train_pairs"),
        ("tokenizer", {"vocab_size": 7}, r"tokenizer\.vocab_size >= 8"),
        ("tokenizer", {"character_coverage": 0.0}, r"tokenizer\.character_coverage"),
        ("tokenizer", {"character_coverage": 1.5}, r"tokenizer\.character_coverage"),
        ("tokenizer", {"character_coverage": 0.9}, r"character_coverage in \[0\.98, 1\]"),
        ("tokenizer", {"character_coverage": "most"}, r"tokenizer\.character_coverage"),
        ("training", {"epochs": 0}, r"training\.epochs to be positive"),
        ("training", {"learning_rate": 0.0}, r"training\.learning_rate"),
        ("training", {"label_smoothing": 1.0}, r"training\.label_smoothing"),
        ("training", {"bleu_samples": -1}, r"training\.bleu_samples >= 0"),
        ("training", {"monitor": "val_bleu", "bleu_samples": 0}, r"bleu_samples > 0"),
        ("training", {"max_minutes": 0}, r"training\.max_minutes"),
        ("training", {"lr_decay": "cosine"}, r"training\.max_minutes to be set"),
        ("training", {"lr_decay": "linear"}, r"training\.lr_decay"),
        ("training", {"max_decode_length": 0}, r"training\.max_decode_length"),
    ],
)
def test_invalid_values_are_rejected(section, values, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(with_section(section, **values))


def test_transformer_takes_its_heads_and_alignment_head():
    values = with_section("model", type="transformer", num_heads=8, alignment_head=-1)
    config = Config.from_dict(values)
    assert (config.model.num_heads, config.model.alignment_head) == (8, -1)


def test_odd_units_are_fine_with_a_unidirectional_encoder():
    config = Config.from_dict(with_section("model", units=7, bidirectional=False))
    assert config.model.units == 7


def test_token_budget_batching_is_valid():
    config = Config.from_dict(with_section("data", batch_size=None, max_tokens=500))
    assert (config.data.batch_size, config.data.max_tokens) == (None, 500)


@pytest.mark.parametrize(
    "split, message",
    [
        ({"source": "a"}, r"data\.train to set both source and target"),
        ({"target": "b"}, r"data\.train to set both source and target"),
        ({}, r"data\.train to set both source and target"),
        ({"source": "a", "target": "b", "tsv": "c"}, r"either data\.train\.tsv"),
    ],
)
def test_corpus_split_needs_a_pair_or_a_tsv(split, message):
    values = minimal()
    values["data"]["train"] = split
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(values)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_yaml_round_trip(tmp_path):
    values = minimal()
    values["model"] = {"type": "luong", "units": 32, "input_feeding": True}
    values["training"] = {"clipnorm": None, "learning_rate": 0.0005}
    config = Config.from_dict(values)
    path = str(tmp_path / "saved.yaml")
    config.to_yaml(path)
    assert Config.from_yaml(path) == config
    assert sorted(os.listdir(tmp_path)) == ["saved.yaml"]  # no temporary file left over
    assert config.to_dict()["model"]["units"] == 32


def test_to_yaml_overwrites_an_existing_file(tmp_path):
    path = str(tmp_path / "saved.yaml")
    Config.from_dict(with_section("model", units=16)).to_yaml(path)
    Config.from_dict(with_section("model", units=64)).to_yaml(path)
    assert Config.from_yaml(path).model.units == 64
    assert sorted(os.listdir(tmp_path)) == ["saved.yaml"]


def test_from_yaml_applies_overrides(tmp_path):
    path = write_yaml(tmp_path, with_section("model", units=256))
    config = Config.from_yaml(
        path,
        overrides=[
            "model.units=128",
            "model.type=luong",
            "training.clipnorm=null",
            "training.learning_rate=1e-4",
            "name=exp 1",
            "tokenizer.joint=true",
        ],
    )
    assert config.model.units == 128
    assert config.model.type == "luong"
    assert config.training.clipnorm is None
    assert config.training.learning_rate == pytest.approx(1e-4)
    assert config.name == "exp 1"
    assert config.tokenizer.joint is True


def test_override_creates_missing_sections(tmp_path):
    path = write_yaml(tmp_path, minimal())
    config = Config.from_yaml(path, overrides=["training.epochs=2", "data.test.tsv=t.tsv"])
    assert config.training.epochs == 2
    assert config.data.test == CorpusFiles(tsv="t.tsv")


def test_overrides_are_checked_like_the_file(tmp_path):
    path = write_yaml(tmp_path, minimal())
    with pytest.raises(ConfigError, match=r"Unknown config key 'model\.untis'") as info:
        Config.from_yaml(path, overrides=["model.untis=128"])
    assert str(info.value).startswith(path)  # the error names the file
    with pytest.raises(ConfigError, match=r"model\.units to be of type int"):
        Config.from_yaml(path, overrides=["model.units=big"])


@pytest.mark.parametrize("override", ["model.units", "=3", "model.units128"])
def test_malformed_overrides_are_rejected(tmp_path, override):
    path = write_yaml(tmp_path, minimal())
    with pytest.raises(ConfigError, match="key.path=value"):
        Config.from_yaml(path, overrides=[override])


def test_override_into_a_scalar_is_rejected(tmp_path):
    path = write_yaml(tmp_path, with_section("model", units=32))
    with pytest.raises(ConfigError, match="units is not a section"):
        Config.from_yaml(path, overrides=["model.units.x=1"])


def test_override_with_unparsable_value_is_rejected(tmp_path):
    path = write_yaml(tmp_path, minimal())
    with pytest.raises(ConfigError, match="Cannot parse"):
        Config.from_yaml(path, overrides=["model.units=[1, 2"])


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="Config file not found"):
        Config.from_yaml(str(tmp_path / "nope.yaml"))


def test_invalid_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: [units: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid YAML") as info:
        Config.from_yaml(str(path))
    assert "\n" not in str(info.value)  # one line for the CLI


def test_top_level_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping at the top level"):
        Config.from_yaml(str(path))


def test_empty_file_fails_validation_naming_the_file(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"empty\.yaml: Expected data\.train"):
        Config.from_yaml(str(path))


def test_replace_validates():
    config = Config.from_dict(minimal())
    bigger = config.replace(model=dataclasses.replace(config.model, units=512))
    assert bigger.model.units == 512 and config.model.units == 256
    with pytest.raises(ConfigError, match=r"even model\.units with model\.bidirectional=True"):
        config.replace(model=dataclasses.replace(config.model, units=5))


def test_recipes_in_the_repository_load():
    recipes = os.path.join(os.path.dirname(__file__), os.pardir, "training", "configs")
    paths = sorted(
        os.path.join(recipes, name)
        for name in (os.listdir(recipes) if os.path.isdir(recipes) else [])
        if name.endswith((".yaml", ".yml"))
    )
    if not paths:
        pytest.skip("no recipes")
    for path in paths:
        # retail*.yaml recipes are next-purchase experiments (nmt-keras behaviour train).
        kind = BehaviourConfig if os.path.basename(path).startswith("retail") else Config
        assert isinstance(kind.from_yaml(path), kind)


def test_local_attention_defaults_and_values():
    assert (ModelConfig().window_mode, ModelConfig().half_window) == ("global", 10)
    for window in ("local-m", "local-p"):
        values = with_section("model", type="luong", window_mode=window, half_window=5)
        model = Config.from_dict(values).model
        assert (model.window_mode, model.half_window) == (window, 5)


def test_local_p_recipe_loads():
    recipe = os.path.join(
        os.path.dirname(__file__), os.pardir, "training", "configs", "multi30k-luong-local-p.yaml"
    )
    config = Config.from_yaml(recipe)
    assert config.name == "multi30k-luong-local-p"
    assert (config.model.type, config.model.window_mode) == ("luong", "local-p")
    assert config.model.half_window == 10


def test_bleu_tokenize_defaults_to_auto_and_takes_sacrebleu_names(tmp_path):
    assert TrainingConfig().bleu_tokenize == "auto"
    path = write_yaml(tmp_path, with_section("training", bleu_tokenize="zh"))
    assert Config.from_yaml(path).training.bleu_tokenize == "zh"
    overridden = Config.from_yaml(path, ["training.bleu_tokenize=ja-mecab"])
    assert overridden.training.bleu_tokenize == "ja-mecab"


def test_unknown_bleu_tokenize_is_one_line_naming_the_key(tmp_path):
    path = write_yaml(tmp_path, with_section("training", bleu_tokenize="bogus"))
    with pytest.raises(ConfigError) as info:
        Config.from_yaml(path)
    message = str(info.value)
    assert "\n" not in message
    assert "training.bleu_tokenize" in message and "'bogus'" in message
    assert "auto" in message and "zh" in message
