import keras
import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.config import ModelConfig
from nmt_keras.models import build_model
from nmt_keras.text import BOS_ID, EOS_ID, PAD_ID, Tokenizer, train_sentencepiece
from nmt_keras.translator import Alignment, Translator

MAX_SOURCE_LENGTH, MAX_DECODE_LENGTH = 8, 24

SUBJECTS = ["the dog", "a cat", "two men", "the woman", "my friend", "a child"]
VERBS = ["sees", "likes", "finds", "paints"]
OBJECTS = ["the house", "a tree", "the river", "a red car"]


def english():
    return [f"{s} {v} {o}" for s in SUBJECTS for v in VERBS[:2] for o in OBJECTS[:3]]


def spanish():
    return [s.replace("the", "el").replace("a ", "un ") + " ." for s in english()]


@pytest.fixture(scope="module")
def protos():
    """Serialized SentencePiece models (vocabulary ~40) of a tiny generated corpus."""
    return (
        train_sentencepiece(spanish(), vocab_size=40, seed=0),
        train_sentencepiece(english(), vocab_size=40, seed=0),
    )


def make_translator(protos, model_type="bahdanau"):
    sizes = [Tokenizer(proto).vocab_size for proto in protos]
    config = ModelConfig(type=model_type, embedding_dim=6, units=8, attention_units=5, dropout=0.0)
    keras.utils.set_random_seed(0)
    model = build_model(config, *sizes)
    # The tokenizers are made after seeding: tf.random.set_seed clears the eager kernel
    # cache, which deletes SentencePiece resources made before it (tensorflow/text#570).
    source, target = (Tokenizer(proto) for proto in protos)
    return Translator(
        model,
        source,
        target,
        max_source_length=MAX_SOURCE_LENGTH,
        max_decode_length=MAX_DECODE_LENGTH,
    )


@pytest.fixture(scope="module")
def translator(protos):
    """One translator for the module: its tf.function is traced once and reused."""
    return make_translator(protos)


@pytest.fixture(scope="module")
def tokenizers(translator):
    return translator.source_tokenizer, translator.target_tokenizer


SENTENCES = ["el perro ve un arbol .", "dos hombres", "un gato pinta el rio y la casa ."]


def numpy_outputs(translator, sentences):
    outputs = translator.translate(tf.constant(sentences))
    return {key: value.numpy() for key, value in outputs.items()}


@pytest.fixture(scope="module")
def outputs(translator):
    return numpy_outputs(translator, SENTENCES)


def test_output_shapes_and_dtypes(outputs):
    batch = len(SENTENCES)
    assert set(outputs) == {"translation", "score", "length", "tokens", "source_ids", "attention"}
    assert outputs["translation"].shape == (batch,) and outputs["translation"].dtype == object
    assert outputs["score"].shape == (batch,) and outputs["score"].dtype == np.float32
    assert outputs["length"].shape == (batch,) and outputs["length"].dtype == np.int32
    tgt_len = outputs["tokens"].shape[1]
    src_len = outputs["source_ids"].shape[1]
    assert outputs["tokens"].shape == (batch, tgt_len) and outputs["tokens"].dtype == np.int32
    assert outputs["source_ids"].dtype == np.int32 and outputs["source_ids"].shape[0] == batch
    assert outputs["attention"].shape == (batch, tgt_len, src_len)
    assert outputs["attention"].dtype == np.float32
    assert 1 <= tgt_len <= MAX_DECODE_LENGTH and src_len <= MAX_SOURCE_LENGTH


def test_source_ids_are_the_tokenized_sentence(outputs, tokenizers):
    source, _ = tokenizers
    for row, sentence in zip(outputs["source_ids"], SENTENCES, strict=True):
        expected = source.tokenize(tf.constant([sentence])).to_list()[0]
        expected = expected[1:-1][: MAX_SOURCE_LENGTH - 2]
        real = row[row != PAD_ID].tolist()
        assert real == [BOS_ID, *expected, EOS_ID]
        assert np.all(row[len(real) :] == PAD_ID)


