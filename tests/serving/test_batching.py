"""Server-side batching: the parameters file and the batch scheduler (no model needed)."""

import pathlib
import re
import threading
import time

import grpc
import numpy as np
import pytest

from nmt_keras.serving.batching import (
    BatchingParameters,
    BatchScheduler,
    read_batching_parameters,
)
from nmt_keras.serving.errors import RequestError, ServerError

REPO_FILE = pathlib.Path(__file__).parents[2] / "serving" / "batching_parameters.txt"
LONG_TIMEOUT_MICROS = 10_000_000  # A batch never times out during a test: it runs when full.
WAIT_SECONDS = 5


class Recorder:
    """A `run` callable: doubles `x`, echoes the other inputs and records every batch.

    With a gate, the first call sets `started` and blocks until the gate is set.
    """

    def __init__(self, gate=None):
        self.batches = []
        self.lock = threading.Lock()
        self.gate = gate
        self.started = threading.Event()

    def __call__(self, inputs):
        with self.lock:
            self.batches.append({name: value.copy() for name, value in inputs.items()})
        if self.gate is not None:
            self.started.set()
            assert self.gate.wait(WAIT_SECONDS)
        outputs = dict(inputs)
        if "x" in inputs and inputs["x"].dtype != object:
            outputs["x"] = inputs["x"] * 2
        return outputs

    @property
    def sizes(self):
        with self.lock:
            return [len(next(iter(batch.values()))) for batch in self.batches]


def write(tmp_path, text):
    path = tmp_path / "batching.txt"
    path.write_text(text)
    return str(path)


def wait_until(predicate):
    deadline = time.monotonic() + WAIT_SECONDS
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.002)


class Call(threading.Thread):
    """Submits one task from its own thread and keeps the result or the error."""

    def __init__(self, scheduler, inputs, barrier=None):
        super().__init__(daemon=True)
        self.scheduler, self.inputs, self.barrier = scheduler, inputs, barrier
        self.result = self.error = None
        self.start()

    def run(self):
        if self.barrier is not None:
            self.barrier.wait(WAIT_SECONDS)
        try:
            self.result = self.scheduler.submit(self.inputs)
        except Exception as error:  # Kept for the test to inspect.
            self.error = error

    def outcome(self):
        self.join(WAIT_SECONDS)
        assert not self.is_alive()
        return self.result, self.error


@pytest.fixture
def make_scheduler():
    schedulers = []

    def make(run, **parameters):
        scheduler = BatchScheduler(run, BatchingParameters(**parameters), name="test")
        schedulers.append(scheduler)
        return scheduler

    yield make
    for scheduler in schedulers:
        scheduler.close()


# --- The parameters file ------------------------------------------------------------------


def test_reads_the_repo_file():
    parameters = read_batching_parameters(str(REPO_FILE))
    assert parameters == BatchingParameters(
        max_batch_size=64,
        batch_timeout_micros=2000,
        max_enqueued_batches=64,
        num_batch_threads=4,
        pad_variable_length_inputs=True,
    )


def test_defaults_are_tf_serving_defaults(tmp_path):
    parameters = read_batching_parameters(write(tmp_path, ""))
    assert parameters == BatchingParameters()
    assert (parameters.max_batch_size, parameters.batch_timeout_micros) == (1000, 0)
    assert parameters.max_enqueued_batches == 10
    assert parameters.num_batch_threads >= 1
    assert (parameters.allowed_batch_sizes, parameters.pad_variable_length_inputs) == ((), False)


def test_reads_every_field(tmp_path):
    path = write(
        tmp_path,
        """
        max_batch_size { value: 8 }
        batch_timeout_micros { value: 0 }
        max_enqueued_batches { value: 3 }
        num_batch_threads { value: 2 }
        thread_pool_name { value: "ignored" }
        allowed_batch_sizes: [2, 4]
        allowed_batch_sizes: 8
        pad_variable_length_inputs: false
        enable_large_batch_splitting { value: false }
        max_execution_batch_size { value: 4 }
        """,
    )
    assert read_batching_parameters(path) == BatchingParameters(
        max_batch_size=8,
        batch_timeout_micros=0,
        max_enqueued_batches=3,
        num_batch_threads=2,
        allowed_batch_sizes=(2, 4, 8),
    )


def test_unknown_field_names_file_and_line(tmp_path):
    path = write(tmp_path, "max_batch_size { value: 8 }\n\nmax_batch: 3\n")
    with pytest.raises(ServerError) as info:
        read_batching_parameters(path)
    assert str(info.value) == (
        f"Invalid batching parameters file {path}: 3:1 : Message type "
        '"tensorflow.serving.BatchingParameters" has no field named "max_batch".'
    )


