"""The `tf.Module` saved for TF Serving: a `Translator` behind named string-in signatures."""

from __future__ import annotations

import os
from collections.abc import Sequence

import tensorflow as tf

from nmt_keras.text.tokenizer import PAD_ID
from nmt_keras.translator import Translator

#: The signature every client gets by default (an empty `signature_name`).
SERVING_DEFAULT = "serving_default"
#: The signature that adds tokens and attention, for alignment plots.
ALIGN = "align"
#: The n-best lists of beam search; exported only by a translator that runs a beam.
NBEST = "nbest"
SIGNATURE_NAMES = (SERVING_DEFAULT, ALIGN, NBEST)

#: The only input of both signatures.
TEXT_INPUT = "text"
TEXT_SPEC = tf.TensorSpec([None], tf.string, name=TEXT_INPUT)

#: Output name -> dtype of each signature (shapes: batch first, see `ServingModule`).
SIGNATURE_OUTPUTS: dict[str, dict[str, tf.DType]] = {
    SERVING_DEFAULT: {"translation": tf.string, "score": tf.float32, "length": tf.int32},
    ALIGN: {
        "translation": tf.string,
        "score": tf.float32,
        "length": tf.int32,
        "source_length": tf.int32,
        "source_tokens": tf.string,
        "target_tokens": tf.string,
        "attention": tf.float32,
    },
    NBEST: {"translations": tf.string, "scores": tf.float32},
}


class ServingModule(tf.Module):
    """What `tf.saved_model.save` writes: a translator, its signatures and its assets.

    The tokenizers and the model are created before tracing and tracked through
    `translator`, so the SentencePiece models are embedded in the graph and the weights
    go to `variables/`. Both signatures take `text`: string `[batch]`.

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

    def __init__(self, translator: Translator, asset_files: Sequence[str] = ()):
        super().__init__(name="nmt_keras_serving")
        self.translator = translator
        self.asset_files = {
            os.path.basename(path): tf.saved_model.Asset(path) for path in asset_files
        }

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

    def save(self, path: str) -> None:
        """Writes the SavedModel (graph, variables, assets) to the directory `path`."""
        tf.saved_model.save(self, path, signatures=self.signatures())
