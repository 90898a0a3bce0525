"""PredictionService request handling: Predict, GetModelMetadata, Classify/Regress.

Validation order and messages follow the real server (`predict_impl.cc`,
`predict_util.cc`, `tensorflow/cc/saved_model/util.cc`, `get_model_metadata_impl.cc`):
missing model_spec, servable lookup, signature key, input count, input names and
parsing, output_filter, then the dtype check the session does when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import grpc
import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    model_pb2,
    predict_pb2,
)

from nmt_keras.serving.errors import (
    RequestError,
    failed_precondition,
    invalid_argument,
    status_code,
)
from nmt_keras.serving.servable import Servable
from nmt_keras.serving.session_bundle import SessionRunError
from nmt_keras.serving.signatures import SERVING_DEFAULT
from nmt_keras.serving.tensors import dtype_name, from_ndarray, to_ndarray

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
SIGNATURE_DEF_FIELD = "signature_def"


@dataclass(frozen=True)
class RequestLimits:
    """Per-request limits of this server (the real one has none of these).

    Attributes:
        max_batch_size: Largest dim 0 of any input; 0 means no limit.
        max_request_bytes: Largest serialized request; 0 means no limit.
    """

    max_batch_size: int = 0
    max_request_bytes: int = 0


class ServableSource(Protocol):
    """What the handlers need from the model manager."""

    def get_servable(self, model_spec: model_pb2.ModelSpec) -> Servable:
        """Returns the servable a model_spec asks for, or raises `RequestError`."""


def check_request_bytes(num_bytes: int, limits: RequestLimits) -> None:
    """Rejects a request larger than `limits.max_request_bytes`.

    Raises:
        RequestError: INVALID_ARGUMENT when over the limit.
    """
    if limits.max_request_bytes and num_bytes > limits.max_request_bytes:
        raise invalid_argument(
            f"Request size {num_bytes} bytes exceeds the maximum request size of "
            f"{limits.max_request_bytes} bytes (max_request_bytes). Send fewer or "
            f"shorter inputs per request."
        )


def resolve_signature(
    servable: Servable, signature_name: str
) -> tuple[str, meta_graph_pb2.SignatureDef]:
    """Looks up a signature; "" means `serving_default`.

    Raises:
        RequestError: FAILED_PRECONDITION when the key is unknown.
    """
    name = signature_name or SERVING_DEFAULT
    signature = servable.signature_defs.get(name)
    if signature is None:
        raise failed_precondition(f'Serving signature key "{name}" not found.')
    return name, signature


def predict(
    source: ServableSource, request: predict_pb2.PredictRequest, limits: RequestLimits
) -> predict_pb2.PredictResponse:
    """Handles a PredictRequest end to end.

    Args:
        source: Finds the servable (the model manager).
        request: The request.
        limits: This server's request limits.

    Returns:
        The response, with `model_spec` naming the version that answered.

    Raises:
        RequestError: With the real server's code and message.
    """
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    check_request_bytes(request.ByteSize(), limits)
    servable = source.get_servable(request.model_spec)
    return run_predict(servable, request, limits)


def run_predict(
    servable: Servable, request: predict_pb2.PredictRequest, limits: RequestLimits
) -> predict_pb2.PredictResponse:
    """Runs a PredictRequest on one servable (also used to replay warmup records).

    Args:
        servable: The loaded version.
        request: The request; only `model_spec.name` and `signature_name` are read
            from its model_spec.
        limits: This server's request limits.

    Returns:
        The response.

    Raises:
        RequestError: With the real server's code and message.
    """
    signature_name, signature = resolve_signature(servable, request.model_spec.signature_name)
    response = predict_pb2.PredictResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.signature_name = signature_name
    response.model_spec.version.value = servable.version

    if signature.method_name not in (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD):
        raise RequestError(
            grpc.StatusCode.INTERNAL,
            "Expected prediction signature method_name to be one of "
            f"{{{PREDICT_METHOD}, {CLASSIFY_METHOD}, {REGRESS_METHOD}}}. "
            f"Was: {signature.method_name}",
        )
    _verify_inputs_size(signature, request)
    arrays = _input_values(signature, request)
    aliases = _output_aliases(signature, request)
    aliases_in_order = sorted(signature.inputs)
    for index, alias in enumerate(aliases_in_order):
        expected = signature.inputs[alias].dtype
        given = request.inputs[alias].dtype
        if given != expected:
            raise invalid_argument(
                f"Expects arg[{index}] to be {dtype_name(expected)} but "
                f"{dtype_name(given)} is provided"
            )
    _check_shapes(signature, arrays)
    _check_batch_size(arrays, limits)
    try:
        outputs = servable.run(signature_name, arrays)
    except SessionRunError as error:
        raise RequestError(status_code(error.code), error.message) from error
    for alias in aliases:
        value = outputs[alias]
        response.outputs[alias].CopyFrom(from_ndarray(value, signature.outputs[alias].dtype))
    return response


def _verify_inputs_size(
    signature: meta_graph_pb2.SignatureDef, request: predict_pb2.PredictRequest
) -> None:
    sent = set(request.inputs)
    expected = set(signature.inputs)
    if len(sent) > len(expected) or (len(sent) < len(expected) and not signature.defaults):
        raise invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
            f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}."
        )


def _input_values(
    signature: meta_graph_pb2.SignatureDef, request: predict_pb2.PredictRequest
) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    seen: set[str] = set()
    for alias in sorted(signature.inputs):
        feed_name = signature.inputs[alias].name
        if alias in request.inputs:
            proto = request.inputs[alias]
            seen.add(alias)
        elif alias in signature.defaults:
            proto = signature.defaults[alias]
        else:
            raise invalid_argument(
                f"Signature input alias: {alias}(feed name: {feed_name}) not found in "
                "request and no default value provided. Inputs expected to be in the "
                f"request {{{','.join(sorted(request.inputs))}}}, or default input alias "
                f"set: {','.join(sorted(signature.defaults))}"
            )
        try:
            arrays[alias] = to_ndarray(proto)
        except ValueError as error:
            raise invalid_argument(f"tensor parsing error: {alias}") from error
    if request.inputs and len(seen) != len(request.inputs):
        raise invalid_argument(
            f"Inputs contains invalid name. Used request inputs: {','.join(sorted(seen))}, "
            f"request input: {','.join(sorted(request.inputs))}"
        )
    return arrays


def _output_aliases(
    signature: meta_graph_pb2.SignatureDef, request: predict_pb2.PredictRequest
) -> list[str]:
    seen: set[str] = set()
    aliases: list[str] = []
    for alias in request.output_filter:
        if alias not in signature.outputs:
            raise invalid_argument(
                f"output tensor alias not found in signature: {alias} Outputs expected to "
                f"be in the set {{{','.join(sorted(signature.outputs))}}}."
            )
        if alias in seen:
            raise invalid_argument(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
        aliases.append(alias)
    return aliases or sorted(signature.outputs)


def _check_shapes(signature: meta_graph_pb2.SignatureDef, arrays: dict[str, np.ndarray]) -> None:
    """Rejects inputs whose shape contradicts the signature's.

    A loaded signature would otherwise run on them; the real server leaves this to the
    model's ops, which fail later with a less helpful message (or not at all).
    """
    for alias, array in sorted(arrays.items()):
        shape = signature.inputs[alias].tensor_shape
        if shape.unknown_rank:
            continue
        expected = [d.size for d in shape.dim]
        compatible = len(expected) == array.ndim and all(
            e < 0 or e == a for e, a in zip(expected, array.shape, strict=True)
        )
        if not compatible:
            raise invalid_argument(
                f"Input {alias} has shape {list(array.shape)}, which is not compatible with "
                f"the signature's shape {expected} (-1 = any size)."
            )


def _check_batch_size(arrays: dict[str, np.ndarray], limits: RequestLimits) -> None:
    if not limits.max_batch_size:
        return
    for alias, array in sorted(arrays.items()):
        if array.ndim and array.shape[0] > limits.max_batch_size:
            raise invalid_argument(
                f"Batch size {array.shape[0]} of input '{alias}' exceeds the maximum batch "
                f"size of {limits.max_batch_size} (max_batch_size). Split the request into "
                "smaller batches."
            )


def get_model_metadata(
    source: ServableSource, request: get_model_metadata_pb2.GetModelMetadataRequest
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """Handles GetModelMetadata: the SignatureDefMap of the version asked for.

    Raises:
        RequestError: With the real server's code and message.
    """
    if not request.HasField("model_spec"):
        raise invalid_argument("Missing ModelSpec")
    if not request.metadata_field:
        raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != SIGNATURE_DEF_FIELD:
            # Verbatim: the real server passes a printf pattern to a StrCat-style helper.
            raise invalid_argument(f"Metadata field %s is not supported{field}")
    servable = source.get_servable(request.model_spec)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in servable.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(signature)
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
    return response


def check_signature_method(
    source: ServableSource, model_spec: model_pb2.ModelSpec, method: str, has_spec: bool
) -> None:
    """Classify/Regress: this server runs only predict signatures, like the real one would.

    A classify or regress signature (method_name ...) is rare in exported NMT models; the
    request fails with the real server's message for a signature of the wrong method, and
    with UNIMPLEMENTED for a signature that has the right one.

    Args:
        source: Finds the servable.
        model_spec: The request's model_spec.
        method: CLASSIFY_METHOD or REGRESS_METHOD.
        has_spec: Whether the request had a model_spec at all.

    Raises:
        RequestError: Always.
    """
    if not has_spec:
        raise invalid_argument("Missing ModelSpec")
    servable = source.get_servable(model_spec)
    name = model_spec.signature_name or SERVING_DEFAULT
    signature = servable.signature_defs.get(name)
    if signature is None:
        raise invalid_argument(f"No signature was found with the name: {name}")
    kind = "classification" if method == CLASSIFY_METHOD else "regression"
    if signature.method_name != method:
        raise invalid_argument(
            f"Expected {kind} signature method_name to be {method}. Was: {signature.method_name}"
        )
    raise RequestError(
        grpc.StatusCode.UNIMPLEMENTED, f"This server does not run {kind} signatures."
    )
