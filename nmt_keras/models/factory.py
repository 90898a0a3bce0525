"""Builds the model a configuration names."""

from __future__ import annotations

import keras

from nmt_keras.config import ModelConfig
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
        model = Transformer(
            source_vocab_size,
            target_vocab_size,
            d_model=config.units,
            num_heads=config.num_heads,
            ff_dim=config.ff_dim,
            encoder_layers=config.encoder_layers,
            decoder_layers=config.decoder_layers,
            dropout=config.dropout,
            shared_target_embeddings=config.shared_target_embeddings,
            alignment_head=config.alignment_head,
            name="transformer",
        )
    else:
        model = _seq2seq(config, source_vocab_size, target_vocab_size)
    dummy = keras.ops.ones((1, 2), dtype="int32")
    model({"source": dummy, "target": dummy})
    return model


def _seq2seq(config: ModelConfig, source_vocab_size: int, target_vocab_size: int) -> Seq2Seq:
    """The recurrent encoder-decoder of `config` (not built)."""
    return Seq2Seq(
        source_vocab_size,
        target_vocab_size,
        model_type=config.type,
        rnn=config.rnn,
        embedding_dim=config.embedding_dim,
        units=config.units,
        encoder_layers=config.encoder_layers,
        decoder_layers=config.decoder_layers,
        bidirectional=config.bidirectional,
        residual=config.residual,
        dropout=config.dropout,
        attention_units=config.attention_units,
        attention_normalize=config.attention_normalize,
        score_mode=config.score_mode,
        attention_scale=config.attention_scale,
        input_feeding=config.input_feeding,
        attention_window=config.attention_window,
        local_window=config.local_window,
        name=f"{config.type}_{config.rnn}",
    )
