"""Translation models and the factory that builds them from a config."""

from nmt_keras.models.encoder_decoder import EncoderDecoder
from nmt_keras.models.factory import build_model
from nmt_keras.models.seq2seq import Seq2Seq
from nmt_keras.models.transformer import Transformer

__all__ = ["EncoderDecoder", "Seq2Seq", "Transformer", "build_model"]
