"""The attention decoder of Bahdanau et al. (2015): attend, then step the RNN."""

from __future__ import annotations

import keras
from keras import ops

from nmt_keras.layers.bahdanau_attention import BahdanauAttention
from nmt_keras.layers.rnn_decoder import RNNDecoder


@keras.saving.register_keras_serializable(package="nmt_keras")
class BahdanauDecoder(RNNDecoder):
    """An RNN decoder that attends from the previous state before each step.

    Bahdanau, Cho, Bengio (2015), "Neural Machine Translation by Jointly Learning to
    Align and Translate", eqs. 4-6 and appendix A.2.2:
    c_i = sum_j alpha_ij h_j with alpha_i = softmax(e_i), e_ij = a(s_{i-1}, h_j);
    s_i = f(s_{i-1}, [E y_{i-1}; c_i]);
    t_i = tanh(W_o [s_i; E y_{i-1}; c_i]) (the paper uses a maxout here), then the
    softmax projection. The query s_{i-1} is the top layer's hidden state.

    The attention depends on the previous state, so teacher forcing scans `step()`
    over the target; the source keys W_h h_j are projected once per sentence.

    Args:
        attention_units: Hidden size of the additive score.
        attention_normalize: Weight-normalised score (see `BahdanauAttention`).
        Others: see `RNNDecoder`.

    Example:
        >>> import numpy as np
        >>> source = np.array([[1, 5, 7, 2], [1, 9, 2, 0]])  # 0-padded ids
        >>> target_in = np.array([[1, 4, 6], [1, 8, 0]])  # <s> y_1 .. y_{n-1}
        >>> from nmt_keras.layers import BahdanauDecoder, Encoder
        >>> encoder = Encoder(vocab_size=20, embedding_dim=8, units=16)
        >>> decoder = BahdanauDecoder(vocab_size=30, embedding_dim=8, units=16, attention_units=8)
        >>> values, mask, summary, initial_state = encoder(source)
        >>> memory = decoder.prepare_memory(values, mask, summary)
        >>> logits, attention = decoder(  # teacher forcing
        ...     target_in, memory, initial_state, return_attention_scores=True
        ... )
        >>> tuple(logits.shape), tuple(attention.shape)
        ((2, 3, 30), (2, 3, 4))

        Inference runs `step()` one token at a time, as a search does:

        >>> state = decoder.initial_state(memory, initial_state)
        >>> step_logits, state, weights = decoder.step(target_in[:, 0], state, memory)
        >>> bool(np.allclose(step_logits, logits[:, 0], atol=1e-5))
        True
    """

    def __init__(self, *args, attention_units: int = 256, attention_normalize=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.attention_units = attention_units
        self.attention_normalize = attention_normalize
        self.attention = BahdanauAttention(
            attention_units,
            normalize=attention_normalize,
            dtype=self.dtype_policy,
            name="attention",
        )
        self.deep_output = keras.layers.Dense(
            self.units, activation="tanh", dtype=self.dtype_policy, name="deep_output"
        )

    def _recur(self, embedded, state: dict, memory: dict, training=None, hard_attention=False):
        query = ops.expand_dims(self._top_hidden(state["rnn"]), 1)  # (batch, 1, units)
        context, weights = self.attention(
            query,
            memory["values"],
            mask=memory["mask"],
            key=memory["keys"],
            return_attention_scores=True,
            hard=hard_attention,
        )
        context, weights = context[:, 0], weights[:, 0]  # (batch, dim), (batch, src_len)
        inputs = ops.concatenate([embedded, context], axis=-1)
        output, rnn_states = self.rnn_stack.step(inputs, state["rnn"], training=training)
        return ops.concatenate([output, context], axis=-1), {"rnn": rnn_states}, weights

    def _readout(self, recurrent, embedded):
        """The deep output tanh(W_o [s_i; c_i; E y_{i-1}]) from `recurrent` = [s_i; c_i]."""
        return self.deep_output(ops.concatenate([recurrent, embedded], axis=-1))

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            attention_units=self.attention_units, attention_normalize=self.attention_normalize
        )
        return config
