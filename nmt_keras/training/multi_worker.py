"""Multi-worker training: `tf.distribute.MultiWorkerMirroredStrategy` from `TF_CONFIG`.

Every worker runs the same program with its own `TF_CONFIG`, e.g. for worker 1 of two::

    {"cluster": {"worker": ["host0:2222", "host1:2222"]}, "task": {"type": "worker", "index": 1}}

`model.fit` cannot train under this strategy with Keras 3.15 / TensorFlow 2.21 once the
cluster has two workers or more (keras-team/keras#20329, #20585), for two reasons in
`keras/src/backend/tensorflow/trainer.py`:

1. `_maybe_symbolic_build` averages the first batch over the workers with
   `strategy.reduce("MEAN", batch, axis=None)`. `Strategy.reduce` does not take a nested
   structure, and with several workers `CollectiveAllReduceExtended._reduce_to` passes the
   `({"source", "target"}, labels)` nest of `PerReplica` to the collective, which fails in
   `convert_to_tensor` ("Attempt to convert a value (...PerReplica...) with an unsupported
   type (<class 'dict'>) to a Tensor").
2. Each step's logs go through `reduce_per_replica(..., reduction="auto")`, which under
   multi-worker collectives calls `strategy.reduce("MEAN", log, axis=0)` on the scalar
   logs: "Invalid reduction dimension 0 for input with 0 dimensions". The reduction is
   hard-coded, so `model.distribute_reduction_method` does not avoid it.

`fit_distributed` is the loop of `model.fit` around the model's own `train_step` and
`test_step`, run in `strategy.run`; its logs are read from the metric variables, summed
over all replicas, and it keeps the workers in lock-step: they agree on stopping and on
the learning rate a callback sets, and start from the chief's state.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence

import keras
import tensorflow as tf

_TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host0:2222", "host1:2222"]}, "task": {"type": "worker", "index": 0}}'
)


def multi_worker_strategy() -> tf.distribute.MultiWorkerMirroredStrategy:
    """The strategy over the cluster of the `TF_CONFIG` environment variable.

    Create it at the start of the program, before other TensorFlow calls: it starts this
    worker's server and sets up collectives with the other workers.

    Returns:
        A `MultiWorkerMirroredStrategy` with one replica per local GPU, else one on the CPU.

    Raises:
        ValueError: `TF_CONFIG` is missing, not JSON, has no `cluster.worker` list, or its
            `task` names no task of the cluster (the message says which).
    """
    _check_tf_config(os.environ.get("TF_CONFIG"))
    return tf.distribute.MultiWorkerMirroredStrategy()


def _check_tf_config(text: str | None) -> None:
    """Raises a one-line `ValueError` naming what is wrong with `TF_CONFIG`."""
    if not text:
        raise ValueError(f"TF_CONFIG is not set: expected e.g. {_TF_CONFIG_EXAMPLE}")
    try:
        tf_config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"TF_CONFIG is not JSON ({error}): expected e.g. {_TF_CONFIG_EXAMPLE}"
        ) from None
    cluster = tf_config.get("cluster") if isinstance(tf_config, dict) else None
    workers = cluster.get("worker") if isinstance(cluster, dict) else None
    if not isinstance(workers, list) or not workers:
        raise ValueError(
            f"TF_CONFIG has no cluster.worker list of host:port addresses. Received: {text}"
        )
    task = tf_config.get("task")
    task_type = task.get("type") if isinstance(task, dict) else None
    if not isinstance(task_type, str) or task_type not in cluster:
        raise ValueError(
            f"TF_CONFIG task.type must be a job of its cluster ({', '.join(cluster)}). "
            f"Received: task={json.dumps(task)}"
        )
    task_index, tasks = task.get("index"), len(cluster[task_type])
    if type(task_index) is not int or not 0 <= task_index < tasks:
        raise ValueError(
            f"TF_CONFIG task.index must be an integer from 0 to {tasks - 1} for the {tasks} "
            f"{task_type} task(s) of its cluster. Received: task={json.dumps(task)}"
        )


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this worker is the chief, the one that writes the run directory.

    The chief is task 0 of the `chief` job when the cluster has one, else worker 0. A
    strategy without a cluster (one process) is its own chief.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief_job = "chief" in resolver.cluster_spec().jobs
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief_job


def chief_value(strategy: tf.distribute.Strategy, value: float) -> float:
    """The chief's `value`, on every worker (a collective: call it on all of them).

    Args:
        strategy: The strategy.
        value: This worker's number; float64 holds integers below 2**53 exactly.

    Returns:
        The chief's number.
    """
    (chief,) = _chief_values(strategy, [tf.constant(value, tf.float64)])
    return float(chief)


def agreed(strategy: tf.distribute.Strategy, value: float) -> bool:
    """Whether every worker holds the chief's `value` (a collective: call it on all)."""
    differs = float(chief_value(strategy, value) != value)
    return float(_all_reduce(strategy, "SUM", tf.constant(differs, tf.float64))) == 0.0