def test_syntax_error_names_line(tmp_path):
    path = write(tmp_path, "max_batch_size: 8\n")  # A wrapper message, not a scalar.
    with pytest.raises(ServerError) as info:
        read_batching_parameters(path)
    assert str(info.value).startswith(f"Invalid batching parameters file {path}: 1:17 : ")
    assert str(info.value).endswith('Expected "{".')


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.txt")
    with pytest.raises(ServerError, match=f"Cannot read batching parameters file {path}: No such"):
        read_batching_parameters(path)


@pytest.mark.parametrize(
    "text, field",
    [
        ("max_batch_size { value: 0 }", "max_batch_size=0"),
        ("batch_timeout_micros { value: -1 }", "batch_timeout_micros=-1"),
        ("max_enqueued_batches { value: -2 }", "max_enqueued_batches=-2"),
        ("num_batch_threads { value: 0 }", "num_batch_threads=0"),
        (
            "max_batch_size { value: 8 } allowed_batch_sizes: [4, 2, 8]",
            "allowed_batch_sizes=(4, 2, 8)",
        ),
        ("max_batch_size { value: 8 } allowed_batch_sizes: [2, 4]", "allowed_batch_sizes=(2, 4)"),
        ("allowed_batch_sizes: [0, 1000]", "allowed_batch_sizes=(0, 1000)"),
    ],
)
def test_invalid_values_name_the_field(tmp_path, text, field):
    path = write(tmp_path, text)
    with pytest.raises(
        ServerError, match=rf"Invalid batching parameters file .*Received: {re.escape(field)}"
    ):
        read_batching_parameters(path)


def test_large_batch_splitting_is_refused(tmp_path):
    path = write(tmp_path, "enable_large_batch_splitting { value: true }")
    with pytest.raises(ServerError, match="enable_large_batch_splitting is not supported"):
        read_batching_parameters(path)


def test_parameters_validate_in_python():
    with pytest.raises(
        ValueError, match=r"^Expected max_batch_size .* Received: max_batch_size=0$"
    ):
        BatchingParameters(max_batch_size=0)
    with pytest.raises(ValueError, match="Received: pad_variable_length_inputs=1"):
        BatchingParameters(pad_variable_length_inputs=1)
    with pytest.raises(ValueError, match=r"Received: allowed_batch_sizes=\[1000\]"):
        BatchingParameters(allowed_batch_sizes=[1000])
    assert BatchingParameters(max_enqueued_batches=0).max_enqueued_batches == 0  # Acts as 1.


# --- Scheduling ---------------------------------------------------------------------------


def test_concurrent_tasks_are_merged_and_split_back(make_scheduler):
    run = Recorder()
    sizes = [1, 2, 3, 1, 2, 3, 1, 2]
    scheduler = make_scheduler(
        run,
        max_batch_size=sum(sizes),  # The batch runs once every task has joined it.
        batch_timeout_micros=LONG_TIMEOUT_MICROS,
        num_batch_threads=2,
    )
    barrier = threading.Barrier(len(sizes))
    inputs = [
        {
            "x": np.arange(size * 2, dtype=np.float32).reshape(size, 2) + 100 * index,
            "text": np.array([f"t{index}-{row}".encode() for row in range(size)], dtype=object),
        }
        for index, size in enumerate(sizes)
    ]
    calls = [Call(scheduler, task, barrier) for task in inputs]
    for call, task in zip(calls, inputs, strict=True):
        result, error = call.outcome()
        assert error is None
        np.testing.assert_array_equal(result["x"], task["x"] * 2)
        assert result["x"].dtype == np.float32
        assert result["text"].tolist() == task["text"].tolist()
    assert run.sizes == [sum(sizes)]


def test_timeout_runs_a_partial_batch(make_scheduler):
    run = Recorder()
    scheduler = make_scheduler(run, max_batch_size=100, batch_timeout_micros=20_000)
    started = time.monotonic()
    result = scheduler.submit({"x": np.ones((3, 1))})
    assert time.monotonic() - started >= 0.02
    np.testing.assert_array_equal(result["x"], np.full((3, 1), 2.0))
    assert run.sizes == [3]


def test_max_batch_size_splits_batches(make_scheduler):
    run = Recorder()
    scheduler = make_scheduler(
        run, max_batch_size=4, batch_timeout_micros=LONG_TIMEOUT_MICROS, num_batch_threads=2
    )
    barrier = threading.Barrier(4)
    calls = [Call(scheduler, {"x": np.full((2, 1), float(i))}, barrier) for i in range(4)]
    for index, call in enumerate(calls):
        result, error = call.outcome()
        assert error is None
        np.testing.assert_array_equal(result["x"], np.full((2, 1), 2.0 * index))
    assert run.sizes == [4, 4]


