"""Corpus-level translation quality with sacreBLEU: BLEU and chrF with their signatures.

BLEU counts word n-grams, so its tokenizer must suit the target language: sacreBLEU's
default `13a` splits on spaces and punctuation and leaves a Chinese or Japanese sentence
as one "word". `score` therefore picks the tokenizer from the references' script unless
one is named.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from sacrebleu.metrics import BLEU, CHRF

#: Values of a BLEU `tokenize` setting: `auto` (see `bleu_tokenizer_for`) or a sacreBLEU
#: tokenizer. `ja-mecab` and `ko-mecab` use the `sacrebleu[ja,ko]` extras (dependencies
#: of this package); `spm`, `flores101`, `flores200` and `spBLEU-1K` download their
#: SentencePiece model on first use.
BLEU_TOKENIZE_CHOICES: tuple[str, ...] = ("auto", *BLEU.TOKENIZERS)

_LETTER = re.compile(r"[^\W\d_]")
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_KANA = re.compile("[\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7ff]")
_CJK_SHARE = 0.3
_HANGUL_SHARE = 0.5
_KANA_SHARE = 0.2


def check_bleu_tokenize(value: str, name: str = "tokenize") -> None:
    """Checks a BLEU tokenize setting.

    Args:
        value: `auto` or a sacreBLEU tokenizer name.
        name: The setting's name in the error message (a config key or a flag).

    Raises:
        ValueError: if `value` is not in `BLEU_TOKENIZE_CHOICES`.
    """
    if value not in BLEU_TOKENIZE_CHOICES:
        raise ValueError(
            f"Expected {name} to be one of {', '.join(BLEU_TOKENIZE_CHOICES)}. "
            f"Received: {name}={value!r}"
        )


def bleu_tokenizer_for(references: Sequence[str]) -> str:
    """The sacreBLEU tokenizer that suits the script of `references`.

    Counts the references' letters (digits, punctuation and spaces aside). When under
    30% of them are Chinese, Japanese or Korean (CJK), the text is alphabetic and gets
    `13a`, sacreBLEU's default. The bar is low because a Latin word spends several letters
    where CJK spends one or two, so CJK text with many embedded Latin terms still clears
    it. Among the CJK letters, Hangul for at least half gives `ko-mecab`; else kana for at
    least 20% gives `ja-mecab` (Japanese writes its particles and endings in kana, some
    40-70% of its letters, Chinese none); else the Han characters give `zh`. Shares of the
    whole corpus, not of single sentences, keep a few foreign words, names or loanwords
    (a Korean Hanja, a Chinese katakana brand) from changing the choice.

    Args:
        references: Reference translations.

    Returns:
        `zh`, `ja-mecab`, `ko-mecab` or `13a`.
    """
    letters = "".join(_LETTER.findall("".join(references)))
    han, kana, hangul = (len(script.findall(letters)) for script in (_HAN, _KANA, _HANGUL))
    cjk = han + kana + hangul
    if not letters or cjk < _CJK_SHARE * len(letters):
        return "13a"
    if hangul >= _HANGUL_SHARE * cjk:
        return "ko-mecab"
    if kana >= _KANA_SHARE * cjk:
        return "ja-mecab"
    return "zh"


@dataclasses.dataclass(frozen=True)
class Scores:
    """BLEU and chrF of a system output, with the signatures that make them reproducible.

    Attributes:
        bleu: Corpus BLEU (0-100), cased, tokenized as the signature's `tok` says.
        chrf: Corpus chrF (0-100).
        bleu_signature: sacreBLEU's BLEU signature.
        chrf_signature: sacreBLEU's chrF signature.
        bleu_text: sacreBLEU's one-line BLEU summary (n-gram precisions, BP, lengths).
    """

    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    bleu_text: str

    def __str__(self) -> str:
        return (
            f"{self.bleu_text}\n{self.bleu_signature}\n"
            f"chrF2 = {self.chrf:.2f}\n{self.chrf_signature}"
        )


def score(hypotheses: Sequence[str], references: Sequence[str], tokenize: str = "auto") -> Scores:
    """Scores detokenized hypotheses against one reference each.

    Args:
        hypotheses: System outputs.
        references: One reference translation per hypothesis.
        tokenize: BLEU tokenizer, one of `BLEU_TOKENIZE_CHOICES`; `auto` picks it from the
            references' script (`bleu_tokenizer_for`).

    Raises:
        ValueError: if the two lists differ in length or `tokenize` is unknown.
    """
    check_bleu_tokenize(tokenize)
    if len(hypotheses) != len(references):
        raise ValueError(
            "Expected one reference per hypothesis. "
            f"Received: {len(hypotheses)} hypotheses, {len(references)} references"
        )
    if tokenize == "auto":
        tokenize = bleu_tokenizer_for(references)
    bleu, chrf = BLEU(tokenize=tokenize), CHRF()
    bleu_score = bleu.corpus_score(list(hypotheses), [list(references)])
    chrf_score = chrf.corpus_score(list(hypotheses), [list(references)])
    return Scores(
        bleu=bleu_score.score,
        chrf=chrf_score.score,
        bleu_signature=str(bleu.get_signature()),
        chrf_signature=str(chrf.get_signature()),
        bleu_text=str(bleu_score),
    )
