"""The deployment files in serving/ parse as the real TensorFlow Serving reads them."""

from __future__ import annotations

import pathlib

import pytest
import yaml
from google.protobuf import text_format

from nmt_keras.serving.batching import BatchingParametersProto, read_batching_parameters
from nmt_keras.serving.model_config import read_model_config_file

SERVING_DIR = pathlib.Path(__file__).resolve().parents[2] / "serving"


def test_models_config_parses_and_validates():
    config_list = read_model_config_file(str(SERVING_DIR / "models.config"))
    assert [config.name for config in config_list.config] == ["nmt"]
    config = config_list.config[0]
    assert config.base_path == "/models/demo"
    assert config.model_platform == "tensorflow"
    assert config.model_version_policy.WhichOneof("policy_choice") == "latest"
    assert config.model_version_policy.latest.num_versions == 1


def test_batching_parameters_parse():
    parameters = read_batching_parameters(str(SERVING_DIR / "batching_parameters.txt"))
    assert parameters.pad_variable_length_inputs
    assert parameters.max_batch_size >= 64  # the client's default request size
    assert 0 < parameters.batch_timeout_micros <= 10_000
    assert parameters.num_batch_threads >= 1
    assert parameters.max_enqueued_batches >= 1


def test_batching_parameters_reject_unknown_fields():
    with pytest.raises(text_format.ParseError):
        text_format.Parse("max_batch_size: 64", BatchingParametersProto())  # not a wrapper
    with pytest.raises(text_format.ParseError):
        text_format.Parse("batch_timeout_ms { value: 1 }", BatchingParametersProto())


def test_docker_compose_points_at_the_config_files():
    compose = yaml.safe_load((SERVING_DIR / "docker-compose.yml").read_text(encoding="utf-8"))
    service = compose["services"]["tf-serving"]
    assert service["image"].startswith("tensorflow/serving:")
    assert {"8500:8500", "8501:8501"} <= set(service["ports"])
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}
    assert mounts["/models"] == "../saved_models"
    flags = dict(flag.split("=", 1) for flag in service["command"])
    for flag, container_path in (
        ("--model_config_file", flags["--model_config_file"]),
        ("--batching_parameters_file", flags["--batching_parameters_file"]),
    ):
        mount_point, _, name = container_path.rpartition("/")
        assert mount_point in mounts, flag
        host_dir = (SERVING_DIR / mounts[mount_point]).resolve()
        assert (host_dir / name).is_file(), f"{flag}={container_path} is not in {host_dir}"
    assert flags["--enable_batching"] == "true"
