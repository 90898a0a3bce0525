"""The TensorFlow tutorial's inference loop and exported translator, on `tutorial_model`.

`tutorial_model.py` reproduces the training model of "Neural machine translation with
attention" (https://www.tensorflow.org/text/tutorials/nmt_with_attention,
tensorflow/text `docs/tutorials/nmt_with_attention.ipynb`) and leaves out its inference
helpers. This module adds them back, as the tutorial writes them, so that
`benchmarks/serving.py` can time the tutorial's exported translator against ours:

* `Decoder.get_initial_state`: `[START]` tokens, `done = False`, a zero GRU state;
* `Decoder.get_next_token`: one decoder step on the last token (embedding with
  `mask_zero=True`, GRU from the previous state, cross-attention, logits), then
  `if temperature == 0.0: argmax else: categorical`, `done |= token == [END]`, and 0 for
  finished rows;
* `Decoder.tokens_to_text`: ids to words with an inverted `StringLookup`, joined with
  spaces, `[START]` / `[END]` stripped with regexes;
* `Translator.translate`, the tutorial's "dynamic loop" version: `for t in tf.range(
  max_length)` with a dynamic `TensorArray` and `if tf.reduce_all(done): break`, which
  AutoGraph turns into a `tf.while_loop`; `temperature` is a tensor (`tf.constant(0.0)`)
  there, so the greedy/sampling `if` becomes a `tf.cond` inside the loop, as in the
  tutorial;
* `Export`: the `tf.Module` whose `translate(inputs: string[None])` `tf.function` is saved
  with `signatures={"serving_default": export.translate}`.

Differences from the notebook, none of which changes the work done per step: the helper
methods live on `TutorialTranslator` (a `tf.Module` that holds the trained
`tutorial_model.Translator`, its two `TextVectorization` layers and the lookups) instead
of being attached to the Keras classes with `add_method`; the `ShapeChecker` calls (no-ops
in graph mode) are left out; `einops.rearrange(tokens, "t batch 1 -> batch t")` is
written as `tf.transpose(tokens[:, :, 0])`; the tutorial's `max_length=500` default is a
constructor argument, so both translators in the benchmark stop at the same cap.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf
import tutorial_model


class TutorialTranslator(tf.Module):
    """The tutorial's trained model with its text processors and inference methods.

    Args:
        model: A trained `tutorial_model.Translator`.
        context_processor: Source `TextVectorization` (ragged output).
        target_processor: Target `TextVectorization`.
        max_length: Most tokens generated per sentence, `[END]` included (the tutorial's
            `max_length` argument, 500 in its dynamic `translate`).
    """

    def __init__(
        self,
        model: tutorial_model.Translator,
        context_processor: keras.layers.TextVectorization,
        target_processor: keras.layers.TextVectorization,
        max_length: int = 500,
    ):
        super().__init__(name="tutorial_translator")
        self.model = model
        self.context_processor = context_processor
        vocabulary = target_processor.get_vocabulary()
        self.word_to_id = keras.layers.StringLookup(
            vocabulary=vocabulary, mask_token="", oov_token="[UNK]"
        )
        self.id_to_word = keras.layers.StringLookup(
            vocabulary=vocabulary, mask_token="", oov_token="[UNK]", invert=True
        )
        self.start_token = self.word_to_id("[START]")
        self.end_token = self.word_to_id("[END]")
        self.max_length = max_length

    def convert_input(self, texts):
        """`Encoder.convert_input`: `[batch]` strings -> `(batch, src_len, units)` context."""
        texts = tf.convert_to_tensor(texts)
        if len(texts.shape) == 0:
            texts = tf.convert_to_tensor(texts)[tf.newaxis]
        context = self.context_processor(texts).to_tensor()  # (batch, src_len)
        return self.model.encoder(context)  # (batch, src_len, units)

    def decoder_call(self, context, x, state):
        """`Decoder.call(context, x, state=state, return_state=True)`.

        Returns:
            Logits `(batch, t, vocab)` and the GRU state `(batch, units)`.
        """
        decoder = self.model.decoder
        x = decoder.embedding(x)  # (batch, t, units)
        x, state = decoder.rnn(x, initial_state=state)  # (batch, t, units), (batch, units)
        x = decoder.attention(x, context)  # (batch, t, units)
        return decoder.output_layer(x), state

    def get_initial_state(self, context):
        """`Decoder.get_initial_state`: start tokens `(batch, 1)`, done, GRU state."""
        batch_size = tf.shape(context)[0]
        start_tokens = tf.fill([batch_size, 1], self.start_token)
        done = tf.zeros([batch_size, 1], dtype=tf.bool)
        embedded = self.model.decoder.embedding(start_tokens)
        batch_size = tf.shape(embedded)[0]
        return start_tokens, done, self.model.decoder.rnn.get_initial_state(batch_size)[0]

    def tokens_to_text(self, tokens):
        """`Decoder.tokens_to_text`: `(batch, t)` ids -> `[batch]` strings."""
        words = self.id_to_word(tokens)
        result = tf.strings.reduce_join(words, axis=-1, separator=" ")
        result = tf.strings.regex_replace(result, "^ *\\[START\\] *", "")
        return tf.strings.regex_replace(result, " *\\[END\\] *$", "")

    def get_next_token(self, context, next_token, done, state, temperature=0.0):
        """`Decoder.get_next_token`: one step; finished rows produce 0."""
        logits, state = self.decoder_call(context, next_token, state)
        if temperature == 0.0:
            next_token = tf.argmax(logits, axis=-1)  # (batch, 1)
        else:
            logits = logits[:, -1, :] / temperature
            next_token = tf.random.categorical(logits, num_samples=1)  # (batch, 1)
        # If a sequence produces an `end_token`, set it `done`.
        done = done | (next_token == self.end_token)
        # Once a sequence is done it only produces 0-padding.
        next_token = tf.where(done, tf.constant(0, dtype=tf.int64), next_token)
        return next_token, done, state

    def translate(self, texts, *, max_length=None, temperature=None):
        """The tutorial's dynamic-loop `Translator.translate`: `[batch]` in and out."""
        if max_length is None:
            max_length = self.max_length
        if temperature is None:
            temperature = tf.constant(0.0)
        context = self.convert_input(texts)
        next_token, done, state = self.get_initial_state(context)
        tokens = tf.TensorArray(tf.int64, size=1, dynamic_size=True)
        for t in tf.range(max_length):
            next_token, done, state = self.get_next_token(
                context, next_token, done, state, temperature
            )
            tokens = tokens.write(t, next_token)  # next_token: (batch, 1)
            if tf.reduce_all(done):
                break
        tokens = tokens.stack()  # (t, batch, 1)
        tokens = tf.transpose(tokens[:, :, 0])  # (batch, t)
        return self.tokens_to_text(tokens)