def test_tokens_lengths_and_scores_are_consistent(outputs, tokenizers):
    _, target = tokenizers
    src_lengths = (outputs["source_ids"] != PAD_ID).sum(axis=1)
    width = outputs["source_ids"].shape[1]
    for row in range(len(SENTENCES)):
        tokens, length = outputs["tokens"][row], int(outputs["length"][row])
        bound = min(MAX_DECODE_LENGTH, 2 * width + 10)
        assert 1 <= length <= bound
        assert np.all(tokens[:length] != PAD_ID) and np.all(tokens[length:] == PAD_ID)
        assert EOS_ID not in tokens[: length - 1].tolist()
        if tokens[length - 1] != EOS_ID:
            assert length == bound  # stopped by the length bound, not by </s>
        assert outputs["score"][row] < 0.0
        attention = outputs["attention"][row]
        np.testing.assert_allclose(attention[:length].sum(-1), 1.0, atol=1e-5)
        assert np.all(attention[:, src_lengths[row] :] == 0.0)
        assert np.all(attention[length:] == 0.0)
    detokenized = target.detokenize(outputs["tokens"]).numpy()
    np.testing.assert_array_equal(outputs["translation"], detokenized)


def test_greedy_output_is_the_argmax_of_the_model(translator, outputs):
    """Teacher forcing on the generated tokens gives back the tokens, score and attention."""
    model = translator.model
    for row in range(len(SENTENCES)):
        length = int(outputs["length"][row])
        tokens = outputs["tokens"][row, :length]
        source = outputs["source_ids"][row : row + 1]
        source = source[:, : int((source != PAD_ID).sum())]
        target = np.array([[BOS_ID, *tokens[:-1]]], "int32")
        logits, attention = model.teacher_forced(source, target)
        log_probs = tf.nn.log_softmax(logits[0]).numpy()  # (length, vocab)
        np.testing.assert_array_equal(log_probs.argmax(-1), tokens)
        assert outputs["score"][row] == pytest.approx(log_probs.max(-1).sum(), abs=1e-4)
        np.testing.assert_allclose(
            attention[0], outputs["attention"][row, :length, : source.shape[1]], atol=1e-5
        )


@pytest.mark.parametrize("empty", ["", "   ", "\t"])
def test_empty_input_translates_to_empty(translator, empty):
    result = numpy_outputs(translator, [empty, SENTENCES[0]])
    assert result["translation"][0] == b""
    assert result["score"][0] == 0.0
    assert result["length"][0] == 0
    alone = numpy_outputs(translator, [SENTENCES[0]])
    assert result["translation"][1] == alone["translation"][0]
    assert result["length"][1] == alone["length"][0]
    assert result["score"][1] == pytest.approx(alone["score"][0], abs=1e-5)


def test_padding_in_a_batch_does_not_change_a_translation(translator, outputs):
    for row, sentence in enumerate(SENTENCES):
        alone = numpy_outputs(translator, [sentence])
        length = int(alone["length"][0])
        assert alone["translation"][0] == outputs["translation"][row]
        np.testing.assert_array_equal(alone["tokens"][0, :length], outputs["tokens"][row, :length])
        assert alone["score"][0] == pytest.approx(outputs["score"][row], abs=1e-4)


def test_long_input_is_truncated_and_decoding_is_bounded(translator, tokenizers):
    source, _ = tokenizers
    sentence = " ".join(spanish()[:6])
    assert len(source.tokenize(tf.constant([sentence])).to_list()[0]) > 3 * MAX_SOURCE_LENGTH
    result = numpy_outputs(translator, [sentence, "dos"])
    assert result["source_ids"].shape[1] == MAX_SOURCE_LENGTH
    ids = result["source_ids"][0]
    assert ids[0] == BOS_ID and ids[-1] == EOS_ID and PAD_ID not in ids.tolist()
    assert result["source_ids"][1, -1] == PAD_ID  # the short sentence is padded
    assert result["tokens"].shape[1] <= MAX_DECODE_LENGTH
    assert np.all(result["length"] <= MAX_DECODE_LENGTH)
    assert result["attention"].shape[2] == MAX_SOURCE_LENGTH


def test_decoding_is_bounded_by_the_source_length(translator):
    # At most min(max_decode_length, 2 * src_len + 10) tokens; src_len counts <s> and </s>.
    result = numpy_outputs(translator, ["dos"])
    src_len = result["source_ids"].shape[1]
    assert 2 * src_len + 10 < MAX_DECODE_LENGTH
    assert result["tokens"].shape[1] <= 2 * src_len + 10
    assert result["length"][0] <= 2 * src_len + 10
    if EOS_ID not in result["tokens"][0].tolist():  # the untrained model never stops
        assert result["length"][0] == 2 * src_len + 10


