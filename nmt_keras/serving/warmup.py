"""Warmup: replay `assets.extra/tf_serving_warmup_requests` before a version serves.

The file is a TFRecord of `PredictionLog` protos, at most 1000 records; like the real
server, any failing record fails the load of the version. Only `predict_log` records are
replayed (the NMT exports write only those).
"""

from __future__ import annotations

import os

from nmt_keras.export.warmup import read_warmup_requests, warmup_path
from nmt_keras.serving.predict import RequestLimits, run_predict
from nmt_keras.serving.servable import Servable


def run_warmup(servable: Servable) -> int:
    """Replays a version's warmup records, if it has any, through the server's Predict.

    Args:
        servable: The freshly loaded version.

    Returns:
        The number of records replayed.

    Raises:
        ValueError: A record is malformed, unsupported or fails; or there are too many.
    """
    path = warmup_path(servable.path)
    if not os.path.isfile(path):
        return 0
    logs = read_warmup_requests(path)
    for index, log in enumerate(logs):
        kind = log.WhichOneof("log_type")
        if kind != "predict_log":
            raise ValueError(f"Unsupported log_type for warmup: {kind} (record {index})")
        try:
            run_predict(servable, log.predict_log.request, RequestLimits())
        except Exception as error:  # noqa: BLE001 - RequestError or anything else.
            raise ValueError(f"Warmup record {index} failed: {error}") from error
    return len(logs)
