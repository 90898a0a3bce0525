"""The in-graph SentencePiece tokenizer shared by tf.data, translation and export."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as tf_text

from nmt_keras.atomic import atomic_write

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3


class Tokenizer(tf.Module):
    """SentencePiece tokenizer whose model lives inside the TensorFlow graph.

    Wraps `tensorflow_text.SentencepieceTokenizer`, so a `tf.function`, a tf.data pipeline
    or a SavedModel that tracks this object carries the model bytes with it: the same
    object tokenizes training data and serves requests, and the two cannot drift.
    Every token sequence is `<s> pieces </s>`, with the ids `PAD_ID`, `UNK_ID`, `BOS_ID`,
    `EOS_ID` of this module (as set by `train_sentencepiece`).

    Seed TensorFlow (`keras.utils.set_random_seed`, `tf.random.set_seed`) before creating
    tokenizers, not after: resetting the seed drops the SentencePiece resource of
    tokenizers that already exist (tensorflow/text#570), and they then fail with
    `NotFoundError: ... SentencepieceOp does not exist`.

    Example:
        >>> tokenizer = Tokenizer(train_sentencepiece(sentences, vocab_size=8000))
        >>> ids = tokenizer.tokenize(tf.constant(["Hallo Welt ."]))  # (1, (len))
        >>> tokenizer.detokenize(ids)  # (1,)

    Args:
        model_proto: Serialized SentencePiece `ModelProto`.
        name: Name of the module.

    Raises:
        ValueError: If `model_proto` is not a SentencePiece model.
    """

    def __init__(self, model_proto: bytes, name: str | None = None):
        super().__init__(name=name)
        self._processor = _load_processor(model_proto, source="model_proto")
        self._model_proto = bytes(model_proto)
        # The SentencePiece resource is looked up by its op's name once a SavedModel is
        # loaded, so tokenizers of different models must never share that name (else the
        # target side of an export, or a second model version in the same process,
        # silently uses another model): name it after a digest of the model bytes.
        digest = hashlib.sha256(self._model_proto).hexdigest()[:16]
        self._sentencepiece = tf_text.SentencepieceTokenizer(
            model=self._model_proto,
            out_type=tf.int32,
            add_bos=True,
            add_eos=True,
            name=f"sentencepiece_{digest}",
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike, name: str | None = None) -> Tokenizer:
        """Loads a tokenizer from a `.model` file written by `save` or `spm_train`.

        Raises:
            FileNotFoundError: If `path` does not exist.
            ValueError: If `path` is not a SentencePiece model.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Expected a SentencePiece model file. Received: path={path}")
        with open(path, "rb") as f:
            model_proto = f.read()
        _load_processor(model_proto, source=f"path={path}")
        return cls(model_proto, name=name)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the model to `path` atomically (temporary file, then rename)."""
        with atomic_write(path) as file:
            file.write(self._model_proto)

    @property
    def model_proto(self) -> bytes:
        """The serialized SentencePiece model."""
        return self._model_proto

    @property
    def vocab_size(self) -> int:
        """Number of pieces, special pieces included."""
        return self._processor.get_piece_size()

    def tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Turns sentences into ids framed by `BOS_ID` and `EOS_ID`.

        Args:
            text: string tensor of shape `(batch,)`.

        Returns:
            int32 `tf.RaggedTensor` of shape `(batch, (len))`: `<s> pieces </s>` per row.
        """
        return self._sentencepiece.tokenize(text)

    def detokenize(self, ids: tf.Tensor | tf.RaggedTensor) -> tf.Tensor:
        """Turns ids back into sentences.

        `BOS_ID` and `PAD_ID` are dropped, and each row ends before its first `EOS_ID`,
        so decoder outputs can be passed as they come.

        Args:
            ids: int tensor of shape `(batch, len)` padded with `PAD_ID`, or a
                `tf.RaggedTensor` of shape `(batch, (len))`.

        Returns:
            string tensor of shape `(batch,)`.
        """
        if isinstance(ids, tf.RaggedTensor):
            ids = ids.to_tensor(default_value=PAD_ID)
        ids = tf.cast(ids, tf.int32)  # (batch, len)
        before_eos = tf.math.cumsum(tf.cast(ids == EOS_ID, tf.int32), axis=-1) == 0
        keep = before_eos & (ids != BOS_ID) & (ids != PAD_ID)  # (batch, len)
        return self._sentencepiece.detokenize(tf.ragged.boolean_mask(ids, keep))

    def id_to_piece(self, ids: tf.Tensor | tf.RaggedTensor) -> tf.Tensor | tf.RaggedTensor:
        """Maps ids to their pieces (e.g. `"▁Hund"`, `"</s>"`), keeping the shape of `ids`."""
        return self._sentencepiece.id_to_string(ids)

    def token_lengths(self, sentences: Sequence[str]) -> list[int]:
        """Counts tokens per sentence, `<s>` and `</s>` included, on the host (fast, no graph).

        Gives the lengths `tokenize` would give; meant for corpus filtering and statistics.

        Args:
            sentences: Python strings.

        Returns:
            One length per sentence.
        """
        return [len(ids) + 2 for ids in self._processor.encode(list(sentences))]


def _load_processor(model_proto: bytes, source: str) -> spm.SentencePieceProcessor:
    """Parses `model_proto`, raising a `ValueError` that names `source` when it is invalid."""
    processor = spm.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(model_proto)
    except (RuntimeError, TypeError, OSError) as error:
        raise ValueError(f"Expected a SentencePiece model. Received: {source}") from error
    return processor
