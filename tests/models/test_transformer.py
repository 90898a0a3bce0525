import keras
import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.export.audit import assert_servable
from nmt_keras.export.session_loadable import SessionLoadableModule
from nmt_keras.layers import TransformerDecoder, TransformerEncoder
from nmt_keras.models.transformer import Transformer
from nmt_keras.search import greedy_search
from nmt_keras.text.tokenizer import BOS_ID, EOS_ID, PAD_ID
from nmt_keras.training.losses import MaskedCrossEntropy

SRC_VOCAB, TGT_VOCAB = 13, 11
SIZES = dict(units=8, num_heads=2, ff_dim=16, encoder_layers=2, decoder_layers=2, dropout=0.0)
# Source sentences of lengths 5 and 3 (0-padded) and decoder inputs <s> y1 y2 y3.
SOURCE = np.array([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]], "int32")
TARGET = np.array([[2, 4, 5, 6], [2, 7, 7, 8]], "int32")


def make_model(seed=0, shared_target_embeddings=False, alignment_head=None, **kwargs):
    keras.utils.set_random_seed(seed)
    sizes = {**SIZES, **kwargs}
    encoder_layers, decoder_layers = sizes.pop("encoder_layers"), sizes.pop("decoder_layers")
    encoder = TransformerEncoder(SRC_VOCAB, num_layers=encoder_layers, **sizes)
    decoder = TransformerDecoder(
        TGT_VOCAB,
        num_layers=decoder_layers,
        shared_embeddings=shared_target_embeddings,
        alignment_head=alignment_head,
        **sizes,
    )
    return Transformer(encoder, decoder)


def search(model, source, max_length=7):
    return greedy_search(
        model.next_fn,
        model.initial_search_state(source),
        batch_size=tf.shape(source)[0],
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        pad_id=PAD_ID,
        max_length=max_length,
    )


@pytest.fixture(scope="module", params=[False, True], ids=["untied", "tied"])
def family(request):
    """A built model with and without tied target embeddings, and its teacher forcing."""
    model = make_model(shared_target_embeddings=request.param)
    model.build()
    logits, attention = model.teacher_forced(SOURCE, TARGET)
    return {"model": model, "logits": np.asarray(logits), "attention": np.asarray(attention)}


def test_call_shape_dtype_and_attention(family):
    model = family["model"]
    logits = model({"source": SOURCE, "target": TARGET})
    assert logits.shape == (2, 4, TGT_VOCAB) and logits.dtype == tf.float32
    np.testing.assert_allclose(logits, family["logits"], atol=1e-6)
    assert model.has_attention
    attention = family["attention"]
    assert attention.shape == (2, 4, 5) and attention.dtype == np.float32
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-5)
    assert np.all(attention[1, :, 3:] == 0.0)  # padded source positions


def test_next_fn_loop_equals_teacher_forcing(family):
    model = family["model"]
    state = model.initial_search_state(SOURCE)
    logits, attention = [], []
    for step in range(TARGET.shape[1]):
        step_logits, state, weights = model.next_fn(TARGET[:, step], state, step)
        assert step_logits.shape == (2, TGT_VOCAB) and step_logits.dtype == tf.float32
        logits.append(np.asarray(step_logits))
        attention.append(np.asarray(weights))
    np.testing.assert_allclose(np.stack(logits, 1), family["logits"], atol=1e-5)
    np.testing.assert_allclose(np.stack(attention, 1), family["attention"], atol=1e-5)
    # Batch first; the caches grew to one position per step; memory and cache per layer.
    for tensor in keras.tree.flatten(state):
        assert tensor.shape[0] == 2
    assert len(state["cache"]["keys"]) == len(state["memory"]["values"]) == 2
    assert state["cache"]["keys"][0].shape == (2, 4, 2, 4)
    assert state["memory"]["keys"][1].shape == (2, 5, 2, 4)


def log_softmax(x):
    x = np.asarray(x, np.float64)
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def test_greedy_search_equals_teacher_forcing_of_its_output(family):
    model = family["model"]
    result = search(model, SOURCE)
    tokens, lengths = np.asarray(result.tokens), np.asarray(result.lengths)
    # Teacher-force <s> followed by the greedy tokens: each token is the argmax there.
    decoder_inputs = np.concatenate([np.full((2, 1), BOS_ID, "int32"), tokens[:, :-1]], 1)
    logits, attention = model.teacher_forced(SOURCE, decoder_inputs)
    log_probs = log_softmax(logits)
    for row, length in enumerate(lengths):
        np.testing.assert_array_equal(log_probs[row, :length].argmax(-1), tokens[row, :length])
        chosen = log_probs[row, np.arange(length), tokens[row, :length]]
        np.testing.assert_allclose(result.scores[row], chosen.sum(), rtol=1e-5)
        np.testing.assert_allclose(
            result.attention[row, :length], attention[row, :length], atol=1e-5
        )


def test_a_sentence_alone_equals_the_sentence_in_a_padded_batch(family):
    logits, attention = family["model"].teacher_forced(SOURCE[1:, :3], TARGET[1:])
    np.testing.assert_allclose(logits, family["logits"][1:], atol=1e-5)
    np.testing.assert_allclose(attention, family["attention"][1:, :, :3], atol=1e-5)


