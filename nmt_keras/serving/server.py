"""The local model server: options, start-up, and run until SIGTERM/SIGINT.

`ServerOptions` mirrors the `tensorflow_model_server` flags this project relies on;
`start_server` loads the models and starts gRPC (and REST when `rest_api_port` is set)
in the background, for tests and embedding; `serve` is the CLI's blocking entry point:
it prints the real server's "Running gRPC ModelServer at ..." lines, waits for
SIGTERM or SIGINT, then stops accepting requests and drains the ones in flight.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from dataclasses import dataclass

import grpc

from nmt_keras.serving.batching import BatchingParameters, read_batching_parameters
from nmt_keras.serving.errors import ServerError
from nmt_keras.serving.grpc_server import build_grpc_server
from nmt_keras.serving.model_config import read_model_config_file, single_model_config
from nmt_keras.serving.model_manager import ModelManager
from nmt_keras.serving.predict import RequestLimits
from nmt_keras.serving.rest import RestServer, build_rest_server

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "default"
# Port value meaning "bind any free port" (tests); for gRPC, 0 means the same.
AUTO_PORT = -1


@dataclass(frozen=True)
class ServerOptions:
    """Server flags, named after `tensorflow_model_server`'s.

    Attributes:
        port: gRPC port; 0 or AUTO_PORT (-1) binds a free one (see `RunningServer`).
        rest_api_port: REST port; 0 turns REST off, as on the real server; AUTO_PORT
            (-1) binds a free one.
        model_name: Name of the single model (`--model_name`); "default" when unset.
        model_base_path: Directory of integer version directories (`--model_base_path`).
        model_config_file: Text-proto `model_config_list` file; excludes the two above.
        file_system_poll_wait_seconds: How often to look for new versions; 0 disables.
        max_batch_size: Largest dim 0 of a request's inputs; 0 means no limit.
        max_request_bytes: Largest request (serialized proto / HTTP body); 0 means no limit.
        host: Interface to bind; 127.0.0.1 unless told otherwise ("0.0.0.0" for all).
        grpc_max_threads: Requests served in parallel on the gRPC port.
        enable_batching: Merge concurrent requests to a signature into one run
            (`--enable_batching`), with TF Serving's default parameters unless
            `batching_parameters_file` is given.
        batching_parameters_file: Text-proto `BatchingParameters`
            (`--batching_parameters_file`); needs `enable_batching`.
    """

    port: int = 8500
    rest_api_port: int = 0
    model_name: str | None = None
    model_base_path: str | None = None
    model_config_file: str | None = None
    file_system_poll_wait_seconds: float = 1
    max_batch_size: int = 0
    max_request_bytes: int = 0
    host: str = "127.0.0.1"
    grpc_max_threads: int = 16
    enable_batching: bool = False
    batching_parameters_file: str | None = None


class RunningServer:
    """A started server; `stop()` it (or use it as a context manager).

    Attributes:
        grpc_port: The bound gRPC port.
        rest_port: The bound REST port, or None when REST is off.
        manager: The model manager (versions, status).
    """

    def __init__(
        self,
        manager: ModelManager,
        grpc_server: grpc.Server,
        grpc_port: int,
        rest_server: RestServer | None,
        rest_thread: threading.Thread | None,
    ) -> None:
        self.manager = manager
        self.grpc_port = grpc_port
        self.rest_port = rest_server.server_address[1] if rest_server is not None else None
        self._grpc_server = grpc_server
        self._rest_server = rest_server
        self._rest_thread = rest_thread
        self._stopped = False
        self._stop_lock = threading.Lock()

    def stop(self, grace: float | None = 5.0) -> None:
        """Stops accepting requests, lets in-flight ones finish (up to `grace` s), exits.

        Args:
            grace: Seconds in-flight gRPC requests get to finish; None waits for them.
        """
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self.manager.stop_polling()
        done = self._grpc_server.stop(grace)
        if self._rest_server is not None:
            self._rest_server.shutdown()  # stop accepting; finish the serve loop
            self._rest_server.server_close()  # joins request threads (block_on_close)
            self._rest_thread.join()
        done.wait()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _config_list(options: ServerOptions):
    if options.model_config_file:
        if options.model_base_path or options.model_name:
            raise ServerError(
                "Expected either --model_config_file or --model_name/--model_base_path, "
                f"not both. Received: model_config_file={options.model_config_file}, "
                f"model_name={options.model_name}, model_base_path={options.model_base_path}"
            )
        return read_model_config_file(options.model_config_file)
    if not options.model_base_path:
        raise ServerError(
            "Expected --model_base_path (with --model_name) or --model_config_file. "
            "Received neither."
        )
    return single_model_config(options.model_name or DEFAULT_MODEL_NAME, options.model_base_path)


def _batching(options: ServerOptions) -> BatchingParameters | None:
    if options.batching_parameters_file and not options.enable_batching:
        raise ServerError(
            "Expected --enable_batching with --batching_parameters_file. Received: "
            f"batching_parameters_file={options.batching_parameters_file}"
        )
    if not options.enable_batching:
        return None
    if options.batching_parameters_file:
        return read_batching_parameters(options.batching_parameters_file)
    return BatchingParameters()


def start_server(options: ServerOptions) -> RunningServer:
    """Loads the models and starts serving in background threads.

    Args:
        options: The server flags.

    Returns:
        The running server, with the ports actually bound.

    Raises:
        ServerError: Bad options or batching parameters, a model that cannot load
            (missing base path, no versions, an op or variable the session loader cannot
            run, a failing warmup record), or a port that cannot be bound.
    """
    for field_name in ("port", "rest_api_port"):
        value = getattr(options, field_name)
        if not (value == AUTO_PORT or 0 <= value <= 65535):
            raise ServerError(
                f"Expected a port in [0, 65535] or {AUTO_PORT} (any free port). "
                f"Received: {field_name}={value}"
            )
    if options.grpc_max_threads < 1:
        raise ServerError(
            f"Expected grpc_max_threads >= 1. Received: grpc_max_threads={options.grpc_max_threads}"
        )
    if options.max_batch_size < 0 or options.max_request_bytes < 0:
        raise ServerError(
            "Expected max_batch_size and max_request_bytes >= 0 (0 = no limit). Received: "
            f"max_batch_size={options.max_batch_size}, "
            f"max_request_bytes={options.max_request_bytes}"
        )
    limits = RequestLimits(options.max_batch_size, options.max_request_bytes)
    manager = ModelManager(_config_list(options), batching=_batching(options))
    manager.load()
    try:
        grpc_server, grpc_port = build_grpc_server(
            manager, limits, options.host, max(options.port, 0), options.grpc_max_threads
        )
    except OSError as error:
        raise ServerError(str(error)) from error
    rest_server = rest_thread = None
    if options.rest_api_port:
        try:
            rest_server, rest_thread = build_rest_server(
                manager, limits, options.host, max(options.rest_api_port, 0)
            )
        except OSError as error:
            raise ServerError(
                f"Failed to bind the REST port {options.host}:{options.rest_api_port}: "
                f"{error.strerror or error}"
            ) from error
    grpc_server.start()
    manager.start_polling(options.file_system_poll_wait_seconds)
    return RunningServer(manager, grpc_server, grpc_port, rest_server, rest_thread)


def serve(options: ServerOptions, grace: float | None = 30.0) -> None:
    """Runs the server until SIGTERM or SIGINT, then drains in-flight requests.

    Must be called from the main thread (it installs signal handlers).

    Args:
        options: The server flags.
        grace: Seconds in-flight requests get to finish after the signal.

    Raises:
        ServerError: The server cannot start (see `start_server`).
    """
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server = start_server(options)
        print(f"Running gRPC ModelServer at {options.host}:{server.grpc_port} ...", flush=True)
        if server.rest_port is not None:
            print(f"Exporting HTTP/REST API at:{options.host}:{server.rest_port} ...", flush=True)
        while not stop.wait(0.5):
            pass
        name = signal.Signals(received[0]).name if received else "signal"
        print(f"Received {name}; draining in-flight requests ...", file=sys.stderr, flush=True)
        server.stop(grace)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
