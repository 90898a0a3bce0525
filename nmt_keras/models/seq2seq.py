"""The recurrent encoder-decoder model: an `Encoder` and any `RNNDecoder`."""

from __future__ import annotations

import keras

from nmt_keras.layers.encoder import Encoder
from nmt_keras.layers.rnn_decoder import RNNDecoder
from nmt_keras.models.encoder_decoder import EncoderDecoder


@keras.saving.register_keras_serializable(package="nmt_keras")
class Seq2Seq(EncoderDecoder):
    """An RNN encoder-decoder translation model, composed of an encoder and a decoder.

    The decoder makes the family: a `ContextDecoder` conditions on one fixed context
    vector (Cho et al. 2014), a `BahdanauDecoder` attends before each RNN step (Bahdanau
    et al. 2015), a `LuongDecoder` after it (Luong et al. 2015); any `RNNDecoder`
    subclass fits. The model only wires them, as OpenNMT-tf's `SequenceToSequence`
    composes an encoder and a decoder: the encoder's bridge gives the decoder its
    initial state, and `decoder.prepare_memory()` the encoder outputs it reads.
    `nmt_keras.models.build_model` builds both from a config.

    `call()` is teacher forcing for `model.fit`. Inference goes through
    `initial_search_state()` and `next_fn()`, which a search drives without knowing the
    model: the state holds the memory (encoder outputs and projected keys) and the
    decoder state, every tensor batch first.

    Args:
        encoder: The `Encoder`; its bridge must initialise `decoder`: the same `rnn`,
            `decoder_units == decoder.units` and `decoder_layers == decoder.num_layers`.
        decoder: An `RNNDecoder`.
        **kwargs: `keras.Model` arguments (`name`, `dtype`, ...).

    Call args:
        inputs: `{"source": (batch, src_len), "target": (batch, tgt_len)}` int ids,
            0-padded; `target` is the decoder input `<s> y_1 .. y_{n-1}`.

    Returns:
        Logits `(batch, tgt_len, target_vocab_size)`, float32.

    Raises:
        ValueError: If the encoder's bridge does not fit the decoder.

    Example:
        >>> import numpy as np
        >>> from nmt_keras.layers import Encoder, LuongDecoder
        >>> from nmt_keras.models import Seq2Seq
        >>> model = Seq2Seq(
        ...     Encoder(vocab_size=20, embedding_dim=8, units=16, rnn="lstm"),
        ...     LuongDecoder(vocab_size=30, embedding_dim=8, units=16, rnn="lstm"),
        ... )
        >>> source = np.array([[1, 5, 7, 2], [1, 9, 2, 0]])
        >>> target_in = np.array([[1, 4, 6], [1, 8, 0]])
        >>> tuple(model({"source": source, "target": target_in}).shape)
        (2, 3, 30)
    """

    def __init__(self, encoder: Encoder, decoder: RNNDecoder, **kwargs):
        bridge = (encoder.rnn, encoder.decoder_units, encoder.decoder_layers)
        expected = (decoder.rnn, decoder.units, decoder.num_layers)
        if bridge != expected:
            raise ValueError(
                "Expected the encoder's bridge to initialise the decoder: the same rnn, "
                "encoder.decoder_units == decoder.units and encoder.decoder_layers == "
                "decoder.num_layers. Received: (rnn, decoder_units, decoder_layers)="
                f"{bridge} for a decoder with (rnn, units, num_layers)={expected}"
            )
        super().__init__(encoder, decoder, **kwargs)

    @property
    def supports_hard_attention(self) -> bool:
        """Whether `next_fn(..., hard_attention=True)` works: every attention decoder."""
        return self.has_attention

    @property
    def has_attention(self) -> bool:
        """Whether decoding produces attention weights (False for the fixed context)."""
        return self.decoder.attention is not None

    def encode(self, source, training=None):
        """Encodes `(batch, src_len)` ids.

        Returns:
            `(memory, rnn_states)`: the decoder's memory dict and the bridged initial
            decoder states.
        """
        values, mask, summary, rnn_states = self.encoder(source, training=training)
        return self.decoder.prepare_memory(values, mask, summary), rnn_states

    def teacher_forced(self, source, target, training=None):
        """Teacher forcing that also returns the attention weights.

        Returns:
            `(logits, attention)`: `(batch, tgt_len, vocab)` and
            `(batch, tgt_len, src_len)` (None for the fixed-context model).
        """
        memory, rnn_states = self.encode(source, training)
        if self.decoder.attention is None:
            return self.decoder(target, memory, rnn_states, training=training), None
        return self.decoder(
            target, memory, rnn_states, return_attention_scores=True, training=training
        )

    def initial_search_state(self, source) -> dict:
        """The search state before the first step for `(batch, src_len)` ids."""
        memory, rnn_states = self.encode(source, training=False)
        return {"memory": memory, "decoder": self.decoder.initial_state(memory, rnn_states)}

    def next_fn(self, tokens, state: dict, step, hard_attention=False):
        """One inference step, the `next_fn` contract of `nmt_keras.search`.

        Args:
            tokens: `(batch,)` previous target ids.
            state: From `initial_search_state()` or the previous step.
            step: Scalar step index (unused: a local-m decoder carries its target
                position in its state).
            hard_attention: Attend to the single most probable source position (Xu et
                al. 2015, sec. 4.1); bind it with `functools.partial` for a search.

        Returns:
            `(logits, state, attention)`: `(batch, vocab)`, the next state and
            `(batch, src_len)` weights (None for the fixed-context model, one-hot with
            `hard_attention`).

        Raises:
            ValueError: for `hard_attention` on the fixed-context model.
        """
        del step
        logits, decoder_state, attention = self.decoder.step(
            tokens, state["decoder"], state["memory"], training=False, hard_attention=hard_attention
        )
        return logits, {"memory": state["memory"], "decoder": decoder_state}, attention
