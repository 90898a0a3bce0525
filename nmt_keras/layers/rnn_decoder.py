"""The base of the recurrent decoders: one `step()` for teacher forcing and inference."""

from __future__ import annotations

import keras
import tensorflow as tf

from nmt_keras.layers.rnn_stack import RNNStack


@keras.saving.register_keras_serializable(package="nmt_keras")
class RNNDecoder(keras.layers.Layer):
    """Target embedding, a stack of RNN cells and the output projection.

    A decoder step is split in two: `_recur()`, the part that depends on the previous
    step (attention from the state, the RNN cells), and `_readout()`, a function of that
    step's recurrent output and input embedding alone. Inference (`step()`, one token at
    a time under a search) runs both per token; teacher forcing (`call()`) runs
    `_recur()` in a loop over the target (or a parallel equivalent where a subclass has
    one) and `_readout()` once over the whole sequence, outside the loop.

    The memory a decoder reads is a dict built once per source sentence by
    `prepare_memory()`: `values` `(batch, src_len, dim)`, `mask` `(batch, src_len)`,
    `summary` `(batch, dim)` and, for attention decoders (those that set
    `self.attention`), the keys that attention projects once per sentence. Decoder
    states are dicts of tensors with batch first, so a search can carry them.

    Args:
        vocab_size: Target vocabulary size.
        embedding_dim: Target embedding size.
        units: Hidden size of every decoder layer.
        num_layers: Stacked RNN layers.
        rnn: `"gru"` or `"lstm"`.
        dropout: Dropout on embeddings, between layers and before the projection.
        residual: Residual connections from the second layer on.

    Example:
        >>> import numpy as np
        >>> source = np.array([[1, 5, 7, 2], [1, 9, 2, 0]])  # 0-padded ids
        >>> target_in = np.array([[1, 4, 6], [1, 8, 0]])  # <s> y_1 .. y_{n-1}
        >>> from nmt_keras.layers import Encoder, RNNDecoder

        A subclass defines one recurrent step; this decoder ignores the source
        except through its initial state:

        >>> class PlainDecoder(RNNDecoder):
        ...     def _recur(self, embedded, state, memory, training=None, hard_attention=False):
        ...         output, rnn_states = self.rnn_stack.step(embedded, state["rnn"], training)
        ...         return output, {"rnn": rnn_states}, None
        >>> encoder = Encoder(vocab_size=20, embedding_dim=8, units=16)
        >>> decoder = PlainDecoder(vocab_size=30, embedding_dim=8, units=16)
        >>> values, mask, summary, initial_state = encoder(source)
        >>> memory = decoder.prepare_memory(values, mask, summary)
        >>> logits = decoder(target_in, memory, initial_state)
        >>> tuple(logits.shape)
        (2, 3, 30)
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        units: int,
        num_layers: int = 1,
        rnn: str = "gru",
        dropout: float = 0.0,
        residual: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.num_layers = num_layers
        self.rnn = rnn
        self.dropout = dropout
        self.residual = residual
        self.embedding = keras.layers.Embedding(
            vocab_size, embedding_dim, dtype=self.dtype_policy, name="embedding"
        )
        self.rnn_stack = RNNStack(
            units,
            num_layers,
            rnn=rnn,
            dropout=dropout,
            residual=residual,
            dtype=self.dtype_policy,
            name="rnn_stack",
        )
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="dropout")
        # Logits stay float32 under mixed precision so the softmax is stable.
        self.output_projection = keras.layers.Dense(
            vocab_size, dtype="float32", name="output_projection"
        )
        self.attention = None

    def build(self, tokens_shape):
        """Builds the embedding; the rest builds on first use, once memory sizes are known."""
        self.embedding.build(tokens_shape)

    def prepare_memory(self, values, mask, summary) -> dict:
        """Packs the encoder outputs the decoder reads at every step.

        Args:
            values: Encoder outputs `(batch, src_len, dim)`.
            mask: `(batch, src_len)` bool, True on real source tokens.
            summary: `(batch, dim)` sentence summary.

        Returns:
            The memory dict, with `keys` `(batch, src_len, key_dim)` when the decoder
            attends.
        """
        memory = {"values": values, "mask": mask, "summary": summary}
        if self.attention is not None:
            if not self.attention.built:
                # The query is the decoder state: (batch, tgt_len, units).
                self.attention.build((None, None, self.units), values.shape)
            memory["keys"] = self.attention.project_key(values)
        return memory

    def initial_state(self, memory: dict, rnn_states: list) -> dict:
        """The decoder state before the first target token.

        Args:
            memory: From `prepare_memory()`.
            rnn_states: Bridged initial states, a flat list of `(batch, units)`.
        """
        del memory
        return {"rnn": list(rnn_states)}

    def _check_attends(self, option: str) -> None:
        """Raises ValueError: `option` asks for attention this decoder does not have."""
        if self.attention is None:
            raise ValueError(
                f"Expected {option} only on a decoder with attention. "
                f"Received: {option}=True for {type(self).__name__}"
            )

    def _top_hidden(self, rnn_states: list):
        """The top layer's hidden state h `(batch, units)` in a flat state list."""
        return rnn_states[(self.num_layers - 1) * self.rnn_stack.states_per_layer]

    def _recur(self, embedded, state: dict, memory: dict, training=None, hard_attention=False):
        """The recurrent part of one decoder time step.

        Args:
            embedded: The previous target token's embedding `(batch, embedding_dim)`.
            state: The decoder state dict.
            memory: From `prepare_memory()`.
            training: Whether dropout is active.
            hard_attention: Attend to the argmax source position only (see `Attention`).

        Returns:
            `(recurrent, state, attention)`: the step's output `(batch, recurrent_dim)`,
            the new state and `(batch, src_len)` weights or None.
        """
        raise NotImplementedError

    def _readout(self, recurrent, embedded):
        """Features for the output projection from `_recur()` outputs and embeddings.

        Works on one step `(batch, dim)` or a whole sequence `(batch, tgt_len, dim)`.
        The default passes the recurrent output through.
        """
        del embedded
        return recurrent

    def _project(self, features, training=None):
        """Features `(..., features)` to float32 logits `(..., vocab_size)`."""
        return self.output_projection(self.dropout_layer(features, training=training))

    def step(self, tokens, state: dict, memory: dict, training=None, hard_attention=False):
        """Decodes one token: the `next_fn` of a search.

        Args:
            tokens: `(batch,)` int ids of the previous target token.
            state: The decoder state dict.
            memory: From `prepare_memory()`.
            training: Whether dropout is active.
            hard_attention: Replace the soft attention weights by the one-hot of their
                argmax, so the context is one source vector (Xu et al. 2015, sec. 4.1). An
                inference option: teacher forcing always attends softly.

        Returns:
            `(logits, state, attention)`: `(batch, vocab_size)` float32, the new state
            and `(batch, src_len)` attention weights (None without attention; one-hot
            with `hard_attention`).

        Raises:
            ValueError: if `hard_attention` is set on a decoder without attention.
        """
        if hard_attention:
            self._check_attends("hard_attention")
        embedded = self.embedding(tokens)  # (batch, embedding_dim)
        recurrent, state, attention = self._recur(embedded, state, memory, training, hard_attention)
        return self._project(self._readout(recurrent, embedded), training), state, attention

    def _scan(self, embedded, state: dict, memory: dict, training=None):
        """Runs `_recur()` over `(batch, tgt_len, embedding_dim)` embeddings.

        A `tf.while_loop` over TensorArrays: gradients flow through it, and it has no op
        that the stock TensorFlow Serving lacks.

        Returns:
            `(recurrent, attention)`: `(batch, tgt_len, recurrent_dim)` and
            `(batch, tgt_len, src_len)`, or None when the decoder does not attend.
        """
        tgt_len = tf.shape(embedded)[1]
        time_major = tf.transpose(embedded, (1, 0, 2))  # (tgt_len, batch, embedding_dim)
        recurrent_array = tf.TensorArray(self.compute_dtype, size=tgt_len)
        attention_array = tf.TensorArray(self.compute_dtype, size=tgt_len)

        def body(time, state, recurrent_array, attention_array):
            recurrent, state, attention = self._recur(time_major[time], state, memory, training)
            recurrent_array = recurrent_array.write(time, recurrent)
            if attention is not None:
                attention_array = attention_array.write(time, attention)
            return time + 1, state, recurrent_array, attention_array

        _, _, recurrent_array, attention_array = tf.while_loop(
            lambda time, *_: time < tgt_len,
            body,
            (tf.constant(0), state, recurrent_array, attention_array),
            maximum_iterations=tgt_len,  # XLA (`jit_compile`) needs the gradient's bound.
        )
        # (tgt_len, batch, recurrent_dim) -> (batch, tgt_len, recurrent_dim)
        recurrent = tf.transpose(recurrent_array.stack(), (1, 0, 2))
        # A TensorArray forgets the static length; the outputs have the inputs' one.
        sequence_shape = [embedded.shape[0], embedded.shape[1], None]
        recurrent.set_shape(sequence_shape)
        if self.attention is None:
            return recurrent, None
        attention = tf.transpose(attention_array.stack(), (1, 0, 2))  # (batch, tgt_len, src_len)
        attention.set_shape(sequence_shape)
        return recurrent, attention

    def _teacher_forced_recurrence(self, embedded, state: dict, memory: dict, training=None):
        """`_recur()` outputs for a whole target; subclasses with a parallel path override."""
        return self._scan(embedded, state, memory, training)

    def call(
        self, tokens, memory: dict, rnn_states: list, return_attention_scores=False, training=None
    ):
        """Teacher forcing over a whole target.

        Args:
            tokens: `(batch, tgt_len)` decoder inputs (`<s> y_1 .. y_{n-1}`).
            memory: From `prepare_memory()`.
            rnn_states: Bridged initial states.
            return_attention_scores: Also return the attention weights.
            training: Whether dropout is active.

        Returns:
            Logits `(batch, tgt_len, vocab_size)` float32, or `(logits, attention)` with
            `(batch, tgt_len, src_len)` weights when `return_attention_scores=True`.

        Raises:
            ValueError: if `return_attention_scores` is set on a decoder without attention.
        """
        if return_attention_scores:
            self._check_attends("return_attention_scores")
        embedded = self.dropout_layer(self.embedding(tokens), training=training)
        state = self.initial_state(memory, rnn_states)
        recurrent, attention = self._teacher_forced_recurrence(embedded, state, memory, training)
        logits = self._project(self._readout(recurrent, embedded), training)
        return (logits, attention) if return_attention_scores else logits

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            num_layers=self.num_layers,
            rnn=self.rnn,
            dropout=self.dropout,
            residual=self.residual,
        )
        return config
