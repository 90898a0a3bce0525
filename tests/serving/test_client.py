"""Tests of the gRPC client against an in-process fake PredictionService."""

from __future__ import annotations

import pickle
import socket
import threading
import time
from collections.abc import Callable
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from nmt_keras.serving import client as client_lib
from nmt_keras.serving.client import Alignment, Client, ServingError, Translation

MODEL = "nmt"
PAD_ATTENTION = -1.0  # padding value the client must trim away

TRANSLATION_OUTPUTS = {
    "translation": types_pb2.DT_STRING,
    "score": types_pb2.DT_FLOAT,
    "length": types_pb2.DT_INT32,
    "tokens": types_pb2.DT_INT32,  # an output the client does not ask for
}
ALIGN_OUTPUTS = {
    **TRANSLATION_OUTPUTS,
    "source_tokens": types_pb2.DT_STRING,
    "target_tokens": types_pb2.DT_STRING,
    "source_length": types_pb2.DT_INT32,
    "attention": types_pb2.DT_FLOAT,
}


NBEST_OUTPUTS = {"translations": types_pb2.DT_STRING, "scores": types_pb2.DT_FLOAT}


def default_signatures() -> dict:
    text = {"text": types_pb2.DT_STRING}
    return {
        "serving_default": (text, dict(TRANSLATION_OUTPUTS)),
        "align": (text, dict(ALIGN_OUTPUTS)),
        "nbest": (text, dict(NBEST_OUTPUTS)),
    }


def fake_outputs(sentences: list[str]) -> dict[str, np.ndarray]:
    """What the fake model computes: upper case, score -len, attention on the same word."""
    batch = len(sentences)
    words = [sentence.split() for sentence in sentences]
    max_tgt = max(len(w) for w in words) + 1  # + </s>
    max_src = max(len(w) for w in words) + 2  # + <s> </s>
    source_tokens = np.full((batch, max_src), b"", dtype=object)
    target_tokens = np.full((batch, max_tgt), b"", dtype=object)
    attention = np.full((batch, max_tgt, max_src), PAD_ATTENTION, dtype=np.float32)
    for i, sentence_words in enumerate(words):
        n = len(sentence_words)
        source = ["<s>", *sentence_words, "</s>"]
        target = [word.upper() for word in sentence_words] + ["</s>"]
        source_tokens[i, : n + 2] = [token.encode() for token in source]
        target_tokens[i, : n + 1] = [token.encode() for token in target]
        attention[i, : n + 1, : n + 2] = 0.0
        for t in range(n + 1):
            attention[i, t, t + 1] = 1.0  # word t attends to source word t; </s> to </s>
    return {
        "translation": np.array([s.upper().encode() for s in sentences], dtype=object),
        "score": np.array([-len(s) for s in sentences], dtype=np.float32),
        "length": np.array([len(w) + 1 for w in words], dtype=np.int32),
        "tokens": np.zeros((batch, max_tgt), dtype=np.int32),
        "source_tokens": source_tokens,
        "target_tokens": target_tokens,
        "source_length": np.array([len(w) + 2 for w in words], dtype=np.int32),
        "attention": attention,
        # Two hypotheses a sentence: upper case, then lower case one point worse.
        "translations": np.array(
            [[s.upper().encode(), s.lower().encode()] for s in sentences], dtype=object
        ).reshape(batch, 2),
        "scores": np.array([[-len(s), -len(s) - 1] for s in sentences], dtype=np.float32).reshape(
            batch, 2
        ),
    }


def typed_fields_proto(value: np.ndarray) -> tensor_pb2.TensorProto:
    """Encodes like TF Serving's default (`Tensor::AsProtoField`): typed repeated fields."""
    proto = tensor_pb2.TensorProto(
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in value.shape]
        )
    )
    flat = value.reshape(-1)
    if value.dtype == object:
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(flat.tolist())
    elif value.dtype == np.float32:
        proto.dtype = types_pb2.DT_FLOAT
        proto.float_val.extend(flat.tolist())
    elif value.dtype == np.int32:
        proto.dtype = types_pb2.DT_INT32
        proto.int_val.extend(flat.tolist())
    else:
        raise TypeError(value.dtype)
    return proto


class FakeServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """A PredictionService serving the fake model, with scripted failures."""

    def __init__(self):
        self.signatures = default_signatures()
        self.encoding = "fields"  # or "content": numeric tensors in tensor_content
        self.failures: list[tuple[grpc.StatusCode, str]] = []  # next Predict calls fail
        self.delay = 0.0
        self.drop_outputs: set[str] = set()
        # Output name -> function that corrupts its proto in place.
        self.change_outputs: dict[str, Callable[[tensor_pb2.TensorProto], None]] = {}
        self.release = threading.Event()
        self.predict_requests: list[predict_pb2.PredictRequest] = []
        self.predict_times: list[float] = []
        self.metadata_requests: list[get_model_metadata_pb2.GetModelMetadataRequest] = []

    def GetModelMetadata(self, request, context):  # noqa: N802
        self.metadata_requests.append(request)
        if request.model_spec.name != MODEL:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Latest({request.model_spec.name})",
            )
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, (inputs, outputs) in self.signatures.items():
            signature = signature_map.signature_def[name]
            signature.method_name = "tensorflow/serving/predict"
            for key, dtype in inputs.items():
                signature.inputs[key].CopyFrom(
                    meta_graph_pb2.TensorInfo(name=f"{key}:0", dtype=dtype)
                )
            for key, dtype in outputs.items():
                signature.outputs[key].CopyFrom(
                    meta_graph_pb2.TensorInfo(name=f"{key}:0", dtype=dtype)
                )
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = MODEL
        response.model_spec.version.value = 1
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def Predict(self, request, context):  # noqa: N802
        self.predict_requests.append(request)
        self.predict_times.append(time.monotonic())
        if self.failures:
            code, details = self.failures.pop(0)
            context.abort(code, details)
        if self.delay:
            self.release.wait(self.delay)
        signature = request.model_spec.signature_name or "serving_default"
        if signature not in self.signatures:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'Serving signature key "{signature}" not found.',
            )
        if list(request.inputs) != ["text"]:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "input size does not match signature")
        sentences = [value.decode("utf-8") for value in request.inputs["text"].string_val]
        outputs = fake_outputs(sentences)
        names = list(request.output_filter) or list(self.signatures[signature][1])
        response = predict_pb2.PredictResponse()
        response.model_spec.name = MODEL
        response.model_spec.version.value = 1
        response.model_spec.signature_name = signature
        for name in names:
            if name not in self.signatures[signature][1]:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "output tensor alias not found in signature"
                )
            if name in self.drop_outputs:
                continue
            value = outputs[name]
            if self.encoding == "content" and value.dtype != object:
                proto = tf.make_tensor_proto(value)
                assert proto.tensor_content  # really the other encoding
            else:
                proto = typed_fields_proto(value)
            if name in self.change_outputs:
                self.change_outputs[name](proto)
            response.outputs[name].CopyFrom(proto)
        return response


@pytest.fixture
def fake():
    servicer = FakeServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    servicer.target = f"127.0.0.1:{port}"
    yield servicer
    servicer.release.set()
    server.stop(grace=None)


def make_client(fake, **kwargs) -> Client:
    kwargs.setdefault("timeout", 5.0)
    return Client(fake.target, MODEL, **kwargs)


def sentences_of_varied_length(count: int) -> list[str]:
    return [" ".join(f"w{i}x{j}" for j in range(i % 7)) + f" s{i}" for i in range(count)]


# -- translate -------------------------------------------------------------------------------