@pytest.fixture
def eos_first(translator):
    """Makes </s> the most probable token at every step, by the output bias."""
    bias = translator.model.decoder.output_projection.bias
    saved = bias.numpy()
    boosted = saved.copy()
    boosted[EOS_ID] += 100.0
    bias.assign(boosted)  # a variable: the traced function sees it without a retrace
    yield
    bias.assign(saved)


def test_translation_ends_at_the_first_eos(translator, eos_first):
    result = numpy_outputs(translator, [*SENTENCES, ""])
    assert result["tokens"].shape == (4, 1)  # the loop stops once every row has ended
    np.testing.assert_array_equal(result["tokens"][:, 0], EOS_ID)
    np.testing.assert_array_equal(result["length"], [1, 1, 1, 0])
    assert result["translation"].tolist() == [b""] * 4
    np.testing.assert_allclose(result["score"], 0.0, atol=1e-4)  # log p(</s>) ~ 0
    assert result["attention"].shape == (4, 1, result["source_ids"].shape[1])
    np.testing.assert_allclose(result["attention"][:, 0].sum(-1), 1.0, atol=1e-5)


def test_translate_all_keeps_the_input_order(translator):
    sentences = [
        "un gato pinta el rio y la casa .",
        "dos",
        "",
        "el perro ve un arbol .",
        "mi amigo",
        "la mujer encuentra un coche rojo .",
        "dos",
    ]
    finished = []
    translations = translator.translate_all(sentences, batch_size=3, progress=finished.append)
    assert finished == [3, 3, 1]
    expected = [
        numpy_outputs(translator, [sentence])["translation"][0].decode() for sentence in sentences
    ]
    assert translations == expected
    assert translations[2] == "" and translations[1] == translations[6]
    assert all(isinstance(t, str) for t in translations)
    assert translator.translate_all([]) == []


def test_translate_all_rejects_a_bad_batch_size(translator):
    with pytest.raises(ValueError, match="batch_size=0"):
        translator.translate_all(["dos"], batch_size=0)


def test_translate_traces_once_for_any_batch_size(translator):
    for sentences in (SENTENCES[:1], SENTENCES, SENTENCES * 3, ["a b c d e f g h i j k"]):
        translator.translate(tf.constant(sentences))
    assert translator.translate.experimental_get_tracing_count() == 1


def test_align_trims_to_real_tokens(translator, outputs, tokenizers):
    alignment = translator.align(SENTENCES[1])
    assert isinstance(alignment, Alignment)
    alone = numpy_outputs(translator, [SENTENCES[1]])
    length = int(alone["length"][0])
    real_source = alone["source_ids"][0][alone["source_ids"][0] != PAD_ID]
    assert alignment.translation == alone["translation"][0].decode()
    assert alignment.source_tokens[0] == "<s>" and alignment.source_tokens[-1] == "</s>"
    assert len(alignment.source_tokens) == len(real_source)
    assert len(alignment.target_tokens) == length
    source, target = tokenizers
    pieces = target.id_to_piece(tf.constant(alone["tokens"][0, :length])).numpy()
    assert alignment.target_tokens == [piece.decode() for piece in pieces]
    assert alignment.weights.shape == (length, len(real_source))
    np.testing.assert_allclose(alignment.weights.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(
        alignment.weights, alone["attention"][0, :length, : len(real_source)], atol=1e-7
    )


def test_align_needs_attention(protos):
    source, target = (Tokenizer(proto) for proto in protos)
    model = build_model(ModelConfig(type="seq2seq"), source.vocab_size, target.vocab_size)
    translator = Translator(model, source, target, max_source_length=8, max_decode_length=4)
    with pytest.raises(ValueError, match="no attention"):
        translator.align("el perro")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_source_length=2, max_decode_length=5), "max_source_length=2"),
        (dict(max_source_length=5, max_decode_length=0), "max_decode_length=0"),
    ],
)
def test_constructor_validates_lengths(protos, kwargs, message):
    source, target = (Tokenizer(proto) for proto in protos)
    model = build_model(ModelConfig(), source.vocab_size, target.vocab_size)
    with pytest.raises(ValueError, match=message):
        Translator(model, source, target, **kwargs)