def test_config_round_trip_and_weights(family, tmp_path):
    model = family["model"]
    config = model.get_config()
    encoder_config, decoder_config = config["encoder"]["config"], config["decoder"]["config"]
    assert (encoder_config["num_layers"], decoder_config["num_layers"]) == (2, 2)
    assert (encoder_config["vocab_size"], decoder_config["vocab_size"]) == (SRC_VOCAB, TGT_VOCAB)
    restored = Transformer.from_config(config)
    assert restored.get_config() == config
    restored.build()
    assert len(restored.weights) == len(model.weights)
    path = str(tmp_path / "model.weights.h5")
    model.save_weights(path)
    restored.load_weights(path)
    logits, attention = restored.teacher_forced(SOURCE, TARGET)
    np.testing.assert_array_equal(logits, family["logits"])
    np.testing.assert_array_equal(attention, family["attention"])


def test_keras_file_round_trip(family, tmp_path):
    path = str(tmp_path / "model.keras")
    keras.saving.save_model(family["model"], path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, Transformer)
    assert loaded.get_config() == family["model"].get_config()
    logits, _ = loaded.teacher_forced(SOURCE, TARGET)
    np.testing.assert_array_equal(logits, family["logits"])


# Four pairs of different lengths; decoder inputs are TARGETS[:, :-1], labels [:, 1:].
SOURCES = np.array(
    [[2, 5, 6, 7, 3, 0], [2, 8, 9, 3, 0, 0], [2, 10, 4, 11, 12, 3], [2, 7, 3, 0, 0, 0]], "int32"
)
TARGETS = np.array(
    [[2, 4, 5, 6, 3, 0], [2, 7, 8, 9, 10, 3], [2, 6, 3, 0, 0, 0], [2, 9, 4, 4, 3, 0]], "int32"
)


def test_fit_overfits_four_pairs_to_exact_greedy_reproduction():
    model = make_model(units=16, ff_dim=32, encoder_layers=1, decoder_layers=1)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=MaskedCrossEntropy())
    copies = 60  # 60 steps of batch 4
    inputs = {
        "source": np.tile(SOURCES, (copies, 1)),
        "target": np.tile(TARGETS[:, :-1], (copies, 1)),
    }
    history = model.fit(
        inputs, np.tile(TARGETS[:, 1:], (copies, 1)), batch_size=4, shuffle=False, verbose=0
    )
    assert history.history["loss"][0] < 1.0
    result = search(model, SOURCES, max_length=8)
    np.testing.assert_array_equal(result.tokens, TARGETS[:, 1:])
    np.testing.assert_array_equal(result.lengths, (TARGETS[:, 1:] != PAD_ID).sum(1))


class GreedyTranslator(SessionLoadableModule):
    keras_attributes = ("model",)

    def __init__(self, model):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def translate(self, source):
        return search(self.model, source, max_length=2 * tf.shape(source)[1])._asdict()


def test_saved_model_runs_greedy_search_and_is_servable(tmp_path):
    model = make_model(encoder_layers=1, decoder_layers=1, shared_target_embeddings=True)
    translator = GreedyTranslator(model)
    path = str(tmp_path / "saved_model")
    translator.save_with_signatures(path, {"serving_default": translator.translate})
    assert_servable(path)
    loaded = tf.saved_model.load(path)
    for source in (SOURCE, SOURCE[1:, :3], np.tile(SOURCE, (3, 1))):
        expected = search(model, source, max_length=2 * source.shape[1])._asdict()
        outputs = loaded.translate(tf.constant(source))
        for name, value in expected.items():
            np.testing.assert_allclose(outputs[name], value, atol=1e-5, err_msg=name)


@pytest.fixture
def mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("shared", [False, True], ids=["untied", "tied"])
def test_mixed_float16_gives_float32_logits(shared, mixed_precision):
    model = make_model(shared_target_embeddings=shared)
    assert model.encoder.compute_dtype == "float16"
    logits, attention = model.teacher_forced(SOURCE, TARGET)
    assert logits.dtype == tf.float32 and attention.dtype == tf.float32
    assert np.all(np.isfinite(np.asarray(logits)))
    np.testing.assert_allclose(np.sum(attention, -1), 1.0, atol=1e-3)
    assert np.all(np.asarray(attention)[1, :, 3:] == 0.0)
    step_logits, state, _ = model.next_fn(TARGET[:, 0], model.initial_search_state(SOURCE), 0)
    assert step_logits.dtype == tf.float32
    assert state["cache"]["keys"][0].dtype == tf.float16
    np.testing.assert_allclose(step_logits, logits[:, 0], atol=1e-2)
    result = search(model, SOURCE)
    assert result.scores.dtype == tf.float32 and np.all(np.isfinite(result.scores))
    # Same seed as the float32 model: float16 compute stays close to it.
    keras.config.set_dtype_policy("float32")
    float32_logits, _ = make_model(shared_target_embeddings=shared).teacher_forced(SOURCE, TARGET)
    np.testing.assert_allclose(logits, float32_logits, atol=5e-2)


def test_policy_is_restored_after_mixed_precision():
    assert keras.config.dtype_policy().name == "float32"


def test_invalid_arguments():
    with pytest.raises(ValueError, match="Received: units=10, num_heads=3"):
        make_model(units=10, num_heads=3)
    with pytest.raises(ValueError, match="alignment_head=-3"):
        make_model(alignment_head=-3)
