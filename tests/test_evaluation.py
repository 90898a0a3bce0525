import pytest
import sacrebleu

from nmt_keras.evaluation import (
    BLEU_TOKENIZE_CHOICES,
    Scores,
    bleu_tokenizer_for,
    check_bleu_tokenize,
    score,
)

HYPOTHESES = [
    "the cat sat on the mat .",
    "a dog runs in the park",
    "he reads the book , slowly .",
    "two men are playing football",
]
REFERENCES = [
    "the cat sat on the mat .",
    "a dog is running in the park",
    "he slowly reads a book .",
    "two men play football in the street",
]


def test_scores_match_sacrebleu():
    scores = score(HYPOTHESES, REFERENCES)
    assert isinstance(scores, Scores)
    expected_bleu = sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES])
    expected_chrf = sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES])
    assert scores.bleu == pytest.approx(expected_bleu.score)
    assert scores.chrf == pytest.approx(expected_chrf.score)
    assert 0.0 < scores.bleu < 100.0 and 0.0 < scores.chrf < 100.0
    assert scores.bleu_text == str(expected_bleu)


def test_signatures_make_scores_reproducible():
    scores = score(HYPOTHESES, REFERENCES)
    for part in ("nrefs:1", "case:mixed", "tok:13a", "smooth:exp", "version:"):
        assert part in scores.bleu_signature
    for part in ("nrefs:1", "nc:6", "nw:0", "version:"):
        assert part in scores.chrf_signature
    assert scores.bleu_text.startswith("BLEU = ")
    text = str(scores)
    assert scores.bleu_text in text and scores.bleu_signature in text
    assert f"chrF2 = {scores.chrf:.2f}" in text and scores.chrf_signature in text


def test_identical_output_scores_100():
    scores = score(REFERENCES, REFERENCES)
    assert scores.bleu == pytest.approx(100.0)
    assert scores.chrf == pytest.approx(100.0)


def test_unrelated_output_scores_near_zero():
    scores = score(["x y z"] * 4, REFERENCES)
    assert scores.bleu == pytest.approx(0.0, abs=1e-6)
    assert scores.chrf < 10.0


def test_is_case_sensitive_and_order_dependent():
    cased = score([h.upper() for h in HYPOTHESES], REFERENCES)
    assert cased.bleu < score(HYPOTHESES, REFERENCES).bleu
    swapped = score(HYPOTHESES[::-1], REFERENCES)
    assert swapped.bleu < score(HYPOTHESES, REFERENCES).bleu


def test_accepts_any_sequence():
    assert score(tuple(HYPOTHESES), tuple(REFERENCES)).bleu == score(HYPOTHESES, REFERENCES).bleu


@pytest.mark.parametrize("hypotheses, references", [(HYPOTHESES, REFERENCES[:3]), ([], ["a"])])
def test_mismatched_lengths_raise(hypotheses, references):
    with pytest.raises(ValueError, match="one reference per hypothesis"):
        score(hypotheses, references)


CHINESE = ["我们去学校了。", "他在看书。"]
JAPANESE = ["私は学校へ行きました。", "彼は本を読んでいます。"]
KOREAN = ["나는 학교에 갔습니다.", "그는 책을 읽고 있습니다."]
GERMAN = ["Der Hund läuft im Park.", "Zwei Männer spielen Fußball."]


@pytest.mark.parametrize(
    "references, tokenizer",
    [
        (CHINESE, "zh"),
        (JAPANESE, "ja-mecab"),
        (KOREAN, "ko-mecab"),
        (REFERENCES, "13a"),
        (GERMAN, "13a"),
    ],
)
def test_auto_tokenizer_follows_the_references_script(references, tokenizer):
    assert bleu_tokenizer_for(references) == tokenizer
    scores = score(references, references)
    assert f"tok:{tokenizer}" in scores.bleu_signature
    assert scores.bleu == pytest.approx(100.0)


def test_auto_tokenizer_without_letters_is_13a():
    assert bleu_tokenizer_for([]) == bleu_tokenizer_for(["", "42 !", "。"]) == "13a"


def test_auto_tokenizer_ignores_a_few_foreign_words():
    assert bleu_tokenizer_for([*CHINESE, "我用iPhone拍照。", "我喜欢吃スシ和拉面。"] * 3) == "zh"
    assert bleu_tokenizer_for([*GERMAN, "Wir aßen in Tokio (東京) Sushi (寿司)."]) == "13a"
    assert bleu_tokenizer_for([*KOREAN, "大韓民國 헌법 제1조"]) == "ko-mecab"


def test_chinese_is_scored_per_character():
    hypotheses, references = ["我们去学校。"], ["我们去学校了。"]
    assert score(hypotheses, references).bleu > 0.0
    assert score(hypotheses, references, tokenize="zh").bleu > 0.0
    # 13a leaves each Chinese sentence one "word": no shared unigram at all.
    assert score(hypotheses, references, tokenize="13a").bleu == 0.0


def test_explicit_tokenizer_overrides_auto():
    scores = score(CHINESE, CHINESE, tokenize="char")
    assert "tok:char" in scores.bleu_signature
    assert "tok:13a" in score(JAPANESE, JAPANESE, tokenize="13a").bleu_signature
    assert "tok:zh" in score(HYPOTHESES, REFERENCES, tokenize="zh").bleu_signature


def test_tokenize_choices_are_sacrebleus():
    assert BLEU_TOKENIZE_CHOICES[0] == "auto"
    assert set(BLEU_TOKENIZE_CHOICES[1:]) == set(sacrebleu.BLEU.TOKENIZERS)
    for name in BLEU_TOKENIZE_CHOICES:
        check_bleu_tokenize(name)


def test_unknown_tokenizer_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=r"Expected tokenize to be one of auto, .*zh") as info:
        score(HYPOTHESES, REFERENCES, tokenize="chinese")
    assert "tokenize='chinese'" in str(info.value)
    with pytest.raises(ValueError, match=r"Received: --flag='x'"):
        check_bleu_tokenize("x", "--flag")
