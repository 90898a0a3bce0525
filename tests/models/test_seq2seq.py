import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.config import ModelConfig
from nmt_keras.layers import Encoder, LuongDecoder
from nmt_keras.models import Seq2Seq, build_model
from nmt_keras.search import greedy_search
from nmt_keras.training.losses import MaskedCrossEntropy

SRC_VOCAB, TGT_VOCAB = 13, 11
SIZES = dict(embedding_dim=6, units=8, attention_units=5, dropout=0.0)
FAMILIES = {
    "seq2seq": ModelConfig(type="seq2seq", **SIZES),
    "bahdanau": ModelConfig(type="bahdanau", bidirectional=False, **SIZES),
    "bahdanau-normalize-lstm-2-residual": ModelConfig(
        type="bahdanau",
        rnn="lstm",
        encoder_layers=2,
        decoder_layers=2,
        residual=True,
        attention_normalize=True,
        **SIZES,
    ),
    "luong-dot": ModelConfig(type="luong", score_mode="dot", bidirectional=False, **SIZES),
    "luong-general": ModelConfig(type="luong", score_mode="general", score_scale=True, **SIZES),
    "luong-concat": ModelConfig(type="luong", score_mode="concat", bidirectional=False, **SIZES),
    "luong-input-feeding": ModelConfig(
        type="luong",
        score_mode="general",
        input_feeding=True,
        rnn="lstm",
        bidirectional=False,
        **SIZES,
    ),
    "luong-local-m": ModelConfig(
        type="luong", window_mode="local-m", half_window=1, bidirectional=False, **SIZES
    ),
    "luong-local-p-input-feeding": ModelConfig(
        type="luong", window_mode="local-p", half_window=1, input_feeding=True, **SIZES
    ),
}
# Source sentences of lengths 5 and 3 (0-padded) and decoder inputs <s> y1 y2 y3.
SOURCE = np.array([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]], "int32")
TARGET = np.array([[2, 4, 5, 6], [2, 7, 7, 8]], "int32")


def make_model(name, seed=0):
    keras.utils.set_random_seed(seed)
    return build_model(FAMILIES[name], SRC_VOCAB, TGT_VOCAB)


def inputs(source=SOURCE, target=TARGET):
    return {"source": source, "target": target}


def families(*fast):
    """All families; those not in `fast` are marked slow (`make test` skips them)."""
    return [pytest.param(name, marks=() if name in fast else pytest.mark.slow) for name in FAMILIES]


# Every family runs every test with `make test-all`; `make test` (-m "not slow") runs the
# cheap tests on these and each expensive test (fit, .keras, mixed precision) on one.
FAST_FAMILIES = ("seq2seq", "bahdanau", "luong-input-feeding", "luong-local-m")


@pytest.fixture(scope="module", params=families(*FAST_FAMILIES))
def family(request):
    """A built model of each family and its teacher-forced outputs on SOURCE/TARGET."""
    model = make_model(request.param)
    logits, attention = model.teacher_forced(SOURCE, TARGET)
    return {
        "name": request.param,
        "config": FAMILIES[request.param],
        "model": model,
        "logits": np.asarray(logits),
        "attention": None if attention is None else np.asarray(attention),
    }


def test_call_shape_and_dtype(family):
    model = family["model"]
    logits = np.asarray(model(inputs()))
    assert logits.shape == (2, 4, TGT_VOCAB)
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, family["logits"], atol=1e-6)
    assert model.name == f"{family['config'].type}_{family['config'].rnn}"
    assert model.has_attention == (family["config"].type != "seq2seq")
    if model.has_attention:
        attention = family["attention"]
        assert attention.shape == (2, 4, 5)
        if family["config"].window_mode != "local-p":  # eq. 10 does not sum to 1
            np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-5)
        assert np.all(attention[1, :, 3:] == 0.0)  # padded source positions
    else:
        assert family["attention"] is None


