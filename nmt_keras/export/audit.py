"""Audit of a SavedModel: will stock TensorFlow Serving load it and run it?

Two checks. The op walk: stock TF Serving runs core TensorFlow ops and the
tensorflow-text `ops_lib` (see docs/TF_SERVING.md), so `audit_saved_model` parses
`saved_model.pb` and walks the nodes of every meta graph and of every function in their
libraries, naming each op the server lacks, even one this process happens to register.
The run: the version is loaded through TensorFlow's C++ session loader, the path TF
Serving takes (`nmt_keras.serving.session_bundle`), and its warmup records are replayed
through the local server's Predict, as TF Serving does at load time; without warmup
records, every signature runs on a sample request (`sample_requests`). A model
that passes both is one the real loader runs, not only one whose op names look right.
"""

from __future__ import annotations

import collections
import dataclasses
import os

import numpy as np
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from nmt_keras.errors import NmtKerasError
from nmt_keras.serving import warmup
from nmt_keras.serving.predict import PREDICT_METHOD
from nmt_keras.serving.servable import Servable
from nmt_keras.serving.session_bundle import SessionBundle, SessionLoadError
from nmt_keras.serving.signatures import TEXT_INPUT
from nmt_keras.serving.tensors import NUMPY_DTYPES, from_ndarray

SAVED_MODEL_FILE = "saved_model.pb"

#: Ops that never run on stock TF Serving: Python callbacks.
PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})

#: tensorflow-text ops missing from the tf-text that TF Serving 2.13-2.19 link (2.12.1).
NEWER_TF_TEXT_OPS = frozenset(
    {"TFText>RoundRobinTrim", "TFText>RoundRobinGenerateMasks", "TFText>Utf8Binarize"}
)

#: Op-name prefixes of libraries the stock server never links, with the reason.
DENIED_PREFIXES = (
    ("Xla", "XLA op: TF Serving disables XLA"),
    ("Addons>", "tensorflow-addons op: not linked in TF Serving"),
    ("IO>", "tensorflow-io op: not linked in TF Serving"),
)

#: Function attribute set by `tf.function(jit_compile=True)`.
XLA_MUST_COMPILE = "_XlaMustCompile"

#: Where a node is when it is in a meta graph's top-level graph rather than a function.
TOP_LEVEL = "<graph>"


class AuditError(NmtKerasError, ValueError):
    """A SavedModel uses an op that stock TensorFlow Serving cannot run."""


@dataclasses.dataclass(frozen=True)
class Violation:
    """One op (or function attribute) that stock TF Serving cannot run.

    Attributes:
        op: The op type, e.g. `EagerPyFunc`, or `_XlaMustCompile` for a jit-compiled function.
        function: The library function containing it, or `<graph>` for a top-level node.
        node: The node name (empty for a function attribute).
        reason: Why the server cannot run it.
    """

    op: str
    function: str
    node: str
    reason: str

    def __str__(self) -> str:
        where = f"node {self.node!r} in {self.function}" if self.node else self.function
        return f"{self.op} ({where}): {self.reason}"


