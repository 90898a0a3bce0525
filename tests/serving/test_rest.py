"""The REST API: predict (row and columnar), status, metadata and errors."""

import base64
import http.client
import json

import grpc
import pytest
from tensorflow_serving.apis import prediction_service_pb2_grpc

from nmt_keras.serving import ServerOptions, start_server
from tests.serving.conftest import text_request
from tests.serving.fake_models import install_version


def call(port, method, path, body=None, raw=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.getheader("Content-Type") == "application/json"
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def port(echo_server):
    return echo_server.rest_port


def test_predict_row_format(port):
    status, body = call(port, "POST", "/v1/models/echo:predict", {"instances": ["ab", "c"]})
    assert status == 200
    assert body == {
        "predictions": [
            {"length": 2, "score": 1.0, "text_bytes": {"b64": "YWI="}, "upper": "AB"},
            {"length": 1, "score": 0.5, "text_bytes": {"b64": "Yw=="}, "upper": "C"},
        ]
    }


def test_predict_row_format_named_inputs_single_output(port):
    body = {"signature_name": "add", "instances": [{"x": 1.5, "y": 2}, {"x": 0.1, "y": 0.2}]}
    status, answer = call(port, "POST", "/v1/models/echo/versions/1:predict", body)
    assert status == 200
    # One output: a plain list; float32 values written in their shortest form.
    assert answer == {"predictions": [3.5, 0.3]}


def test_predict_columnar_format(port):
    status, body = call(port, "POST", "/v1/models/echo:predict", {"inputs": {"text": ["héllo"]}})
    assert status == 200
    assert body["outputs"]["upper"] == ["HéLLO"]  # tf.strings.upper is ASCII-only
    assert base64.b64decode(body["outputs"]["text_bytes"][0]["b64"]) == "héllo".encode()
    status, body = call(
        port,
        "POST",
        "/v1/models/echo:predict",
        {"signature_name": "add", "inputs": {"x": [1.0], "y": [2.0]}},
    )
    assert body == {"outputs": [3.0]}


def test_predict_b64_input(port):
    encoded = base64.b64encode(b"bin").decode()
    status, body = call(port, "POST", "/v1/models/echo:predict", {"inputs": [{"b64": encoded}]})
    assert status == 200
    assert body["outputs"]["upper"] == ["BIN"]


def test_status(port):
    status, body = call(port, "GET", "/v1/models/echo")
    assert status == 200
    assert body == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert call(port, "GET", "/v1/models/echo/versions/1")[1] == body


def test_metadata(port):
    status, body = call(port, "GET", "/v1/models/echo/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "echo", "version": "1", "signature_name": ""}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert signatures["serving_default"]["inputs"]["text"]["dtype"] == "DT_STRING"
    assert signatures["serving_default"]["method_name"] == "tensorflow/serving/predict"
    assert set(signatures["add"]["inputs"]) == {"x", "y"}


@pytest.mark.parametrize(
    ("method", "path", "body", "code", "message"),
    [
        (
            "POST",
            "/v1/models/nmt:predict",
            {"instances": ["a"]},
            404,
            "Servable not found for request: Latest(nmt)",
        ),
        (
            "POST",
            "/v1/models/echo/versions/4:predict",
            {"instances": ["a"]},
            404,
            "Servable not found for request: Specific(echo, 4)",
        ),
        (
            "POST",
            "/v1/models/echo/labels/beta:predict",
            {"instances": ["a"]},
            400,
            "Unrecognized servable version label: beta",
        ),
        (
            "POST",
            "/v1/models/echo:predict",
            {"signature_name": "nope", "instances": ["a"]},
            400,
            'Serving signature name: "nope" not found in signature def',
        ),
        (
            "POST",
            "/v1/models/echo:predict",
            {"text": ["a"]},
            400,
            "Missing 'inputs' or 'instances' key",
        ),
        (
            "POST",
            "/v1/models/echo:predict",
            {"instances": [1]},
            400,
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON "
            "Value: 1 Type: Number is not of expected type: string",
        ),
        (
            "POST",
            "/v1/models/echo:predict",
            {"signature_name": "add", "instances": [1.0]},
            400,
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map",
        ),
        ("GET", "/v1/models/echo/versions/9", None, 404, "Could not find version 9 of model echo"),
        ("GET", "/v1/models/nmt", None, 404, "Could not find any versions of model nmt"),
        ("GET", "/v1/models", None, 400, "Missing model name in request."),
        (
            "POST",
            "/v1/models/echo:explain",
            {},
            400,
            "Malformed request: POST /v1/models/echo:explain",
        ),
    ],
)
def test_errors(port, method, path, body, code, message):
    assert call(port, method, path, body) == (code, {"error": message})


def test_invalid_json(port):
    status, body = call(port, "POST", "/v1/models/echo:predict", raw=b"{not json")
    assert status == 400
    assert body["error"].startswith("JSON Parse error")
    body = {"signature_name": 100, "instances": ["a"]}
    status, answer = call(port, "POST", "/v1/models/echo:predict", body)
    assert status == 400
    assert answer["error"].endswith("'signature_name' key must be a string value.")


def test_classify_on_a_predict_signature(port):
    status, body = call(port, "POST", "/v1/models/echo:classify", {"examples": []})
    assert status == 400
    assert "Expected classification signature method_name" in body["error"]


def test_batch_size_and_request_bytes_limits_grpc_and_rest(echo_saved_model, tmp_path):
    base = str(tmp_path / "echo")
    install_version(echo_saved_model, base, 1)
    options = ServerOptions(
        port=0,
        rest_api_port=-1,
        model_name="echo",
        model_base_path=base,
        max_batch_size=2,
        max_request_bytes=4096,
    )
    with start_server(options) as server:
        status, body = call(
            server.rest_port, "POST", "/v1/models/echo:predict", {"instances": ["a"] * 3}
        )
        assert status == 400
        assert "Batch size 3 of input 'text' exceeds the maximum batch size of 2" in body["error"]
        status, body = call(
            server.rest_port, "POST", "/v1/models/echo:predict", {"instances": ["x" * 5000]}
        )
        assert status == 400
        assert "exceeds the maximum request size of 4096 bytes" in body["error"]
        assert call(server.rest_port, "GET", "/v1/models/echo")[0] == 200
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(text_request(["a"] * 3), timeout=30)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "Batch size 3 of input 'text' exceeds" in info.value.details()
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(text_request(["x" * 5000]), timeout=30)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "exceeds the maximum request size of 4096 bytes" in info.value.details()
            assert stub.Predict(text_request(["a", "b"]), timeout=30).outputs
