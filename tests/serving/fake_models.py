"""Tiny SavedModels for the server tests (no trained NMT model needed).

`serving_default`: text string[None] -> upper (string), score (float), length (int32),
text_bytes (string, sent as b64 over REST). `add`: x, y float[None] -> sum.
`slow`: text string[None], seconds float[] -> upper, after busy-waiting `seconds`.

`FakeRecommender` follows the recommendation contract (`serving_default` and `explain`):
products are the last `RECOMMEND_K` distinct items, newest first, then `FALLBACK_PRODUCTS`;
scores are the history's spend (sum of quantity * price) minus the slot; attention is
uniform over the real events.
"""

from __future__ import annotations

import os
import shutil

import keras
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from nmt_keras.serving.signatures import EXPLAIN, HISTORY_INPUTS, SERVING_DEFAULT
from nmt_keras.serving.warmup import write_warmup_requests


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
    logs = [
        prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=r))
        for r in requests
    ]
    return write_warmup_requests(version_dir, logs)


class KerasBehindAModule(tf.Module):
    """A module that reaches Keras 3 variables only through the Keras model it holds.

    `tf.saved_model.load` runs its SavedModel; TF Serving's session loader does not: the
    saver restores a copy of each variable, and Predict fails with "Could not find
    variable dense/kernel".
    """

    def __init__(self):
        super().__init__()
        self.model = keras.Sequential([keras.layers.Dense(2, name="dense")])
        self.model(tf.zeros([1, 1]))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        length = tf.cast(tf.strings.length(text), tf.float32)[:, None]  # (batch, 1)
        return {"score": self.model(length)[:, 0]}


def save_keras_behind_a_module(path: str) -> str:
    """Saves a `KerasBehindAModule` SavedModel at `path` and returns it."""
    module = KerasBehindAModule()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


def rename_op(saved_model_dir: str, old: str, new: str) -> None:
    """Renames the op type of every node of type `old` in the SavedModel's functions."""
    path = os.path.join(saved_model_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with open(path, "rb") as file:
        saved_model.ParseFromString(file.read())
    for meta_graph in saved_model.meta_graphs:
        for function in meta_graph.graph_def.library.function:
            for node in function.node_def:
                if node.op == old:
                    node.op = new
    with open(path, "wb") as file:
        file.write(saved_model.SerializeToString())


RECOMMEND_K = 3
FALLBACK_PRODUCTS = ("POPULAR-1", "POPULAR-2", "POPULAR-3")
HISTORY_SPECS = [
    tf.TensorSpec([None, None], tf.as_dtype(dtype), name=name)
    for name, dtype in HISTORY_INPUTS.items()
]


class FakeRecommender(tf.Module):
    """A recommender of the last distinct items bought, in graph ops only."""

    def _recommend(self, items, timestamps, quantities, prices):
        del timestamps  # only its dtype is checked (by the server)
        width = tf.shape(items)[1]
        lengths = tf.reduce_sum(tf.cast(tf.not_equal(items, ""), tf.int32), axis=1)
        newest_first = tf.reverse_sequence(items, lengths, seq_axis=1, batch_axis=0)
        positions = tf.range(width)
        newer = positions[None, :] < positions[:, None]  # [j, i]: i is newer than j
        same = tf.equal(newest_first[:, :, None], newest_first[:, None, :])
        repeated = tf.reduce_any(same & newer[None], axis=2)
        first = tf.sequence_mask(lengths, width) & ~repeated  # newest event of each item
        rank = tf.cumsum(tf.cast(first, tf.int32), axis=1) - 1
        slots = tf.range(RECOMMEND_K)
        chosen = first[:, :, None] & tf.equal(rank[:, :, None], slots[None, None, :])
        picked = tf.strings.reduce_join(tf.where(chosen, newest_first[:, :, None], ""), axis=1)
        products = tf.where(tf.equal(picked, ""), tf.constant(FALLBACK_PRODUCTS)[None], picked)
        spend = tf.reduce_sum(quantities * prices, axis=1)
        scores = spend[:, None] - tf.cast(slots, tf.float32)[None]
        real = tf.cast(tf.sequence_mask(lengths, width), tf.float32)
        weights = real / tf.maximum(tf.cast(lengths, tf.float32), 1.0)[:, None]
        attention = tf.tile(weights[:, None, :], [1, RECOMMEND_K, 1])
        return {"products": products, "scores": scores, "attention": attention}

    @tf.function(input_signature=HISTORY_SPECS)
    def serve(self, items, timestamps, quantities, prices):
        outputs = self._recommend(items, timestamps, quantities, prices)
        return {"products": outputs["products"], "scores": outputs["scores"]}

    @tf.function(input_signature=HISTORY_SPECS)
    def explain(self, items, timestamps, quantities, prices):
        return self._recommend(items, timestamps, quantities, prices)


def save_fake_recommender(path: str, explain: bool = True) -> str:
    """Saves a `FakeRecommender` SavedModel at `path` (with `explain` if asked); returns it."""
    model = FakeRecommender()
    signatures = {SERVING_DEFAULT: model.serve}
    if explain:
        signatures[EXPLAIN] = model.explain
    tf.saved_model.save(model, path, signatures=signatures)
    return path
