"""Warmup: replay `assets.extra/tf_serving_warmup_requests` before a version serves.

The file is a TFRecord of `PredictionLog` protos, at most 1000 records; like the real
server, any failing record fails the load of the version. Only `predict_log` records are
replayed (the NMT exports write only those).
"""

from __future__ import annotations

import os

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from nmt_keras.serving.predict import RequestLimits, run_predict
from nmt_keras.serving.servable import WARMUP_FILE, Servable

MAX_WARMUP_RECORDS = 1000


def run_warmup(servable: Servable) -> int:
    """Replays a version's warmup records, if it has any.

    Args:
        servable: The freshly loaded version.

    Returns:
        The number of records replayed.

    Raises:
        ValueError: A record is malformed, unsupported or fails; or there are too many.
    """
    path = os.path.join(servable.path, WARMUP_FILE)
    if not os.path.isfile(path):
        return 0
    try:
        records = [bytes(r) for r in tf.data.TFRecordDataset(path).as_numpy_iterator()]
    except Exception as error:  # noqa: BLE001 - a corrupt file fails the load.
        raise ValueError(f"Cannot read warmup file {path}: {error}") from error
    if len(records) > MAX_WARMUP_RECORDS:
        raise ValueError(
            f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}"
        )
    for index, record in enumerate(records):
        log = prediction_log_pb2.PredictionLog()
        try:
            log.ParseFromString(record)
        except Exception as error:  # noqa: BLE001 - protobuf's DecodeError and friends.
            raise ValueError(f"Warmup record {index} in {path} is not a PredictionLog") from error
        kind = log.WhichOneof("log_type")
        if kind != "predict_log":
            raise ValueError(f"Unsupported log_type for warmup: {kind} (record {index})")
        try:
            run_predict(servable, log.predict_log.request, RequestLimits())
        except Exception as error:  # noqa: BLE001 - RequestError or anything else.
            raise ValueError(f"Warmup record {index} failed: {error}") from error
    return len(records)
