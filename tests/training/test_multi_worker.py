"""Multi-worker training: TF_CONFIG checks, the chief, and two real workers in lock-step."""

import csv
import json
import os
import socket
import subprocess
import sys
import time
import types
from contextlib import ExitStack

import keras
import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.config import ModelConfig
from nmt_keras.models import build_model
from nmt_keras.run import load_run
from nmt_keras.text.tokenizer import PAD_ID
from nmt_keras.training.losses import MaskedCrossEntropy
from nmt_keras.training.metrics import MaskedAccuracy
from nmt_keras.training.multi_worker import fit_distributed, is_chief, multi_worker_strategy
from tests.toy_data import REPO_ROOT, TOY_PAIRS, tiny_train_args
from tests.training import multi_worker_job as job

WORKERS = 2
WORKER_TIMEOUT_S = 300


def _tf_config(index, ports=(2222, 2223)):
    return {
        "cluster": {"worker": [f"localhost:{port}" for port in ports]},
        "task": {"type": "worker", "index": index},
    }


@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, "TF_CONFIG is not set"),
        ("{cluster: 1}", "TF_CONFIG is not JSON"),
        ("[]", "TF_CONFIG has no cluster.worker list"),
        (json.dumps({"cluster": {"worker": []}}), "TF_CONFIG has no cluster.worker list"),
        (json.dumps({"cluster": {"ps": ["a:1"]}}), "TF_CONFIG has no cluster.worker list"),
        (json.dumps({**_tf_config(0), "task": None}), r"TF_CONFIG task.type must be a job"),
        (
            json.dumps({**_tf_config(0), "task": {"type": "chief", "index": 0}}),
            r"TF_CONFIG task.type must be a job of its cluster \(worker\)",
        ),
        (json.dumps(_tf_config(2)), "TF_CONFIG task.index must be an integer from 0 to 1"),
        (json.dumps(_tf_config(-1)), "TF_CONFIG task.index must be an integer from 0 to 1"),
        (json.dumps(_tf_config("0")), "TF_CONFIG task.index must be an integer"),
    ],
)
def test_multi_worker_strategy_names_what_is_wrong_with_tf_config(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=message) as error:
        multi_worker_strategy()
    assert "\n" not in str(error.value)


def _with_resolver(cluster, task_type, task_id):
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster), task_type=task_type, task_id=task_id
    )
    return types.SimpleNamespace(cluster_resolver=resolver)


def test_is_chief_is_worker_0_unless_the_cluster_has_a_chief():
    workers = {"worker": ["a:1", "b:1"]}
    with_chief = {"chief": ["c:1"], "worker": ["a:1", "b:1"]}
    assert is_chief(_with_resolver(workers, "worker", 0))
    assert not is_chief(_with_resolver(workers, "worker", 1))
    assert is_chief(_with_resolver(with_chief, "chief", 0))
    assert not is_chief(_with_resolver(with_chief, "worker", 0))
    assert is_chief(tf.distribute.get_strategy())


def _free_ports(count):
    """Ports free on localhost, held together while picked so that they differ."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("localhost", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _run_workers(out_dir, command):
    """Runs `command` as every worker of a cluster; fails the test if one fails or hangs.

    A worker whose peer died waits for it in a collective, so both are killed when the
    time is up.
    """
    ports = _free_ports(WORKERS)
    processes = []
    try:
        for index in range(WORKERS):
            env = dict(
                os.environ,
                TF_CONFIG=json.dumps(_tf_config(index, ports)),
                TF_CPP_MIN_LOG_LEVEL="2",
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.getenv("PYTHONPATH")])),
            )
            log = open(out_dir / f"worker{index}.log", "w", encoding="utf-8")
            processes.append(
                subprocess.Popen(
                    command,
                    cwd=REPO_ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        for process in processes:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pytest.fail(f"a worker ran over {WORKER_TIMEOUT_S} s:\n{_log_tails(out_dir)}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    if any(process.returncode for process in processes):
        codes = [process.returncode for process in processes]
        pytest.fail(f"workers exited with {codes}:\n{_log_tails(out_dir)}")


def _log_tails(out_dir):
    return "\n".join(
        f"--- worker {index}\n" + (out_dir / f"worker{index}.log").read_text()[-3000:]
        for index in range(WORKERS)
    )


@pytest.mark.slow
def test_two_workers_train_in_lock_step_to_the_same_weights(tmp_path):
    _run_workers(tmp_path, [sys.executable, "-m", "tests.training.multi_worker_job", str(tmp_path)])
    weights = [np.load(tmp_path / f"worker{index}.npz") for index in range(WORKERS)]
    reports = [
        json.loads((tmp_path / f"worker{index}.json").read_text()) for index in range(WORKERS)
    ]
    chief, other = weights
    layers = len(chief.files) // 2
    for i in range(layers):
        np.testing.assert_array_equal(chief[f"final{i}"], other[f"final{i}"])
        np.testing.assert_array_equal(chief[f"initial{i}"], other[f"initial{i}"])
    assert any(not np.array_equal(chief[f"initial{i}"], chief[f"final{i}"]) for i in range(layers))

    assert [report["chief"] for report in reports] == [True, False]
    assert reports[0]["history"] == reports[1]["history"]
    assert reports[0]["batch_losses"] == reports[1]["batch_losses"]
    history = reports[0]["history"]
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    # Both resumed from the chief's epoch and stopped where worker 1 alone asked to.
    assert len(history["loss"]) == job.EPOCHS - job.RESUMED_EPOCH
    batches_per_epoch = 6  # 3 lengths x 8 pairs / 4 pairs per batch
    stopped_after = job.STOP_AT_BATCH + 1
    epochs_run = job.EPOCHS - job.RESUMED_EPOCH
    assert len(reports[0]["batch_losses"]) == (epochs_run - 1) * batches_per_epoch + stopped_after
    # Each batch ran at the mean of the learning rates the workers set.
    mean_rate = np.float32(sum(job.LEARNING_RATES) / WORKERS)
    for report in reports:
        np.testing.assert_allclose(report["learning_rates"], mean_rate, rtol=1e-6)


class HookRecorder(keras.callbacks.Callback):
    """Records the hooks called and the names of their logs."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        attribute = super().__getattribute__(name)
        if not name.startswith("on_"):
            return attribute

        def record(*args, **kwargs):
            logs = kwargs.get("logs") or next((a for a in args if isinstance(a, dict)), {})
            position = [arg for arg in args if not isinstance(arg, dict)]
            self.calls.append((name, *position, sorted(logs or {})))

        return record