def test_thread_names_and_close(make_scheduler):
    scheduler = make_scheduler(Recorder(), num_batch_threads=2)
    names = {thread.name for thread in scheduler._threads}
    assert names == {"test_batch_threads_0", "test_batch_threads_1"}
    assert all(thread.daemon and thread.is_alive() for thread in scheduler._threads)
    scheduler.close()
    assert not any(thread.is_alive() for thread in scheduler._threads)
    with pytest.raises(RequestError) as info:
        scheduler.submit({"x": np.ones((1,))})
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    scheduler.close()  # Closing twice is harmless.


def test_close_finishes_queued_tasks(make_scheduler):
    run = Recorder()
    scheduler = make_scheduler(run, batch_timeout_micros=LONG_TIMEOUT_MICROS)
    call = Call(scheduler, {"x": np.ones((2,))})
    wait_until(lambda: scheduler.num_enqueued_tasks() == 1)
    scheduler.close()
    result, error = call.outcome()
    assert error is None
    np.testing.assert_array_equal(result["x"], [2.0, 2.0])


# --- Refused tasks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({"x": np.ones((5, 2))}, "Task size 5 is larger than maximum input batch size 4"),
        ({}, "Batching Run() must have at least one input tensor"),
        ({"x": np.float32(1)}, "Batching Run() input tensors must have at least one dimension"),
        (
            {"x": np.ones((2,)), "y": np.ones((3,))},
            "Batching Run() input tensors must have equal 0th-dimension size",
        ),
    ],
)
def test_invalid_tasks(make_scheduler, inputs, message):
    run = Recorder()
    scheduler = make_scheduler(run, max_batch_size=4)
    with pytest.raises(RequestError) as info:
        scheduler.submit(inputs)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.message == message
    assert run.sizes == []


def test_full_queue_is_unavailable(make_scheduler):
    gate = threading.Event()
    run = Recorder(gate)
    scheduler = make_scheduler(run, max_batch_size=1, max_enqueued_batches=2, num_batch_threads=1)
    first = Call(scheduler, {"x": np.ones((1,))})
    assert run.started.wait(WAIT_SECONDS)  # The only batch thread is now busy.
    queued = [Call(scheduler, {"x": np.ones((1,))})]
    wait_until(lambda: scheduler.num_enqueued_tasks() == 1)
    queued.append(Call(scheduler, {"x": np.ones((1,))}))  # Opens a second batch.
    wait_until(lambda: scheduler.num_enqueued_tasks() == 2)
    with pytest.raises(RequestError) as info:
        scheduler.submit({"x": np.ones((1,))})
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert info.value.message == (
        "The batch scheduling queue to which this task was submitted is full; "
        "currently 2 batches enqueued and max_enqueued_batches is 2"
    )
    gate.set()
    for call in [first, *queued]:
        assert call.outcome()[1] is None
    assert run.sizes == [1, 1, 1]


# --- Merging and splitting ----------------------------------------------------------------


def submit_in_order(scheduler, first_inputs, second_inputs):
    """Submits two tasks that join one batch, in this order; returns both outcomes."""
    first = Call(scheduler, first_inputs)
    wait_until(lambda: scheduler.num_enqueued_tasks() == 1)
    second = Call(scheduler, second_inputs)
    return first.outcome(), second.outcome()


def test_pads_variable_length_inputs_with_first_element(make_scheduler):
    run = Recorder()
    scheduler = make_scheduler(
        run,
        max_batch_size=3,
        batch_timeout_micros=LONG_TIMEOUT_MICROS,
        pad_variable_length_inputs=True,
    )
    first = {
        "text": np.array([[b"a", b"b"]], dtype=object),
        "f": np.array([[1.5, 2.0, 3.0]], dtype=np.float32),
    }
    second = {
        "text": np.array([[b"c", b"d", b"e", b"f"], [b"g", b"h", b"i", b"j"]], dtype=object),
        "f": np.array([[7.0], [8.0]], dtype=np.float32),
    }
    (first_result, first_error), (second_result, second_error) = submit_in_order(
        scheduler, first, second
    )
    assert first_error is None and second_error is None
    (batch,) = run.batches
    assert batch["text"].tolist() == [
        [b"a", b"b", b"a", b"a"],
        [b"c", b"d", b"e", b"f"],
        [b"g", b"h", b"i", b"j"],
    ]
    np.testing.assert_array_equal(batch["f"], [[1.5, 2.0, 3.0], [7.0, 7.0, 7.0], [8.0, 7.0, 7.0]])
    assert batch["f"].dtype == np.float32
    # Outputs are split along dimension 0 only: each task keeps the batch's inner width.
    assert first_result["text"].tolist() == [[b"a", b"b", b"a", b"a"]]
    np.testing.assert_array_equal(second_result["f"], [[7.0, 7.0, 7.0], [8.0, 7.0, 7.0]])


