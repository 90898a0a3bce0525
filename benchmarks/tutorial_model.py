"""The TensorFlow tutorial "Neural machine translation with attention", ported to Keras 3.

A faithful reproduction of the training model of
https://www.tensorflow.org/text/tutorials/nmt_with_attention (tensorflow/text,
`docs/tutorials/nmt_with_attention.ipynb`), used by `train_throughput.py` as the speed
baseline. What it keeps from the tutorial:

* text: `tf_lower_and_split_punct` (NFKD, lower-case, keep `[ a-z.?!,¿]`, spaces around
  punctuation, `[START]`/`[END]`) inside a `TextVectorization` layer with
  `max_tokens=5000` per language and ragged output; batches are
  `((context, target_in), target_out)`, 0-padded to the longest sentence of the batch;
* encoder: `Embedding(vocab, units, mask_zero=True)` and
  `Bidirectional(GRU(units, return_sequences=True), merge_mode="sum")`;
* decoder: `Embedding(vocab, units, mask_zero=True)`, `GRU(units, return_sequences=True,
  return_state=True)` started from zeros (no encoder state), `CrossAttention` (one-head
  `MultiHeadAttention(key_dim=units)`, `Add`, `LayerNormalization`) with the GRU outputs as
  queries, and `Dense(vocab)` logits; Keras masks flow from the embeddings;
* training: `masked_loss` / `masked_acc` as in the tutorial, `model.compile(optimizer="adam",
  loss=masked_loss, metrics=[masked_acc, masked_loss])`.

Left out, because training never runs them: the `ShapeChecker` (a no-op inside
`tf.function`), the inference helpers (`get_initial_state`, `get_next_token`, `translate`)
and the text processors held by the encoder and decoder (only their vocabulary sizes are
used here), and the cached `last_attention_weights` (the scores are still returned by the
attention, as in the tutorial).
"""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_text as tf_text

MAX_VOCAB_SIZE = 5000


def tf_lower_and_split_punct(text: tf.Tensor) -> tf.Tensor:
    """The tutorial's standardization: `(batch,)` strings -> `[START] words . [END]`."""
    # Split accented characters.
    text = tf_text.normalize_utf8(text, "NFKD")
    text = tf.strings.lower(text)
    # Keep space, a to z, and select punctuation.
    text = tf.strings.regex_replace(text, "[^ a-z.?!,¿]", "")
    # Add spaces around punctuation.
    text = tf.strings.regex_replace(text, "[.?!,¿]", r" \0 ")
    # Strip whitespace.
    text = tf.strings.strip(text)
    return tf.strings.join(["[START]", text, "[END]"], separator=" ")


def make_text_processor(sentences: tf.data.Dataset, max_tokens: int = MAX_VOCAB_SIZE):
    """A `TextVectorization` layer adapted to a dataset of string batches.

    Args:
        sentences: Dataset of `(batch,)` string tensors of one language.
        max_tokens: Vocabulary size, padding and `[UNK]` included.

    Returns:
        The adapted layer; it maps `(batch,)` strings to ragged int64 `(batch, (len))`.
    """
    processor = keras.layers.TextVectorization(
        standardize=tf_lower_and_split_punct, max_tokens=max_tokens, ragged=True
    )
    processor.adapt(sentences)
    return processor


def make_dataset(
    context_raw: list[str],
    target_raw: list[str],
    context_processor,
    target_processor,
    batch_size: int = 64,
    seed: int = 0,
) -> tf.data.Dataset:
    """The tutorial's training dataset: shuffle, batch, then `process_text`.

    Args:
        context_raw: Source sentences.
        target_raw: Target sentences, aligned with `context_raw`.
        context_processor: Source `TextVectorization`.
        target_processor: Target `TextVectorization`.
        batch_size: Sentence pairs per batch (the tutorial's `BATCH_SIZE = 64`).
        seed: Shuffle seed (the tutorial does not fix one).

    Returns:
        Batches `((context, target_in), target_out)`: int64 `(batch, src_len)`,
        `(batch, tgt_len)` and `(batch, tgt_len)`, 0-padded.
    """

    def process_text(context, target):
        context = context_processor(context).to_tensor()
        target = target_processor(target)
        targ_in = target[:, :-1].to_tensor()
        targ_out = target[:, 1:].to_tensor()
        return (context, targ_in), targ_out

    dataset = tf.data.Dataset.from_tensor_slices((list(context_raw), list(target_raw)))
    dataset = dataset.shuffle(len(context_raw), seed=seed).batch(batch_size)
    return dataset.map(process_text, tf.data.AUTOTUNE)


