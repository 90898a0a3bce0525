"""gRPC PredictionService / ModelService against the local server: results and errors."""

import socket

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    predict_pb2,
    regression_pb2,
)

from tests.serving.conftest import text_request

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def call_error(method, request):
    with pytest.raises(grpc.RpcError) as info:
        method(request, timeout=30)
    return info.value.code(), info.value.details()


def test_predict_default_signature(prediction_stub):
    response = prediction_stub.Predict(text_request(["hello", "wörld"]), timeout=30)
    assert response.model_spec.name == "echo"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    assert sorted(response.outputs) == ["length", "score", "text_bytes", "upper"]
    upper = response.outputs["upper"]
    assert upper.dtype == tf.string.as_datatype_enum
    assert [d.size for d in upper.tensor_shape.dim] == [2]
    # Typed fields, like the real server's AsProtoField.
    assert list(upper.string_val) == [b"HELLO", "WöRLD".encode()]
    assert list(response.outputs["score"].float_val) == [2.5, 3.0]
    assert list(response.outputs["length"].int_val) == [5, 6]


def test_predict_named_signature_with_numeric_inputs(prediction_stub):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "echo"
    request.model_spec.signature_name = "add"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0, 2.0], np.float32)))
    request.inputs["y"].CopyFrom(tf.make_tensor_proto(np.array([0.5, 0.25], np.float32)))
    response = prediction_stub.Predict(request, timeout=30)
    assert response.model_spec.signature_name == "add"
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["sum"]), [1.5, 2.25])


def test_output_filter(prediction_stub):
    request = text_request(["ab"], output_filter=["length", "upper"])
    response = prediction_stub.Predict(request, timeout=30)
    assert sorted(response.outputs) == ["length", "upper"]


def test_get_model_metadata(prediction_stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "echo"
    response = prediction_stub.GetModelMetadata(request, timeout=30)
    assert response.model_spec.name == "echo"
    assert response.model_spec.version.value == 1
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    default = signatures.signature_def["serving_default"]
    assert default.method_name == "tensorflow/serving/predict"
    assert default.inputs["text"].dtype == tf.string.as_datatype_enum
    assert sorted(default.outputs) == ["length", "score", "text_bytes", "upper"]
    assert {"add", "slow"} <= set(signatures.signature_def)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([], "GetModelMetadataRequest must specify at least one metadata_field"),
        (["signature_def", "tags"], "Metadata field %s is not supportedtags"),
    ],
)
def test_get_model_metadata_fields(prediction_stub, fields, message):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=fields)
    request.model_spec.name = "echo"
    assert call_error(prediction_stub.GetModelMetadata, request) == (INVALID, message)


def test_get_model_status(model_stub):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "echo"
    response = model_stub.GetModelStatus(request, timeout=30)
    (status,) = response.model_version_status
    assert status.version == 1
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("nope", None, "Could not find any versions of model nope"),
        ("echo", 7, "Could not find version 7 of model echo"),
    ],
)
def test_get_model_status_not_found(model_stub, name, version, message):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    assert call_error(model_stub.GetModelStatus, request) == (grpc.StatusCode.NOT_FOUND, message)


def test_get_model_status_missing_model_spec(model_stub):
    request = get_model_status_pb2.GetModelStatusRequest()
    assert call_error(model_stub.GetModelStatus, request) == (INVALID, "Missing ModelSpec")


def _float_text_request():
    request = text_request([])
    request.inputs["text"].CopyFrom(tf.make_tensor_proto([1.0], dtype=tf.float32))
    return request


def _bad_tensor_request():
    request = text_request(["a"])
    request.inputs["text"].tensor_shape.dim[0].size = -3
    return request


def _extra_input_request():
    request = text_request(["a"])
    request.inputs["extra"].CopyFrom(tf.make_tensor_proto([1]))
    return request


def _renamed_input_request():
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "echo"
    request.inputs["txt"].CopyFrom(tf.make_tensor_proto(["a"]))
    return request


