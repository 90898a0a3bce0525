import pytest
import sentencepiece as spm

from nmt_keras.text.sentencepiece_training import (
    ALPHABET_SHARE,
    BYTE_PIECES,
    MIN_COVERAGE,
    SPECIAL_PIECES,
    VocabularyTooSmallError,
    character_counts,
    size_alphabet,
    train_sentencepiece,
)
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


# A corpus whose script has more characters than a small vocabulary holds: 300 distinct
# CJK ideographs with Zipf-like frequencies (the most frequent about 300 times).
MANY_CHARACTERS = [
    "".join(chr(0x4E00 + (start + step) % 300) for step in range(8))
    for start in range(300)
    for _ in range(max(1, 300 // (start + 1)))
]


def test_an_alphabet_that_fits_is_covered_whole():
    sizing = size_alphabet(SENTENCES, 500, byte_fallback=True)
    assert sizing.character_coverage == 1.0 and sizing.vocab_size == 500
    assert sizing.characters == len(character_counts(SENTENCES))


def test_a_large_alphabet_keeps_its_frequent_characters_in_half_the_free_pieces():
    # 200 characters seen 1,000 times each and 100 seen once: the frequent ones cover
    # 99.95% of the text, and a vocabulary with room for 210 characters keeps them.
    frequent = "".join(chr(0x4E00 + i) for i in range(200)) * 1000
    rare = "".join(chr(0x5000 + i) for i in range(100))
    text = frequent + rare
    sentences = [text[start : start + 50] for start in range(0, len(text), 50)]
    vocab_size = SPECIAL_PIECES + int(210 / ALPHABET_SHARE)
    sizing = size_alphabet(sentences, vocab_size, byte_fallback=False)
    assert sizing.vocab_size == vocab_size and sizing.characters == 300
    assert MIN_COVERAGE <= sizing.character_coverage < 1.0
    model = train_sentencepiece(sentences, vocab_size, character_coverage="auto")
    processor = spm.SentencePieceProcessor(model_proto=model)
    pieces = {processor.id_to_piece(i) for i in range(processor.get_piece_size())}
    assert {chr(0x4E00 + i) for i in range(200)} <= pieces
    assert len({chr(0x5000 + i) for i in range(100)} & pieces) <= 10


def test_a_vocabulary_too_small_for_the_script_grows_under_auto():
    sizing = size_alphabet(MANY_CHARACTERS, 300, byte_fallback=True)
    assert sizing.character_coverage == MIN_COVERAGE
    assert sizing.vocab_size > SPECIAL_PIECES + BYTE_PIECES + 0.98 * 300 / ALPHABET_SHARE * 0.5
    model = train_sentencepiece(MANY_CHARACTERS, 300, character_coverage="auto", byte_fallback=True)
    assert spm.SentencePieceProcessor(model_proto=model).get_piece_size() > 300


def test_byte_fallback_spells_unseen_characters_so_they_survive_a_round_trip():
    model = train_sentencepiece(CHINESE, 300, character_coverage="auto", byte_fallback=True)
    processor = spm.SentencePieceProcessor(model_proto=model)
    for sentence in ["這是新字 ñandú Ω", "我爱北京 🙂"]:
        ids = processor.encode(sentence)
        assert UNK_ID not in ids and any(processor.is_byte(i) for i in ids)
        assert processor.decode(ids) == sentence


def test_text_is_kept_as_written_except_control_characters_and_unicode_spaces():
    model = train_sentencepiece(
        CHINESE + ["你好？世界！（对，ＡＢＣ）"] * 3,
        300,
        character_coverage="auto",
        byte_fallback=True,
    )
    processor = spm.SentencePieceProcessor(model_proto=model)
    full_width = "你好？世界！（对，ＡＢＣ）"
    assert processor.decode(processor.encode(full_width)) == full_width
    assert processor.decode(processor.encode("我\u3000爱\x07北京\t天")) == "我 爱北京 天"


@pytest.mark.parametrize("coverage", [0.9, 1.01, "most", True])
def test_a_coverage_sentencepiece_refuses_is_a_clear_error(coverage):
    with pytest.raises(ValueError, match=r"character_coverage in \[0\.98, 1\] or 'auto'"):
        train_sentencepiece(SENTENCES, 100, character_coverage=coverage)


def test_the_error_counts_the_byte_pieces():
    with pytest.raises(VocabularyTooSmallError, match="and 256 byte pieces") as info:
        train_sentencepiece(CHINESE, 100, byte_fallback=True)
    assert info.value.required > 256
