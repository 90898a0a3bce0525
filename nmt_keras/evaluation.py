"""Corpus-level translation quality with sacreBLEU: BLEU and chrF with their signatures."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sacrebleu.metrics import BLEU, CHRF


@dataclasses.dataclass(frozen=True)
class Scores:
    """BLEU and chrF of a system output, with the signatures that make them reproducible.

    Attributes:
        bleu: Corpus BLEU (0-100), sacreBLEU defaults (13a tokenization, cased).
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


def score(hypotheses: Sequence[str], references: Sequence[str]) -> Scores:
    """Scores detokenized hypotheses against one reference each.

    Raises:
        ValueError: if the two lists differ in length.
    """
    if len(hypotheses) != len(references):
        raise ValueError(
            "Expected one reference per hypothesis. "
            f"Received: {len(hypotheses)} hypotheses, {len(references)} references"
        )
    bleu, chrf = BLEU(), CHRF()
    bleu_score = bleu.corpus_score(list(hypotheses), [list(references)])
    chrf_score = chrf.corpus_score(list(hypotheses), [list(references)])
    return Scores(
        bleu=bleu_score.score,
        chrf=chrf_score.score,
        bleu_signature=str(bleu.get_signature()),
        chrf_signature=str(chrf.get_signature()),
        bleu_text=str(bleu_score),
    )
