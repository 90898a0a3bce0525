"""Parsing and validating `--model_config_file` text protos; version policies."""

import pytest

from nmt_keras.serving import ServerError
from nmt_keras.serving.model_config import (
    aspired_versions,
    parse_model_config_text,
    read_model_config_file,
    single_model_config,
)

CONFIG = """
model_config_list {
  config {
    name: "nmt"
    base_path: "/models/nmt"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 3 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 3 }
  }
  config {
    name: "other"
    base_path: "/models/other"
    model_platform: "tensorflow"
  }
}
"""


def test_parse_model_config_text():
    config_list = parse_model_config_text(CONFIG)
    nmt, other = config_list.config
    assert nmt.name == "nmt"
    assert list(nmt.model_version_policy.specific.versions) == [1, 3]
    assert dict(nmt.version_labels) == {"stable": 1, "canary": 3}
    assert other.base_path == "/models/other"


def test_read_model_config_file(tmp_path):
    path = tmp_path / "models.config"
    path.write_text(CONFIG)
    assert len(read_model_config_file(str(path)).config) == 2
    with pytest.raises(ServerError, match="Cannot read model config file"):
        read_model_config_file(str(tmp_path / "missing.config"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_config_list { config { name: ", "Invalid model config file"),
        (
            'model_config_list { config { name: "a" base_path: "/a" model_platform: '
            '"tensorflow" } config { name: "a" base_path: "/b" model_platform: "tensorflow" } }',
            "Illegal to list model a multiple times in config list",
        ),
        (
            'model_config_list { config { name: "a" base_path: "/a" } }',
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            "ModelServerConfig::model_platform.",
        ),
        (
            'model_config_list { config { name: "a" base_path: "rel/a" '
            'model_platform: "tensorflow" } }',
            "Expected model a to have an absolute path or URI; got base_path()=rel/a",
        ),
        ('custom_model_config { type_url: "x" }', "expected a model_config_list"),
    ],
)
def test_invalid_configs(text, message):
    with pytest.raises(ServerError) as info:
        parse_model_config_text(text, "models.config")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_single_model_config_makes_the_path_absolute():
    (config,) = single_model_config("nmt", "saved_models/nmt").config
    assert config.name == "nmt"
    assert config.base_path.startswith("/")
    assert config.model_platform == "tensorflow"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("", {5}),
        ("model_version_policy { latest { num_versions: 2 } }", {3, 5}),
        ("model_version_policy { all {} }", {1, 3, 5}),
        ("model_version_policy { specific { versions: 1 versions: 4 } }", {1}),
    ],
)
def test_version_policies(policy, expected):
    text = (
        f'model_config_list {{ config {{ name: "m" base_path: "/m" model_platform: '
        f'"tensorflow" {policy} }} }}'
    )
    (config,) = parse_model_config_text(text).config
    assert aspired_versions(config, [1, 3, 5]) == expected