def fit_distributed(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    train_data: tf.data.Dataset,
    *,
    epochs: int,
    steps_per_epoch: int | None = None,
    validation_data: tf.data.Dataset | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    initial_epoch: int = 0,
    verbose: int = 2,
) -> keras.callbacks.History:
    """`model.fit` for a model compiled under `strategy.scope()`, on one or many workers.

    Calls the callbacks as `fit` does, with the same log names (`loss`, the compiled
    metrics, `val_`-prefixed at the epoch's end), honours `model.stop_training` and the
    `model._initial_epoch` that `keras.callbacks.BackupAndRestore` restores. Every
    worker reports the same numbers and ends with the same weights:

    - batch and epoch logs are the metrics of all replicas together (the metric
      variables are summed over the replicas when read);
    - training stops on every worker when a callback stops it on any (a wall-clock
      budget runs out at slightly different times on different machines);
    - before each step the workers agree on the optimizer's learning rate (their mean),
      so a callback that sets it from a local clock cannot make them diverge;
    - after `on_train_begin` every worker takes the chief's weights, optimizer state and
      initial epoch, so only the chief needs a backup to resume from.

    Data: every worker builds the same dataset, from the same files with the same
    shuffle seed, so element i is the same global batch on every worker. The dataset is
    auto-sharded by DATA: each global batch of `b` pairs is split into
    `num_replicas_in_sync` slices, one per replica, so keep `b` divisible by
    `num_replicas_in_sync` (`trainer._divisible_batches`); every worker still reads and
    tokenizes every pair (sharding by FILE would need as many shards as workers and
    passes of equal length on every worker). Keras divides the loss of
    each replica by `num_replicas_in_sync` (when it reduces the loss itself) and the
    optimizer sums the gradients of all replicas, so an update is that of the global
    batch.

    Args:
        model: A built Keras model, compiled under `strategy.scope()`.
        strategy: The strategy it was compiled under, e.g. `multi_worker_strategy()`.
        train_data: Batches `({"source": int32 (b, s), "target": int32 (b, t)}, labels
            int32 (b, t))`, the same on every worker; `b`, `s` and `t` may change from
            batch to batch.
        epochs: Index of the last epoch + 1, as in `fit`.
        steps_per_epoch: Steps of an epoch, drawn from one iterator kept across epochs
            (the data should repeat), or None for one pass over `train_data` per epoch.
        validation_data: Batches like `train_data`, evaluated after every epoch.
        callbacks: Keras callbacks. Those that write files must write into a directory
            of their own on the workers that are not the chief (see `is_chief`).
        initial_epoch: Epoch to start from, unless a callback sets `model._initial_epoch`.
        verbose: 0 silent, 1 progress bar, 2 one line per epoch.

    Returns:
        The `History` of this call.
    """
    with strategy.scope():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_history=True,
        add_progbar=verbose != 0,
        model=model,
        epochs=epochs,
        steps=steps_per_epoch,
        verbose=verbose,
    )
    loop = _Loop(model, strategy, callback_list)
    distributed_train = strategy.experimental_distribute_dataset(_shard_by_data(train_data))
    model.stop_training = False
    callback_list.on_train_begin()
    first_epoch = _adopt_chief_state(
        model, strategy, getattr(model, "_initial_epoch", None) or initial_epoch
    )
    kept_iterator = None if steps_per_epoch is None else iter(distributed_train)
    epoch_logs = None
    for epoch in range(first_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        iterator = iter(distributed_train) if kept_iterator is None else kept_iterator
        loop.train_epoch(iterator, steps_per_epoch)
        epoch_logs = _metric_logs(model)
        if validation_data is not None:
            epoch_logs.update(loop.validate(validation_data))
        callback_list.on_epoch_end(epoch, epoch_logs)
        if loop.stop_agreed():
            break
    if epochs > 0:
        model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(epoch_logs)
    return model.history


class _Loop:
    """The steps of `fit_distributed` and the callbacks around them.

    Args:
        model: The compiled model.
        strategy: Its strategy.
        callback_list: The callbacks of the run.
    """

    def __init__(self, model, strategy, callback_list):
        self.model = model
        self.strategy = strategy
        self.callback_list = callback_list
        self.train_on_batch = _step_function(model, strategy, model.train_step, train=True)
        self.test_on_batch = _step_function(model, strategy, model.test_step, train=False)
        self.sum_over_replicas = tf.function(lambda values: _all_reduce(strategy, "SUM", values))

    def train_epoch(self, iterator, steps_per_epoch: int | None) -> None:
        """Runs the batches of an epoch, until `steps_per_epoch`, the data's end or a stop.

        The distributed iterator runs out on every worker at the same batch. Running out
        before `steps_per_epoch` steps stops training, as in `fit`.
        """
        batches = (
            iterator if steps_per_epoch is None else itertools.islice(iterator, steps_per_epoch)
        )
        steps = 0
        for step, batch in enumerate(batches):
            self.callback_list.on_train_batch_begin(step)
            logs = self.train_on_batch(batch)
            steps = step + 1
            self.callback_list.on_train_batch_end(step, logs)
            if self.stop_agreed():
                return
        if steps_per_epoch is not None and steps < steps_per_epoch:
            self.model.stop_training = True

    def validate(self, validation_data: tf.data.Dataset) -> dict[str, float]:
        """Evaluates one pass over `validation_data`; returns `val_`-prefixed logs."""
        self.model.reset_metrics()
        self.callback_list.on_test_begin()
        batches = self.strategy.experimental_distribute_dataset(_shard_by_data(validation_data))
        for step, batch in enumerate(batches):
            self.callback_list.on_test_batch_begin(step)
            self.callback_list.on_test_batch_end(step, self.test_on_batch(batch))
        logs = _metric_logs(self.model)
        self.callback_list.on_test_end(logs)
        return {f"val_{name}": value for name, value in logs.items()}

    def stop_agreed(self) -> bool:
        """Sets and returns `model.stop_training`: whether a callback stopped any worker."""
        votes = self.sum_over_replicas(tf.constant(int(bool(self.model.stop_training))))
        self.model.stop_training = int(votes) > 0
        return self.model.stop_training


def _shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset`, auto-sharded by DATA: the replicas split every global batch."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _step_function(model, strategy, step, *, train: bool):
    """A `tf.function(batch) -> logs` running `step` on every replica's slice of `batch`.

    The batch comes from a distributed iterator outside the function: a `get_next`
    inside it would let ops that do not depend on the batch (the optimizer's step
    counter) run once more when the data runs out.

    Args:
        model: The compiled model.
        strategy: Its strategy.
        step: `model.train_step` or `model.test_step`.
        train: Whether the workers first agree on the learning rate.

    Returns:
        The function, retraced only until batch shapes generalise to `None` dimensions;
        it returns the `{name: float32 ()}` metrics of all replicas.
    """

    @tf.function(reduce_retracing=True)
    def run_on_batch(batch):
        if train:
            _agree_on_learning_rate(model.optimizer, strategy)
        strategy.run(step, args=(batch,))
        return model.get_metrics_result()

    return run_on_batch


def _agree_on_learning_rate(optimizer: keras.optimizers.Optimizer, strategy) -> None:
    """Sets a constant learning rate to its mean over the workers (schedules agree already)."""
    learning_rate = optimizer.learning_rate
    if isinstance(learning_rate, keras.Variable):
        mean = _all_reduce(strategy, "MEAN", tf.convert_to_tensor(learning_rate.value))
        learning_rate.assign(mean)


def _all_reduce(strategy, reduce_op: str, values):
    """Reduces a nest of tensors, each worker's own values, over all replicas.

    Args:
        strategy: The strategy.
        reduce_op: `"SUM"` or `"MEAN"`.
        values: Tensors of the same shapes and dtype on every worker.

    Returns:
        The reduced nest, the same on every worker.
    """

    def reduce_in_replica(replica_values):
        # Copies on the replica's device: the collective is placed by its inputs' devices.
        on_device = tf.nest.map_structure(tf.identity, replica_values)
        return tf.distribute.get_replica_context().all_reduce(reduce_op, on_device)

    reduced = strategy.run(reduce_in_replica, args=(values,))
    return strategy.experimental_local_results(reduced)[0]


def _adopt_chief_state(model: keras.Model, strategy, initial_epoch: int) -> int:
    """Copies the chief's weights and optimizer state to every worker.

    Returns:
        The chief's `initial_epoch`.
    """
    variables = [*model.weights, *model.optimizer.variables]
    values = [variable.value for variable in variables]
    *chief_state, chief_epoch = _chief_values(
        strategy, [*values, tf.constant(initial_epoch, tf.float64)]
    )
    with strategy.scope():
        for variable, value in zip(variables, chief_state, strict=True):
            variable.assign(value)
    return int(chief_epoch)


def _chief_values(strategy, values: Sequence[tf.Tensor]) -> list[tf.Tensor]:
    """The chief's values of `values`, on every worker.

    The values travel as float64, which holds float32 values and counts below 2**53
    exactly, and come back in their own dtypes.
    """

    @tf.function
    def from_chief(values):
        def keep_if_chief(replica_values):
            context = tf.distribute.get_replica_context()
            chief = context.replica_id_in_sync_group == 0
            kept = [tf.where(chief, value, tf.zeros_like(value)) for value in replica_values]
            return context.all_reduce("SUM", kept)

        reduced = strategy.run(keep_if_chief, args=(values,))
        return strategy.experimental_local_results(reduced)[0]

    wide = from_chief([tf.cast(value, tf.float64) for value in values])
    return [tf.cast(chief, value.dtype) for chief, value in zip(wide, values, strict=True)]


def _metric_logs(model: keras.Model) -> dict[str, float]:
    """The model's metrics over all replicas, as Python floats."""
    return {name: float(value) for name, value in model.get_metrics_result().items()}
