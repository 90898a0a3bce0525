"""The gRPC front end: tensorflow-serving-api's PredictionService and ModelService.

Every handler catches everything: a bad request gets a status code and message (cut at
1024 characters like the real server), never a dead or stalled server. Messages are
capped by the request-size check of `RequestLimits`, not by gRPC's 4 MB default (the
real server also lifts that limit).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures
from typing import TypeVar

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from nmt_keras.serving.errors import RequestError, invalid_argument, truncate_message
from nmt_keras.serving.model_manager import ModelManager
from nmt_keras.serving.predict import (
    CLASSIFY_METHOD,
    REGRESS_METHOD,
    RequestLimits,
    check_signature_method,
    get_model_metadata,
    predict,
)

logger = logging.getLogger(__name__)

Response = TypeVar("Response")

# gRPC's own cap on a message; our RequestLimits check gives the friendlier error.
_MAX_MESSAGE_BYTES = 2**31 - 1


def _handle(
    context: grpc.ServicerContext, empty: Response, function: Callable[[], Response]
) -> Response:
    """Runs a handler, turning any exception into a gRPC status on `context`."""
    try:
        return function()
    except RequestError as error:
        context.set_code(error.code)
        context.set_details(truncate_message(error.message))
    except Exception as error:  # noqa: BLE001 - a request must never take the server down.
        logger.exception("request failed")
        context.set_code(grpc.StatusCode.INTERNAL)
        context.set_details(truncate_message(f"{type(error).__name__}: {error}"))
    return empty


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """`tensorflow.serving.PredictionService` over a `ModelManager`.

    Args:
        manager: Holds the loaded versions.
        limits: Request limits.
    """

    def __init__(self, manager: ModelManager, limits: RequestLimits) -> None:
        self._manager = manager
        self._limits = limits

    def Predict(self, request, context):  # noqa: N802 - gRPC method name.
        """Runs a signature."""
        return _handle(
            context,
            predict_pb2.PredictResponse(),
            lambda: predict(self._manager, request, self._limits),
        )

    def GetModelMetadata(self, request, context):  # noqa: N802
        """Returns the SignatureDefMap of a version."""
        return _handle(
            context,
            get_model_metadata_pb2.GetModelMetadataResponse(),
            lambda: get_model_metadata(self._manager, request),
        )

    def Classify(self, request, context):  # noqa: N802
        """Fails like the real server does on a predict signature."""
        return _handle(
            context,
            classification_pb2.ClassificationResponse(),
            lambda: check_signature_method(
                self._manager,
                request.model_spec,
                CLASSIFY_METHOD,
                request.HasField("model_spec"),
            ),
        )

    def Regress(self, request, context):  # noqa: N802
        """Fails like the real server does on a predict signature."""
        return _handle(
            context,
            regression_pb2.RegressionResponse(),
            lambda: check_signature_method(
                self._manager, request.model_spec, REGRESS_METHOD, request.HasField("model_spec")
            ),
        )

    def MultiInference(self, request, context):  # noqa: N802
        """Checks each task's signature like Classify/Regress; always fails here."""

        def run():
            if not request.tasks:
                raise invalid_argument("Tasks is empty")
            for task in request.tasks:
                check_signature_method(
                    self._manager, task.model_spec, task.method_name, task.HasField("model_spec")
                )

        return _handle(context, inference_pb2.MultiInferenceResponse(), run)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """`tensorflow.serving.ModelService` over a `ModelManager`.

    Args:
        manager: Holds the loaded versions.
    """

    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager

    def GetModelStatus(self, request, context):  # noqa: N802
        """Per-version states of a model."""

        def run():
            if not request.HasField("model_spec"):
                raise invalid_argument("Missing ModelSpec")
            return self._manager.model_status(request.model_spec)

        return _handle(context, get_model_status_pb2.GetModelStatusResponse(), run)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        """Applies a new `model_config_list`."""

        def run():
            if request.config.WhichOneof("config") != "model_config_list":
                raise invalid_argument(
                    "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                    "Only ModelConfigList is currently supported"
                )
            self._manager.reload_config(request.config.model_config_list)
            return model_management_pb2.ReloadConfigResponse()

        return _handle(context, model_management_pb2.ReloadConfigResponse(), run)


def build_grpc_server(
    manager: ModelManager, limits: RequestLimits, host: str, port: int, max_threads: int
) -> tuple[grpc.Server, int]:
    """Creates (not starts) the gRPC server, bound to `host:port`.

    Args:
        manager: Holds the loaded versions.
        limits: Request limits.
        host: Interface to bind (e.g. "127.0.0.1").
        port: TCP port; 0 picks a free one.
        max_threads: Worker threads, i.e. requests served in parallel.

    Returns:
        The server and the port it is bound to.

    Raises:
        OSError: The address cannot be bound.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(manager, limits), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(manager), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as error:
        raise OSError(f"Failed to bind the gRPC port {address}: {error}") from error
    if bound == 0:
        raise OSError(f"Failed to bind the gRPC port {address} (in use?)")
    return server, bound
