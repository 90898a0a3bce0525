"""Tiny SavedModels for the server tests (no trained NMT model needed).

`serving_default`: text string[None] -> upper (string), score (float), length (int32),
text_bytes (string, sent as b64 over REST). `add`: x, y float[None] -> sum.
`slow`: text string[None], seconds float[] -> upper, after busy-waiting `seconds`.
"""

from __future__ import annotations

import os
import shutil

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2


class EchoModel(tf.Module):
    """A string-in / string-out model with three signatures."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        length = tf.strings.length(text)
        return {
            "upper": tf.strings.upper(text),
            "score": tf.cast(length, tf.float32) * 0.5,
            "length": length,
            "text_bytes": text,
        }

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.float32, name="x"),
            tf.TensorSpec([None], tf.float32, name="y"),
        ]
    )
    def add(self, x, y):
        return {"sum": x + y}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([], tf.float32, name="seconds"),
        ]
    )
    def slow(self, text, seconds):
        start = tf.timestamp()
        limit = tf.cast(seconds, tf.float64)
        steps = tf.while_loop(
            lambda i: tf.timestamp() - start < limit, lambda i: i + 1, [tf.constant(0, tf.int64)]
        )
        return {"upper": tf.strings.upper(text), "steps": tf.fill(tf.shape(text), steps[0])}


def save_echo_model(path: str) -> str:
    """Saves an EchoModel SavedModel at `path` and returns it."""
    model = EchoModel()
    tf.saved_model.save(
        model,
        path,
        signatures={"serving_default": model.serve, "add": model.add, "slow": model.slow},
    )
    return path


def install_version(source: str, base_path: str, version: int | str) -> str:
    """Copies a SavedModel to `base_path/<version>` atomically (copy, then rename)."""
    os.makedirs(base_path, exist_ok=True)
    target = os.path.join(base_path, str(version))
    staging = os.path.join(base_path, f".staging-{version}")
    shutil.copytree(source, staging)
    os.rename(staging, target)
    return target


def write_warmup(version_dir: str, requests: list[predict_pb2.PredictRequest]) -> str:
    """Writes `assets.extra/tf_serving_warmup_requests` with the given requests."""
    directory = os.path.join(version_dir, "assets.extra")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "tf_serving_warmup_requests")
    with tf.io.TFRecordWriter(path) as writer:
        for request in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path