def test_translate_batches_and_keeps_order(fake):
    sentences = sentences_of_varied_length(150)
    with make_client(fake, max_batch_size=64) as client:
        translations = client.translate(sentences)
    assert [t.text for t in translations] == [s.upper() for s in sentences]
    assert [t.score for t in translations] == [float(-len(s)) for s in sentences]
    assert all(isinstance(t, Translation) and t.alignment is None for t in translations)
    sizes = [len(request.inputs["text"].string_val) for request in fake.predict_requests]
    assert sizes == [64, 64, 22]
    sent = [v.decode() for r in fake.predict_requests for v in r.inputs["text"].string_val]
    assert sorted(sent) == sorted(sentences)
    # Batches group sentences of similar length.
    lengths = [len(s) for s in sent]
    assert lengths == sorted(lengths)


def test_request_names_model_signature_and_outputs(fake):
    with make_client(fake) as client:
        client.translate(["a b"])
        client.translate(["a b"], align=True)
    plain, aligned = fake.predict_requests
    assert plain.model_spec.name == MODEL
    assert plain.model_spec.signature_name == "serving_default"
    assert not plain.model_spec.HasField("version")
    assert list(plain.output_filter) == ["translation", "score", "length"]
    assert aligned.model_spec.signature_name == "align"
    assert set(aligned.output_filter) == set(ALIGN_OUTPUTS) - {"tokens"}
    text = plain.inputs["text"]
    assert text.dtype == types_pb2.DT_STRING
    assert [dim.size for dim in text.tensor_shape.dim] == [1]


@pytest.mark.parametrize(
    ("kwargs", "field", "value"),
    [({"version": 3}, "version", 3), ({"version_label": "stable"}, "version_label", "stable")],
)
def test_version_choice_is_sent(fake, kwargs, field, value):
    with make_client(fake, **kwargs) as client:
        client.translate(["x"])
    for spec in (fake.metadata_requests[0].model_spec, fake.predict_requests[0].model_spec):
        assert spec.WhichOneof("version_choice") == field
        assert (spec.version.value if field == "version" else spec.version_label) == value


def test_empty_input_makes_no_call(fake):
    with make_client(fake) as client:
        assert client.translate([]) == []
        assert client.translate([], align=True) == []
    assert fake.predict_requests == [] and fake.metadata_requests == []


def test_unicode_round_trip(fake):
    sentences = ["Grüße aus Zürich", "你好，世界", "emoji 🙂 ok", "", "  "]
    with make_client(fake) as client:
        translations = client.translate(sentences, align=True)
    assert [t.text for t in translations] == [s.upper() for s in sentences]
    assert translations[1].alignment.source_tokens == ["<s>", "你好，世界", "</s>"]
    assert translations[3].alignment.target_tokens == ["</s>"]


@pytest.mark.parametrize("encoding", ["fields", "content"])
def test_align_trims_padding(fake, encoding):
    fake.encoding = encoding
    sentences = ["one", "a much longer sentence here", "two words"]
    with make_client(fake) as client:
        translations = client.translate(sentences, align=True)
    assert len(fake.predict_requests) == 1  # one padded batch
    for sentence, translation in zip(sentences, translations, strict=True):
        words = sentence.split()
        alignment = translation.alignment
        assert isinstance(alignment, Alignment)
        assert alignment.translation == translation.text == sentence.upper()
        assert alignment.source_tokens == ["<s>", *words, "</s>"]
        assert alignment.target_tokens == [w.upper() for w in words] + ["</s>"]
        assert alignment.weights.dtype == np.float32
        assert alignment.weights.shape == (len(words) + 1, len(words) + 2)
        expected = np.eye(len(words) + 1, len(words) + 2, k=1, dtype=np.float32)
        np.testing.assert_array_equal(alignment.weights, expected)
        assert alignment.weights.base is None  # a copy, not a view of the batch


def test_single_string_is_rejected(fake):
    with make_client(fake) as client:
        with pytest.raises(TypeError, match="list of sentences"):
            client.translate("hello world")
        with pytest.raises(TypeError, match=r"sentences\[1\]"):
            client.translate(["ok", b"bytes"])
    assert fake.predict_requests == []


# -- errors and retries ----------------------------------------------------------------------