class Encoder(keras.layers.Layer):
    """Embedding and a bidirectional GRU whose two directions are summed.

    Args:
        vocab_size: Source vocabulary size (id 0 is padding).
        units: Embedding size and GRU units per direction.

    Call args:
        x: `(batch, src_len)` token ids.

    Returns:
        `(batch, src_len, units)`, carrying the Keras mask of the source padding.
    """

    def __init__(self, vocab_size: int, units: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.units = units
        # The embedding layer converts tokens to vectors.
        self.embedding = keras.layers.Embedding(vocab_size, units, mask_zero=True)
        # The RNN layer processes those vectors sequentially.
        self.rnn = keras.layers.Bidirectional(
            merge_mode="sum",
            layer=keras.layers.GRU(
                units, return_sequences=True, recurrent_initializer="glorot_uniform"
            ),
        )

    def call(self, x):
        """Encodes `(batch, src_len)` ids into `(batch, src_len, units)`."""
        x = self.embedding(x)  # (batch, src_len, units)
        return self.rnn(x)  # (batch, src_len, units)


class CrossAttention(keras.layers.Layer):
    """One-head dot-product attention from the decoder to the encoder, a residual and a norm.

    Args:
        units: `key_dim` of the `MultiHeadAttention`.

    Call args:
        x: Queries `(batch, tgt_len, units)`.
        context: Encoder outputs `(batch, src_len, units)`.

    Returns:
        `LayerNorm(x + attention(x, context))`, `(batch, tgt_len, units)`.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__()
        self.mha = keras.layers.MultiHeadAttention(key_dim=units, num_heads=1, **kwargs)
        self.layernorm = keras.layers.LayerNormalization()
        self.add = keras.layers.Add()

    def call(self, x, context):
        """Attends from `x` over `context`; see the class docstring."""
        attn_output, attn_scores = self.mha(query=x, value=context, return_attention_scores=True)
        # attn_output: (batch, tgt_len, units); attn_scores: (batch, heads, tgt_len, src_len).
        # The tutorial caches the head-averaged scores for plotting; training never reads them.
        del attn_scores
        x = self.add([x, attn_output])
        return self.layernorm(x)


class Decoder(keras.layers.Layer):
    """Target embedding, a GRU, cross-attention and the vocabulary projection.

    Args:
        vocab_size: Target vocabulary size (id 0 is padding).
        units: Embedding size, GRU units and attention `key_dim`.

    Call args:
        context: Encoder outputs `(batch, src_len, units)`.
        x: Decoder input ids `(batch, tgt_len)`.

    Returns:
        Logits `(batch, tgt_len, vocab_size)`.
    """

    def __init__(self, vocab_size: int, units: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.units = units
        # 1. The embedding layer converts token IDs to vectors.
        self.embedding = keras.layers.Embedding(vocab_size, units, mask_zero=True)
        # 2. The RNN keeps track of what's been generated so far.
        self.rnn = keras.layers.GRU(
            units,
            return_sequences=True,
            return_state=True,
            recurrent_initializer="glorot_uniform",
        )
        # 3. The RNN output will be the query for the attention layer.
        self.attention = CrossAttention(units)
        # 4. This fully connected layer produces the logits for each output token.
        self.output_layer = keras.layers.Dense(vocab_size)

    def call(self, context, x):
        """Teacher-forced logits; see the class docstring."""
        x = self.embedding(x)  # (batch, tgt_len, units)
        x, _ = self.rnn(x)  # (batch, tgt_len, units)
        x = self.attention(x, context)  # (batch, tgt_len, units)
        return self.output_layer(x)  # (batch, tgt_len, vocab_size)


class Translator(keras.Model):
    """The tutorial's encoder-decoder, trained with `model.fit` on `((context, x), y)`.

    Args:
        units: The tutorial's `UNITS` (embedding size, GRU units, attention size).
        context_vocab_size: Source vocabulary size.
        target_vocab_size: Target vocabulary size.

    Call args:
        inputs: `(context, x)`: `(batch, src_len)` and `(batch, tgt_len)` ids, 0-padded.

    Returns:
        Logits `(batch, tgt_len, target_vocab_size)`.
    """

    def __init__(self, units: int, context_vocab_size: int, target_vocab_size: int, **kwargs):
        super().__init__(**kwargs)
        self.encoder = Encoder(context_vocab_size, units)
        self.decoder = Decoder(target_vocab_size, units)

    def call(self, inputs):
        """Teacher-forced logits; see the class docstring."""
        context, x = inputs
        context = self.encoder(context)
        logits = self.decoder(context, x)
        try:
            # Delete the keras mask, so keras doesn't scale the loss+accuracy.
            del logits._keras_mask
        except AttributeError:
            pass
        return logits


def masked_loss(y_true, y_pred):
    """The tutorial's loss: mean token cross-entropy over non-padding labels."""
    # Calculate the loss for each item in the batch.
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
    loss = loss_fn(y_true, y_pred)  # (batch, tgt_len)
    # Mask off the losses on padding.
    mask = tf.cast(y_true != 0, loss.dtype)
    loss *= mask
    # Return the total.
    return tf.reduce_sum(loss) / tf.reduce_sum(mask)


def masked_acc(y_true, y_pred):
    """The tutorial's accuracy: matches divided by non-padding labels.

    As in the tutorial, `match` is not masked, so a padding position predicted as id 0
    also counts as a match.
    """
    y_pred = tf.argmax(y_pred, axis=-1)
    y_pred = tf.cast(y_pred, y_true.dtype)
    match = tf.cast(y_true == y_pred, tf.float32)
    mask = tf.cast(y_true != 0, tf.float32)
    return tf.reduce_sum(match) / tf.reduce_sum(mask)
