"""Training a SentencePiece model in memory, for any language (no whitespace assumption)."""

from __future__ import annotations

import bisect
import collections
import dataclasses
import io
import itertools
import math
import os
import re
import tempfile
from collections.abc import Iterable, Sequence

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2

from nmt_keras.errors import NmtKerasError
from nmt_keras.rules import AUTO_COVERAGE, MIN_COVERAGE, check_character_coverage
from nmt_keras.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID

MIN_VOCAB_SIZE = 8
MODEL_TYPES = ("unigram", "bpe", "char", "word")
#: Share of the free pieces (not special, not byte) that `AUTO_COVERAGE` gives to single
#: characters; the rest is left to multi-character pieces.
ALPHABET_SHARE = 0.5
# SentencePiece's normalization: its `nmt_nfkc` rule without NFKC. Control characters
# are removed and Unicode spaces become ASCII spaces (as `nmt_nfkc` does); every other
# character is kept as written. NFKC would rewrite Chinese full-width punctuation
# (`？，！`) as ASCII, so a Chinese output could never match its reference. A non-empty
# rule also keeps tensorflow-text's SentencePiece op from logging that it has none.
_REMOVED = [*range(0x01, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F, 0x8F, 0x9F]
_SPACES = [0x09, 0x0A, 0x0C, 0x0D, 0xA0, 0x1680, *range(0x2000, 0x2010), 0x2028, 0x2029]
_SPACES += [0x202F, 0x205F, 0x2581, 0x3000, 0xFEFF, 0xFFFD]
NORMALIZATION_RULES = "".join(
    [f"{code:X}\t\n" for code in _REMOVED] + [f"{code:X}\t20\n" for code in _SPACES]
)
SPECIAL_PIECES = 4  # <pad>, <unk>, <s>, </s>
BYTE_PIECES = 256  # <0x00> ... <0xFF>, with byte fallback
# SentencePiece's message when the characters to cover (and the special and byte pieces)
# do not fit in the vocabulary (trainer_interface.cc).
_TOO_SMALL = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")
# SentencePiece keeps characters until their share reaches the coverage, so the coverage
# asked for must fall short of the count the rule allows by a margin for float32
# rounding and for the whitespace SentencePiece counts differently.
_ALPHABET_MARGIN = 0.02


class VocabularyTooSmallError(NmtKerasError, ValueError):
    """The vocabulary cannot hold the pieces the settings require.

    Attributes:
        vocab_size: The vocabulary size asked for.
        required: The pieces SentencePiece needs: the special pieces, the byte pieces
            with byte fallback, and the characters `character_coverage` asks for.
    """

    def __init__(
        self, vocab_size: int, required: int, character_coverage: float | str, byte_fallback: bool
    ) -> None:
        parts = (
            "the characters to cover, 4 special pieces and 256 byte pieces"
            if byte_fallback
            else "the characters to cover and 4 special pieces"
        )
        super().__init__(
            f"vocab_size={vocab_size} is smaller than the {required} pieces that "
            f"character_coverage={character_coverage} needs ({parts})"
        )
        self.vocab_size = vocab_size
        self.required = required


def character_counts(sentences: Iterable[str]) -> collections.Counter[str]:
    """Counts characters as SentencePiece's trainer sees them.

    Runs of whitespace become one `▁`; the few characters `NORMALIZATION_RULES` remove
    or turn into spaces are counted as they are, a difference the sizing's margin absorbs.

    Args:
        sentences: Training sentences.

    Returns:
        How often each character occurs.
    """
    counts: collections.Counter[str] = collections.Counter()
    for sentence in sentences:
        counts.update("▁".join(sentence.split()))
    return counts


@dataclasses.dataclass(frozen=True)
class AlphabetSizing:
    """How `size_alphabet` fits a side's characters into its vocabulary.

    Attributes:
        character_coverage: Share of the text's characters that get a piece of their own.
        vocab_size: Pieces of the model: the size asked for, or more when the script
            needs it.
        characters: Distinct characters of the training text.
    """

    character_coverage: float
    vocab_size: int
    characters: int


def size_alphabet(
    sentences: Sequence[str], vocab_size: int, *, byte_fallback: bool
) -> AlphabetSizing:
    """Sizes the character coverage (and if need be the vocabulary) for any script.

    The rule behind `character_coverage="auto"`: the pieces left after the special pieces
    (and the 256 byte pieces with byte fallback) are shared half and half between single
    characters and longer pieces.
    - An alphabet that fits in its half is covered whole: coverage 1.0 (Latin, Cyrillic,
      Greek, Arabic, Devanagari, ...).
    - A larger one (Chinese, Japanese: thousands of characters) keeps its most frequent
      characters up to that half; the coverage is their share of the text.
    - The coverage is never below `MIN_COVERAGE` (98%, the least SentencePiece accepts):
      when the characters that coverage needs do not fit in half the pieces, the
      vocabulary grows until they do. (At a short budget a smaller alphabet learns faster:
      on Tatoeba zh->en in 6 minutes, 98% with 3,869 Chinese pieces scored higher than
      99.95% with 7,152; benchmarks/RESULTS.md.)
    Characters outside the coverage are spelled as UTF-8 bytes with byte fallback, and
    become `<unk>` without it.

    Args:
        sentences: The side's training sentences.
        vocab_size: Pieces asked for.
        byte_fallback: Whether 256 of the pieces are bytes.

    Returns:
        The coverage and vocabulary size to train with.
    """
    reserved = SPECIAL_PIECES + (BYTE_PIECES if byte_fallback else 0)
    frequencies = sorted(character_counts(sentences).values(), reverse=True)
    alphabet = int(max(0, vocab_size - reserved) * ALPHABET_SHARE)
    if len(frequencies) <= alphabet:
        return AlphabetSizing(1.0, vocab_size, len(frequencies))
    total = sum(frequencies)
    shares = [count / total for count in itertools.accumulate(frequencies)]
    kept = int(alphabet * (1.0 - _ALPHABET_MARGIN))
    if kept >= 1 and shares[kept - 1] >= MIN_COVERAGE:
        return AlphabetSizing(shares[kept - 1], vocab_size, len(frequencies))
    needed = bisect.bisect_left(shares, MIN_COVERAGE) + 1
    grown = reserved + math.ceil(needed * (1.0 + _ALPHABET_MARGIN) / ALPHABET_SHARE)
    return AlphabetSizing(MIN_COVERAGE, max(vocab_size, grown), len(frequencies))


def train_sentencepiece(
    sentences: Iterable[str],
    vocab_size: int,
    *,
    model_type: str = "unigram",
    character_coverage: float | str = 1.0,
    byte_fallback: bool = False,
    seed: int = 0,
    input_sentence_size: int = 2_000_000,
    num_threads: int = 2,
) -> bytes:
    """Trains a SentencePiece model and returns its serialized `ModelProto`.

    The ids of the special pieces are fixed for the whole project: `<pad>` = 0, `<unk>` = 1,
    `<s>` = 2, `</s>` = 3. SentencePiece treats text as a raw character stream, so languages
    written without spaces (Chinese, Japanese, Thai) work. Scripts with thousands of
    characters need `character_coverage` below 1 or a large vocabulary: `"auto"` sizes
    both from the corpus (`size_alphabet`), and
    `byte_fallback=True` spells characters outside it as UTF-8 bytes, so any text survives
    a round trip instead of becoming `<unk>`.

    Args:
        sentences: Training sentences, one per item. Empty items are skipped.
        vocab_size: Target vocabulary size, special pieces included. It is a soft limit:
            a corpus too small to fill it gives a smaller vocabulary instead of an error,
            and `character_coverage="auto"` raises it for a script that needs more.
        model_type: One of `"unigram"`, `"bpe"`, `"char"`, `"word"`.
        character_coverage: Fraction of characters the model must cover, or `"auto"`.
        byte_fallback: Add the 256 byte pieces and spell uncovered characters with them.
        seed: Seed of SentencePiece's random generator (sentence sampling and shuffling).
        input_sentence_size: At most this many sentences, sampled at random, are used.
        num_threads: Trainer threads.

    Returns:
        The serialized model, ready for `Tokenizer(model_proto)`.

    Raises:
        VocabularyTooSmallError: If `vocab_size` is below the pieces the settings need
            (for example thousands of Chinese characters at coverage 1.0 in a vocabulary
            sized for a Latin script).
        ValueError: On a bad argument, no non-empty sentence, or when SentencePiece
            rejects the corpus for another reason.
    """
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(
            f"Expected vocab_size >= {MIN_VOCAB_SIZE}. Received: vocab_size={vocab_size}"
        )
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"Expected model_type in {MODEL_TYPES}. Received: model_type={model_type!r}"
        )
    check_character_coverage(character_coverage)
    non_empty = [sentence for sentence in sentences if sentence.strip()]
    if not non_empty:
        raise ValueError("Expected at least one non-empty training sentence. Received: none")
    coverage = character_coverage
    if character_coverage == AUTO_COVERAGE:
        sizing = size_alphabet(non_empty, vocab_size, byte_fallback=byte_fallback)
        coverage, vocab_size = sizing.character_coverage, sizing.vocab_size

    writer = io.BytesIO()
    spm.set_random_generator_seed(seed)
    try:
        with tempfile.TemporaryDirectory() as directory:
            rules = os.path.join(directory, "normalization.tsv")
            with open(rules, "w", encoding="ascii") as file:
                file.write(NORMALIZATION_RULES)
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(non_empty),
                model_writer=writer,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=coverage,
                byte_fallback=byte_fallback,
                normalization_rule_tsv=rules,
                pad_id=PAD_ID,
                unk_id=UNK_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                pad_piece="<pad>",
                unk_piece="<unk>",
                bos_piece="<s>",
                eos_piece="</s>",
                hard_vocab_limit=False,
                input_sentence_size=input_sentence_size,
                shuffle_input_sentence=True,
                num_threads=num_threads,
                minloglevel=2,
            )
    except RuntimeError as error:
        message = " ".join(str(error).split())
        too_small = _TOO_SMALL.search(message)
        if too_small:
            raise VocabularyTooSmallError(
                vocab_size, int(too_small.group(2)), character_coverage, byte_fallback
            ) from error
        raise ValueError(f"SentencePiece training failed: {message}") from error
    # The rules are in the model; their temporary path would make it differ run to run.
    model = sentencepiece_model_pb2.ModelProto.FromString(writer.getvalue())
    model.normalizer_spec.ClearField("normalization_rule_tsv")
    return model.SerializeToString()
