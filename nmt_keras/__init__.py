"""nmt-keras: neural machine translation on Keras 3, from Seq2seq to the Transformer."""

__version__ = "0.1.0"
