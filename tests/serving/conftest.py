"""Fixtures for the local server tests: one tiny SavedModel, servers on loopback ports."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from nmt_keras.serving import ServerOptions, start_server  # noqa: E402
from tests.serving.fake_models import install_version, save_echo_model  # noqa: E402

CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]


@pytest.fixture(scope="session")
def echo_saved_model(tmp_path_factory):
    """One EchoModel SavedModel, copied into version directories by the tests."""
    return save_echo_model(str(tmp_path_factory.mktemp("echo_src") / "model"))


@pytest.fixture(scope="module")
def echo_server(echo_saved_model, tmp_path_factory):
    """A server for model "echo" (version 1) with REST on; shared by a test module."""
    base = str(tmp_path_factory.mktemp("echo_base") / "echo")
    install_version(echo_saved_model, base, 1)
    options = ServerOptions(
        port=0,
        rest_api_port=-1,
        model_name="echo",
        model_base_path=base,
        file_system_poll_wait_seconds=0,
    )
    server = start_server(options)
    yield server
    server.stop(grace=1)


@pytest.fixture(scope="module")
def channel(echo_server):
    with grpc.insecure_channel(f"127.0.0.1:{echo_server.grpc_port}", CHANNEL_OPTIONS) as ch:
        yield ch


@pytest.fixture(scope="module")
def prediction_stub(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def model_stub(channel):
    return model_service_pb2_grpc.ModelServiceStub(channel)


def text_request(
    texts, model="echo", signature="", version=None, label=None, output_filter=()
) -> predict_pb2.PredictRequest:
    """A PredictRequest with `text` = the given strings."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(list(texts), dtype=tf.string))
    request.output_filter.extend(output_filter)
    return request