def test_different_shapes_without_padding_fail_every_task(make_scheduler):
    run = Recorder()
    scheduler = make_scheduler(run, max_batch_size=2, batch_timeout_micros=LONG_TIMEOUT_MICROS)
    outcomes = submit_in_order(
        scheduler,
        {"text": np.array([[b"a", b"b"]], dtype=object)},
        {"text": np.array([[b"c"]], dtype=object)},
    )
    for _, error in outcomes:
        assert isinstance(error, RequestError)
        assert error.code == grpc.StatusCode.FAILED_PRECONDITION
        assert error.message == (
            "Tensors with name 'text' from different tasks have different shapes and padding "
            "is turned off. Set pad_variable_length_inputs to true, or ensure that all tensors "
            "with the same name have equal dimensions starting with the first dim."
        )
    assert run.sizes == []


def test_empty_task_alone_and_merged(make_scheduler):
    run = Recorder()
    scheduler = make_scheduler(run, max_batch_size=3, pad_variable_length_inputs=True)
    result = scheduler.submit({"text": np.empty((0, 4), dtype=object), "x": np.ones((0,))})
    assert result["text"].shape == (0, 4) and result["x"].shape == (0,)
    scheduler.close()

    run = Recorder()
    scheduler = make_scheduler(
        run,
        max_batch_size=3,
        batch_timeout_micros=LONG_TIMEOUT_MICROS,
        pad_variable_length_inputs=True,
    )
    (empty, empty_error), (full, full_error) = submit_in_order(
        scheduler,
        {"text": np.empty((0, 5), dtype=object)},
        {"text": np.array([[b"p", b"q"]] * 3, dtype=object)},
    )
    assert empty_error is None and full_error is None
    assert run.sizes == [3]
    # The empty task's width counts too: the other task is padded to 5 columns.
    assert empty["text"].shape == (0, 5)
    assert full["text"].tolist() == [[b"p", b"q", b"p", b"p", b"p"]] * 3


def test_allowed_batch_sizes_padding_is_dropped(make_scheduler):
    run = Recorder()
    scheduler = make_scheduler(
        run, max_batch_size=4, allowed_batch_sizes=(2, 4), num_batch_threads=1
    )
    x = np.array([[1.0], [2.0], [3.0]])
    result = scheduler.submit({"x": x, "text": np.array([b"a", b"b", b"c"], dtype=object)})
    np.testing.assert_array_equal(result["x"], x * 2)
    assert result["text"].tolist() == [b"a", b"b", b"c"]
    (batch,) = run.batches
    np.testing.assert_array_equal(batch["x"], [[1.0], [2.0], [3.0], [1.0]])  # First row again.
    assert batch["text"].tolist() == [b"a", b"b", b"c", b"a"]

    scheduler.submit({"x": np.array([[5.0]]), "text": np.array([b"z"], dtype=object)})
    assert run.sizes == [4, 2]


def test_run_error_reaches_every_task(make_scheduler):
    error = ValueError("boom")

    def run(inputs):
        raise error

    scheduler = make_scheduler(run, max_batch_size=2, batch_timeout_micros=LONG_TIMEOUT_MICROS)
    barrier = threading.Barrier(2)
    calls = [Call(scheduler, {"x": np.ones((1,))}, barrier) for _ in range(2)]
    assert [call.outcome()[1] for call in calls] == [error, error]
    assert all(call.error is error for call in calls)


@pytest.mark.parametrize(
    "outputs, message",
    [
        (
            {"y": np.ones((3,))},
            "Batched output tensor's 0th dimension does not equal the sum of the 0th dimension "
            "sizes of the input tensors (output 'y' has 3; expected 2)",
        ),
        ({"y": np.float32(1)}, "Batched output tensor has 0 dimensions (output 'y')"),
    ],
)
def test_bad_output_fails_the_batch(make_scheduler, outputs, message):
    scheduler = make_scheduler(lambda inputs: outputs, max_batch_size=2)
    with pytest.raises(RequestError) as info:
        scheduler.submit({"x": np.ones((2,))})
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.message == message


def test_mismatched_tasks_fail_with_internal(make_scheduler):
    scheduler = make_scheduler(
        Recorder(), max_batch_size=2, batch_timeout_micros=LONG_TIMEOUT_MICROS
    )
    outcomes = submit_in_order(scheduler, {"x": np.ones((1,))}, {"z": np.ones((1,))})
    for _, error in outcomes:
        assert error.code == grpc.StatusCode.INTERNAL
        assert error.message == "One or more tasks does not conform to batch signature"
    outcomes = submit_in_order(
        scheduler, {"x": np.ones((1,), np.float32)}, {"x": np.ones((1,), np.int64)}
    )
    for _, error in outcomes:
        assert error.code == grpc.StatusCode.INTERNAL
        assert error.message.startswith("Tensor concat operation failed:")