def test_retries_unavailable_with_backoff(fake):
    fake.failures = [(grpc.StatusCode.UNAVAILABLE, "starting")] * 2
    with make_client(fake, retries=3, backoff=0.05, check_signatures=False) as client:
        (translation,) = client.translate(["hi"])
    assert translation.text == "HI"
    assert len(fake.predict_requests) == 3
    gaps = np.diff(fake.predict_times)
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # backoff, then doubled


def test_gives_up_after_retries(fake, monkeypatch):
    delays = []
    monkeypatch.setattr(client_lib.time, "sleep", delays.append)
    fake.failures = [(grpc.StatusCode.UNAVAILABLE, "down")] * 5
    with make_client(fake, retries=2, backoff=0.5, check_signatures=False) as client:
        with pytest.raises(ServingError, match="down") as info:
            client.translate(["hi"])
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(fake.predict_requests) == 3
    assert delays == [0.5, 1.0]


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ],
)
def test_no_retry_on_other_errors(fake, code):
    fake.failures = [(code, "Expects arg[0] to be string but float is provided")]
    with make_client(fake, retries=3, backoff=0.01, check_signatures=False) as client:
        with pytest.raises(ServingError) as info:
            client.translate(["hi"])
    assert info.value.code == code
    assert "Expects arg[0] to be string" in info.value.details
    assert len(fake.predict_requests) == 1


def test_deadline_exceeded(fake):
    fake.delay = 5.0
    start = time.monotonic()
    with make_client(fake, timeout=0.2, retries=3, check_signatures=False) as client:
        with pytest.raises(ServingError) as info:
            client.translate(["slow"])
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - start < 2.0
    assert len(fake.predict_requests) == 1  # not retried


def test_no_server_is_unavailable():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Client(f"127.0.0.1:{port}", MODEL, timeout=2.0, retries=1, backoff=0.01) as client:
        with pytest.raises(ServingError) as info:
            client.translate(["hi"])
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert f"127.0.0.1:{port}" in str(info.value)


def test_malformed_response(fake):
    fake.drop_outputs = {"score"}
    with make_client(fake) as client:
        with pytest.raises(ServingError, match="no output 'score'") as info:
            client.translate(["hi"])
    assert info.value.code == grpc.StatusCode.INTERNAL


def test_serving_error_is_one_picklable_type():
    error = ServingError(grpc.StatusCode.NOT_FOUND, "Servable not found")
    assert str(error) == "NOT_FOUND: Servable not found"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.details) == (error.code, error.details)


# -- model check -----------------------------------------------------------------------------


def test_metadata_fetched_once(fake):
    with make_client(fake) as client:
        client.translate(["a"])
        client.translate(["b"], align=True)
        client.translate(["c"], align=True)
    assert len(fake.metadata_requests) == 1
    assert list(fake.metadata_requests[0].metadata_field) == ["signature_def"]
    assert fake.metadata_requests[0].model_spec.name == MODEL


def test_missing_align_signature(fake):
    del fake.signatures["align"]
    with make_client(fake) as client:
        assert client.translate(["ok"])[0].text == "OK"
        with pytest.raises(ServingError, match="no signature 'align'") as info:
            client.translate(["ok"], align=True)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "serving_default" in info.value.details  # lists what exists
    assert len(fake.predict_requests) == 1


def test_wrong_input_dtype(fake):
    fake.signatures["serving_default"][0]["text"] = types_pb2.DT_FLOAT
    with make_client(fake) as client:
        with pytest.raises(ServingError) as info:
            client.check_model()
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "input 'text' has dtype DT_FLOAT, expected DT_STRING" in info.value.details
    assert fake.predict_requests == []


