"""Server-side request batching, as `tensorflow_model_server --enable_batching` does it.

Mirrors three pieces of TensorFlow Serving:

- The `--batching_parameters_file`: a text-format `tensorflow.serving.BatchingParameters`
  (tensorflow_serving/servables/tensorflow/session_bundle_config.proto), parsed with the
  real field names, numbers and wrapper types, so a file that the real server accepts
  parses here and unknown fields fail with the parser's line and column. Defaults are
  those of `SharedBatchScheduler::Options` / `QueueOptions` (1000 rows, 0 microseconds,
  10 batches, one thread per schedulable CPU).
- The queue of `SharedBatchScheduler` (tensorflow/core/kernels/batching_util/
  shared_batch_scheduler.h): a FIFO of batches whose back-most one is open. A task joins
  the open batch if the sum of dimension-0 sizes stays within `max_batch_size`, else
  that batch is closed and a new one opened, unless `max_enqueued_batches` batches
  (the open one included) are already waiting, which fails with UNAVAILABLE. A free
  batch thread takes the front closed batch, or closes the open batch once it is full,
  `batch_timeout_micros` have passed since its first task, or the scheduler is closing.
- `BatchingSession::ProcessBatch` (tensorflow_serving/batching/batching_session.cc and
  batching_util.cc): inputs are concatenated along dimension 0, optionally after
  padding each task's tensor along its other dimensions with its first element
  (`pad_variable_length_inputs`), the batch is padded up to the next
  `allowed_batch_sizes` entry by repeating the first row of the last task, the model
  runs once, and every output is split back along dimension 0 (padding rows dropped).
  Error codes and messages are the real server's.

Differences from TF Serving:

- Each `BatchScheduler` (one per signature of a model version) owns its
  `num_batch_threads` threads; the real server shares one pool of that many threads
  among the queues of all models and signatures.
- `enable_large_batch_splitting` is refused (tasks larger than `max_batch_size` fail with
  INVALID_ARGUMENT instead of being split); `thread_pool_name` and
  `max_execution_batch_size` are accepted and ignored (threads are named after the
  scheduler; the real server also ignores the latter without splitting).
- A task with zero rows is scheduled like any other (the real queue only schedules
  batches with a positive total size); a batch made only of such tasks is not padded to
  an allowed batch size, since there is no row to repeat.
- Per-request deadlines (`RunOptions.timeout_in_ms`) are not applied while queued.
- Idle batch threads wait on a condition variable until the open batch's deadline
  instead of polling every millisecond.
- Tensors of one name with different ranks (padding on) or dtypes get messages of our
  own; the real server's signature checks normally rule both out before batching.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import os
import threading
import time
from collections.abc import Callable, Mapping

import grpc
import numpy as np
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)

from nmt_keras.serving.errors import (
    RequestError,
    ServerError,
    failed_precondition,
    invalid_argument,
)

Tensors = dict[str, np.ndarray]

# Fields of tensorflow.serving.BatchingParameters (session_bundle_config.proto): name,
# number, scalar type or google.protobuf wrapper message, label.
_Field = descriptor_pb2.FieldDescriptorProto
_PROTO_FIELDS = (
    ("max_batch_size", 1, "Int64Value", _Field.LABEL_OPTIONAL),
    ("batch_timeout_micros", 2, "Int64Value", _Field.LABEL_OPTIONAL),
    ("max_enqueued_batches", 3, "Int64Value", _Field.LABEL_OPTIONAL),
    ("num_batch_threads", 4, "Int64Value", _Field.LABEL_OPTIONAL),
    ("thread_pool_name", 5, "StringValue", _Field.LABEL_OPTIONAL),
    ("allowed_batch_sizes", 6, _Field.TYPE_INT64, _Field.LABEL_REPEATED),
    ("pad_variable_length_inputs", 7, _Field.TYPE_BOOL, _Field.LABEL_OPTIONAL),
    ("enable_large_batch_splitting", 8, "BoolValue", _Field.LABEL_OPTIONAL),
    ("max_execution_batch_size", 9, "Int64Value", _Field.LABEL_OPTIONAL),
)
# Wrapper fields copied to `BatchingParameters` when set.
_WRAPPED_FIELDS = (
    "max_batch_size",
    "batch_timeout_micros",
    "max_enqueued_batches",
    "num_batch_threads",
)
# BatchingSession pads variable-length inputs of these ranks only (batching_util.cc).
_MAX_PADDED_RANK = 6


def _batching_parameters_proto() -> type:
    """Builds the `tensorflow.serving.BatchingParameters` message class.

    The tensorflow-serving-api package does not ship session_bundle_config.proto, so the
    message is described here and registered in a private descriptor pool (next to a
    copy of google/protobuf/wrappers.proto), leaving the default pool untouched.

    Returns:
        The generated message class.
    """
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    file = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=[wrappers.name],
    )
    message = file.message_type.add(name="BatchingParameters")
    for name, number, kind, label in _PROTO_FIELDS:
        field = message.field.add(name=name, number=number, label=label)
        if isinstance(kind, str):
            field.type, field.type_name = _Field.TYPE_MESSAGE, f".google.protobuf.{kind}"
        else:
            field.type = kind
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    )


# The message class of `--batching_parameters_file` (text format).
BatchingParametersProto = _batching_parameters_proto()


def _max_parallelism() -> int:
    """The CPUs this process may run on (TensorFlow's `port::MaxParallelism()`)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """The batching options of `--batching_parameters_file` that this scheduler applies.

    Attributes:
        max_batch_size: Most rows (sum of dimension-0 sizes) in one batch, and in one
            task.
        batch_timeout_micros: How long the first task of a batch waits for more before
            the batch runs anyway.
        max_enqueued_batches: Batches allowed to wait (the open one included) before new
            tasks fail with UNAVAILABLE; 0 acts as 1, as in `SharedBatchScheduler`.
        num_batch_threads: Threads running batches, i.e. batches run in parallel.
        allowed_batch_sizes: If set, increasing sizes ending with `max_batch_size`; each
            batch is padded up to the smallest one that holds it.
        pad_variable_length_inputs: Whether inputs whose non-batch dimensions differ
            between tasks are padded (with each tensor's first element) instead of
            rejected.
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = dataclasses.field(default_factory=_max_parallelism)
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    def __post_init__(self) -> None:
        _check_int("max_batch_size", self.max_batch_size, 1)
        _check_int("batch_timeout_micros", self.batch_timeout_micros, 0)
        _check_int("max_enqueued_batches", self.max_enqueued_batches, 0)
        _check_int("num_batch_threads", self.num_batch_threads, 1)
        if not isinstance(self.pad_variable_length_inputs, bool):
            raise ValueError(
                "Expected pad_variable_length_inputs to be a bool. "
                f"Received: pad_variable_length_inputs={self.pad_variable_length_inputs!r}"
            )
        sizes = self.allowed_batch_sizes
        if not isinstance(sizes, tuple) or not all(
            isinstance(size, int) and not isinstance(size, bool) for size in sizes
        ):
            raise ValueError(
                f"Expected allowed_batch_sizes to be a tuple of ints. "
                f"Received: allowed_batch_sizes={sizes!r}"
            )
        if sizes and (sizes[0] < 1 or any(a >= b for a, b in itertools.pairwise(sizes))):
            raise ValueError(
                "Expected allowed_batch_sizes to be positive and increasing. "
                f"Received: allowed_batch_sizes={sizes}"
            )
        if sizes and sizes[-1] != self.max_batch_size:
            raise ValueError(
                "Expected the last entry of allowed_batch_sizes to match "
                f"max_batch_size={self.max_batch_size}. Received: allowed_batch_sizes={sizes}"
            )


def _check_int(name: str, value: object, minimum: int) -> None:
    """Raises ValueError unless `value` is an int (not a bool) >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"Expected {name} to be an integer >= {minimum}. Received: {name}={value!r}"
        )


def read_batching_parameters(path: str) -> BatchingParameters:
    """Parses the text-proto BatchingParameters file (same format as TF Serving's).

    Args:
        path: A `--batching_parameters_file`, e.g. `max_batch_size { value: 64 }`.

    Returns:
        The parameters; fields the file leaves out keep TF Serving's defaults.

    Raises:
        ServerError: The file is missing, does not parse (the message has the parser's
            line and column), has invalid values (named), or enables
            `enable_large_batch_splitting`, which is not supported here.
    """
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as error:
        raise ServerError(
            f"Cannot read batching parameters file {path}: {error.strerror}"
        ) from error
    except UnicodeDecodeError as error:
        raise ServerError(f"Cannot read batching parameters file {path}: {error}") from error
    message = BatchingParametersProto()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as error:
        raise ServerError(f"Invalid batching parameters file {path}: {error}") from error
    if message.enable_large_batch_splitting.value:
        raise ServerError(
            f"Invalid batching parameters file {path}: enable_large_batch_splitting is not "
            "supported by this server (tasks larger than max_batch_size are rejected, not "
            "split); remove it or set it to false."
        )
    fields = {
        name: getattr(message, name).value for name in _WRAPPED_FIELDS if message.HasField(name)
    }
    try:
        return BatchingParameters(
            **fields,
            allowed_batch_sizes=tuple(message.allowed_batch_sizes),
            pad_variable_length_inputs=message.pad_variable_length_inputs,
        )
    except ValueError as error:
        raise ServerError(f"Invalid batching parameters file {path}: {error}") from error


class _Task:
    """One `submit` call: its inputs, its size and, once its batch ran, its result."""

    def __init__(self, inputs: Mapping[str, np.ndarray]) -> None:
        self.inputs = {name: np.asarray(value) for name, value in inputs.items()}
        self.size = _task_size(self.inputs)
        self.done = threading.Event()
        self.outputs: Tensors = {}
        self.error: BaseException | None = None


def _task_size(inputs: Tensors) -> int:
    """The common dimension-0 size of a task's inputs (`ComputeTensorBatchSize`).

    Raises:
        RequestError: INVALID_ARGUMENT with the real server's message.
    """
    if not inputs:
        raise invalid_argument("Batching Run() must have at least one input tensor")
    if any(value.ndim == 0 for value in inputs.values()):
        raise invalid_argument("Batching Run() input tensors must have at least one dimension")
    sizes = {value.shape[0] for value in inputs.values()}
    if len(sizes) > 1:
        raise invalid_argument("Batching Run() input tensors must have equal 0th-dimension size")
    return sizes.pop()


class _Batch:
    """Tasks merged into one run; `start` is when the first one arrived."""

    def __init__(self) -> None:
        self.tasks: list[_Task] = []
        self.size = 0
        self.start = 0.0

    def add(self, task: _Task) -> None:
        if not self.tasks:
            self.start = time.monotonic()
        self.tasks.append(task)
        self.size += task.size


class BatchScheduler:
    """Merges concurrent calls of one signature into batches and runs each batch once.

    Args:
        run: Runs the signature on merged inputs and returns outputs whose dimension 0
            is the merged batch size.
        parameters: Batch sizes, timeout, queue length, threads and padding.
        name: Prefix of the batch threads' names (e.g. model, version and signature).
    """

    def __init__(
        self,
        run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
        parameters: BatchingParameters,
        name: str = "",
    ) -> None:
        self._run = run
        self._parameters = parameters
        self._max_enqueued_batches = max(1, parameters.max_enqueued_batches)
        self._timeout_seconds = parameters.batch_timeout_micros / 1e6
        self._condition = threading.Condition()
        # FIFO of batches; the back one is open, the others are closed and wait for a thread.
        self._batches: collections.deque[_Batch] = collections.deque([_Batch()])
        self._closed = False
        prefix = f"{name}_batch_threads" if name else "batch_threads"
        self._threads = [
            threading.Thread(target=self._thread_loop, name=f"{prefix}_{index}", daemon=True)
            for index in range(parameters.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Queues one task and blocks until its slice of the batch output is ready.

        Args:
            inputs: One array per input name, all with the same dimension-0 size.

        Returns:
            One array per output, holding this task's rows of the batch output (inner
            dimensions are those of the whole batch).

        Raises:
            RequestError: INVALID_ARGUMENT for a malformed or oversized task,
                UNAVAILABLE when the queue is full or the scheduler is closed, or the
                error that merging or splitting the batch met.
            Exception: Whatever `run` raised for this task's batch.
        """
        task = _Task(inputs)
        with self._condition:
            if self._closed:
                raise RequestError(
                    grpc.StatusCode.UNAVAILABLE,
                    "The batch scheduler to which this task was submitted is closed",
                )
            self._enqueue(task)
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def num_enqueued_tasks(self) -> int:
        """Tasks waiting in the queue, not yet taken by a batch thread."""
        with self._condition:
            return sum(len(batch.tasks) for batch in self._batches)

    def close(self) -> None:
        """Runs the tasks already queued, stops the batch threads and refuses new tasks."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        for thread in self._threads:
            thread.join()

    def _enqueue(self, task: _Task) -> None:
        """Adds a task to the open batch, or to a new one (`Queue::Schedule`); locked."""
        limit = self._parameters.max_batch_size
        if task.size > limit:
            raise invalid_argument(
                f"Task size {task.size} is larger than maximum input batch size {limit}"
            )
        open_batch = self._batches[-1]
        if open_batch.size + task.size > limit:
            if len(self._batches) >= self._max_enqueued_batches:
                raise RequestError(
                    grpc.StatusCode.UNAVAILABLE,
                    "The batch scheduling queue to which this task was submitted is full; "
                    f"currently {len(self._batches)} batches enqueued and "
                    f"max_enqueued_batches is {self._max_enqueued_batches}",
                )
            open_batch = _Batch()
            self._batches.append(open_batch)
        open_batch.add(task)
        # Wake idle threads when a batch deadline starts or a batch becomes schedulable.
        if len(open_batch.tasks) == 1 or open_batch.size >= limit:
            self._condition.notify_all()

    def _take_batch(self) -> _Batch | None:
        """Returns the next batch to run, or None if none is due (`ScheduleBatch`); locked."""
        open_batch = self._batches[-1]
        if (
            len(self._batches) == 1
            and open_batch.tasks
            and (
                self._closed
                or open_batch.size >= self._parameters.max_batch_size
                or time.monotonic() >= open_batch.start + self._timeout_seconds
            )
        ):
            self._batches.append(_Batch())
        if len(self._batches) >= 2:
            return self._batches.popleft()
        return None

    def _thread_loop(self) -> None:
        """Body of a batch thread: takes due batches and runs them until closed and idle."""
        while True:
            with self._condition:
                batch = self._take_batch()
                while batch is None:
                    open_batch = self._batches[-1]
                    if not open_batch.tasks:
                        if self._closed:
                            return
                        self._condition.wait()
                    else:
                        deadline = open_batch.start + self._timeout_seconds
                        self._condition.wait(max(0.0, deadline - time.monotonic()))
                    batch = self._take_batch()
            self._process(batch)

    def _process(self, batch: _Batch) -> None:
        """Merges, runs and splits one batch, then wakes its tasks' callers."""
        tasks = batch.tasks
        try:
            inputs, padding = _merge_inputs(tasks, self._parameters)
            outputs = self._run(inputs)
            results = _split_outputs(outputs, [task.size for task in tasks], padding)
        except BaseException as error:  # Every caller re-raises it from `submit`.
            for task in tasks:
                task.error = error
                task.done.set()
            return
        for task, result in zip(tasks, results, strict=True):
            task.outputs = result
            task.done.set()


def _merge_inputs(tasks: list[_Task], parameters: BatchingParameters) -> tuple[Tensors, int]:
    """Concatenates the tasks' inputs along dimension 0 (`MergeInputTensors`).

    Args:
        tasks: The tasks of one batch, in arrival order.
        parameters: Padding options and allowed batch sizes.

    Returns:
        The merged inputs and the number of padding rows appended to reach an allowed
        batch size.

    Raises:
        RequestError: The tasks' tensors cannot be merged (the real server's code and
            message where it has one).
    """
    names = tasks[0].inputs.keys()
    if any(task.inputs.keys() != names for task in tasks):
        raise RequestError(
            grpc.StatusCode.INTERNAL, "One or more tasks does not conform to batch signature"
        )
    size = sum(task.size for task in tasks)
    allowed = parameters.allowed_batch_sizes
    padded_size = next((option for option in allowed if option >= size), size) if size else 0
    padding = padded_size - size
    merged: Tensors = {}
    for name in names:
        tensors = [task.inputs[name] for task in tasks]
        dtypes = {tensor.dtype for tensor in tensors}
        if len(dtypes) > 1:
            raise RequestError(
                grpc.StatusCode.INTERNAL,
                f"Tensor concat operation failed: tensors with name '{name}' from different "
                f"tasks have different dtypes: {', '.join(sorted(map(str, dtypes)))}",
            )
        if parameters.pad_variable_length_inputs:
            tensors = _pad_to_common_shape(name, tensors)
        elif any(tensor.shape[1:] != tensors[0].shape[1:] for tensor in tensors):
            raise failed_precondition(
                f"Tensors with name '{name}' from different tasks have different shapes and "
                "padding is turned off. Set pad_variable_length_inputs to true, or ensure "
                "that all tensors with the same name have equal dimensions starting with "
                "the first dim."
            )
        if padding:
            # The first row of the last task with rows, as BatchingSession pads.
            row = next(tensor for tensor in reversed(tensors) if len(tensor))[:1]
            tensors.append(np.repeat(row, padding, axis=0))
        merged[name] = np.concatenate(tensors, axis=0)
    return merged, padding


def _pad_to_common_shape(name: str, tensors: list[np.ndarray]) -> list[np.ndarray]:
    """Pads tensors along dimensions 1+ to their common maximum (`AddPadding`).

    Each tensor is padded at the end of every non-batch dimension with its own first
    element, as `PadTensor` in batching_util.cc does.

    Args:
        name: The input name, for error messages.
        tensors: One tensor per task, same rank.

    Returns:
        The tensors, each of shape `(own dim 0, *max of dims 1+)`.

    Raises:
        RequestError: INVALID_ARGUMENT for tensors that cannot be padded.
    """
    ranks = {tensor.ndim for tensor in tensors}
    if len(ranks) > 1:
        raise invalid_argument(
            f"Tensors with name '{name}' from different tasks have different ranks "
            f"({', '.join(map(str, sorted(ranks)))}) and cannot be padded to one shape."
        )
    if ranks.pop() > _MAX_PADDED_RANK:
        raise invalid_argument("Only tensors with rank from 1 to 6 can be padded.")
    inner = tuple(
        max(sizes) for sizes in zip(*(tensor.shape[1:] for tensor in tensors), strict=True)
    )
    padded = []
    for tensor in tensors:
        shape = (tensor.shape[0], *inner)
        if tensor.size == int(np.prod(shape)):
            padded.append(tensor.reshape(shape))
            continue
        if tensor.size == 0:
            raise invalid_argument("Got empty tensor in batch of non-empty tensors.")
        output = np.full(shape, tensor.flat[0], dtype=tensor.dtype)
        output[tuple(slice(0, size) for size in tensor.shape)] = tensor
        padded.append(output)
    return padded


def _split_outputs(
    outputs: Mapping[str, np.ndarray], task_sizes: list[int], padding: int
) -> list[Tensors]:
    """Splits each output along dimension 0 by task (`SplitOutputTensors`).

    Args:
        outputs: The batch outputs returned by `run`.
        task_sizes: The tasks' dimension-0 sizes, in batch order.
        padding: Padding rows at the end of the batch, dropped.

    Returns:
        One dict of outputs per task.

    Raises:
        RequestError: FAILED_PRECONDITION (the real server's message, plus the output's
            name) for an output that is a scalar or has the wrong dimension-0 size.
    """
    expected = sum(task_sizes) + padding
    bounds = np.cumsum([0, *task_sizes]).tolist()
    results: list[Tensors] = [{} for _ in task_sizes]
    for name, value in outputs.items():
        value = np.asarray(value)
        if value.ndim == 0:
            raise failed_precondition(f"Batched output tensor has 0 dimensions (output '{name}')")
        if value.shape[0] != expected:
            raise failed_precondition(
                "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                f"dimension sizes of the input tensors (output '{name}' has "
                f"{value.shape[0]}; expected {expected})"
            )
        for result, (start, stop) in zip(results, itertools.pairwise(bounds), strict=True):
            result[name] = value[start:stop]
    return results
