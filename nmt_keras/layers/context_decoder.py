"""The fixed-context decoder of Cho et al. (2014): the baseline attention improves on."""

from __future__ import annotations

import keras
from keras import ops

from nmt_keras.layers.rnn_decoder import RNNDecoder


@keras.saving.register_keras_serializable(package="nmt_keras")
class ContextDecoder(RNNDecoder):
    """An RNN decoder conditioned on one fixed context vector c at every step.

    Cho et al. (2014), "Learning Phrase Representations using RNN Encoder-Decoder",
    sec. 2.2: s_t = f(s_{t-1}, y_{t-1}, c) and
    p(y_t | y_<t, x) = g(s_t, y_{t-1}, c), with c the encoder's summary of the whole
    source. Here f is the RNN stack on [E y_{t-1}; c] and g a tanh deep-output layer
    t_t = tanh(W_o [s_t; E y_{t-1}; c]) followed by the softmax projection.

    Because c does not depend on the step, teacher forcing runs the RNN over the whole
    target at once; `step()` computes the same thing one token at a time.

    Args: see `RNNDecoder`.

    Example:
        >>> import numpy as np
        >>> source = np.array([[1, 5, 7, 2], [1, 9, 2, 0]])  # 0-padded ids
        >>> target_in = np.array([[1, 4, 6], [1, 8, 0]])  # <s> y_1 .. y_{n-1}
        >>> from nmt_keras.layers import ContextDecoder, Encoder
        >>> encoder = Encoder(vocab_size=20, embedding_dim=8, units=16)
        >>> decoder = ContextDecoder(vocab_size=30, embedding_dim=8, units=16)
        >>> values, mask, summary, initial_state = encoder(source)
        >>> memory = decoder.prepare_memory(values, mask, summary)
        >>> logits = decoder(target_in, memory, initial_state)  # teacher forcing
        >>> tuple(logits.shape)
        (2, 3, 30)

        Inference runs `step()` one token at a time, as a search does:

        >>> state = decoder.initial_state(memory, initial_state)
        >>> step_logits, state, weights = decoder.step(target_in[:, 0], state, memory)
        >>> bool(np.allclose(step_logits, logits[:, 0], atol=1e-5))
        True
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.deep_output = keras.layers.Dense(
            self.units, activation="tanh", dtype=self.dtype_policy, name="deep_output"
        )

    def _recur(self, embedded, state: dict, memory: dict, training=None, hard_attention=False):
        del hard_attention  # no attention to harden; step() rejects it
        context = memory["summary"]  # (batch, dim)
        inputs = ops.concatenate([embedded, context], axis=-1)
        output, rnn_states = self.rnn_stack.step(inputs, state["rnn"], training=training)
        return ops.concatenate([output, context], axis=-1), {"rnn": rnn_states}, None

    def _readout(self, recurrent, embedded):
        """The deep output tanh(W_o [s; c; E y]) from `recurrent` = [s; c]."""
        return self.deep_output(ops.concatenate([recurrent, embedded], axis=-1))

    def _teacher_forced_recurrence(self, embedded, state: dict, memory: dict, training=None):
        tgt_len = ops.shape(embedded)[1]
        context = ops.repeat(ops.expand_dims(memory["summary"], 1), tgt_len, axis=1)
        # context: (batch, dim) -> (batch, tgt_len, dim)
        inputs = ops.concatenate([embedded, context], axis=-1)
        outputs, _ = self.rnn_stack(inputs, state["rnn"], training=training)
        return ops.concatenate([outputs, context], axis=-1), None
