"""Builds the model a configuration names, from its encoder and decoder layers."""

from __future__ import annotations

import keras

from nmt_keras.config import ModelConfig
from nmt_keras.layers import (
    BahdanauDecoder,
    ContextDecoder,
    Encoder,
    LuongDecoder,
    RNNDecoder,
    TransformerDecoder,
    TransformerEncoder,
)
from nmt_keras.models.seq2seq import Seq2Seq
from nmt_keras.models.transformer import Transformer


def build_model(config: ModelConfig, source_vocab_size: int, target_vocab_size: int) -> keras.Model:
    """Builds the model of `config` for the given vocabularies, with its weights created.

    Args:
        config: The model section of an experiment config.
        source_vocab_size: Source tokenizer vocabulary size.
        target_vocab_size: Target tokenizer vocabulary size.

    Returns:
        A built `Seq2Seq` or `Transformer` (weights exist, so checkpoints can be loaded at
        once).
    """
    if config.type == "transformer":
        model = _transformer(config, source_vocab_size, target_vocab_size)
    else:
        model = Seq2Seq(
            _rnn_encoder(config, source_vocab_size),
            _rnn_decoder(config, target_vocab_size),
            name=f"{config.type}_{config.rnn}",
        )
    dummy = keras.ops.ones((1, 2), dtype="int32")
    model({"source": dummy, "target": dummy})
    return model


def _transformer(
    config: ModelConfig, source_vocab_size: int, target_vocab_size: int
) -> Transformer:
    """The Transformer encoder and decoder of `config`."""
    sizes = dict(
        units=config.units, num_heads=config.num_heads, ff_dim=config.ff_dim, dropout=config.dropout
    )
    encoder = TransformerEncoder(
        source_vocab_size, num_layers=config.encoder_layers, name="encoder", **sizes
    )
    decoder = TransformerDecoder(
        target_vocab_size,
        num_layers=config.decoder_layers,
        shared_embeddings=config.shared_target_embeddings,
        alignment_head=config.alignment_head,
        name="decoder",
        **sizes,
    )
    return Transformer(encoder, decoder, name="transformer")


def _rnn_encoder(config: ModelConfig, source_vocab_size: int) -> Encoder:
    """The (bidirectional) RNN encoder, bridged to the decoder of `config`."""
    return Encoder(
        source_vocab_size,
        config.embedding_dim,
        config.units,
        num_layers=config.encoder_layers,
        rnn=config.rnn,
        bidirectional=config.bidirectional,
        dropout=config.dropout,
        residual=config.residual,
        decoder_units=config.units,
        decoder_layers=config.decoder_layers,
        name="encoder",
    )


def _rnn_decoder(config: ModelConfig, target_vocab_size: int) -> RNNDecoder:
    """The decoder that makes the family: fixed context, Bahdanau or Luong."""
    common = dict(
        vocab_size=target_vocab_size,
        embedding_dim=config.embedding_dim,
        units=config.units,
        num_layers=config.decoder_layers,
        rnn=config.rnn,
        dropout=config.dropout,
        residual=config.residual,
        name="decoder",
    )
    if config.type == "seq2seq":
        return ContextDecoder(**common)
    if config.type == "bahdanau":
        return BahdanauDecoder(
            attention_units=config.attention_units,
            attention_normalize=config.attention_normalize,
            **common,
        )
    return LuongDecoder(
        score_mode=config.score_mode,
        score_scale=config.score_scale,
        attention_units=config.attention_units,
        input_feeding=config.input_feeding,
        window_mode=config.window_mode,
        half_window=config.half_window,
        **common,
    )