@pytest.mark.parametrize(
    ("signature", "change", "message"),
    [
        ("serving_default", lambda io: io[1].pop("score"), "no output 'score'"),
        ("align", lambda io: io[1].pop("attention"), "no output 'attention'"),
        (
            "align",
            lambda io: io[1].update(length=types_pb2.DT_INT64),
            "'length' has dtype DT_INT64",
        ),
        ("serving_default", lambda io: io[0].update(extra=types_pb2.DT_INT32), "unexpected inputs"),
        ("serving_default", lambda io: io[0].pop("text"), "no input 'text'"),
    ],
)
def test_signature_problems_are_named(fake, signature, change, message):
    change(fake.signatures[signature])
    with make_client(fake) as client:
        with pytest.raises(ServingError, match=message) as info:
            client.translate(["x"], align=True)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert repr(signature) in info.value.details
    assert fake.predict_requests == []


def test_unknown_model_is_not_found(fake):
    with Client(fake.target, "other", timeout=5.0) as client:
        with pytest.raises(ServingError, match="Servable not found") as info:
            client.translate(["x"])
    assert info.value.code == grpc.StatusCode.NOT_FOUND


def test_check_signatures_false_skips_metadata(fake):
    with make_client(fake, check_signatures=False) as client:
        client.translate(["x"], align=True)
    assert fake.metadata_requests == []


# -- construction and malformed responses ----------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": 0},
        {"max_batch_size": 0},
        {"retries": -1},
        {"backoff": -0.1},
        {"version": 1, "version_label": "stable"},
        {"max_message_bytes": 0},
    ],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="Expected"):
        Client("127.0.0.1:1", MODEL, **kwargs)


def _drop_a_score(proto: tensor_pb2.TensorProto) -> None:
    del proto.float_val[-1]


def _truncate_content(proto: tensor_pb2.TensorProto) -> None:
    proto.tensor_content = proto.tensor_content[:-1]


def _unknown_batch(proto: tensor_pb2.TensorProto) -> None:
    proto.tensor_shape.dim[0].size = -1


def _score_as_double(proto: tensor_pb2.TensorProto) -> None:
    proto.dtype = types_pb2.DT_DOUBLE


@pytest.mark.parametrize(
    ("encoding", "change", "message"),
    [
        ("fields", _drop_a_score, "Output 'score' is malformed: float_val has 2 values"),
        ("content", _truncate_content, "Output 'score' is malformed: tensor_content has 11 bytes"),
        ("fields", _unknown_batch, "Output 'score' is malformed: the shape must be fully defined"),
        (
            "fields",
            _score_as_double,
            "Expected output 'score' of dtype DT_FLOAT. Received: DT_DOUBLE",
        ),
    ],
)
def test_malformed_output_tensor(fake, encoding, change, message):
    fake.encoding = encoding
    fake.change_outputs = {"score": change}
    with make_client(fake) as client:
        with pytest.raises(ServingError, match=message) as info:
            client.translate(["a", "bb", "ccc"])
    assert info.value.code == grpc.StatusCode.INTERNAL


def test_one_value_stands_for_a_constant_output(fake):
    def one_score(proto: tensor_pb2.TensorProto) -> None:
        del proto.float_val[1:]

    fake.change_outputs = {"score": one_score}
    with make_client(fake) as client:
        translations = client.translate(["a", "bb", "ccc"])
    assert [t.score for t in translations] == [-1.0] * 3


# -- n-best ----------------------------------------------------------------------------------


def test_nbest_lists_keep_order_and_scores(fake):
    sentences = sentences_of_varied_length(5)
    with make_client(fake, max_batch_size=2) as client:
        lists = client.nbest(sentences)
    assert [[t.text for t in hypotheses] for hypotheses in lists] == [
        [s.upper(), s.lower()] for s in sentences
    ]
    assert [[t.score for t in hypotheses] for hypotheses in lists] == [
        [-len(s), -len(s) - 1] for s in sentences
    ]
    assert {r.model_spec.signature_name for r in fake.predict_requests} == {"nbest"}
    assert list(fake.predict_requests[0].output_filter) == ["translations", "scores"]


def test_nbest_without_the_signature_says_how_to_export(fake):
    del fake.signatures["nbest"]
    with make_client(fake) as client, pytest.raises(ServingError) as info:
        client.nbest(["ein hund"])
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "no signature 'nbest' (export the model with --beam-size)" in str(info.value)