class Export(tf.Module):
    """The tutorial's export wrapper: `translate(inputs: string[None]) -> string[None]`."""

    def __init__(self, model: TutorialTranslator):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec(dtype=tf.string, shape=[None])])
    def translate(self, inputs):
        """Translates a batch of sentences (the exported `serving_default`)."""
        return self.model.translate(inputs)


def train_tutorial(
    sources: list[str],
    targets: list[str],
    units: int,
    vocab_size: int,
    steps: int,
    batch_size: int = 64,
    seed: int = 0,
) -> tuple[tutorial_model.Translator, keras.layers.TextVectorization, ...]:
    """Builds and briefly trains the tutorial's model as the tutorial does.

    Args:
        sources: Source sentences.
        targets: Target sentences aligned with `sources`.
        units: The tutorial's `UNITS` (embedding size, GRU units, attention size).
        vocab_size: `TextVectorization(max_tokens=...)` per language.
        steps: Training steps (`model.fit` on the repeated dataset); 0 leaves it untrained.
        batch_size: Sentence pairs per step.
        seed: Shuffle and initialization seed.

    Returns:
        The model, the context processor and the target processor.
    """
    keras.utils.set_random_seed(seed)
    processors = []
    for sentences in (sources, targets):
        strings = tf.data.Dataset.from_tensor_slices(list(sentences)).batch(1024)
        processors.append(tutorial_model.make_text_processor(strings, vocab_size))
    model = tutorial_model.Translator(
        units, processors[0].vocabulary_size(), processors[1].vocabulary_size()
    )
    model.compile(
        optimizer="adam",
        loss=tutorial_model.masked_loss,
        metrics=[tutorial_model.masked_acc, tutorial_model.masked_loss],
    )
    dataset = tutorial_model.make_dataset(
        sources, targets, *processors, batch_size=batch_size, seed=seed
    )
    if steps > 0:
        model.fit(dataset.repeat(), epochs=1, steps_per_epoch=steps, verbose=0)
    else:
        for inputs, _ in dataset.take(1):
            model(inputs)  # build the weights
    return model, processors[0], processors[1]


def export_tutorial(translator: TutorialTranslator, path: str | os.PathLike) -> str:
    """Saves the tutorial's `Export` module as the tutorial does; returns `path`."""
    export = Export(translator)
    export.translate(tf.constant(["hola"]))  # trace once, as the tutorial does
    tf.saved_model.save(export, os.fspath(path), signatures={"serving_default": export.translate})
    return os.fspath(path)
