"""Raw strings in, translations out: tokenization, search and detokenization in one graph."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from nmt_keras.search import greedy_search
from nmt_keras.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer


@dataclasses.dataclass(frozen=True)
class Alignment:
    """One translation with its attention, trimmed of padding, for plotting.

    Attributes:
        translation: The detokenized output.
        source_tokens: Source pieces, `<s>` and `</s>` included (`src_len`).
        target_tokens: Generated pieces, `</s>` included (`tgt_len`).
        weights: `(tgt_len, src_len)` attention weights.
    """

    translation: str
    source_tokens: list[str]
    target_tokens: list[str]
    weights: np.ndarray


class Translator(tf.Module):
    """A translation model with its two tokenizers, callable on a batch of raw strings.

    Everything happens in the TensorFlow graph, so the same object serves `nmt-keras
    translate`, validation BLEU during training and the exported SavedModel: source text
    is tokenized by the SentencePiece model embedded in the graph, truncated to
    `max_source_length` tokens (the </s> kept), decoded by greedy search for at most
    `min(max_decode_length, 2 * src_len + 10)` tokens and detokenized. Input that is
    empty or only white space translates to the empty string with score 0.

    Args:
        model: A model with `initial_search_state(source)` and `next_fn(tokens, state,
            step)`, and a `has_attention` property.
        source_tokenizer: Tokenizer of the source language.
        target_tokenizer: Tokenizer of the target language.
        max_source_length: Source tokens kept, <s> and </s> included.
        max_decode_length: Upper bound on generated tokens, </s> included.
    """

    def __init__(
        self,
        model: keras.Model,
        source_tokenizer: Tokenizer,
        target_tokenizer: Tokenizer,
        *,
        max_source_length: int,
        max_decode_length: int,
    ):
        super().__init__(name="translator")
        if max_source_length < 3:
            raise ValueError(
                f"Expected max_source_length >= 3. Received: max_source_length={max_source_length}"
            )
        if max_decode_length < 1:
            raise ValueError(
                f"Expected max_decode_length >= 1. Received: max_decode_length={max_decode_length}"
            )
        self.model = model
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.max_source_length = max_source_length
        self.max_decode_length = max_decode_length

    def _source_ids(self, text):
        """Tokenizes and truncates `[batch]` strings to `(batch, src_len)` 0-padded ids."""
        ragged = self.source_tokenizer.tokenize(text)  # <s> pieces </s>
        pieces = ragged[:, 1:-1][:, : self.max_source_length - 2]
        batch = tf.shape(text)[0]
        bos = tf.fill([batch, 1], BOS_ID)
        eos = tf.fill([batch, 1], EOS_ID)
        return tf.concat([bos, pieces, eos], axis=1).to_tensor(PAD_ID)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def translate(self, text):
        """Translates a batch of sentences.

        Args:
            text: `[batch]` raw source sentences.

        Returns:
            A dict of dense tensors, batch first: `translation` string `[batch]`, `score`
            float32 `[batch]` (log-probability of the output), `length` int32 `[batch]`
            (generated tokens, </s> included), `tokens` int32 `[batch, tgt_len]`,
            `source_ids` int32 `[batch, src_len]` and `attention` float32
            `[batch, tgt_len, src_len]` (zeros for a model without attention).
        """
        source = self._source_ids(text)  # (batch, src_len)
        batch, src_len = tf.shape(source)[0], tf.shape(source)[1]
        max_length = tf.minimum(self.max_decode_length, 2 * src_len + 10)
        result = greedy_search(
            self.model.next_fn,
            self.model.initial_search_state(source),
            batch_size=batch,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            pad_id=PAD_ID,
            max_length=max_length,
        )
        empty = tf.equal(tf.strings.strip(text), "")  # (batch,)
        attention = result.attention
        if attention is None:
            attention = tf.zeros([batch, tf.shape(result.tokens)[1], src_len], tf.float32)
        return {
            "translation": tf.where(empty, "", self.target_tokenizer.detokenize(result.tokens)),
            "score": tf.where(empty, 0.0, result.scores),
            "length": tf.where(empty, 0, result.lengths),
            "tokens": result.tokens,
            "source_ids": source,
            "attention": attention,
        }

    def translate_all(
        self,
        sentences: Sequence[str],
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Translates any number of sentences in batches of similar length.

        Args:
            sentences: Source sentences.
            batch_size: Sentences per batch.
            progress: Called with the number of sentences finished after each batch.

        Returns:
            Translations in the order of `sentences`.
        """
        if batch_size < 1:
            raise ValueError(f"Expected batch_size >= 1. Received: batch_size={batch_size}")
        order = np.argsort([len(sentence) for sentence in sentences], kind="stable")
        translations: list[str] = [""] * len(sentences)
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            batch = tf.constant([sentences[index] for index in indices])
            outputs = self.translate(batch)["translation"].numpy()
            for index, translation in zip(indices, outputs, strict=True):
                translations[index] = translation.decode("utf-8")
            if progress is not None:
                progress(len(indices))
        return translations

    def align(self, sentence: str) -> Alignment:
        """Translates one sentence and returns its attention trimmed to the real tokens.

        Raises:
            ValueError: if the model has no attention (the fixed-context seq2seq).
        """
        if not self.model.has_attention:
            raise ValueError("This model has no attention to plot (model.type=seq2seq).")
        outputs = self.translate(tf.constant([sentence]))
        source_ids = outputs["source_ids"][0]
        source_ids = source_ids[source_ids != PAD_ID]  # (src_len,)
        length = int(outputs["length"][0])
        target_ids = outputs["tokens"][0, :length]  # (tgt_len,)
        pieces = self.source_tokenizer.id_to_piece(source_ids).numpy()
        target_pieces = self.target_tokenizer.id_to_piece(target_ids).numpy()
        weights = outputs["attention"][0, :length, : len(pieces)].numpy()
        return Alignment(
            translation=outputs["translation"][0].numpy().decode("utf-8"),
            source_tokens=[piece.decode("utf-8") for piece in pieces],
            target_tokens=[piece.decode("utf-8") for piece in target_pieces],
            weights=weights,
        )
