"""TF Serving warmup records: `assets.extra/tf_serving_warmup_requests`.

TF Serving replays these `PredictionLog` records when it loads a version, before it
routes traffic to it, so the first real request does not pay for graph initialization.
The file is a TFRecord of at most 1000 `PredictionLog`s; like the real server, any
failing record fails the load of the version. This module makes the records for either
serving contract (`make_warmup_requests` for translation, `make_history_warmup_requests`
for recommendation), writes the file (for the exporters), reads it, and replays it
(`run_warmup`) through the server's own Predict on a session bundle: the local server
does so when it loads a version, and the exporter and `nmt-keras audit` do so before
they call a version servable.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from nmt_keras.errors import NmtKerasError
from nmt_keras.serving.predict import RequestLimits, run_predict
from nmt_keras.serving.servable import Servable
from nmt_keras.serving.signatures import (
    ALIGN,
    EXPLAIN,
    HISTORY_INPUTS,
    SERVING_DEFAULT,
    TEXT_DTYPE,
    TEXT_INPUT,
    History,
    pad_histories,
)
from nmt_keras.serving.tensors import from_ndarray

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
#: TF Serving reads at most this many warmup records.
MAX_WARMUP_RECORDS = 1000

#: Batches replayed by default: a single sentence, and a padded batch with an empty line.
DEFAULT_WARMUP_BATCHES: tuple[tuple[str, ...], ...] = (
    ("Hello world.",),
    ("A short sentence.", "", "A somewhat longer sentence, to warm up longer inputs too."),
)

#: Histories replayed by default: one event, and a padded batch with a cancellation and a
#: customer without events.
DEFAULT_WARMUP_HISTORIES: tuple[tuple[History, ...], ...] = (
    (History(["85123A"], [1291191960], [6.0], [2.55]),),
    (
        History(
            ["85123A", "71053", "84406B", "71053"],
            [1291191960, 1291191960, 1291195560, 1291280000],
            [6.0, 6.0, 8.0, -6.0],
            [2.55, 3.39, 2.75, 3.39],
        ),
        History([], [], [], []),
        History(["22633", "22632"], [1291192000, 1291192000], [6.0, 6.0], [1.85, 1.85]),
    ),
)


class WarmupError(NmtKerasError, ValueError):
    """A warmup record is malformed or fails on the SavedModel."""


def warmup_path(saved_model_dir: str) -> str:
    """Where TF Serving looks for the warmup records of a SavedModel directory."""
    return os.path.join(saved_model_dir, WARMUP_DIR, WARMUP_FILE)


def make_warmup_requests(
    batches: Iterable[Sequence[str]] = DEFAULT_WARMUP_BATCHES,
    signature_names: Sequence[str] = (SERVING_DEFAULT, ALIGN),
) -> list[prediction_log_pb2.PredictionLog]:
    """One `PredictionLog` per batch and signature.

    Args:
        batches: Each a non-empty list of sentences, sent as `text: string [batch]`.
        signature_names: The signatures to warm up.

    Returns:
        `PredictionLog`s whose `predict_log.request` is a `PredictRequest`.

    Raises:
        ValueError: If a batch is empty or there would be more than 1000 records.
    """
    inputs = []
    for batch in batches:
        batch = list(batch)
        if not batch:
            raise ValueError("Expected non-empty warmup batches. Received: an empty batch")
        text = np.array([s.encode("utf-8") for s in batch], object)
        inputs.append({TEXT_INPUT: from_ndarray(text, TEXT_DTYPE)})
    return _prediction_logs(inputs, signature_names)


def make_history_warmup_requests(
    batches: Iterable[Sequence[History]] = DEFAULT_WARMUP_HISTORIES,
    signature_names: Sequence[str] = (SERVING_DEFAULT, EXPLAIN),
) -> list[prediction_log_pb2.PredictionLog]:
    """One `PredictionLog` per batch of histories and recommendation signature.

    Args:
        batches: Each a non-empty list of `History`s, padded into the recommendation inputs
            as the client pads them (`signatures.pad_histories`).
        signature_names: The signatures to warm up; leave out `explain` for a model
            without attention.

    Returns:
        `PredictionLog`s whose `predict_log.request` is a `PredictRequest`.

    Raises:
        ValueError: If a batch is empty or there would be more than 1000 records.
    """
    inputs = []
    for batch in batches:
        batch = list(batch)
        if not batch:
            raise ValueError("Expected non-empty warmup batches. Received: an empty batch")
        arrays = pad_histories(batch)
        inputs.append(
            {name: from_ndarray(arrays[name], dtype) for name, dtype in HISTORY_INPUTS.items()}
        )
    return _prediction_logs(inputs, signature_names)


def _prediction_logs(
    inputs: Sequence[dict[str, tensor_pb2.TensorProto]], signature_names: Sequence[str]
) -> list[prediction_log_pb2.PredictionLog]:
    """One `PredictionLog` per request inputs and signature, at most `MAX_WARMUP_RECORDS`."""
    count = len(inputs) * len(signature_names)
    if count > MAX_WARMUP_RECORDS:
        raise ValueError(f"Expected at most {MAX_WARMUP_RECORDS} warmup records. Received: {count}")
    logs = []
    for tensors in inputs:
        for signature_name in signature_names:
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = signature_name
            for name, tensor in tensors.items():
                request.inputs[name].CopyFrom(tensor)
            logs.append(
                prediction_log_pb2.PredictionLog(
                    predict_log=prediction_log_pb2.PredictLog(request=request)
                )
            )
    return logs


def write_warmup_requests(
    saved_model_dir: str, logs: Sequence[prediction_log_pb2.PredictionLog]
) -> str:
    """Writes `logs` as a TFRecord file to `saved_model_dir/assets.extra/`; returns its path."""
    path = warmup_path(saved_model_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(path: str) -> list[prediction_log_pb2.PredictionLog]:
    """Parses a warmup TFRecord file into `PredictionLog`s, as TF Serving reads it.

    Raises:
        WarmupError: naming the file or the record, if the file cannot be read, holds more
            than `MAX_WARMUP_RECORDS` records, or a record is not a `PredictionLog`.
    """
    try:
        records = list(tf.data.TFRecordDataset(path).as_numpy_iterator())
    except (tf.errors.OpError, ValueError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise WarmupError(f"Cannot read warmup file {path}: {message}") from error
    if len(records) > MAX_WARMUP_RECORDS:
        raise WarmupError(
            f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}"
        )
    logs = []
    for index, record in enumerate(records):
        log = prediction_log_pb2.PredictionLog()
        try:
            log.ParseFromString(record)
        except Exception as error:  # noqa: BLE001 - protobuf's DecodeError and friends.
            raise WarmupError(f"Warmup record {index} in {path} is not a PredictionLog") from error
        logs.append(log)
    return logs


def run_warmup(servable: Servable) -> int:
    """Replays a version's warmup records, if it has any, through the server's Predict.

    Args:
        servable: The freshly loaded version.

    Returns:
        The number of records replayed.

    Raises:
        WarmupError: naming the file and record, if a record is malformed, is not a
            `predict_log`, or fails; or if there are too many.
    """
    path = warmup_path(servable.path)
    if not os.path.isfile(path):
        return 0
    return run_requests(servable, read_warmup_requests(path), source=path)


def run_requests(
    servable: Servable, logs: Sequence[prediction_log_pb2.PredictionLog], source: str
) -> int:
    """Runs `predict_log` records through the server's Predict, as TF Serving's warmup does.

    Args:
        servable: A loaded version.
        logs: The records.
        source: Where the records come from, for error messages (the warmup file).

    Returns:
        The number of records run.

    Raises:
        WarmupError: naming the record (index and `source`), if one is not a
            `predict_log` or fails.
    """
    for index, log in enumerate(logs):
        kind = log.WhichOneof("log_type")
        if kind != "predict_log":
            raise WarmupError(f"Record {index} of {source} is a {kind}, not a predict_log")
        try:
            run_predict(servable, log.predict_log.request, RequestLimits())
        except Exception as error:  # noqa: BLE001 - RequestError or anything else.
            message = " ".join(str(error).split())
            raise WarmupError(f"Record {index} of {source} failed: {message}") from error
    return len(logs)
