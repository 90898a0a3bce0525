import pytest
import sacrebleu

from nmt_keras.evaluation import Scores, score

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