def test_next_fn_loop_equals_teacher_forcing(family):
    model = family["model"]
    state = model.initial_search_state(SOURCE)
    logits, attention = [], []
    for step in range(TARGET.shape[1]):
        step_logits, state, weights = model.next_fn(TARGET[:, step], state, step)
        assert step_logits.shape == (2, TGT_VOCAB)
        logits.append(np.asarray(step_logits))
        attention.append(weights)
    np.testing.assert_allclose(np.stack(logits, 1), family["logits"], atol=1e-5)
    if model.has_attention:
        attention = np.stack([np.asarray(a) for a in attention], 1)
        np.testing.assert_allclose(attention, family["attention"], atol=1e-5)
    else:
        assert all(a is None for a in attention)
    # Every tensor of the search state is batch first, as a search needs.
    for tensor in keras.tree.flatten(state):
        assert tensor.shape[0] == 2


def test_a_sentence_alone_equals_the_sentence_in_a_padded_batch(family):
    model = family["model"]
    logits, attention = model.teacher_forced(SOURCE[1:, :3], TARGET[1:])
    np.testing.assert_allclose(logits, family["logits"][1:], atol=1e-5)
    if attention is not None:
        np.testing.assert_allclose(attention, family["attention"][1:, :, :3], atol=1e-5)


def test_config_round_trip(family):
    model = family["model"]
    config = model.get_config()
    model_config = family["config"]
    decoder_config = config["decoder"]["config"]
    for key in ("rnn", "units", "embedding_dim", "residual"):
        assert decoder_config[key] == getattr(model_config, key)
    for key in ("input_feeding", "score_mode", "window_mode", "half_window"):
        assert decoder_config.get(key, getattr(model_config, key)) == getattr(model_config, key)
    assert config["encoder"]["config"]["vocab_size"] == SRC_VOCAB
    assert decoder_config["vocab_size"] == TGT_VOCAB
    restored = Seq2Seq.from_config(config)
    assert isinstance(restored, Seq2Seq)
    assert restored.get_config() == config
    assert type(restored.decoder) is type(model.decoder)
    assert restored.decoder.get_config() == model.decoder.get_config()
    assert restored.encoder.get_config() == model.encoder.get_config()