def _compiled_toy_model():
    keras.utils.set_random_seed(1)
    model = build_model(
        ModelConfig(
            type="bahdanau", embedding_dim=16, units=16, attention_units=16, bidirectional=False
        ),
        job.VOCAB,
        job.VOCAB,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01, clipnorm=1.0),
        loss=MaskedCrossEntropy(PAD_ID, 0.1),
        metrics=[MaskedAccuracy(PAD_ID)],
        jit_compile=False,
    )
    return model


@pytest.mark.slow
def test_fit_distributed_on_one_worker_calls_back_and_trains_like_fit():
    train, valid = job.toy_batches(4, seed=0), job.toy_batches(4, seed=1)
    runs = []
    for fit in (keras.Model.fit, None):
        model, recorder = _compiled_toy_model(), HookRecorder()
        arguments = dict(epochs=2, validation_data=valid, callbacks=[recorder], verbose=0)
        if fit:
            history = fit(model, train, shuffle=False, **arguments)
        else:
            history = fit_distributed(model, tf.distribute.get_strategy(), train, **arguments)
        runs.append((history.history, recorder.calls, model.get_weights()))
    (fit_history, fit_calls, fit_weights), (history, calls, weights) = runs
    assert calls == fit_calls
    assert ("on_train_batch_end", 0, ["accuracy", "loss"]) in calls
    assert ("on_epoch_end", 1, ["accuracy", "loss", "val_accuracy", "val_loss"]) in calls
    assert history.keys() == fit_history.keys()
    for name, values in fit_history.items():
        np.testing.assert_allclose(history[name], values, rtol=1e-5)
    for mine, expected in zip(weights, fit_weights, strict=True):
        np.testing.assert_allclose(mine, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_nmt_keras_train_on_two_workers_writes_the_chiefs_run(toy_corpus, tmp_path):
    source, target = toy_corpus
    run_dir = tmp_path / "run"
    overrides = ("training.epochs=2", "training.steps_per_epoch=4", "training.bleu_samples=2")
    arguments = [
        *tiny_train_args(source, target, run_dir, *overrides),
        "--strategy",
        "multi_worker",
    ]
    main = "import sys; from nmt_keras.cli import main; sys.exit(main(sys.argv[1:]))"
    _run_workers(tmp_path, [sys.executable, "-c", main, *arguments])

    with open(run_dir / "history.csv", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [row["epoch"] for row in rows] == ["0", "1"], "one writer: the chief"
    assert {"loss", "val_loss", "val_bleu"} <= set(rows[0])
    assert (run_dir / "checkpoints" / "best.weights.h5").is_file()
    chief_log, worker_log = ((tmp_path / f"worker{i}.log").read_text() for i in range(WORKERS))
    assert "Epoch 2/2" in chief_log and "Epoch" not in worker_log
    assert "run saved in" in worker_log
    (translation,) = load_run(str(run_dir)).translator().translate_all([TOY_PAIRS[0][0]])
    assert isinstance(translation, str)
