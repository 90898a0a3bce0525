"""The REST front end, with the real server's paths, JSON forms and error envelope.

    POST /v1/models/M[/versions/N | /labels/L]:predict   {"instances": ...} or {"inputs": ...}
    GET  /v1/models/M[/versions/N | /labels/L]           model status
    GET  /v1/models/M[/versions/N | /labels/L]/metadata  signature defs

JSON <-> tensor rules follow `json_tensor.cc`: row format ("instances" -> "predictions")
and columnar format ("inputs" -> "outputs"), `{"b64": ...}` for binary strings (outputs
whose name ends in `_bytes`, and here also any string output that is not valid UTF-8).
Errors are `{"error": "..."}` with the real server's HTTP code for the gRPC code.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2, predict_pb2

from nmt_keras.serving.errors import RequestError, invalid_argument
from nmt_keras.serving.model_manager import ModelManager
from nmt_keras.serving.predict import (
    CLASSIFY_METHOD,
    REGRESS_METHOD,
    SIGNATURE_DEF_FIELD,
    RequestLimits,
    check_request_bytes,
    check_signature_method,
    get_model_metadata,
    predict,
)
from nmt_keras.serving.signatures import SERVING_DEFAULT
from nmt_keras.serving.tensors import dtype_name, from_ndarray, to_ndarray

logger = logging.getLogger(__name__)

_PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE,
)

# tensorflow_serving/model_servers/http_server.cc: ToHTTPStatusCode.
_HTTP_CODES = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

_INT_TYPES = {
    types_pb2.DT_INT8,
    types_pb2.DT_INT16,
    types_pb2.DT_INT32,
    types_pb2.DT_INT64,
    types_pb2.DT_UINT8,
    types_pb2.DT_UINT16,
    types_pb2.DT_UINT32,
    types_pb2.DT_UINT64,
}
_FLOAT_TYPES = {types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_HALF, types_pb2.DT_BFLOAT16}
_NUMPY_TYPES = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_HALF: np.float16,
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_UINT16: np.uint16,
    types_pb2.DT_UINT32: np.uint32,
    types_pb2.DT_UINT64: np.uint64,
    types_pb2.DT_BOOL: np.bool_,
}


class RestApi:
    """Request handling of the REST API, independent of the HTTP server.

    Args:
        manager: Holds the loaded versions.
        limits: Request limits.
    """

    def __init__(self, manager: ModelManager, limits: RequestLimits) -> None:
        self._manager = manager
        self._limits = limits

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Answers one request.

        Args:
            method: "GET" or "POST".
            path: The request path (query string removed).
            body: The request body.

        Returns:
            The HTTP status code and the JSON object to send.
        """
        try:
            return 200, self._dispatch(method, path, body)
        except RequestError as error:
            return _HTTP_CODES.get(error.code, 500), {"error": error.message}
        except Exception as error:  # noqa: BLE001 - never let a request kill the server.
            logger.exception("REST request failed")
            return 500, {"error": f"{type(error).__name__}: {error}"}

    def _dispatch(self, method: str, path: str, body: bytes) -> dict[str, Any]:
        malformed = invalid_argument(f"Malformed request: {method} {path}")
        if method == "POST":
            match = _PREDICT_PATH.fullmatch(path)
            if not match:
                raise malformed
            name, version, label, verb = match.groups()
            spec = _model_spec(name, version, label)
            check_request_bytes(len(body), self._limits)
            verb = verb.lower()
            if verb == "predict":
                return self._predict(spec, body)
            method_name = CLASSIFY_METHOD if verb == "classify" else REGRESS_METHOD
            spec.signature_name = _signature_name(_json_object(body))
            check_signature_method(self._manager, spec, method_name, True)
            raise malformed  # not reached: check_signature_method always raises
        if method == "GET":
            match = _STATUS_PATH.fullmatch(path)
            if not match:
                raise malformed
            name, version, label, subresource = match.groups()
            if not name:
                raise invalid_argument("Missing model name in request.")
            spec = _model_spec(name, version, label)
            if subresource:
                return self._metadata(spec)
            response = self._manager.model_status(spec)
            return json_format.MessageToDict(response, always_print_fields_with_no_presence=True)
        raise malformed

    def _metadata(self, spec: model_pb2.ModelSpec) -> dict[str, Any]:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=spec, metadata_field=[SIGNATURE_DEF_FIELD]
        )
        response = get_model_metadata(self._manager, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)
        options = {
            "preserving_proto_field_name": True,
            "always_print_fields_with_no_presence": True,
        }
        return {
            "model_spec": json_format.MessageToDict(response.model_spec, **options),
            "metadata": {SIGNATURE_DEF_FIELD: json_format.MessageToDict(signature_map, **options)},
        }

    def _predict(self, spec: model_pb2.ModelSpec, body: bytes) -> dict[str, Any]:
        document = _json_object(body)
        signature_name = _signature_name(document)
        spec.signature_name = signature_name
        servable = self._manager.get_servable(spec)
        key = signature_name or SERVING_DEFAULT
        signature = servable.signature_defs.get(key)
        if signature is None:
            raise invalid_argument(f'Serving signature name: "{key}" not found in signature def')
        input_types = {alias: info.dtype for alias, info in signature.inputs.items()}
        if not input_types:
            raise invalid_argument(
                f"Failed to get input map for signature: {signature_name or 'DEFAULT'}"
            )
        request = predict_pb2.PredictRequest(model_spec=spec)
        has_instances = "instances" in document
        if has_instances and "inputs" in document:
            raise invalid_argument(
                f"JSON Value: {_short(document)} Not formatted correctly expecting only one of "
                "'inputs' or 'instances' keys to exist "
            )
        if has_instances:
            arrays = _instances_to_arrays(document["instances"], input_types, document)
        elif "inputs" in document:
            arrays = _inputs_to_arrays(document["inputs"], input_types)
        else:
            raise invalid_argument("Missing 'inputs' or 'instances' key")
        for alias, array in arrays.items():
            request.inputs[alias].CopyFrom(_array_to_proto(array, input_types[alias]))
        response = predict(self._manager, request, self._limits)
        outputs = {alias: to_ndarray(proto) for alias, proto in response.outputs.items()}
        if not outputs:
            raise invalid_argument("Cannot convert empty tensor map to JSON")
        if has_instances:
            return {"predictions": _rows(outputs)}
        if len(outputs) == 1:
            ((alias, array),) = outputs.items()
            return {"outputs": _to_json(array, alias)}
        return {"outputs": {alias: _to_json(array, alias) for alias, array in outputs.items()}}


