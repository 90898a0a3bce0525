"""The `tf.Module` saved for TF Serving: a `Translator` behind named string-in signatures."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from nmt_keras.export.session_loadable import SessionLoadableModule
from nmt_keras.serving.signatures import (
    ALIGN,
    NBEST,
    SERVING_DEFAULT,
    SIGNATURE_NAMES,
    SIGNATURE_OUTPUTS,
    TEXT_DTYPE,
    TEXT_INPUT,
)
from nmt_keras.text.tokenizer import PAD_ID, Tokenizer
from nmt_keras.translator import Translator

TEXT_SPEC = tf.TensorSpec([None], tf.as_dtype(TEXT_DTYPE), name=TEXT_INPUT)


class ServingModule(SessionLoadableModule):
    """What `tf.saved_model.save` writes: a translator, its signatures and its assets.

    The tokenizers are created before tracing, so the SentencePiece models are embedded
    in the graph. The SavedModel holds the tokenizers and the variables the signatures
    read, not the translator's Keras model, so TF Serving's session loader restores it
    (see `SessionLoadableModule`). Every signature takes `text`: string `[batch]` (the
    contract is `nmt_keras.serving.signatures`).

    `serving_default` returns `translation` string `[batch]`, `score` float32 `[batch]`
    (log-probability of the translation) and `length` int32 `[batch]` (target tokens,
    </s> included; 0 for an empty input).

    `align` returns those and `source_length` int32 `[batch]` (source tokens, <s> and
    </s> included), `source_tokens` string `(batch, src_len)`, `target_tokens` string
    `(batch, tgt_len)` (SentencePiece pieces, "" on padding) and `attention` float32
    `(batch, tgt_len, src_len)`. Clients trim row `i` to `[:length[i], :source_length[i]]`,
    which also undoes the padding TF Serving's batching adds.

    `nbest`, exported when the translator decodes with a beam, returns `translations`
    string `(batch, n_best)` and `scores` float32 `(batch, n_best)` (log-probabilities),
    best first; `serving_default` then returns the first of each list.

    Args:
        translator: The translator to serve.
        asset_files: Files copied into the SavedModel's `assets/` (config, tokenizers).
    """

    keras_attributes = ("translator",)

    def __init__(self, translator: Translator, asset_files: Sequence[str] = ()):
        super().__init__(name="nmt_keras_serving", asset_files=asset_files)
        self.translator = translator

    @tf.function(input_signature=[TEXT_SPEC])
    def serve(self, text):
        """The `serving_default` signature: translations, scores and lengths."""
        outputs = self.translator.translate(text)
        return {name: outputs[name] for name in SIGNATURE_OUTPUTS[SERVING_DEFAULT]}

    @tf.function(input_signature=[TEXT_SPEC])
    def align(self, text):
        """The `align` signature: translations with pieces and attention, batch first."""
        outputs = self.translator.translate(text)
        source_ids = outputs["source_ids"]  # (batch, src_len)
        tokens = outputs["tokens"]  # (batch, tgt_len)
        length = outputs["length"]  # (batch,)
        source_length = tf.reduce_sum(tf.cast(source_ids != PAD_ID, tf.int32), axis=1)
        # (batch, src_len) / (batch, tgt_len) masks of the real tokens of each row.
        source_mask = tf.sequence_mask(source_length, tf.shape(source_ids)[1])
        target_mask = tf.sequence_mask(length, tf.shape(tokens)[1])
        source_pieces = self.translator.source_tokenizer.id_to_piece(source_ids)
        target_pieces = self.translator.target_tokenizer.id_to_piece(tokens)
        return {
            "translation": outputs["translation"],
            "score": outputs["score"],
            "length": length,
            "source_length": source_length,
            "source_tokens": tf.where(source_mask, source_pieces, ""),
            "target_tokens": tf.where(target_mask, target_pieces, ""),
            "attention": outputs["attention"],
        }

    def _nbest(self, text):
        """The `nbest` signature: the beam's best hypotheses and their scores."""
        outputs = self.translator.translate(text)
        return {
            "translations": outputs["nbest_translations"],
            "scores": outputs["nbest_scores"],
        }

    @property
    def signature_names(self) -> tuple[str, ...]:
        """The signatures this module exports: `nbest` only with beam search."""
        if self.translator.decoding.uses_beam:
            return SIGNATURE_NAMES
        return (SERVING_DEFAULT, ALIGN)

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """The concrete functions to pass as `tf.saved_model.save(signatures=...)`."""
        functions = {SERVING_DEFAULT: self.serve, ALIGN: self.align}
        if self.translator.decoding.uses_beam:
            # Made only here: every tf.function on the module is traced when it is saved,
            # and a greedy translator has no n-best outputs to trace.
            functions[NBEST] = tf.function(self._nbest, input_signature=[TEXT_SPEC])
        return {name: function.get_concrete_function() for name, function in functions.items()}

    def saved_children(self) -> dict[str, list[Tokenizer]]:
        """The tokenizers, which the translator held beside its model."""
        return {"tokenizers": [self.translator.source_tokenizer, self.translator.target_tokenizer]}

    def save(self, path: str) -> None:
        """Writes the SavedModel (graph, variables, assets) to the directory `path`."""
        self.save_with_signatures(path, self.signatures())
