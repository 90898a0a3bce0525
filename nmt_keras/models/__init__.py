"""Translation models and the factory that builds them from a config."""

from nmt_keras.models.factory import build_model
from nmt_keras.models.seq2seq import Seq2Seq

__all__ = ["Seq2Seq", "build_model"]
