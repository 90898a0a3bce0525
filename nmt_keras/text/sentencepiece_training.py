"""Training a SentencePiece model in memory, for any language (no whitespace assumption)."""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterable

import sentencepiece as spm

from nmt_keras.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID

MIN_VOCAB_SIZE = 8
MODEL_TYPES = ("unigram", "bpe", "char", "word")
# SentencePiece's message when the characters to cover (and the 4 special pieces) do not
# fit in the vocabulary (trainer_interface.cc).
_TOO_SMALL = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")


class VocabularyTooSmallError(ValueError):
    """The vocabulary cannot hold every character `character_coverage` asks for.

    Attributes:
        vocab_size: The vocabulary size asked for.
        required: The pieces SentencePiece needs: the characters to cover, plus the
            special pieces.
    """

    def __init__(self, vocab_size: int, required: int, character_coverage: float) -> None:
        super().__init__(
            f"vocab_size={vocab_size} is smaller than the {required} pieces that "
            f"character_coverage={character_coverage} needs (the characters to cover and "
            "4 special pieces)"
        )
        self.vocab_size = vocab_size
        self.required = required


def train_sentencepiece(
    sentences: Iterable[str],
    vocab_size: int,
    *,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    seed: int = 0,
    input_sentence_size: int = 2_000_000,
    num_threads: int = 2,
) -> bytes:
    """Trains a SentencePiece model and returns its serialized `ModelProto`.

    The ids of the special pieces are fixed for the whole project: `<pad>` = 0, `<unk>` = 1,
    `<s>` = 2, `</s>` = 3. SentencePiece treats text as a raw character stream, so languages
    written without spaces (Chinese, Japanese, Thai) work; use `character_coverage=0.9995`
    for them so that rare characters map to `<unk>` instead of taking vocabulary slots.

    Args:
        sentences: Training sentences, one per item. Empty items are skipped.
        vocab_size: Target vocabulary size, special pieces included. It is a soft limit:
            a corpus too small to fill it gives a smaller vocabulary instead of an error.
        model_type: One of `"unigram"`, `"bpe"`, `"char"`, `"word"`.
        character_coverage: Fraction of characters the model must cover.
        seed: Seed of SentencePiece's random generator (sentence sampling and shuffling).
        input_sentence_size: At most this many sentences, sampled at random, are used.
        num_threads: Trainer threads.

    Returns:
        The serialized model, ready for `Tokenizer(model_proto)`.

    Raises:
        VocabularyTooSmallError: If `vocab_size` is below the number of characters
            `character_coverage` requires (scripts with thousands of characters, such as
            Chinese, with a vocabulary sized for Latin scripts).
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
    if not 0.0 < character_coverage <= 1.0:
        raise ValueError(
            "Expected 0 < character_coverage <= 1. "
            f"Received: character_coverage={character_coverage}"
        )
    non_empty = (s for s in sentences if s.strip())
    first = next(non_empty, None)
    if first is None:
        raise ValueError("Expected at least one non-empty training sentence. Received: none")

    writer = io.BytesIO()
    spm.set_random_generator_seed(seed)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=itertools.chain([first], non_empty),
            model_writer=writer,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
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
                vocab_size, int(too_small.group(2)), character_coverage
            ) from error
        raise ValueError(f"SentencePiece training failed: {message}") from error
    return writer.getvalue()
