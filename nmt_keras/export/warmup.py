"""TF Serving warmup records: `assets.extra/tf_serving_warmup_requests`.

TF Serving replays these `PredictionLog` records when it loads a version, before it
routes traffic to it, so the first real request does not pay for graph initialization.
A record that fails makes the whole version fail to load, so an export replays them on
the freshly written SavedModel (`run_warmup_requests`) before publishing it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from nmt_keras.export.module import ALIGN, SERVING_DEFAULT, TEXT_INPUT

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
#: TF Serving reads at most this many warmup records.
MAX_WARMUP_RECORDS = 1000

#: Batches replayed by default: a single sentence, and a padded batch with an empty line.
DEFAULT_WARMUP_BATCHES: tuple[tuple[str, ...], ...] = (
    ("Hello world.",),
    ("A short sentence.", "", "A somewhat longer sentence, to warm up longer inputs too."),
)


class WarmupError(ValueError):
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
    logs = []
    for batch in batches:
        batch = list(batch)
        if not batch:
            raise ValueError("Expected non-empty warmup batches. Received: an empty batch")
        tensor = tf.make_tensor_proto(np.array([s.encode("utf-8") for s in batch], dtype=object))
        for signature_name in signature_names:
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = signature_name
            request.inputs[TEXT_INPUT].CopyFrom(tensor)
            logs.append(
                prediction_log_pb2.PredictionLog(
                    predict_log=prediction_log_pb2.PredictLog(request=request)
                )
            )
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ValueError(
            f"Expected at most {MAX_WARMUP_RECORDS} warmup records. Received: {len(logs)}"
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


def run_warmup_requests(
    loaded, logs: Sequence[prediction_log_pb2.PredictionLog]
) -> list[dict[str, np.ndarray]]:
    """Replays predict warmup records on a loaded SavedModel, as TF Serving does.

    Args:
        loaded: The result of `tf.saved_model.load`.
        logs: Warmup records; each must be a `predict_log`.

    Returns:
        The outputs of each request, as NumPy arrays.

    Raises:
        WarmupError: naming the record, if one is not a predict request, names an unknown
            signature or input, fails to run, or returns an output whose first dimension
            is not the batch size.
    """
    results = []
    for index, log in enumerate(logs):
        if log.WhichOneof("log_type") != "predict_log":
            raise WarmupError(f"Warmup record {index} is not a predict_log.")
        request = log.predict_log.request
        name = request.model_spec.signature_name or "serving_default"
        if name not in loaded.signatures:
            raise WarmupError(f"Warmup record {index}: unknown signature {name!r}.")
        function = loaded.signatures[name]
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        expected = set(function.structured_input_signature[1])
        if set(inputs) != expected:
            raise WarmupError(
                f"Warmup record {index} ({name}): expected inputs {sorted(expected)}. "
                f"Received: {sorted(inputs)}"
            )
        try:
            outputs = function(**{key: tf.constant(value) for key, value in inputs.items()})
        except (tf.errors.OpError, ValueError, TypeError) as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise WarmupError(f"Warmup record {index} ({name}) failed: {message}") from error
        batch = len(next(iter(inputs.values())))
        arrays = {key: value.numpy() for key, value in outputs.items()}
        for key, value in arrays.items():
            if value.ndim == 0 or value.shape[0] != batch:
                raise WarmupError(
                    f"Warmup record {index} ({name}): output {key} has shape {value.shape}, "
                    f"expected batch {batch} first."
                )
        results.append(arrays)
    return results
