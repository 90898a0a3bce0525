"""Keras-native reuse: `.keras` round trips of every model family, and `TFSMLayer` on an export.

Every family built by `build_model` must come back from `model.save(...)` /
`keras.models.load_model(...)` as the same class with bit-identical logits and greedy
translations; a compiled model must come back with its optimizer, ready to train on. A
SavedModel written by the exporter's `ServingModule` must load as a Keras layer.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.config import ModelConfig
from nmt_keras.export.module import ServingModule
from nmt_keras.models import Seq2Seq, Transformer, build_model
from nmt_keras.serving.signatures import SERVING_DEFAULT
from nmt_keras.text.sentencepiece_training import train_sentencepiece
from nmt_keras.text.tokenizer import PAD_ID, Tokenizer
from nmt_keras.training.losses import MaskedCrossEntropy
from nmt_keras.training.metrics import MaskedAccuracy
from nmt_keras.translator import Translator

WORDS = "a dog cat man woman runs sleeps reads in the park street book red big".split()
SENTENCES = ["a dog runs in the park", "the big cat sleeps", "a man reads a red book", ""]
MAX_SOURCE_LENGTH, MAX_DECODE_LENGTH = 16, 8
OUTPUTS = ("translation", "score", "length", "tokens", "attention")

RNN_SIZES = dict(embedding_dim=16, units=16, attention_units=16, dropout=0.0)
TRANSFORMER_SIZES = dict(
    type="transformer",
    embedding_dim=16,
    units=16,
    num_heads=2,
    ff_dim=32,
    encoder_layers=1,
    decoder_layers=1,
    dropout=0.0,
)
FAMILIES = {
    "seq2seq": ModelConfig(type="seq2seq", **RNN_SIZES),
    "seq2seq-lstm-unidirectional": ModelConfig(
        type="seq2seq", rnn="lstm", bidirectional=False, **RNN_SIZES
    ),
    "bahdanau": ModelConfig(type="bahdanau", **RNN_SIZES),
    "bahdanau-lstm-2-residual-normalize": ModelConfig(
        type="bahdanau",
        rnn="lstm",
        encoder_layers=2,
        decoder_layers=2,
        residual=True,
        attention_normalize=True,
        **RNN_SIZES,
    ),
    "luong-dot": ModelConfig(type="luong", score_mode="dot", bidirectional=False, **RNN_SIZES),
    "luong-general-scale": ModelConfig(
        type="luong", score_mode="general", score_scale=True, **RNN_SIZES
    ),
    "luong-concat": ModelConfig(type="luong", score_mode="concat", **RNN_SIZES),
    "luong-input-feeding-lstm": ModelConfig(
        type="luong", input_feeding=True, rnn="lstm", bidirectional=False, **RNN_SIZES
    ),
    "luong-local-p": ModelConfig(type="luong", window_mode="local-p", half_window=2, **RNN_SIZES),
    "luong-local-m-input-feeding": ModelConfig(
        type="luong",
        window_mode="local-m",
        half_window=2,
        input_feeding=True,
        bidirectional=False,
        **RNN_SIZES,
    ),
    "luong-gru-2-residual": ModelConfig(
        type="luong", encoder_layers=2, decoder_layers=2, residual=True, **RNN_SIZES
    ),
    "transformer": ModelConfig(**TRANSFORMER_SIZES),
    "transformer-shared-2-layers": ModelConfig(
        **{**TRANSFORMER_SIZES, "encoder_layers": 2, "decoder_layers": 2},
        shared_target_embeddings=True,
    ),
}

# Two source sentences of lengths 5 and 3 (0-padded), decoder inputs and labels.
SOURCE = np.array([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]], "int32")
TARGET = np.array([[2, 4, 5, 6], [2, 7, 7, 8]], "int32")
LABELS = np.array([[4, 5, 6, 3], [7, 7, 8, 3]], "int32")


@pytest.fixture(scope="module")
def model_proto():
    """A tiny SentencePiece model, shared by source and target."""
    sentences = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))]
    return train_sentencepiece(sentences, vocab_size=40)


@pytest.fixture
def tokenizer(model_proto):
    """A fresh tokenizer: seeding TensorFlow drops the resources of existing ones."""
    keras.utils.set_random_seed(0)
    return Tokenizer(model_proto)


def make_model(name, tokenizer):
    """A model of the family `name`, seeded by the `tokenizer` fixture."""
    return build_model(FAMILIES[name], tokenizer.vocab_size, tokenizer.vocab_size)


def make_translator(model, tokenizer):
    """A greedy `Translator` of `model`, the tokenizer on both sides."""
    return Translator(
        model,
        tokenizer,
        tokenizer,
        max_source_length=MAX_SOURCE_LENGTH,
        max_decode_length=MAX_DECODE_LENGTH,
    )


def translate(model, tokenizer):
    """The greedy `Translator` outputs OUTPUTS for SENTENCES, as NumPy arrays."""
    translator = make_translator(model, tokenizer)
    # The translator's own code, run eagerly: tracing its search loop costs far more.
    outputs = translator.translate.python_function(tf.constant(SENTENCES))
    return {name: outputs[name].numpy() for name in OUTPUTS}


def logits(model):
    return np.asarray(model({"source": SOURCE, "target": TARGET}))


def assert_same_outputs(expected, actual):
    assert expected.keys() == actual.keys()
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


# `make test` (-m "not slow") round-trips these families, which between them have every
# decoder, a local window, both cells, residual stacks, input feeding and tied
# Transformer embeddings; `make test-all` round-trips all.
FAST_FAMILIES = (
    "bahdanau-lstm-2-residual-normalize",
    "luong-local-m-input-feeding",
    "transformer-shared-2-layers",
)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=() if name in FAST_FAMILIES else pytest.mark.slow)
        for name in FAMILIES
    ],
)
def test_keras_file_round_trip_translates_identically(name, tokenizer, tmp_path):
    model = make_model(name, tokenizer)
    expected_logits = logits(model)
    expected = translate(model, tokenizer)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    assert type(loaded) is (Transformer if FAMILIES[name].type == "transformer" else Seq2Seq)
    assert loaded.get_config() == model.get_config()
    assert [w.shape for w in loaded.weights] == [w.shape for w in model.weights]
    np.testing.assert_array_equal(logits(loaded), expected_logits)
    assert_same_outputs(expected, translate(loaded, tokenizer))


def compile_like_trainer(model):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2, clipnorm=1.0),
        loss=MaskedCrossEntropy(PAD_ID, 0.1),
        metrics=[MaskedAccuracy(PAD_ID)],
        run_eagerly=True,  # tiny model: tracing costs far more than a few eager steps
    )


def fit_one_step(model):
    inputs = {"source": SOURCE, "target": TARGET}
    return model.fit(inputs, LABELS, batch_size=2, epochs=1, shuffle=False, verbose=0)


@pytest.mark.parametrize("name", [pytest.param("bahdanau", marks=pytest.mark.slow), "transformer"])
def test_compiled_model_round_trips_with_its_optimizer(name, tokenizer, tmp_path):
    model = make_model(name, tokenizer)
    compile_like_trainer(model)
    fit_one_step(model)  # creates the optimizer's slots
    expected_logits = logits(model)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    assert isinstance(loaded.optimizer, keras.optimizers.Adam)
    assert isinstance(loaded.loss, MaskedCrossEntropy) and loaded.loss.label_smoothing == 0.1
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 1
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    for expected, actual in zip(model.optimizer.variables, loaded.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(actual), np.asarray(expected), err_msg=actual.path)
    np.testing.assert_array_equal(logits(loaded), expected_logits)
    # Training continues where it stopped: one more step gives the same weights on both.
    history = fit_one_step(loaded)
    assert {"loss", "accuracy"} <= history.history.keys()
    assert np.isfinite(history.history["loss"][0])
    fit_one_step(model)
    assert int(loaded.optimizer.iterations) == 2
    for expected, actual in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=1e-6)

    # Without compiling: the same model, its weights and no optimizer.
    bare = keras.models.load_model(path, compile=False)
    assert type(bare) is type(model)
    assert not bare.compiled and getattr(bare, "optimizer", None) is None
    np.testing.assert_array_equal(logits(bare), expected_logits)


def shapes(weights):
    """The sorted shapes of `weights`, to compare sets of variables."""
    return sorted(tuple(weight.shape) for weight in weights)


@pytest.fixture(scope="module")
def export(model_proto, tmp_path_factory):
    """A model exported by the exporter's `ServingModule`, and its weights' shapes.

    The fixed-context model: its search graph is the quickest to trace and save.
    """
    keras.utils.set_random_seed(0)
    tokenizer = Tokenizer(model_proto)
    model = make_model("seq2seq", tokenizer)
    translator = make_translator(model, tokenizer)
    path = str(tmp_path_factory.mktemp("export") / "1")
    ServingModule(translator).save(path)
    return {"path": path, "shapes": shapes(model.weights)}


@pytest.fixture(scope="module")
def served(export):
    """`serving_default`'s outputs for SENTENCES, called on the loaded SavedModel."""
    signature = tf.saved_model.load(export["path"]).signatures[SERVING_DEFAULT]
    outputs = signature(text=tf.constant(SENTENCES))
    assert set(outputs) == {"translation", "score", "length"}
    return {name: tensor.numpy() for name, tensor in outputs.items()}