def random_batch(size=8, seed=0):
    rng = np.random.default_rng(seed)
    source = rng.integers(4, SRC_VOCAB, size=(size, 4)).astype("int32")
    source[:, -1] = 3
    source[size // 2 :, 2:] = 0
    target = rng.integers(4, TGT_VOCAB, size=(size, 4)).astype("int32")
    target[:, 0] = 2
    target[size // 4 :, 3:] = 0
    return inputs(source, target[:, :-1]), target[:, 1:]


@pytest.mark.parametrize("family", families("bahdanau"), indirect=True)
def test_weights_round_trip_and_training(family, tmp_path):
    """fit() changes the weights and lowers the loss; load_weights() restores them exactly."""
    model = family["model"]
    path = str(tmp_path / "model.weights.h5")
    model.save_weights(path)
    try:
        # A few Adam steps of model.fit on random data (2 batches) reduce the loss.
        x, y = random_batch()
        loss = MaskedCrossEntropy()
        before = float(loss(y, model(x)))
        model.compile(
            optimizer=keras.optimizers.Adam(0.05),
            loss=loss,
            run_eagerly=True,  # tiny model: tracing costs far more than a few eager steps
        )
        history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        after = float(loss(y, model(x)))
        assert np.isfinite(history.history["loss"][0])
        assert after < before - 0.05, (before, after)
        assert not np.allclose(model(inputs()), family["logits"], atol=1e-3)
    finally:
        model.load_weights(path)
    logits, attention = model.teacher_forced(SOURCE, TARGET)
    np.testing.assert_array_equal(np.asarray(logits), family["logits"])
    if attention is not None:
        np.testing.assert_array_equal(np.asarray(attention), family["attention"])


@pytest.mark.parametrize("family", families("luong-input-feeding"), indirect=True)
def test_keras_file_round_trip(family, tmp_path):
    path = str(tmp_path / "model.keras")
    keras.saving.save_model(family["model"], path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, Seq2Seq)
    assert loaded.get_config() == family["model"].get_config()
    assert len(loaded.weights) == len(family["model"].weights)
    logits, attention = loaded.teacher_forced(SOURCE, TARGET)
    np.testing.assert_array_equal(np.asarray(logits), family["logits"])
    if attention is not None:
        np.testing.assert_array_equal(np.asarray(attention), family["attention"])


@pytest.fixture
def mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("family", families("seq2seq"), indirect=True)
def test_mixed_float16_gives_float32_logits(family, mixed_precision):
    model = make_model(family["name"])
    assert model.encoder.compute_dtype == "float16"
    assert model.decoder.output_projection.compute_dtype == "float32"
    logits, attention = model.teacher_forced(SOURCE, TARGET)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert logits.shape == (2, 4, TGT_VOCAB)
    assert np.all(np.isfinite(np.asarray(logits)))
    state = model.initial_search_state(SOURCE)
    step_logits, _, _ = model.next_fn(TARGET[:, 0], state, 0)
    assert keras.backend.standardize_dtype(step_logits.dtype) == "float32"
    # Same seed as the float32 model: float16 compute stays close to it.
    np.testing.assert_allclose(logits, family["logits"], atol=2e-2)
    np.testing.assert_allclose(step_logits, family["logits"][:, 0], atol=2e-2)
    if attention is not None:
        attention = np.asarray(attention, "float32")
        if family["config"].window_mode != "local-p":
            np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-2)
        assert np.all(attention[1, :, 3:] == 0.0)


def test_policy_is_restored_after_mixed_precision():
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize(
    "encoder_kwargs, decoder_kwargs, message",
    [
        (dict(rnn="gru"), dict(rnn="lstm"), r"\('gru', 8, 1\) for a decoder .*=\('lstm', 8, 1\)"),
        (dict(decoder_units=16), {}, r"\('gru', 16, 1\)"),
        (dict(decoder_layers=2), {}, r"\('gru', 8, 2\)"),
    ],
)
def test_an_encoder_bridge_that_does_not_fit_the_decoder_is_rejected(
    encoder_kwargs, decoder_kwargs, message
):
    encoder = Encoder(SRC_VOCAB, 6, 8, **encoder_kwargs)
    decoder = LuongDecoder(TGT_VOCAB, 6, 8, **decoder_kwargs)
    with pytest.raises(ValueError, match=message):
        Seq2Seq(encoder, decoder)


def test_configs_without_local_attention_keys_load_as_global():
    config = make_model("luong-general").get_config()
    del config["decoder"]["config"]["window_mode"], config["decoder"]["config"]["half_window"]
    restored = Seq2Seq.from_config(config)
    assert restored.decoder.attention.window_mode == "global"


@pytest.mark.parametrize("name", ["bahdanau", "luong-local-m", "luong-local-p-input-feeding"])
def test_next_fn_hard_attention_gives_one_hot_weights(name):
    model = make_model(name)
    state = model.initial_search_state(SOURCE)
    for step in range(TARGET.shape[1]):
        logits, state, weights = model.next_fn(TARGET[:, step], state, step, hard_attention=True)
        weights = np.asarray(weights)
        assert logits.shape == (2, TGT_VOCAB)
        assert np.all(np.isin(weights, [0.0, 1.0]))
        np.testing.assert_array_equal(weights.sum(-1), 1.0)
        assert weights[1].argmax() < 3  # the second source has 3 real tokens


def test_next_fn_hard_attention_needs_attention():
    model = make_model("seq2seq")
    state = model.initial_search_state(SOURCE)
    with pytest.raises(ValueError, match="hard_attention"):
        model.next_fn(TARGET[:, 0], state, 0, hard_attention=True)


@pytest.mark.parametrize("hard_attention", [False, True])
def test_greedy_search_of_a_local_m_model_in_a_graph(hard_attention):
    """The local-m position state survives the search's tf.while_loop, unknown batch."""
    model = make_model("luong-local-m")

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def translate(source):
        return greedy_search(
            functools.partial(model.next_fn, hard_attention=hard_attention),
            model.initial_search_state(source),
            batch_size=tf.shape(source)[0],
            bos_id=2,
            eos_id=3,
            pad_id=0,
            max_length=6,
        )

    result = translate(SOURCE)
    assert result.tokens.shape[0] == 2
    attention = result.attention.numpy()
    assert np.all(attention[1, :, 3:] == 0.0)
    if hard_attention:
        assert np.all(np.isin(attention, [0.0, 1.0]))
