import pytest
import sentencepiece as spm

from nmt_keras.text.sentencepiece_training import VocabularyTooSmallError, train_sentencepiece
from nmt_keras.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID

from .conftest import SENTENCES

CHINESE = [
    "我爱北京天安门",
    "今天天气很好",
    "他们在公园里散步",
    "我们一起去吃饭吧",
    "这本书非常有意思",
    "小狗在草地上跑",
] * 3


def test_special_pieces_have_fixed_ids(model_proto):
    processor = spm.SentencePieceProcessor(model_proto=model_proto)
    assert [processor.id_to_piece(i) for i in (PAD_ID, UNK_ID, BOS_ID, EOS_ID)] == [
        "<pad>",
        "<unk>",
        "<s>",
        "</s>",
    ]
    assert processor.pad_id() == PAD_ID and processor.eos_id() == EOS_ID


def test_vocab_limit_is_soft_for_tiny_corpora():
    model = train_sentencepiece(SENTENCES[:3], vocab_size=5000)
    assert 8 <= spm.SentencePieceProcessor(model_proto=model).get_piece_size() < 5000


def test_same_seed_gives_same_model(model_proto):
    assert train_sentencepiece(SENTENCES, vocab_size=60, seed=0) == model_proto


def test_chinese_without_spaces_round_trips():
    model = train_sentencepiece(CHINESE, vocab_size=60, character_coverage=0.9995)
    processor = spm.SentencePieceProcessor(model_proto=model)
    for sentence in [*CHINESE[:6], "我们在公园里吃饭"]:
        ids = processor.encode(sentence)
        assert UNK_ID not in ids
        assert processor.decode(ids) == sentence
    assert len(processor.encode("我们在公园里吃饭")) > 1


@pytest.mark.parametrize("model_type", ["bpe", "char"])
def test_other_model_types(model_type):
    model = train_sentencepiece(SENTENCES, vocab_size=40, model_type=model_type)
    processor = spm.SentencePieceProcessor(model_proto=model)
    assert processor.decode(processor.encode(SENTENCES[0])) == SENTENCES[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sentences": SENTENCES, "vocab_size": 7}, "vocab_size >= 8"),
        ({"sentences": [], "vocab_size": 100}, "non-empty training sentence"),
        ({"sentences": ["", "  "], "vocab_size": 100}, "non-empty training sentence"),
        ({"sentences": SENTENCES, "vocab_size": 100, "model_type": "x"}, "model_type"),
        ({"sentences": SENTENCES, "vocab_size": 100, "character_coverage": 0}, "coverage"),
        ({"sentences": CHINESE, "vocab_size": 8}, "vocab_size=8 is smaller than the"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_sentencepiece(**kwargs)


def test_a_vocabulary_smaller_than_the_characters_to_cover_is_a_clear_error():
    with pytest.raises(VocabularyTooSmallError) as info:
        train_sentencepiece(CHINESE, vocab_size=20, character_coverage=1.0)
    error = info.value
    assert error.vocab_size == 20 and error.required > 20
    assert str(error) == (
        f"vocab_size=20 is smaller than the {error.required} pieces that "
        "character_coverage=1.0 needs (the characters to cover and 4 special pieces)"
    )
