"""Serializable Keras layers: attention, the recurrent encoder and decoders."""

from nmt_keras.layers.attention import Attention
from nmt_keras.layers.bahdanau_attention import BahdanauAttention
from nmt_keras.layers.bahdanau_decoder import BahdanauDecoder
from nmt_keras.layers.context_decoder import ContextDecoder
from nmt_keras.layers.encoder import Encoder
from nmt_keras.layers.luong_attention import LuongAttention
from nmt_keras.layers.luong_decoder import LuongDecoder
from nmt_keras.layers.rnn_stack import RNNStack

__all__ = [
    "Attention",
    "BahdanauAttention",
    "BahdanauDecoder",
    "ContextDecoder",
    "Encoder",
    "LuongAttention",
    "LuongDecoder",
    "RNNStack",
]
