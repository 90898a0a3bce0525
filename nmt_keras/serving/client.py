"""A gRPC client for the models served by TensorFlow Serving (or our local server).

The client speaks the stock `tensorflow.serving.PredictionService` API, so it works against the
real `tensorflow_model_server` and against `nmt_keras.serving`'s local server alike. It speaks
both serving contracts of `nmt_keras.serving.signatures`: translation and recommendation.

    with Client("127.0.0.1:8500", "nmt") as client:
        for translation in client.translate(["Hallo Welt."], align=True):
            print(translation.text, translation.score, translation.alignment.weights.shape)

    history = History(["85123A", "71053"], [1291191960, 1291192020], [6.0, 6.0], [2.55, 3.39])
    with Client("127.0.0.1:8500", "recommender") as client:
        (recommendation,) = client.recommend([history], explain=True)
        print(recommendation.products, recommendation.scores, recommendation.attention.shape)

Tensors are encoded and decoded with `nmt_keras.serving.tensors`, the project's one
`TensorProto` <-> numpy conversion, which is written on the generated protos without
TensorFlow's Python API (`tf.make_tensor_proto`, `tf.make_ndarray`) or its eager runtime; the
signature names, inputs and outputs come from `nmt_keras.serving.signatures`, the contracts the
exporters and the server share. The client checks the dtype and shape of every output it reads.
Note that this does not make the import cheap: the generated `tensorflow_serving.apis` modules
import `tensorflow.core.framework.*_pb2`, which runs `tensorflow/__init__.py`.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import grpc
import numpy as np
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    model_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from nmt_keras.errors import NmtKerasError
from nmt_keras.serving.signatures import (
    ALIGN,
    CONTRACTS,
    EXPLAIN,
    NBEST,
    OUTPUT_RANKS,
    RECOMMENDATION_CONTRACT,
    SERVING_DEFAULT,
    TEXT_INPUT,
    TRANSLATION_CONTRACT,
    Contract,
    History,
    pad_histories,
)
from nmt_keras.serving.tensors import from_ndarray, to_ndarray
from nmt_keras.translator import Alignment

__all__ = ["Alignment", "Client", "History", "Recommendation", "ServingError", "Translation"]

# Attention for a batch of 64 long sentences is tens of MiB; gRPC's default limit is 4 MiB.
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024

_S = TypeVar("_S", str, History)
_T = TypeVar("_T")

# Why a signature may be missing: how to export a model that has it.
_MISSING_SIGNATURE_HINTS = {
    ALIGN: " (export the model with alignment outputs)",
    NBEST: " (export the model with --beam-size)",
    EXPLAIN: " (export a model with attention)",
}


@dataclasses.dataclass(frozen=True)
class Translation:
    """One translated sentence.

    Attributes:
        text: The translation.
        score: Log-probability of the translation under the model.
        alignment: Source and target pieces with the `(tgt_len, src_len)` attention weights,
            trimmed of padding (`tgt_len` counts `</s>`, `src_len` counts `<s>` and `</s>`);
            `None` unless requested with `align=True`.
    """

    text: str
    score: float
    alignment: Alignment | None = None


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """The top products for one customer.

    Attributes:
        products: The `k` recommended stock codes, best first.
        scores: The model's score of each product, in the same order.
        attention: `(k, len(history))` float32 weights of each past event for each
            product, trimmed of padding; `None` unless requested with `explain=True`.
    """

    products: list[str]
    scores: list[float]
    attention: np.ndarray | None = None


class ServingError(NmtKerasError):
    """A failed call to the model server, or a server that cannot serve this client.

    Every gRPC failure raised by `Client` is a `ServingError`, whatever the status code.

    Attributes:
        code: The `grpc.StatusCode` (`FAILED_PRECONDITION` when the model lacks a signature,
            input or output this client needs; `INTERNAL` for a malformed response).
        details: The server's (or the client's) message.
    """

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(code, details)
        self.code = code
        self.details = details

    def __str__(self) -> str:
        return f"{self.code.name}: {self.details}"


class Client:
    """Translates sentences, or recommends products, with a model served over TF Serving's gRPC.

    Inputs (sentences or histories) are sent in batches of at most `max_batch_size`, grouped
    by length so that the server pads little, and the results come back in input order. Each
    call has a deadline of `timeout` seconds; calls failing with `UNAVAILABLE` (server
    starting, restarting or briefly unreachable) are retried up to `retries` times with
    exponential backoff (`backoff`, `2 * backoff`, `4 * backoff` ... seconds). Any other
    failure is raised at once as a `ServingError`.

    Before it first uses a signature the client checks it against the contract of the method
    (`translate` and `nbest`: translation; `recommend`: recommendation) on the model's
    signatures, fetched once (`GetModelMetadata`), so a wrong model fails with one clear
    message instead of a cryptic error per batch (see `check_model` and `check_recommender`).

    The client is thread-safe and should be closed (or used as a context manager).

    Args:
        target: Server address, `host:port` (TF Serving's gRPC port is 8500 by default).
        model_name: Name of the served model.
        timeout: Deadline of each call, in seconds.
        check_signatures: Whether to check the model's signatures before their first use.
        max_batch_size: Most sentences or histories sent in one call.
        retries: Retries after a call fails with `UNAVAILABLE`; 0 disables retrying.
        backoff: Seconds to wait before the first retry; doubled for each further retry.
        version: Version of the model to use; the latest loaded one if `None`.
        version_label: Label of the version to use (e.g. `"stable"`); exclusive with
            `version`.
        max_message_bytes: Largest request and response, in bytes.

    Raises:
        ValueError: If an argument is out of range, or both `version` and `version_label`
            are given.
    """

    def __init__(
        self,
        target: str,
        model_name: str,
        timeout: float = 10.0,
        *,
        check_signatures: bool = True,
        max_batch_size: int = 64,
        retries: int = 3,
        backoff: float = 0.1,
        version: int | None = None,
        version_label: str | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ):
        if not target:
            raise ValueError(f"Expected a server address host:port. Received: target={target!r}")
        if not model_name:
            raise ValueError(f"Expected a model name. Received: model_name={model_name!r}")
        if timeout <= 0:
            raise ValueError(f"Expected timeout > 0. Received: timeout={timeout}")
        if max_batch_size < 1:
            raise ValueError(
                f"Expected max_batch_size >= 1. Received: max_batch_size={max_batch_size}"
            )
        if retries < 0:
            raise ValueError(f"Expected retries >= 0. Received: retries={retries}")
        if backoff < 0:
            raise ValueError(f"Expected backoff >= 0. Received: backoff={backoff}")
        if version is not None and version_label is not None:
            raise ValueError(
                "Expected at most one of version and version_label. "
                f"Received: version={version}, version_label={version_label!r}"
            )
        if version is not None and version < 0:
            raise ValueError(f"Expected version >= 0. Received: version={version}")
        if max_message_bytes < 1:
            raise ValueError(
                f"Expected max_message_bytes >= 1. Received: max_message_bytes={max_message_bytes}"
            )
        self.target = target
        self.model_name = model_name
        self.timeout = timeout
        self.check_signatures = check_signatures
        self.max_batch_size = max_batch_size
        self.retries = retries
        self.backoff = backoff
        self.version = version
        self.version_label = version_label
        self._channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
            ],
        )
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._lock = threading.Lock()
        self._signatures: dict[str, meta_graph_pb2.SignatureDef] | None = None
        self._checked: set[tuple[str, str]] = set()  # (application, signature name)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(target={self.target!r}, model_name={self.model_name!r})"

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self._channel.close()

    def translate(self, sentences: Sequence[str], align: bool = False) -> list[Translation]:
        """Translates sentences.

        Args:
            sentences: Source sentences (a list or tuple of `str`, not a single `str`).
            align: Whether to use the `align` signature and return each translation with
                its `Alignment`.

        Returns:
            One `Translation` per sentence, in the order of `sentences`; `[]` for no
            sentences (without calling the server).

        Raises:
            TypeError: If `sentences` is a single string or holds something other than
                strings.
            ServingError: If a call fails (after retries), the model lacks a signature this
                client needs, or the server's response is malformed.
        """
        signature = ALIGN if align else SERVING_DEFAULT
        return self._translate_batches(sentences, signature, _translations)

    def nbest(self, sentences: Sequence[str]) -> list[list[Translation]]:
        """The n-best translations of sentences, from a model exported with a beam.

        Args:
            sentences: Source sentences (a list or tuple of `str`, not a single `str`).

        Returns:
            For each sentence in order, its n-best `Translation`s (text and
            log-probability), in the beam's ranking order.

        Raises:
            TypeError: If `sentences` is a single string or holds something other than
                strings.
            ServingError: As `translate`; `FAILED_PRECONDITION` if the model has no `nbest`
                signature (it was exported without `--beam-size`).
        """
        return self._translate_batches(sentences, NBEST, _nbest_lists)

    def recommend(
        self, histories: Sequence[History], explain: bool = False
    ) -> list[Recommendation]:
        """Recommends products to customers from their event histories.

        Args:
            histories: One `History` per customer (a history without events is allowed:
                the model answers for a customer it knows nothing about).
            explain: Whether to use the `explain` signature and return each recommendation
                with its attention on the history.

        Returns:
            One `Recommendation` per history, in the order of `histories`; `[]` for no
            histories (without calling the server).

        Raises:
            TypeError: If `histories` is a single `History` or holds something other than
                `History`s.
            ServingError: If a call fails (after retries), the model is not a recommender
                or lacks a signature this client needs (`FAILED_PRECONDITION`; for `explain`,
                a model exported without attention), or the server's response is malformed.
        """
        if isinstance(histories, History):
            raise TypeError("Expected a list of histories. Received: a single History")
        histories = list(histories)
        for index, history in enumerate(histories):
            if not isinstance(history, History):
                raise TypeError(
                    f"Expected every history to be a History. Received: histories[{index}] "
                    f"of type {type(history).__name__}"
                )
        signature = EXPLAIN if explain else SERVING_DEFAULT

        def run_batch(batch: list[History]) -> list[Recommendation]:
            outputs = self._predict(RECOMMENDATION_CONTRACT, signature, pad_histories(batch))
            return _recommendations(outputs, batch)

        return self._run_batches(RECOMMENDATION_CONTRACT, signature, histories, run_batch)

    def _translate_batches(
        self,
        sentences: Sequence[str],
        signature: str,
        decode_batch: Callable[[dict[str, np.ndarray], int], list[_T]],
    ) -> list[_T]:
        """Checks the sentences and translates them in batches, keeping the order."""
        if isinstance(sentences, (str, bytes)):
            raise TypeError(
                "Expected a list of sentences. Received: a single "
                f"{type(sentences).__name__} {sentences[:40]!r}"
            )
        sentences = list(sentences)
        for index, sentence in enumerate(sentences):
            if not isinstance(sentence, str):
                raise TypeError(
                    f"Expected every sentence to be a str. Received: sentences[{index}] of "
                    f"type {type(sentence).__name__}"
                )

        def run_batch(batch: list[str]) -> list[_T]:
            text = np.array(batch, dtype=object)
            outputs = self._predict(TRANSLATION_CONTRACT, signature, {TEXT_INPUT: text})
            return decode_batch(outputs, len(batch))

        return self._run_batches(TRANSLATION_CONTRACT, signature, sentences, run_batch)

    def _run_batches(
        self,
        contract: Contract,
        signature: str,
        inputs: list[_S],
        run_batch: Callable[[list[_S]], list[_T]],
    ) -> list[_T]:
        """Checks the signature, runs the inputs in batches of similar length, keeps the order.

        Args:
            contract: The contract the signature must follow.
            signature: The signature `run_batch` calls.
            inputs: The sentences or histories (each with a `len`).
            run_batch: Returns one result per input of a batch.

        Returns:
            One result per input, in the order of `inputs`; `[]` for no inputs (without
            calling the server).
        """
        if not inputs:
            return []
        if self.check_signatures:
            self._check_signatures(contract, [SERVING_DEFAULT, signature])
        # Similar lengths in a batch: less padding (and shorter decode loops) on the server.
        order = np.argsort([len(value) for value in inputs], kind="stable")
        results: list[_T | None] = [None] * len(inputs)
        for start in range(0, len(order), self.max_batch_size):
            indices = order[start : start + self.max_batch_size]
            batch_results = run_batch([inputs[index] for index in indices])
            for index, result in zip(indices, batch_results, strict=True):
                results[index] = result
        return results  # type: ignore[return-value]

    def check_model(self, align: bool = False) -> None:
        """Checks that the served model has the signatures this client needs.

        The signatures are fetched once per client (`GetModelMetadata`) and each signature is
        checked once; `translate` calls this itself unless `check_signatures=False`. The
        model must have `serving_default` (and `align` when `align=True`) with exactly one
        input, `text` of dtype string, and the outputs `translation` (string), `score`
        (float), `length` (int32), plus `source_tokens`, `target_tokens` (string),
        `source_length` (int32) and `attention` (float) for `align`.

        Args:
            align: Whether to check the `align` signature as well.

        Raises:
            ServingError: `FAILED_PRECONDITION` naming what is missing or mistyped, or the
                error of the metadata call (e.g. `NOT_FOUND` for an unknown model).
        """
        names = [SERVING_DEFAULT, ALIGN] if align else [SERVING_DEFAULT]
        self._check_signatures(TRANSLATION_CONTRACT, names)

    def check_recommender(self, explain: bool = False) -> None:
        """Checks that the served model is a recommender with the signatures `recommend` needs.

        As `check_model`, for the recommendation contract: the model must have
        `serving_default` (and `explain` when `explain=True`) with exactly the inputs
        `items` (string), `timestamps` (int64), `quantities` and `prices` (float), and the
        outputs `products` (string) and `scores` (float), plus `attention` (float) for
        `explain`. `recommend` calls this itself unless `check_signatures=False`.

        Args:
            explain: Whether to check the `explain` signature as well.

        Raises:
            ServingError: `FAILED_PRECONDITION` naming what is missing or mistyped (a model
                without `explain` was exported without attention; a model taking `text` is a
                translation model), or the error of the metadata call.
        """
        names = [SERVING_DEFAULT, EXPLAIN] if explain else [SERVING_DEFAULT]
        self._check_signatures(RECOMMENDATION_CONTRACT, names)

    def _check_signatures(self, contract: Contract, names: Sequence[str]) -> None:
        """Checks each of `names` against `contract` once per client; see `check_model`."""
        with self._lock:
            keys = [(contract.application, name) for name in names]
            if all(key in self._checked for key in keys):
                return
            if self._signatures is None:
                self._signatures = self._fetch_signatures()
            for key in keys:
                if key not in self._checked:
                    self._check_signature(contract, key[1])
                    self._checked.add(key)

    # -- internals ---------------------------------------------------------------------------

    def _model_spec(self, signature_name: str = "") -> model_pb2.ModelSpec:
        spec = model_pb2.ModelSpec(name=self.model_name, signature_name=signature_name)
        if self.version is not None:
            spec.version.value = self.version
        elif self.version_label is not None:
            spec.version_label = self.version_label
        return spec

    def _model_description(self) -> str:
        if self.version is not None:
            return f"model {self.model_name!r} version {self.version}"
        if self.version_label is not None:
            return f"model {self.model_name!r} version label {self.version_label!r}"
        return f"model {self.model_name!r}"

    def _call(self, method: Callable[..., _T], request: object) -> _T:
        """Calls `method` with a deadline, retrying on `UNAVAILABLE` with backoff."""
        for attempt in range(self.retries + 1):
            try:
                return method(request, timeout=self.timeout)
            except grpc.RpcError as error:
                code = error.code() if callable(getattr(error, "code", None)) else None
                details = error.details() if callable(getattr(error, "details", None)) else None
                code = code or grpc.StatusCode.UNKNOWN
                if code == grpc.StatusCode.UNAVAILABLE and attempt < self.retries:
                    time.sleep(self.backoff * 2**attempt)
                    continue
                message = details or str(error)
                if code == grpc.StatusCode.UNAVAILABLE and self.retries:
                    message = f"{message} (after {self.retries + 1} attempts)"
                raise ServingError(
                    code, f"{message} [{self.target}, {self._model_description()}]"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch_signatures(self) -> dict[str, meta_graph_pb2.SignatureDef]:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=self._model_spec(), metadata_field=["signature_def"]
        )
        response = self._call(self._stub.GetModelMetadata, request)
        if "signature_def" not in response.metadata:
            raise ServingError(
                grpc.StatusCode.INTERNAL,
                f"GetModelMetadata returned no signature_def for {self._model_description()}",
            )
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        if not response.metadata["signature_def"].Unpack(signature_map):
            raise ServingError(
                grpc.StatusCode.INTERNAL,
                f"GetModelMetadata returned a signature_def that is not a SignatureDefMap "
                f"for {self._model_description()}",
            )
        return dict(signature_map.signature_def)

    def _check_signature(self, contract: Contract, name: str) -> None:
        """Checks signature `name` against `contract`; raises `FAILED_PRECONDITION` if off."""
        assert self._signatures is not None
        where = f"{self._model_description()} at {self.target}"
        if name not in self._signatures:
            available = ", ".join(sorted(self._signatures)) or "none"
            hint = _MISSING_SIGNATURE_HINTS.get(name, "")
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{where} has no signature {name!r}{hint}; its signatures: {available}",
            )
        signature = self._signatures[name]
        inputs = dict(signature.inputs)
        other = next(
            (
                other
                for other in CONTRACTS
                if other is not contract and set(inputs) == set(other.inputs)
            ),
            None,
        )
        if other is not None:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Signature {name!r} of {where} takes the inputs {sorted(inputs)} of a "
                f"{other.application} model; {contract.application} needs the inputs "
                f"{sorted(contract.inputs)}",
            )
        problems = []
        for input_name, dtype in contract.inputs.items():
            if input_name not in inputs:
                problems.append(f"no input {input_name!r}")
            elif inputs[input_name].dtype != dtype:
                problems.append(
                    f"input {input_name!r} has dtype {_dtype_name(inputs[input_name].dtype)}, "
                    f"expected {_dtype_name(dtype)}"
                )
        extra = sorted(set(inputs) - set(contract.inputs))
        if extra:
            problems.append(f"unexpected inputs {extra} (only {sorted(contract.inputs)} are sent)")
        outputs = dict(signature.outputs)
        for output, dtype in contract.outputs[name].items():
            if output not in outputs:
                problems.append(f"no output {output!r}")
            elif outputs[output].dtype != dtype:
                problems.append(
                    f"output {output!r} has dtype {_dtype_name(outputs[output].dtype)}, "
                    f"expected {_dtype_name(dtype)}"
                )
        if problems:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Signature {name!r} of {where} does not fit this client: " + "; ".join(problems),
            )

    def _predict(
        self, contract: Contract, signature: str, inputs: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Runs one `Predict` call; returns the signature's outputs, dtypes and shapes checked.

        Args:
            contract: The contract of the signature.
            signature: The signature to run.
            inputs: Every input of the contract, each with the batch in dimension 0.

        Returns:
            Output name -> array, for the outputs the contract names for `signature`, each
            of its rank (`OUTPUT_RANKS`) with the batch's size in dimension 0.
        """
        request = predict_pb2.PredictRequest(model_spec=self._model_spec(signature))
        for name, dtype in contract.inputs.items():
            request.inputs[name].CopyFrom(from_ndarray(inputs[name], dtype))
        batch_size = len(inputs[next(iter(contract.inputs))])
        expected_outputs = contract.outputs[signature]
        request.output_filter.extend(expected_outputs)
        response = self._call(self._stub.Predict, request)
        outputs = {}
        for output, dtype in expected_outputs.items():
            if output not in response.outputs:
                raise ServingError(
                    grpc.StatusCode.INTERNAL,
                    f"The response of signature {signature!r} has no output {output!r}",
                )
            tensor = response.outputs[output]
            if tensor.dtype != dtype:
                raise ServingError(
                    grpc.StatusCode.INTERNAL,
                    f"Expected output {output!r} of dtype {_dtype_name(dtype)}. "
                    f"Received: {_dtype_name(tensor.dtype)}",
                )
            try:
                outputs[output] = to_ndarray(tensor)
            except ValueError as error:
                raise ServingError(
                    grpc.StatusCode.INTERNAL, f"Output {output!r} is malformed: {error}"
                ) from None
        for output, value in outputs.items():
            rank = OUTPUT_RANKS.get(output, 1)
            if value.ndim != rank or value.shape[0] != batch_size:
                raise ServingError(
                    grpc.StatusCode.INTERNAL,
                    f"Expected output {output!r} of shape [{batch_size}"
                    f"{', ...' * (rank - 1)}]. Received: shape {list(value.shape)}",
                )
        return outputs


def _translations(outputs: dict[str, np.ndarray], batch: int) -> list[Translation]:
    """One `Translation` per sentence, with its alignment when the outputs have one."""
    aligned = "attention" in outputs
    return [
        Translation(
            text=_text(outputs["translation"][i]),
            score=float(outputs["score"][i]),
            alignment=_alignment(outputs, i) if aligned else None,
        )
        for i in range(batch)
    ]


def _nbest_lists(outputs: dict[str, np.ndarray], batch: int) -> list[list[Translation]]:
    """The `(batch, n_best)` translations and scores as one list per sentence."""
    _check_same_shape(outputs, "translations", "scores")
    return [
        [
            Translation(text=_text(text), score=float(score))
            for text, score in zip(outputs["translations"][i], outputs["scores"][i], strict=True)
        ]
        for i in range(batch)
    ]


def _recommendations(
    outputs: dict[str, np.ndarray], histories: list[History]
) -> list[Recommendation]:
    """One `Recommendation` per history, with its attention trimmed when the outputs have it."""
    _check_same_shape(outputs, "products", "scores")
    attention = outputs.get("attention")  # (batch, k, history_len), padded
    if attention is not None:
        longest = max(len(history) for history in histories)
        if attention.shape[1] != outputs["products"].shape[1] or attention.shape[2] < longest:
            raise ServingError(
                grpc.StatusCode.INTERNAL,
                f"Expected output 'attention' of shape [{len(histories)}, "
                f"{outputs['products'].shape[1]}, >= {longest}] (batch, k, history_len). "
                f"Received: shape {list(attention.shape)}",
            )
    return [
        Recommendation(
            products=[_text(product) for product in outputs["products"][i]],
            scores=[float(score) for score in outputs["scores"][i]],
            # Copy, so that one customer does not keep the whole padded batch alive.
            attention=None if attention is None else attention[i, :, : len(history)].copy(),
        )
        for i, history in enumerate(histories)
    ]


def _check_same_shape(outputs: dict[str, np.ndarray], first: str, second: str) -> None:
    """Raises `INTERNAL` unless outputs `first` and `second` have the same shape."""
    if outputs[first].shape != outputs[second].shape:
        raise ServingError(
            grpc.StatusCode.INTERNAL,
            f"Expected outputs {first!r} and {second!r} of the same shape. Received: "
            f"{list(outputs[first].shape)} and {list(outputs[second].shape)}",
        )


def _dtype_name(dtype: int) -> str:
    try:
        return types_pb2.DataType.Name(dtype)
    except ValueError:
        return str(dtype)


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def _alignment(outputs: dict[str, np.ndarray], i: int) -> Alignment:
    """The alignment of sentence `i` of a batch, trimmed with the lengths."""
    tgt_len = int(outputs["length"][i])
    src_len = int(outputs["source_length"][i])
    attention = outputs["attention"]  # (batch, tgt_len, src_len), padded
    max_tgt = min(attention.shape[1], outputs["target_tokens"].shape[1])
    max_src = min(attention.shape[2], outputs["source_tokens"].shape[1])
    if not (0 <= tgt_len <= max_tgt and 0 <= src_len <= max_src):
        raise ServingError(
            grpc.StatusCode.INTERNAL,
            f"Expected 0 <= length <= {max_tgt} and 0 <= source_length <= {max_src}. "
            f"Received: length={tgt_len}, source_length={src_len} for sentence {i} of the batch",
        )
    return Alignment(
        translation=_text(outputs["translation"][i]),
        source_tokens=[_text(token) for token in outputs["source_tokens"][i, :src_len]],
        target_tokens=[_text(token) for token in outputs["target_tokens"][i, :tgt_len]],
        # Copy, so that one sentence does not keep the whole padded batch alive.
        weights=attention[i, :tgt_len, :src_len].copy(),
    )
