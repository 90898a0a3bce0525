"""SentencePiece training and the in-graph tokenizer."""

from nmt_keras.text.sentencepiece_training import train_sentencepiece
from nmt_keras.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer

__all__ = ["BOS_ID", "EOS_ID", "PAD_ID", "UNK_ID", "Tokenizer", "train_sentencepiece"]