@dataclasses.dataclass(frozen=True)
class AuditReport:
    """What a SavedModel's graphs use.

    Attributes:
        path: The SavedModel directory.
        op_counts: Op type -> number of nodes of that type (calls of library functions are
            not ops and are not counted).
        functions: Names of the library functions.
        violations: Everything that stock TF Serving cannot run, in graph order.
        requests_run: Requests run through the session loader (the warmup records, else
            `sample_requests`); 0 when it was not run.
        load_error: Why the session loader could not load or run the model (one line
            naming the missing op or variable), or None.
    """

    path: str
    op_counts: dict[str, int]
    functions: tuple[str, ...]
    violations: tuple[Violation, ...]
    requests_run: int = 0
    load_error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the SavedModel has no violation and the session loader ran it."""
        return not self.violations and self.load_error is None

    def check(self) -> AuditReport:
        """Raises `AuditError` naming the first problem; returns `self` when clean."""
        if self.violations:
            first = self.violations[0]
            more = len(self.violations) - 1
            suffix = f" (and {more} more violation{'s' if more > 1 else ''})" if more else ""
            raise AuditError(
                f"SavedModel {self.path} cannot run on stock TF Serving: {first}{suffix}"
            )
        if self.load_error is not None:
            raise AuditError(f"SavedModel {self.path} cannot run on TF Serving: {self.load_error}")
        return self

    def summary(self) -> str:
        """Multi-line text: ops with counts, then violations (or `OK`)."""
        lines = [f"SavedModel: {self.path}", f"functions: {len(self.functions)}", "ops:"]
        width = max((len(op) for op in self.op_counts), default=0)
        lines += [f"  {op:<{width}}  {count}" for op, count in sorted(self.op_counts.items())]
        if self.violations:
            lines.append(f"violations: {len(self.violations)}")
            lines += [f"  {violation}" for violation in self.violations]
        else:
            lines.append("OK: only ops that stock TensorFlow Serving runs")
        if self.load_error is not None:
            lines.append(f"C++ session loader: FAILED: {self.load_error}")
        elif self.requests_run:
            lines.append(
                f"OK: TensorFlow's C++ session loader loads it and runs "
                f"{self.requests_run} requests"
            )
        return "\n".join(lines)


def _registered_op(op: str) -> bool | None:
    """Whether `op` is registered in this process (core TF + tensorflow-text); None if unknown."""
    try:
        import tensorflow_text  # noqa: F401  (registers the TFText ops)
        from tensorflow.python.framework import op_def_registry
    except ImportError:  # pragma: no cover
        return None
    return op_def_registry.get(op) is not None


def _op_reason(op: str) -> str | None:
    """Why stock TF Serving cannot run op type `op`, or None when it can."""
    if op in PYTHON_OPS:
        return "Python function op (tf.py_function / tf.numpy_function): no Python in TF Serving"
    if op in NEWER_TF_TEXT_OPS:
        return "tensorflow-text op missing before TF Serving 2.20"
    for prefix, reason in DENIED_PREFIXES:
        if op.startswith(prefix):
            return reason
    if _registered_op(op) is False:
        return "not a core TensorFlow or tensorflow-text op"
    return None


def _must_compile(attrs) -> bool:
    """Whether an attr map (FunctionDef.attr or NodeDef.attr) has `_XlaMustCompile: true`."""
    return XLA_MUST_COMPILE in attrs and attrs[XLA_MUST_COMPILE].b


def read_saved_model(path: str | os.PathLike) -> saved_model_pb2.SavedModel:
    """Parses `path/saved_model.pb`.

    Raises:
        FileNotFoundError: If `path` has no `saved_model.pb`.
    """
    file = os.path.join(os.fspath(path), SAVED_MODEL_FILE)
    if not os.path.isfile(file):
        raise FileNotFoundError(f"Expected a SavedModel directory. Missing: {file}")
    saved_model = saved_model_pb2.SavedModel()
    with open(file, "rb") as f:
        saved_model.ParseFromString(f.read())
    return saved_model


def sample_requests(
    signature_defs: dict[str, meta_graph_pb2.SignatureDef],
) -> list[prediction_log_pb2.PredictionLog]:
    """One request per signature, for a model without warmup records.

    Only predict signatures are sampled (not TensorFlow's `__saved_model_init_op`). One
    whose only input is `text` gets `warmup.DEFAULT_WARMUP_BATCHES`; any other gets one
    row of zeros (empty strings) shaped by its SignatureDef, unknown sizes 1.
    """
    predict = {
        name: signature
        for name, signature in sorted(signature_defs.items())
        if signature.method_name == PREDICT_METHOD
    }
    text = [name for name, signature in predict.items() if set(signature.inputs) == {TEXT_INPUT}]
    logs = warmup.make_warmup_requests(signature_names=text)
    for name, signature in predict.items():
        if name in text:
            continue
        request = predict_pb2.PredictRequest()
        request.model_spec.signature_name = name
        for alias, info in signature.inputs.items():
            dims = info.tensor_shape.dim if not info.tensor_shape.unknown_rank else [None]
            shape = [1 if dim is None or dim.size < 0 else dim.size for dim in dims]
            if info.dtype == types_pb2.DT_STRING:
                array = np.full(shape, b"", dtype=object)
            else:
                array = np.zeros(shape, dtype=NUMPY_DTYPES.get(info.dtype, np.float32))
            request.inputs[alias].CopyFrom(from_ndarray(array, info.dtype))
        logs.append(
            prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
        )
    return logs


def run_in_session(path: str) -> int:
    """Loads a SavedModel with the C++ session loader and runs requests through Predict.

    The requests are the warmup records when there are any (as TF Serving replays them),
    else `sample_requests`.

    Returns:
        The number of requests run.

    Raises:
        SessionLoadError: If the loader cannot load the model.
        WarmupError: If a request fails, naming it and TensorFlow's reason.
    """
    servable = Servable(os.path.basename(path), 0, SessionBundle(path))
    if os.path.isfile(warmup.warmup_path(path)):
        return warmup.run_warmup(servable)
    requests = sample_requests(servable.signature_defs)
    return warmup.run_requests(servable, requests, source="the audit's sample requests")


def audit_saved_model(path: str | os.PathLike, *, run: bool = True) -> AuditReport:
    """Lists the ops of a SavedModel and what in it stock TF Serving cannot run.

    Violations: `PyFunc`, `PyFuncStateless`, `EagerPyFunc`; any op starting with `Xla`,
    `Addons>` (tensorflow-addons) or `IO>` (tensorflow-io); the tensorflow-text ops newer
    than the server's (`NEWER_TF_TEXT_OPS`); any op not registered by core TensorFlow or
    tensorflow-text; and any function or call node with `_XlaMustCompile` set
    (`tf.function(jit_compile=True)`).

    Then, with `run`, loads it through the C++ session loader and runs requests on it
    (`run_in_session`); a failure is the report's `load_error`.

    Args:
        path: A SavedModel directory (the one holding `saved_model.pb`).
        run: Whether to load and run the model, not only read its graphs.

    Returns:
        An `AuditReport`; call `.check()` on it to raise on problems.

    Raises:
        FileNotFoundError: If `path` is not a SavedModel directory.
    """
    path = os.fspath(path)
    saved_model = read_saved_model(path)
    counts: collections.Counter[str] = collections.Counter()
    functions: list[str] = []
    violations: list[Violation] = []
    reasons: dict[str, str | None] = {}

    def visit(nodes, where: str, function_names: set[str]) -> None:
        for node in nodes:
            if _must_compile(node.attr):
                violations.append(
                    Violation(XLA_MUST_COMPILE, where, node.name, "jit_compile=True call")
                )
            if node.op in function_names:
                continue  # a call of a library function, audited on its own
            counts[node.op] += 1
            if node.op not in reasons:
                reasons[node.op] = _op_reason(node.op)
            if reasons[node.op] is not None:
                violations.append(Violation(node.op, where, node.name, reasons[node.op]))

    for meta_graph in saved_model.meta_graphs:
        library = meta_graph.graph_def.library
        function_names = {function.signature.name for function in library.function}
        visit(meta_graph.graph_def.node, TOP_LEVEL, function_names)
        for function in library.function:
            name = function.signature.name
            functions.append(name)
            if _must_compile(function.attr):
                violations.append(
                    Violation(XLA_MUST_COMPILE, name, "", "jit_compile=True function: XLA")
                )
            visit(function.node_def, name, function_names)
    requests_run, load_error = 0, None
    if run:
        try:
            requests_run = run_in_session(path)
        except (SessionLoadError, warmup.WarmupError) as error:
            load_error = str(error)
    return AuditReport(
        path=path,
        op_counts=dict(sorted(counts.items())),
        functions=tuple(functions),
        violations=tuple(violations),
        requests_run=requests_run,
        load_error=load_error,
    )


def assert_servable(path: str | os.PathLike) -> AuditReport:
    """Audits `path` (ops and a run in the session loader); raises `AuditError` on a problem.

    Returns:
        The clean `AuditReport`.

    Raises:
        AuditError: If the SavedModel uses anything stock TF Serving cannot run, or the
            session loader cannot load or run it.
        FileNotFoundError: If `path` is not a SavedModel directory.
    """
    return audit_saved_model(path).check()