def _model_spec(name: str, version: str | None, label: str | None) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=unquote(name or ""))
    if version is not None:
        spec.version.value = int(version)
    if label is not None:
        spec.version_label = unquote(label)
    return spec


def _json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise invalid_argument(f"JSON Parse error: {error}") from error
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {_short(document)} Is not object")
    return document


def _signature_name(document: dict[str, Any]) -> str:
    signature_name = document.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise invalid_argument(
            f"JSON Value: {_short(document)} not formatted correctly. 'signature_name' key "
            "must be a string value."
        )
    return signature_name


def _short(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "..."


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _scalar(value: Any, dtype: int) -> Any:
    """Checks one JSON leaf against a dtype (json_tensor.cc: AddValueToTensor)."""
    if dtype == types_pb2.DT_STRING:
        if isinstance(value, str):
            return value.encode("utf-8")
        if _is_b64(value):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except ValueError as error:
                raise invalid_argument("Unable to base64 decode") from error
    elif dtype == types_pb2.DT_BOOL:
        if isinstance(value, bool):
            return value
    elif dtype in _INT_TYPES:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif dtype in _FLOAT_TYPES:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    else:
        raise RequestError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"Conversion of JSON Value: {_short(value)} to type: {dtype_name(dtype)}",
        )
    raise invalid_argument(
        f"JSON Value: {_short(value)} Type: {_json_type(value)} is not of expected type: "
        f"{dtype_name(dtype)}"
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _dense(value: Any, dtype: int) -> np.ndarray:
    """A nested JSON list -> array, requiring a dense (rectangular) shape."""
    shape: list[int] = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    flat: list[Any] = []

    def walk(item: Any, level: int) -> None:
        if not isinstance(item, list):
            if level != len(shape):
                raise invalid_argument(
                    f"JSON Value: {_short(item)} found at incorrect level: {level + 1} in the "
                    f"JSON DOM. Expected at level: {len(shape)}"
                )
            flat.append(_scalar(item, dtype))
            return
        if level >= len(shape):
            raise invalid_argument(
                f"Encountered list at unexpected level: {level} expected < {len(shape)}"
            )
        if len(item) != shape[level]:
            raise invalid_argument(
                f"Encountered list at unexpected size: {len(item)} at level: {level} "
                f"expected size: {shape[level]}"
            )
        for element in item:
            walk(element, level + 1)

    walk(value, 0)
    numpy_type = object if dtype == types_pb2.DT_STRING else _NUMPY_TYPES[dtype]
    array = np.empty(len(flat), dtype=numpy_type)
    array[:] = flat
    return array.reshape(shape)


def _instances_to_arrays(
    instances: Any, input_types: dict[str, int], document: dict[str, Any]
) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise invalid_argument(
            f"JSON Value: {_short(document)} Excepting 'instances' to be an list/array"
        )
    if not instances:
        raise invalid_argument(f"JSON Value: {_short(document)} No values in 'instances' array")
    names = sorted(input_types)
    objects = isinstance(instances[0], dict) and not _is_b64(instances[0])
    if not objects and len(names) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    columns: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for index, item in enumerate(instances):
        is_object = isinstance(item, dict) and not _is_b64(item)
        if objects and not is_object:
            raise invalid_argument(f"Expecting object but got list at item {index} of input list")
        if not objects and is_object:
            raise invalid_argument(
                f"Expecting value/list but got object at item {index} of input list"
            )
        values = item if objects else {names[0]: item}
        for key, value in values.items():
            if key not in input_types:
                raise invalid_argument(
                    f"Failed to process element: {index} key: {key} of 'instances' list. "
                    f"Error: INVALID_ARGUMENT: JSON object: does not have named input: {key}"
                )
            try:
                array = _dense(value, input_types[key])
            except RequestError as error:
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. Error: "
                    f"{error.code.name}: {error.message}"
                ) from error
            previous = columns[key]
            if previous and previous[0].shape != array.shape:
                raise invalid_argument(
                    f"Expecting shape {list(previous[0].shape)} but got: {list(array.shape)}"
                )
            previous.append(array)
        if objects and set(values) != set(names):
            raise invalid_argument(
                f"Failed to process element: {index} of 'instances' list. JSON object: "
                f"{_short(item)} keys must be equal to: {','.join(names)}"
            )
    return {name: np.stack(arrays) for name, arrays in columns.items()}


