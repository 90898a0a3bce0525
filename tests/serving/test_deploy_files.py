"""The deployment files in serving/ parse as the real TensorFlow Serving reads them."""

from __future__ import annotations

import pathlib

import pytest
import yaml
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)

from nmt_keras.serving.model_config import read_model_config_file

SERVING_DIR = pathlib.Path(__file__).resolve().parents[2] / "serving"


def _batching_parameters_class():
    """`tensorflow.serving.BatchingParameters`, from the serving protos when installed.

    tensorflow-serving-api ships only `apis/` and `config/`, not
    `servables/tensorflow/session_bundle_config_pb2`. Without it the message is rebuilt
    here with the field names, numbers and types of
    tensorflow_serving/servables/tensorflow/session_bundle_config.proto (fields 1-7; later
    releases add more, which this file does not use), so a misspelt field or a wrong
    type still fails to parse.
    """
    try:
        from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2
    except ImportError:
        pass
    else:
        return session_bundle_config_pb2.BatchingParameters
    label = descriptor_pb2.FieldDescriptorProto
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="nmt_keras_tests/session_bundle_config_subset.proto",
        package="tensorflow.serving.test_subset",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    message = file_proto.message_type.add(name="BatchingParameters")
    wrapped = {
        "max_batch_size": (1, ".google.protobuf.Int64Value"),
        "batch_timeout_micros": (2, ".google.protobuf.Int64Value"),
        "max_enqueued_batches": (3, ".google.protobuf.Int64Value"),
        "num_batch_threads": (4, ".google.protobuf.Int64Value"),
        "thread_pool_name": (5, ".google.protobuf.StringValue"),
    }
    for name, (number, type_name) in wrapped.items():
        message.field.add(
            name=name,
            number=number,
            label=label.LABEL_OPTIONAL,
            type=label.TYPE_MESSAGE,
            type_name=type_name,
        )
    message.field.add(
        name="allowed_batch_sizes", number=6, label=label.LABEL_REPEATED, type=label.TYPE_INT64
    )
    message.field.add(
        name="pad_variable_length_inputs",
        number=7,
        label=label.LABEL_OPTIONAL,
        type=label.TYPE_BOOL,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(
        descriptor_pb2.FileDescriptorProto.FromString(
            wrappers_pb2.DESCRIPTOR.serialized_pb
        ).SerializeToString()
    )
    pool.Add(file_proto)
    descriptor = pool.FindMessageTypeByName("tensorflow.serving.test_subset.BatchingParameters")
    return message_factory.GetMessageClass(descriptor)


def test_models_config_parses_and_validates():
    config_list = read_model_config_file(str(SERVING_DIR / "models.config"))
    assert [config.name for config in config_list.config] == ["nmt"]
    config = config_list.config[0]
    assert config.base_path == "/models/demo"
    assert config.model_platform == "tensorflow"
    assert config.model_version_policy.WhichOneof("policy_choice") == "latest"
    assert config.model_version_policy.latest.num_versions == 1


def test_batching_parameters_parse():
    parameters = text_format.Parse(
        (SERVING_DIR / "batching_parameters.txt").read_text(encoding="utf-8"),
        _batching_parameters_class()(),
    )
    assert parameters.pad_variable_length_inputs
    assert parameters.max_batch_size.value >= 64  # the client's default request size
    assert 0 < parameters.batch_timeout_micros.value <= 10_000
    assert parameters.num_batch_threads.value >= 1
    assert parameters.max_enqueued_batches.value >= 1


def test_batching_parameters_reject_unknown_fields():
    with pytest.raises(text_format.ParseError):
        text_format.Parse("max_batch_size: 64", _batching_parameters_class()())  # not a wrapper
    with pytest.raises(text_format.ParseError):
        text_format.Parse("batch_timeout_ms { value: 1 }", _batching_parameters_class()())


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
