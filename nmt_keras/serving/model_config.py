"""Model configuration: `--model_config_file` text protos and the single-model flags.

The file format is the real server's `ModelServerConfig` text proto:

    model_config_list {
      config {
        name: "nmt"
        base_path: "/models/nmt"
        model_platform: "tensorflow"
        model_version_policy { latest { num_versions: 2 } }   # or all {} / specific {...}
        version_labels { key: "stable" value: 1 }
      }
    }

Validation follows `server_core.cc`: unique names, a platform, absolute base paths.
"""

from __future__ import annotations

import os

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from nmt_keras.serving.errors import ServerError

PLATFORM = "tensorflow"

ModelConfig = model_server_config_pb2.ModelConfig
ModelConfigList = model_server_config_pb2.ModelConfigList
ModelServerConfig = model_server_config_pb2.ModelServerConfig


def single_model_config(model_name: str, model_base_path: str) -> ModelConfigList:
    """Builds the config of `--model_name` / `--model_base_path` (policy latest 1).

    Unlike the real server, a relative base path is made absolute (against the current
    directory) rather than rejected.

    Args:
        model_name: The model name clients use.
        model_base_path: The directory holding the integer version directories.

    Returns:
        A one-model config list.
    """
    config_list = ModelConfigList()
    config = config_list.config.add()
    config.name = model_name
    config.base_path = os.path.abspath(model_base_path)
    config.model_platform = PLATFORM
    return config_list


def parse_model_config_text(text: str, source: str = "<string>") -> ModelConfigList:
    """Parses and validates a `ModelServerConfig` text proto.

    Args:
        text: The text proto (a `model_config_list { ... }` block).
        source: Where the text came from, for error messages.

    Returns:
        The validated model config list.

    Raises:
        ServerError: The text does not parse or the config is invalid.
    """
    server_config = ModelServerConfig()
    try:
        text_format.Parse(text, server_config)
    except text_format.ParseError as error:
        raise ServerError(f"Invalid model config file {source}: {error}") from error
    if server_config.WhichOneof("config") != "model_config_list":
        raise ServerError(
            f"Invalid model config file {source}: expected a model_config_list "
            f"(custom_model_config is not supported)."
        )
    config_list = server_config.model_config_list
    problem = validate_model_config_list(config_list)
    if problem:
        raise ServerError(f"Invalid model config file {source}: {problem}")
    return config_list


def read_model_config_file(path: str) -> ModelConfigList:
    """Reads and validates a `--model_config_file`.

    Args:
        path: The text proto file.

    Returns:
        The validated model config list.

    Raises:
        ServerError: The file is missing, does not parse or is invalid.
    """
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as error:
        raise ServerError(f"Cannot read model config file {path}: {error.strerror}") from error
    return parse_model_config_text(text, path)


def validate_model_config_list(config_list: ModelConfigList) -> str | None:
    """Checks a config list like the real server's `ValidateModelConfigList`.

    Args:
        config_list: The config to check.

    Returns:
        None when valid, else the real server's error message.
    """
    names: set[str] = set()
    for config in config_list.config:
        if not config.name:
            return "Every model config needs a name."
        if config.name in names:
            return f"Illegal to list model {config.name} multiple times in config list"
        names.add(config.name)
        if config.model_type and config.model_platform:
            return (
                "Illegal setting both ModelServerConfig::model_type (deprecated) "
                "and ModelServerConfig::model_platform."
            )
        platform = PLATFORM if config.model_type == 1 else config.model_platform
        if not platform:
            return (
                "Illegal setting neither ModelServerConfig::model_type (deprecated) "
                "nor ModelServerConfig::model_platform."
            )
        if platform != PLATFORM:
            return f"Model {config.name} has platform {platform!r}; only 'tensorflow' is served."
        if not os.path.isabs(config.base_path) and "://" not in config.base_path:
            return (
                f"Expected model {config.name} to have an absolute path or URI; "
                f"got base_path()={config.base_path}"
            )
    return None


def aspired_versions(config: ModelConfig, on_disk: list[int]) -> set[int]:
    """Applies a model's version policy to the versions found on disk.

    Args:
        config: The model config (policy latest 1 when unset).
        on_disk: Version numbers present under the base path.

    Returns:
        The versions that should be loaded.
    """
    policy = config.model_version_policy
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return set(on_disk)
    if choice == "specific":
        return set(on_disk) & set(policy.specific.versions)
    num_versions = policy.latest.num_versions if choice == "latest" else 1
    return set(sorted(on_disk)[-max(num_versions, 1) :])
