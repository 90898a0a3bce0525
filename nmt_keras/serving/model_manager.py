"""Model versions: loading, version policies, labels, polling, roll-outs and status.

Mirrors the real server's source -> manager pipeline in one class:

- each model's base path is listed (only integer-named directories count) at start-up,
  on every poll (`file_system_poll_wait_seconds`) and on a config reload;
- the version policy (latest N / all / specific) picks the aspired versions;
- a new version is loaded (and its warmup records replayed) before a version it
  replaces is unloaded, and an old version is unloaded only once some aspired version
  is available, so a roll-out never leaves a gap. Requests hold a reference to the
  `Servable` they were given, so in-flight requests on an unloaded version finish;
- version states (LOADING, AVAILABLE, END with the load error) feed GetModelStatus.

Differences from the real server: a version whose load failed is not retried while it
stays aspired; labels are checked after the config's versions have loaded (as with
`--allow_version_labels_for_unavailable_models` at start-up), and must then point at an
available version.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass, field

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from nmt_keras.serving.batching import BatchingParameters
from nmt_keras.serving.errors import (
    RequestError,
    ServerError,
    failed_precondition,
    invalid_argument,
    not_found,
    one_line,
)
from nmt_keras.serving.model_config import (
    ModelConfig,
    ModelConfigList,
    aspired_versions,
    validate_model_config_list,
)
from nmt_keras.serving.servable import Servable
from nmt_keras.serving.session_bundle import SessionBundle
from nmt_keras.serving.warmup import run_warmup

logger = logging.getLogger(__name__)

State = get_model_status_pb2.ModelVersionStatus.State
_VERSION_DIR = re.compile(r"^\d+$")


@dataclass
class _VersionRecord:
    state: int
    code: grpc.StatusCode = grpc.StatusCode.OK
    message: str = ""


@dataclass(eq=False)
class _Model:
    name: str
    config: ModelConfig | None
    servables: dict[int, Servable] = field(default_factory=dict)
    records: dict[int, _VersionRecord] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)
    labels: dict[str, int] = field(default_factory=dict)


class ModelManager:
    """Loads, serves and retires model versions.

    Args:
        config_list: The models to serve (already validated).
        load_hook: Called on every loaded servable before it serves (warmup by
            default); an exception fails the load.
        batching: Server-side batching for every version, or None.
    """

    def __init__(
        self,
        config_list: ModelConfigList,
        load_hook=run_warmup,
        batching: BatchingParameters | None = None,
    ) -> None:
        self._config_list = ModelConfigList()
        self._config_list.CopyFrom(config_list)
        self._load_hook = load_hook
        self._batching = batching
        self._models: dict[str, _Model] = {}
        self._lock = threading.Lock()  # guards _models contents, held briefly
        self._update_lock = threading.Lock()  # serialises polls and reloads
        self._stop_polling = threading.Event()
        self._poller: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    def load(self) -> None:
        """Loads every model of the config; the start-up path.

        Raises:
            ServerError: A base path is missing or empty, a version fails to load, or
                a label points at a version that is not available.
        """
        with self._update_lock:
            for original in self._config_list.config:
                config = ModelConfig()
                config.CopyFrom(original)
                model = _Model(config.name, config)
                with self._lock:
                    self._models[config.name] = model
                errors = self._sync(model, strict=True)
                if errors:
                    raise ServerError(errors[0])
            try:
                self._apply_labels()
            except RequestError as error:
                raise ServerError(error.message) from error

    def start_polling(self, interval_seconds: float) -> None:
        """Re-lists the base paths every `interval_seconds` (0 disables polling)."""
        if interval_seconds <= 0 or self._poller is not None:
            return

        def loop() -> None:
            while not self._stop_polling.wait(interval_seconds):
                self.poll()

        self._poller = threading.Thread(target=loop, name="model-poller", daemon=True)
        self._poller.start()

    def stop_polling(self) -> None:
        """Stops the polling thread (waits for a poll in progress)."""
        self._stop_polling.set()
        if self._poller is not None:
            self._poller.join()
            self._poller = None

    def poll(self) -> None:
        """Applies what is on disk now to every model; errors are logged, never raised."""
        with self._update_lock:
            with self._lock:
                models = [m for m in self._models.values() if m.config is not None]
            for model in models:
                try:
                    for error in self._sync(model, strict=False):
                        logger.error("%s", error)
                except Exception:  # noqa: BLE001 - the poller must survive anything.
                    logger.exception("polling %s failed", model.name)

    def reload_config(self, config_list: ModelConfigList) -> None:
        """Applies a new model config list (HandleReloadConfigRequest).

        New models are loaded and must become available; removed models are unloaded;
        kept models follow their new policy and base path.

        Raises:
            RequestError: INVALID_ARGUMENT for an invalid config, UNKNOWN when a model
                did not become available, FAILED_PRECONDITION for a bad label.
        """
        problem = validate_model_config_list(config_list)
        if problem:
            raise invalid_argument(problem)
        with self._update_lock:
            new_names = {config.name for config in config_list.config}
            with self._lock:
                for name, model in self._models.items():
                    if name not in new_names and model.config is not None:
                        model.config = None
                        for version in list(model.servables):
                            self._unload(model, version)
                        model.labels = {}
            unavailable: list[str] = []
            for original in config_list.config:
                config = ModelConfig()
                config.CopyFrom(original)  # never share sub-messages with the caller
                with self._lock:
                    model = self._models.get(config.name)
                    is_new = model is None or model.config is None
                    if model is None:
                        model = self._models[config.name] = _Model(config.name, config)
                    model.config = config
                    if is_new:
                        model.failed.clear()
                errors = self._sync(model, strict=is_new)
                if is_new and (errors or not model.servables):
                    reason = errors[0] if errors else "no version loaded"
                    unavailable.append(f"{{Latest({config.name}) due to error: {reason}}}, ")
            self._config_list.CopyFrom(config_list)
            if unavailable:
                raise RequestError(
                    grpc.StatusCode.UNKNOWN,
                    f"{len(unavailable)} model(s) did not become available: "
                    f"{{{''.join(unavailable)}}}",
                )
            self._apply_labels()

    # ------------------------------------------------------------------ queries

    def get_servable(self, model_spec: model_pb2.ModelSpec) -> Servable:
        """Returns the loaded version a model_spec asks for.

        Raises:
            RequestError: INVALID_ARGUMENT (no name, unknown label) or NOT_FOUND, with
                the real server's messages.
        """
        name = model_spec.name
        if not name:
            raise invalid_argument("ModelSpec has no name specified.")
        choice = model_spec.WhichOneof("version_choice")
        with self._lock:
            model = self._models.get(name)
            servables = model.servables if model is not None else {}
            if choice == "version_label":
                label = model_spec.version_label
                version = model.labels.get(label) if model is not None else None
                if version is None:
                    raise invalid_argument(f"Unrecognized servable version label: {label}")
                request = f"Specific({name}, {version})"
            elif choice == "version":
                version = model_spec.version.value
                request = f"Specific({name}, {version})"
            else:
                version = max(servables) if servables else None
                request = f"Latest({name})"
            servable = servables.get(version) if version is not None else None
        if servable is None:
            raise not_found(f"Servable not found for request: {request}")
        return servable

    def model_status(
        self, model_spec: model_pb2.ModelSpec
    ) -> get_model_status_pb2.GetModelStatusResponse:
        """Builds a GetModelStatusResponse (newest version first, like the real server).

        Raises:
            RequestError: NOT_FOUND with the real server's messages.
        """
        name = model_spec.name
        response = get_model_status_pb2.GetModelStatusResponse()
        with self._lock:
            model = self._models.get(name)
            records = dict(model.records) if model is not None else {}
        if model_spec.HasField("version"):
            version = model_spec.version.value
            if version not in records:
                raise not_found(f"Could not find version {version} of model {name}")
            selected = [version]
        else:
            if not records:
                raise not_found(f"Could not find any versions of model {name}")
            selected = sorted(records, reverse=True)
        for version in selected:
            record = records[version]
            status = response.model_version_status.add()
            status.version = version
            status.state = record.state
            status.status.error_code = record.code.value[0]
            status.status.error_message = record.message
        return response

    def model_names(self) -> list[str]:
        """Names of the models in the current config."""
        with self._lock:
            return sorted(n for n, m in self._models.items() if m.config is not None)

    def config_list(self) -> ModelConfigList:
        """A copy of the config in force."""
        with self._lock:
            copy = ModelConfigList()
            copy.CopyFrom(self._config_list)
            return copy

    # ---------------------------------------------------------------- internals

    def _sync(self, model: _Model, strict: bool) -> list[str]:
        """Loads aspired versions, then unloads versions no longer aspired.

        Returns:
            Error messages (a missing or empty base path, failed loads).
        """
        config = model.config
        base_path = config.base_path
        if not os.path.isdir(base_path):
            return [f"Could not find base path {base_path} for servable {config.name}"]
        try:
            on_disk = [
                int(entry.name)
                for entry in os.scandir(base_path)
                if _VERSION_DIR.match(entry.name) and entry.is_dir()
            ]
        except OSError as error:
            return [f"Cannot list base path {base_path} for servable {config.name}: {error}"]
        if not on_disk:
            return [f"No versions of servable {config.name} found under base path {base_path}"]
        aspired = aspired_versions(config, on_disk)
        with self._lock:
            model.failed &= aspired
            to_load = sorted(aspired - set(model.servables) - model.failed)
        errors: list[str] = []
        for version in to_load:
            error = self._load(model, version)
            if error:
                errors.append(error)
                if strict:
                    return errors
        with self._lock:
            if aspired & set(model.servables):
                for version in set(model.servables) - aspired:
                    self._unload(model, version)
        return errors

    def _load(self, model: _Model, version: int) -> str | None:
        name = model.config.name
        path = os.path.join(model.config.base_path, str(version))
        with self._lock:
            model.records[version] = _VersionRecord(State.LOADING)
        logger.info("Loading servable: {name: %s version: %d} from %s", name, version, path)
        try:
            servable = Servable(name, version, SessionBundle(path), self._batching)
            self._load_hook(servable)
        except Exception as error:  # noqa: BLE001 - any failure fails this version only.
            message = one_line(f"Failed to load servable {name} version {version}: {error}")
            code = error.code if isinstance(error, RequestError) else grpc.StatusCode.UNKNOWN
            with self._lock:
                model.records[version] = _VersionRecord(State.END, code, message)
                model.failed.add(version)
            return message
        with self._lock:
            model.servables[version] = servable
            model.records[version] = _VersionRecord(State.AVAILABLE)
        logger.info("Successfully loaded servable version {name: %s version: %d}", name, version)
        return None

    def _unload(self, model: _Model, version: int) -> None:
        """Drops a version (caller holds `_lock`); in-flight requests keep their reference."""
        del model.servables[version]
        model.records[version] = _VersionRecord(State.END)
        logger.info("Unloaded servable version {name: %s version: %d}", model.name, version)

    def _apply_labels(self) -> None:
        with self._lock:
            new_labels: dict[str, dict[str, int]] = {}
            for config in self._config_list.config:
                model = self._models[config.name]
                for version in config.version_labels.values():
                    if version not in model.servables:
                        raise failed_precondition(
                            f"Request to assign label to version {version} of model "
                            f"{config.name}, which is not currently available for inference"
                        )
                new_labels[config.name] = dict(config.version_labels)
            for name, labels in new_labels.items():
                self._models[name].labels = labels
