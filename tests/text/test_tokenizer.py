import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer

from .conftest import SENTENCES

TEXTS = ["a dog runs in the park", "two men play", ""]


@pytest.fixture(scope="module")
def tokenizer(model_proto):
    return Tokenizer(model_proto)


def test_tokenize_frames_with_bos_and_eos(tokenizer):
    ids = tokenizer.tokenize(tf.constant(TEXTS))
    assert isinstance(ids, tf.RaggedTensor)
    assert ids.dtype == tf.int32 and ids.shape.rank == 2
    for row in ids.to_list():
        assert row[0] == BOS_ID and row[-1] == EOS_ID
        assert BOS_ID not in row[1:-1] and EOS_ID not in row[1:-1]
    assert ids.to_list()[2] == [BOS_ID, EOS_ID]


def test_vocab_size_and_model_proto(tokenizer, model_proto):
    assert isinstance(tokenizer.vocab_size, int) and 8 <= tokenizer.vocab_size <= 60
    assert tokenizer.model_proto == model_proto


def test_token_lengths_match_tokenize(tokenizer):
    ids = tokenizer.tokenize(tf.constant(TEXTS))
    assert tokenizer.token_lengths(TEXTS) == ids.row_lengths().numpy().tolist()


def test_round_trip_eager(tokenizer):
    ids = tokenizer.tokenize(tf.constant(TEXTS))
    assert tokenizer.detokenize(ids).numpy().tolist() == [t.encode() for t in TEXTS]


def test_round_trip_in_tf_function(tokenizer):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def round_trip(text):
        return tokenizer.detokenize(tokenizer.tokenize(text).to_tensor(PAD_ID))

    assert round_trip(tf.constant(TEXTS)).numpy().tolist() == [t.encode() for t in TEXTS]


def test_round_trip_in_tf_data(tokenizer):
    dataset = tf.data.Dataset.from_tensor_slices(SENTENCES[:6]).batch(4)
    dataset = dataset.map(lambda text: tokenizer.detokenize(tokenizer.tokenize(text)))
    decoded = [s.decode() for batch in dataset for s in batch.numpy()]
    assert decoded == SENTENCES[:6]


def test_detokenize_stops_at_eos_and_ignores_pad_and_bos(tokenizer):
    words = tokenizer.tokenize(tf.constant(["a dog", "the cat"])).to_list()
    dog, cat = words[0][1:-1], words[1][1:-1]
    rows = [[BOS_ID, *dog, EOS_ID, *cat, EOS_ID], [*cat]]
    width = max(len(row) for row in rows) + 2
    dense = tf.constant([row + [PAD_ID] * (width - len(row)) for row in rows], tf.int64)
    assert tokenizer.detokenize(dense).numpy().tolist() == [b"a dog", b"the cat"]
    ragged = tf.ragged.constant([[BOS_ID, *dog], [*cat, EOS_ID, *dog]])
    assert tokenizer.detokenize(ragged).numpy().tolist() == [b"a dog", b"the cat"]


def test_id_to_piece_keeps_shape(tokenizer):
    ids = tf.constant([[BOS_ID, EOS_ID, PAD_ID], [PAD_ID, PAD_ID, PAD_ID]])
    pieces = tokenizer.id_to_piece(ids)
    assert pieces.shape == (2, 3)
    assert pieces.numpy()[0].tolist() == [b"<s>", b"</s>", b"<pad>"]


def test_save_and_from_file(tokenizer, tmp_path):
    path = tmp_path / "spm.model"
    tokenizer.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["spm.model"]
    loaded = Tokenizer.from_file(path)
    assert loaded.model_proto == tokenizer.model_proto
    np.testing.assert_array_equal(
        loaded.tokenize(tf.constant(TEXTS)).to_tensor(),
        tokenizer.tokenize(tf.constant(TEXTS)).to_tensor(),
    )


def test_from_file_errors_name_the_path(tmp_path):
    missing = tmp_path / "missing.model"
    with pytest.raises(FileNotFoundError, match="missing.model"):
        Tokenizer.from_file(missing)
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="garbage.model"):
        Tokenizer.from_file(garbage)


def test_tokenizer_survives_saved_model(tokenizer, tmp_path):
    module = tf.Module()
    module.tokenizer = tokenizer

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def encode(text):
        ids = module.tokenizer.tokenize(text).to_tensor(PAD_ID)
        return {"ids": ids, "text": module.tokenizer.detokenize(ids)}

    module.encode = encode
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"serving_default": encode})
    reloaded = tf.saved_model.load(str(tmp_path / "1"))
    outputs = reloaded.signatures["serving_default"](text=tf.constant(TEXTS))
    expected = tokenizer.tokenize(tf.constant(TEXTS)).to_tensor(PAD_ID)
    np.testing.assert_array_equal(outputs["ids"], expected)
    assert outputs["text"].numpy().tolist() == [t.encode() for t in TEXTS]


def _pieces_module(first, second):
    class Pieces(tf.Module):
        def __init__(self):
            super().__init__()
            self.first, self.second = first, second

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
        def pieces(self, ids):
            return {"first": self.first.id_to_piece(ids), "second": self.second.id_to_piece(ids)}

    return Pieces()


def test_different_models_keep_their_own_resource_after_saved_model_load(tmp_path):
    """Regression: both tokenizers of an export once resolved to one SentencePiece model."""
    from nmt_keras.text import train_sentencepiece

    german = ["der hund läuft schnell", "die katze schläft lange", "ein kind spielt gern"] * 5
    english = ["the dog runs fast", "the cat sleeps long", "a child likes playing"] * 5
    source = Tokenizer(train_sentencepiece(german, 24))
    target = Tokenizer(train_sentencepiece(english, 24))
    ids = tf.range(4, 12)
    expected_source = source.id_to_piece(ids).numpy().tolist()
    expected_target = target.id_to_piece(ids).numpy().tolist()
    assert expected_source != expected_target

    for name, (first, second) in {"a": (source, target), "b": (target, source)}.items():
        module = _pieces_module(first, second)
        tf.saved_model.save(module, str(tmp_path / name))
    # Both SavedModels live in one process, as two model versions do in a server.
    loaded_a = tf.saved_model.load(str(tmp_path / "a"))
    loaded_b = tf.saved_model.load(str(tmp_path / "b"))
    a = loaded_a.pieces(ids)
    b = loaded_b.pieces(ids)
    assert a["first"].numpy().tolist() == expected_source
    assert a["second"].numpy().tolist() == expected_target
    assert b["first"].numpy().tolist() == expected_target
    assert b["second"].numpy().tolist() == expected_source
