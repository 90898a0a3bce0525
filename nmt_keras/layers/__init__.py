"""Serializable Keras layers: attention, recurrent and Transformer encoders and decoders."""

from nmt_keras.layers.attention import Attention
from nmt_keras.layers.bahdanau_attention import BahdanauAttention
from nmt_keras.layers.bahdanau_decoder import BahdanauDecoder
from nmt_keras.layers.context_decoder import ContextDecoder
from nmt_keras.layers.encoder import Encoder
from nmt_keras.layers.feed_forward import FeedForward
from nmt_keras.layers.luong_attention import LuongAttention
from nmt_keras.layers.luong_decoder import LuongDecoder
from nmt_keras.layers.multi_head_attention import MultiHeadAttention
from nmt_keras.layers.positional_encoding import PositionalEncoding
from nmt_keras.layers.rnn_decoder import RNNDecoder
from nmt_keras.layers.rnn_stack import RNNStack
from nmt_keras.layers.shared_embedding import SharedEmbedding
from nmt_keras.layers.transformer_decoder import TransformerDecoder, TransformerDecoderLayer
from nmt_keras.layers.transformer_encoder import TransformerEncoder, TransformerEncoderLayer

__all__ = [
    "Attention",
    "BahdanauAttention",
    "BahdanauDecoder",
    "ContextDecoder",
    "Encoder",
    "FeedForward",
    "LuongAttention",
    "LuongDecoder",
    "MultiHeadAttention",
    "PositionalEncoding",
    "RNNDecoder",
    "RNNStack",
    "SharedEmbedding",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
]
