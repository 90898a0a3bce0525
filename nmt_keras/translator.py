"""Raw strings in, translations out: tokenization, search and detokenization in one graph."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from nmt_keras.decoding import GREEDY, DecodingOptions, check_supported, decode
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
    `max_source_length` tokens (the </s> kept), decoded by the search `decoding` names
    (greedy by default) for at most `min(max_decode_length, 2 * src_len + 10)` tokens and
    detokenized. Input that is empty or only white space translates to the empty string
    with score 0.

    Args:
        model: A model with `initial_search_state(source)` and `next_fn(tokens, state,
            step)`, and a `has_attention` property.
        source_tokenizer: Tokenizer of the source language.
        target_tokenizer: Tokenizer of the target language.
        max_source_length: Source tokens kept, <s> and </s> included.
        max_decode_length: Upper bound on generated tokens, </s> included.
        decoding: The search and its settings.

    Raises:
        ValueError: for lengths that leave nothing to translate.
        DecodingError: when the model cannot decode with `decoding`.
    """

    def __init__(
        self,
        model: keras.Model,
        source_tokenizer: Tokenizer,
        target_tokenizer: Tokenizer,
        *,
        max_source_length: int,
        max_decode_length: int,
        decoding: DecodingOptions = GREEDY,
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
        check_supported(model, decoding)
        self.decoding = decoding

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
            `[batch, tgt_len, src_len]` (zeros for a model without attention). With beam
            search also `nbest_translations` string `[batch, n_best]` and `nbest_scores`
            float32 `[batch, n_best]` (log-probabilities), best first.
        """
        source = self._source_ids(text)  # (batch, src_len)
        batch, src_len = tf.shape(source)[0], tf.shape(source)[1]
        max_length = tf.minimum(self.max_decode_length, 2 * src_len + 10)
        decoded = decode(self.model, source, self.decoding, max_length)
        result = decoded.best
        empty = tf.equal(tf.strings.strip(text), "")  # (batch,)
        attention = result.attention
        if attention is None:
            attention = tf.zeros([batch, tf.shape(result.tokens)[1], src_len], tf.float32)
        outputs = {
            "translation": tf.where(empty, "", self.target_tokenizer.detokenize(result.tokens)),
            "score": tf.where(empty, 0.0, result.scores),
            "length": tf.where(empty, 0, result.lengths),
            "tokens": result.tokens,
            "source_ids": source,
            "attention": attention,
        }
        if decoded.nbest_tokens is not None:
            n_best = self.decoding.n_best
            # (batch, n_best, time) -> (batch * n_best, time) -> (batch, n_best) strings.
            flat = tf.reshape(decoded.nbest_tokens, [batch * n_best, -1])
            translations = tf.reshape(self.target_tokenizer.detokenize(flat), [batch, n_best])
            empty_rows = empty[:, tf.newaxis]  # (batch, 1), broadcast over n_best
            outputs["nbest_translations"] = tf.where(empty_rows, "", translations)
            outputs["nbest_scores"] = tf.where(empty_rows, 0.0, decoded.nbest_scores)
        return outputs

    def _batches(
        self,
        sentences: Sequence[str],
        batch_size: int,
        progress: Callable[[int], None] | None,
    ) -> Iterator[tuple[np.ndarray, dict[str, tf.Tensor]]]:
        """Translates batches of sentences of similar length.

        Yields:
            `(indices, outputs)`: positions in `sentences` and `translate()`'s outputs.
        """
        if batch_size < 1:
            raise ValueError(f"Expected batch_size >= 1. Received: batch_size={batch_size}")
        order = np.argsort([len(sentence) for sentence in sentences], kind="stable")
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            yield indices, self.translate(tf.constant([sentences[index] for index in indices]))
            if progress is not None:
                progress(len(indices))

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
        translations: list[str] = [""] * len(sentences)
        for indices, outputs in self._batches(sentences, batch_size, progress):
            for index, translation in zip(indices, outputs["translation"].numpy(), strict=True):
                translations[index] = translation.decode("utf-8")
        return translations

    def nbest_all(
        self,
        sentences: Sequence[str],
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> list[list[tuple[str, float]]]:
        """The beam's n-best translations of any number of sentences.

        Args:
            sentences: Source sentences.
            batch_size: Sentences per batch.
            progress: Called with the number of sentences finished after each batch.

        Returns:
            For each sentence in order, `decoding.n_best` pairs `(translation,
            log-probability)`, best first.

        Raises:
            ValueError: if the translator does not decode with a beam.
        """
        if not self.decoding.uses_beam:
            raise ValueError(
                "Expected a translator with beam_size > 1 for n-best lists. "
                f"Received: beam_size={self.decoding.beam_size}"
            )
        lists: list[list[tuple[str, float]]] = [[] for _ in sentences]
        for indices, outputs in self._batches(sentences, batch_size, progress):
            texts = outputs["nbest_translations"].numpy()  # (batch, n_best)
            scores = outputs["nbest_scores"].numpy()
            for row, index in enumerate(indices):
                lists[index] = [
                    (text.decode("utf-8"), float(score))
                    for text, score in zip(texts[row], scores[row], strict=True)
                ]
        return lists

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
