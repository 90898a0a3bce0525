"""The recurrent encoder-decoder model: fixed context, Bahdanau or Luong attention."""

from __future__ import annotations

import keras

from nmt_keras.layers.bahdanau_decoder import BahdanauDecoder
from nmt_keras.layers.context_decoder import ContextDecoder
from nmt_keras.layers.encoder import Encoder
from nmt_keras.layers.luong_decoder import LuongDecoder

MODEL_TYPES = ("seq2seq", "bahdanau", "luong")


@keras.saving.register_keras_serializable(package="nmt_keras")
class Seq2Seq(keras.Model):
    """An RNN encoder-decoder translation model.

    `model_type` picks the decoder: `"seq2seq"` conditions on one fixed context vector
    (Cho et al. 2014), `"bahdanau"` attends before each RNN step (Bahdanau et al. 2015),
    `"luong"` attends after it (Luong et al. 2015). The encoder is shared by all three.

    `call()` is teacher forcing for `model.fit`. Inference goes through
    `initial_search_state()` and `next_fn()`, which a search drives without knowing the
    model: the state holds the memory (encoder outputs and projected keys) and the
    decoder state, every tensor batch first.

    Args:
        source_vocab_size: Source vocabulary size.
        target_vocab_size: Target vocabulary size.
        model_type: `"seq2seq"`, `"bahdanau"` or `"luong"`.
        rnn: `"gru"` or `"lstm"`.
        embedding_dim: Embedding size, source and target.
        units: Hidden size of encoder outputs and decoder layers.
        encoder_layers: Stacked encoder layers.
        decoder_layers: Stacked decoder layers.
        bidirectional: Bidirectional encoder.
        residual: Residual connections between stacked layers.
        dropout: Dropout rate.
        attention_units: Hidden size of additive scores.
        attention_normalize: Weight-normalised Bahdanau score.
        score_mode: Luong score, `"dot"`, `"general"` or `"concat"`.
        attention_scale: Learned scalar on Luong scores.
        input_feeding: Luong input feeding.
        attention_window: Luong attention, `"global"`, `"local-m"` or `"local-p"`
            (Luong et al. 2015, sec. 3.2); local windows need `model_type="luong"`.
        local_window: Half-width D of a local attention window.

    Call args:
        inputs: `{"source": (batch, src_len), "target": (batch, tgt_len)}` int ids,
            0-padded; `target` is the decoder input `<s> y_1 .. y_{n-1}`.

    Returns:
        Logits `(batch, tgt_len, target_vocab_size)`, float32.
    """

    def __init__(
        self,
        source_vocab_size: int,
        target_vocab_size: int,
        model_type: str = "bahdanau",
        rnn: str = "gru",
        embedding_dim: int = 256,
        units: int = 256,
        encoder_layers: int = 1,
        decoder_layers: int = 1,
        bidirectional: bool = True,
        residual: bool = False,
        dropout: float = 0.0,
        attention_units: int = 256,
        attention_normalize: bool = False,
        score_mode: str = "general",
        attention_scale: bool = False,
        input_feeding: bool = False,
        attention_window: str = "global",
        local_window: int = 10,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if model_type not in MODEL_TYPES:
            raise ValueError(
                f"Expected model_type to be one of {', '.join(MODEL_TYPES)}. "
                f"Received: model_type={model_type}"
            )
        if attention_window != "global" and model_type != "luong":
            raise ValueError(
                "Expected attention_window='global' unless model_type='luong'. "
                f"Received: attention_window={attention_window!r}, model_type={model_type!r}"
            )
        self.source_vocab_size = source_vocab_size
        self.target_vocab_size = target_vocab_size
        self.model_type = model_type
        self.rnn = rnn
        self.embedding_dim = embedding_dim
        self.units = units
        self.encoder_layers = encoder_layers
        self.decoder_layers = decoder_layers
        self.bidirectional = bidirectional
        self.residual = residual
        self.dropout = dropout
        self.attention_units = attention_units
        self.attention_normalize = attention_normalize
        self.score_mode = score_mode
        self.attention_scale = attention_scale
        self.input_feeding = input_feeding
        self.attention_window = attention_window
        self.local_window = local_window

        self.encoder = Encoder(
            source_vocab_size,
            embedding_dim,
            units,
            num_layers=encoder_layers,
            rnn=rnn,
            bidirectional=bidirectional,
            dropout=dropout,
            residual=residual,
            decoder_units=units,
            decoder_layers=decoder_layers,
            name="encoder",
        )
        decoder_args = dict(
            vocab_size=target_vocab_size,
            embedding_dim=embedding_dim,
            units=units,
            num_layers=decoder_layers,
            rnn=rnn,
            dropout=dropout,
            residual=residual,
            name="decoder",
        )
        if model_type == "seq2seq":
            self.decoder = ContextDecoder(**decoder_args)
        elif model_type == "bahdanau":
            self.decoder = BahdanauDecoder(
                attention_units=attention_units,
                attention_normalize=attention_normalize,
                **decoder_args,
            )
        else:
            self.decoder = LuongDecoder(
                score_mode=score_mode,
                attention_scale=attention_scale,
                attention_units=attention_units,
                input_feeding=input_feeding,
                attention_window=attention_window,
                local_window=local_window,
                **decoder_args,
            )

    @property
    def supports_hard_attention(self) -> bool:
        """Whether `next_fn(..., hard_attention=True)` works: every attention decoder."""
        return self.has_attention

    @property
    def has_attention(self) -> bool:
        """Whether decoding produces attention weights (False for the fixed context)."""
        return self.model_type != "seq2seq"

    def encode(self, source, training=None):
        """Encodes `(batch, src_len)` ids.

        Returns:
            `(memory, rnn_states)`: the decoder's memory dict and the bridged initial
            decoder states.
        """
        values, mask, summary, rnn_states = self.encoder(source, training=training)
        return self.decoder.prepare_memory(values, mask, summary), rnn_states

    def call(self, inputs, training=None):
        """Teacher-forced logits; see the class docstring."""
        logits, _ = self.teacher_forced(inputs["source"], inputs["target"], training)
        return logits

    def teacher_forced(self, source, target, training=None):
        """Teacher forcing that also returns the attention weights.

        Returns:
            `(logits, attention)`: `(batch, tgt_len, vocab)` and
            `(batch, tgt_len, src_len)` (None for the fixed-context model).
        """
        memory, rnn_states = self.encode(source, training)
        return self.decoder(target, memory, rnn_states, training=training)

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

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            source_vocab_size=self.source_vocab_size,
            target_vocab_size=self.target_vocab_size,
            model_type=self.model_type,
            rnn=self.rnn,
            embedding_dim=self.embedding_dim,
            units=self.units,
            encoder_layers=self.encoder_layers,
            decoder_layers=self.decoder_layers,
            bidirectional=self.bidirectional,
            residual=self.residual,
            dropout=self.dropout,
            attention_units=self.attention_units,
            attention_normalize=self.attention_normalize,
            score_mode=self.score_mode,
            attention_scale=self.attention_scale,
            input_feeding=self.input_feeding,
            attention_window=self.attention_window,
            local_window=self.local_window,
        )
        return config