def _inputs_to_arrays(inputs: Any, input_types: dict[str, int]) -> dict[str, np.ndarray]:
    names = sorted(input_types)
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(names) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        return {names[0]: _dense(inputs, input_types[names[0]])}
    arrays = {}
    for name in names:
        if name not in inputs:
            raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = _dense(inputs[name], input_types[name])
    return arrays


def _array_to_proto(array: np.ndarray, dtype: int) -> tensor_pb2.TensorProto:
    return from_ndarray(array, dtype)


def _leaf(value: Any, dtype: np.dtype, as_b64: bool) -> Any:
    if isinstance(value, bytes):
        if not as_b64:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return {"b64": base64.b64encode(value).decode("ascii")}
    if dtype == np.float32 or dtype == np.float16:
        number = float(value)
        # Shortest text that round-trips in the tensor's own precision (json_tensor.cc).
        return float(str(dtype.type(value))) if math.isfinite(number) else number
    if isinstance(value, np.generic):
        return value.item()
    return value


def _to_json(array: np.ndarray, name: str) -> Any:
    as_b64 = name.endswith("_bytes")
    if array.ndim == 0:
        return _leaf(array.item() if array.dtype != object else array[()], array.dtype, as_b64)

    def convert(sub: np.ndarray) -> Any:
        if sub.ndim == 1:
            return [_leaf(v, array.dtype, as_b64) for v in sub]
        return [convert(s) for s in sub]

    return convert(array)


def _rows(outputs: dict[str, np.ndarray]) -> list[Any]:
    batch = None
    for name, array in sorted(outputs.items()):
        if array.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                f"expecting: {batch}"
            )
        batch = array.shape[0]
    columns = {name: _to_json(array, name) for name, array in outputs.items()}
    if len(columns) == 1:
        return next(iter(columns.values()))
    return [{name: columns[name][i] for name in sorted(columns)} for i in range(batch or 0)]


class _Handler(BaseHTTPRequestHandler):
    """Thin HTTP adapter around `RestApi`."""

    server_version = "nmt-keras-serving"
    protocol_version = "HTTP/1.1"
    api: RestApi  # set on the subclass made by build_rest_server
    limits: RequestLimits

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name.
        logger.debug("%s - %s", self.address_string(), format % args)

    def _respond(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        limit = self.limits.max_request_bytes
        if length < 0:
            status, payload = 400, {"error": "Invalid Content-Length header"}
            self.close_connection = True
        elif limit and length > limit:
            # Refuse before reading the body; the connection is closed afterwards.
            try:
                check_request_bytes(length, self.limits)
            except RequestError as error:
                status, payload = 400, {"error": error.message}
            self.close_connection = True
        else:
            body = self.rfile.read(length) if length else b""
            if not path.lower().startswith("/v1/"):
                status, payload = 404, {"error": f"Not found: {method} {path}"}
            else:
                status, payload = self.api.handle(method, path, body)
        data = json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - stdlib hook name.
        """GET: status and metadata."""
        self._respond("GET")

    def do_POST(self) -> None:  # noqa: N802
        """POST: predict (classify/regress fail)."""
        self._respond("POST")


class RestServer(ThreadingHTTPServer):
    """A threading HTTP server that joins its request threads on close (drains)."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True


def build_rest_server(
    manager: ModelManager, limits: RequestLimits, host: str, port: int
) -> tuple[RestServer, threading.Thread]:
    """Creates and starts the REST server in a background thread.

    Args:
        manager: Holds the loaded versions.
        limits: Request limits.
        host: Interface to bind.
        port: TCP port; 0 picks a free one.

    Returns:
        The server (its `server_address[1]` is the bound port) and its thread.

    Raises:
        OSError: The address cannot be bound.
    """
    handler = type("RestHandler", (_Handler,), {"api": RestApi(manager, limits), "limits": limits})
    server_class = RestServer
    if ":" in host:
        server_class = type("RestServer6", (RestServer,), {"address_family": socket.AF_INET6})
    server = server_class((host, port), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="rest", daemon=True
    )
    thread.start()
    return server, thread