ERROR_CASES = {
    "missing model_spec": (
        predict_pb2.PredictRequest(),
        INVALID,
        "Missing ModelSpec",
    ),
    "empty model name": (
        text_request(["a"], model=""),
        INVALID,
        "ModelSpec has no name specified.",
    ),
    "unknown model": (
        text_request(["a"], model="nmt"),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nmt)",
    ),
    "version not loaded": (
        text_request(["a"], version=3),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Specific(echo, 3)",
    ),
    "unknown version label": (
        text_request(["a"], label="canary"),
        INVALID,
        "Unrecognized servable version label: canary",
    ),
    "unknown signature": (
        text_request(["a"], signature="translate"),
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "translate" not found.',
    ),
    "too many inputs": (
        _extra_input_request(),
        INVALID,
        "input size does not match signature: 2!=1 len({extra,text}) != len({text}). "
        "Sent extra: {extra}. Missing but required: {}.",
    ),
    "no inputs": (
        predict_pb2.PredictRequest(model_spec={"name": "echo"}),
        INVALID,
        "input size does not match signature: 0!=1 len({}) != len({text}). "
        "Sent extra: {}. Missing but required: {text}.",
    ),
    "wrong input name": (
        _renamed_input_request(),
        INVALID,
        "Signature input alias: text(feed name: serving_default_text:0) not found in request "
        "and no default value provided. Inputs expected to be in the request {txt}, or "
        "default input alias set: ",
    ),
    "unparsable tensor": (_bad_tensor_request(), INVALID, "tensor parsing error: text"),
    "wrong dtype": (
        _float_text_request(),
        INVALID,
        "Expects arg[0] to be string but float is provided",
    ),
    "unknown output_filter": (
        text_request(["a"], output_filter=["translation"]),
        INVALID,
        "output tensor alias not found in signature: translation Outputs expected to be in "
        "the set {length,score,text_bytes,upper}.",
    ),
    "duplicate output_filter": (
        text_request(["a"], output_filter=["upper", "upper"]),
        INVALID,
        "duplicate output tensor alias: upper",
    ),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_predict_errors_match_the_real_server(prediction_stub, case):
    request, code, message = ERROR_CASES[case]
    assert call_error(prediction_stub.Predict, request) == (code, message)


def test_exception_inside_the_signature_is_an_error_not_a_crash(prediction_stub):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "echo"
    request.model_spec.signature_name = "add"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.ones([2], np.float32)))
    request.inputs["y"].CopyFrom(tf.make_tensor_proto(np.ones([3], np.float32)))
    code, message = call_error(prediction_stub.Predict, request)
    assert code == INVALID
    assert "Incompatible shapes" in message
    assert prediction_stub.Predict(text_request(["still up"]), timeout=30).outputs


def test_wrong_rank_is_invalid_argument(prediction_stub):
    request = text_request([])
    request.inputs["text"].CopyFrom(tf.make_tensor_proto([["a", "b"]]))
    code, _ = call_error(prediction_stub.Predict, request)
    assert code == INVALID


def test_long_error_messages_are_truncated(prediction_stub):
    code, message = call_error(prediction_stub.Predict, text_request(["a"], signature="s" * 3000))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert message.endswith("...TRUNCATED")
    assert len(message) == 1024 + len("...TRUNCATED")


@pytest.mark.parametrize(
    ("method", "request_type", "message"),
    [
        (
            "Classify",
            classification_pb2.ClassificationRequest,
            "Expected classification signature method_name to be tensorflow/serving/"
            "classify. Was: tensorflow/serving/predict",
        ),
        (
            "Regress",
            regression_pb2.RegressionRequest,
            "Expected regression signature method_name to be tensorflow/serving/regress. "
            "Was: tensorflow/serving/predict",
        ),
    ],
)
def test_classify_and_regress_on_a_predict_signature(
    prediction_stub, method, request_type, message
):
    request = request_type()
    request.model_spec.name = "echo"
    assert call_error(getattr(prediction_stub, method), request) == (INVALID, message)


def test_multi_inference_on_a_predict_signature(prediction_stub):
    request = inference_pb2.MultiInferenceRequest()
    task = request.tasks.add()
    task.model_spec.name = "echo"
    task.method_name = "tensorflow/serving/classify"
    code, message = call_error(prediction_stub.MultiInference, request)
    assert code == INVALID
    assert "Expected classification signature method_name" in message


def test_malformed_bytes_do_not_kill_the_server(echo_server, channel, prediction_stub):
    # Garbage on the TCP port (not even HTTP/2).
    with socket.create_connection(("127.0.0.1", echo_server.grpc_port), timeout=5) as raw:
        raw.sendall(b"\x00\xff GARBAGE \r\n\r\n" * 100)
        raw.settimeout(5)
        try:
            raw.recv(1024)
        except (TimeoutError, ConnectionError):
            pass
    # A well-framed gRPC call whose payload is not a PredictRequest.
    raw_predict = channel.unary_unary(
        "/tensorflow.serving.PredictionService/Predict",
        request_serializer=lambda data: data,
        response_deserializer=lambda data: data,
    )
    with pytest.raises(grpc.RpcError) as info:
        raw_predict(b"\xff\xff\xff\xff\x0f\x01garbage", timeout=30)
    assert info.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)
    assert prediction_stub.Predict(text_request(["alive"]), timeout=30).outputs["upper"]


def test_very_long_input_is_served(prediction_stub):
    text = "x" * (6 * 1024 * 1024)  # larger than gRPC's 4 MB default message limit
    response = prediction_stub.Predict(text_request([text], output_filter=["length"]), timeout=60)
    assert list(response.outputs["length"].int_val) == [len(text)]
    assert prediction_stub.Predict(text_request(["ok"]), timeout=30).outputs