def tfsm_model(path):
    """A functional Keras model around a `TFSMLayer`: string `[batch]` in, a dict out."""
    layer = keras.layers.TFSMLayer(path, call_endpoint=SERVING_DEFAULT)
    text = keras.Input(shape=(), dtype="string", name="text")
    return keras.Model(text, layer(text)), layer


def as_numpy(outputs):
    return {name: np.asarray(value) for name, value in outputs.items()}


def test_tfsm_layer_runs_an_export(export, served):
    model, layer = tfsm_model(export["path"])
    text = tf.constant(SENTENCES)
    assert_same_outputs(served, as_numpy(layer(text)))
    assert_same_outputs(served, as_numpy(model(text)))
    assert_same_outputs(served, as_numpy(model.predict(text, verbose=0)))
    assert served["translation"].dtype == object and served["length"].dtype == np.int32
    # The layer tracks the variables the signature reads: the translation model's.
    assert shapes(layer.weights) == export["shapes"]


@pytest.mark.slow
def test_tfsm_model_keras_file_round_trip_needs_unsafe_mode(export, served, tmp_path):
    model, _ = tfsm_model(export["path"])
    path = tmp_path / "served.keras"
    model.save(path)
    # A TFSMLayer's config is the export's path, and loading it runs that SavedModel's
    # graph: Keras refuses it in safe mode.
    with pytest.raises(ValueError, match="TFSMLayer"):
        keras.models.load_model(path)
    loaded = keras.models.load_model(path, safe_mode=False)
    assert_same_outputs(served, as_numpy(loaded(tf.constant(SENTENCES))))


LEGACY = os.path.join(os.path.dirname(__file__), "legacy", "transformer-0.1.0")


def test_a_model_saved_by_an_earlier_release_loads_with_the_same_logits():
    # Saved at commit ec4765d, when SharedEmbedding was a plain Layer with its own table:
    # a Transformer (shared target embeddings, 2 heads, d 8, vocabularies of 20) and its
    # logits for two source/target pairs.
    expected = np.load(f"{LEGACY}.npz")
    model = keras.models.load_model(f"{LEGACY}.keras")
    assert isinstance(model, Transformer)
    assert isinstance(model.decoder.embedding, keras.layers.ReversibleEmbedding)
    logits = model({"source": expected["source"], "target": expected["target"]})
    np.testing.assert_allclose(np.asarray(logits), expected["logits"], rtol=1e-6, atol=1e-6)
