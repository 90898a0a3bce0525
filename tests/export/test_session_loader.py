"""Every family and export kind runs on TF Serving's loader: Python == C++ session == gRPC.

The C++ session loader (`SessionBundle`, TensorFlow's C API: MetaGraph import, restore op,
init op, `Session::Run` by tensor names) is the path `tensorflow_model_server` takes;
`tf.saved_model.load` is not (tests/export/test_parity.py covers that one). Each export
below runs in the session loader and over gRPC from the local server (which loads through
the session loader too, replaying the warmup records), and both must agree with the
Python functions that were saved on every signature, and with the translator.
"""

import dataclasses

import grpc
import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_service_pb2_grpc

from nmt_keras.config import ModelConfig
from nmt_keras.decoding import GREEDY, DecodingOptions
from nmt_keras.export.module import ServingModule
from nmt_keras.models import build_model
from nmt_keras.serving import AUTO_PORT, ServerOptions, start_server
from nmt_keras.serving.session_bundle import SessionBundle
from nmt_keras.serving.signatures import SIGNATURE_OUTPUTS, TEXT_INPUT
from nmt_keras.serving.tensors import from_ndarray, to_ndarray
from nmt_keras.serving.warmup import make_warmup_requests, write_warmup_requests
from nmt_keras.text import Tokenizer, train_sentencepiece
from nmt_keras.translator import Translator
from tests.toy_data import TOY_PAIRS

SENTENCES = [source for source, _ in TOY_PAIRS[:4]] + ["", "ünbekannt wörter 中文"]
RNN = {"embedding_dim": 8, "units": 8, "attention_units": 6, "dropout": 0.0}
FAMILIES = {
    "seq2seq": ModelConfig(type="seq2seq", **RNN),
    "bahdanau": ModelConfig(type="bahdanau", **RNN),
    "luong-general": ModelConfig(type="luong", score_mode="general", **RNN),
    "luong-concat-feeding": ModelConfig(
        type="luong", score_mode="concat", input_feeding=True, rnn="lstm", **RNN
    ),
    "luong-local-p": ModelConfig(
        type="luong", score_mode="dot", window_mode="local-p", half_window=2, **RNN
    ),
    "transformer": ModelConfig(type="transformer", units=8, num_heads=2, ff_dim=16, dropout=0.0),
}
KINDS = {"greedy": GREEDY, "beam": DecodingOptions(beam_size=3, n_best=2, length_penalty=0.6)}
# Beam exports of every family are in `make test-all`; the suite keeps two.
FAST_BEAM = {"bahdanau", "transformer"}


@dataclasses.dataclass
class Export:
    module: ServingModule
    base: str
    path: str


@pytest.fixture(scope="module")
def tokenizer_protos():
    return (
        train_sentencepiece([s for s, _ in TOY_PAIRS], vocab_size=40, seed=0),
        train_sentencepiece([t for _, t in TOY_PAIRS], vocab_size=40, seed=0),
    )


def cases():
    for family in FAMILIES:
        for kind in KINDS:
            slow = kind == "beam" and family not in FAST_BEAM
            marks = [pytest.mark.slow] if slow else []
            yield pytest.param((family, kind), id=f"{family}-{kind}", marks=marks)


@pytest.fixture(scope="module", params=list(cases()))
def export(request, tokenizer_protos, tmp_path_factory):
    """An untrained model of one family, exported with one search, with warmup records."""
    family, kind = request.param
    keras.utils.set_random_seed(0)
    sizes = [Tokenizer(proto).vocab_size for proto in tokenizer_protos]
    model = build_model(FAMILIES[family], *sizes)
    # Tokenizers after seeding (tensorflow/text#570, see Tokenizer).
    source, target = (Tokenizer(proto) for proto in tokenizer_protos)
    translator = Translator(
        model, source, target, max_source_length=10, max_decode_length=8, decoding=KINDS[kind]
    )
    base = tmp_path_factory.mktemp(f"{family}-{kind}")
    path = str(base / "1")
    module = ServingModule(translator)
    module.save(path)
    write_warmup_requests(path, make_warmup_requests(signature_names=module.signature_names))
    return Export(module, str(base), path)


def assert_same_outputs(actual, expected, where):
    assert set(actual) == set(expected), where
    for name, value in expected.items():
        if value.dtype == np.float32:
            np.testing.assert_allclose(actual[name], value, atol=1e-5, err_msg=f"{where}: {name}")
        else:
            np.testing.assert_array_equal(actual[name], value, err_msg=f"{where}: {name}")


def test_translator_python_session_loader_and_grpc_agree_on_every_signature(export):
    text = np.array([s.encode() for s in SENTENCES], dtype=object)
    expected = export.module.translator.translate(tf.constant(text))
    python_signatures = export.module.signatures()  # the functions that were saved
    names = set(python_signatures)
    # The local server loads a SessionBundle and replays the warmup records on it.
    options = ServerOptions(
        port=AUTO_PORT,
        model_name="nmt",
        model_base_path=export.base,
        file_system_poll_wait_seconds=0,
    )
    with (
        start_server(options) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
    ):
        bundle = server.manager.get_servable(model_pb2.ModelSpec(name="nmt")).bundle
        assert isinstance(bundle, SessionBundle)
        assert names == set(bundle.signature_defs) - {"__saved_model_init_op"}
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for name in sorted(names):
            outputs = python_signatures[name](text=tf.constant(text))
            python = {key: value.numpy() for key, value in outputs.items()}
            assert set(python) == set(SIGNATURE_OUTPUTS[name])
            session = bundle.run(name, {TEXT_INPUT: text})
            assert_same_outputs(session, python, f"C++ {name}")
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "nmt"
            request.model_spec.signature_name = name
            request.inputs[TEXT_INPUT].CopyFrom(from_ndarray(text))
            response = stub.Predict(request, timeout=60)
            served = {k: to_ndarray(v) for k, v in response.outputs.items()}
            assert_same_outputs(served, python, f"gRPC {name}")
            if "translation" in session:
                np.testing.assert_array_equal(session["translation"], expected["translation"])
                np.testing.assert_array_equal(session["length"], expected["length"])
