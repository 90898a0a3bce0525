"""The Transformer translation model (Vaswani et al. 2017), pre-norm."""

from __future__ import annotations

import keras

from nmt_keras.layers.transformer_decoder import TransformerDecoder
from nmt_keras.layers.transformer_encoder import TransformerEncoder


@keras.saving.register_keras_serializable(package="nmt_keras")
class Transformer(keras.Model):
    """An encoder-decoder Transformer on the interface of `Seq2Seq`.

    Vaswani et al. 2017 ("Attention Is All You Need"), with pre-norm layers (Wang et al.
    2019, Xiong et al. 2020): N encoder and N decoder layers of multi-head attention and
    position-wise feed-forward networks over scaled embeddings with sinusoidal positions.

    `call()` is teacher forcing for `model.fit`. Inference goes through
    `initial_search_state()` and `next_fn()`, which a search drives without knowing the
    model. The search state, every tensor batch first, is

        {"memory": {"mask":   (batch, src_len) bool,
                    "keys":   [(batch, src_len, num_heads, depth)] * decoder_layers,
                    "values": [(batch, src_len, num_heads, depth)] * decoder_layers},
         "cache":  {"keys":   [(batch, step, num_heads, depth)] * decoder_layers,
                    "values": [(batch, step, num_heads, depth)] * decoder_layers}}

    with depth = d_model / num_heads: the memory is each decoder layer's cross-attention
    keys and values, projected once per sentence; the cache holds each layer's
    self-attention keys and values of the tokens decoded so far and grows along time by
    one position a step (only the last dimension is fixed, as `nmt_keras.search` allows).
    Float tensors are in the compute dtype (float16 under `"mixed_float16"`).

    The attention returned with the logits is the cross-attention of the last decoder
    layer, averaged over heads, or the head `alignment_head` (Python indexing, -1 is the
    last head): 0 on source padding, each row sums to 1 over the real source tokens.

    Args:
        source_vocab_size: Source vocabulary size.
        target_vocab_size: Target vocabulary size.
        d_model: Model size, embeddings and every sublayer output.
        num_heads: Attention heads; must divide `d_model`.
        ff_dim: Inner size of the feed-forward networks.
        encoder_layers: Stacked encoder layers.
        decoder_layers: Stacked decoder layers.
        dropout: Dropout rate (residual, embedding and attention-weight dropout).
        shared_target_embeddings: Tie the decoder's input embedding and its output
            projection (sec. 3.4).
        alignment_head: None to average the heads, or one head's index.

    Call args:
        inputs: `{"source": (batch, src_len), "target": (batch, tgt_len)}` int ids,
            0-padded; `target` is the decoder input `<s> y_1 .. y_{n-1}`.

    Returns:
        Logits `(batch, tgt_len, target_vocab_size)`, float32.

    Raises:
        ValueError: If `num_heads` does not divide `d_model`, or `alignment_head` is not
            a head.
    """

    def __init__(
        self,
        source_vocab_size: int,
        target_vocab_size: int,
        d_model: int = 256,
        num_heads: int = 4,
        ff_dim: int = 1024,
        encoder_layers: int = 3,
        decoder_layers: int = 3,
        dropout: float = 0.1,
        shared_target_embeddings: bool = False,
        alignment_head: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_heads < 1 or d_model % num_heads:
            raise ValueError(
                "Expected num_heads to divide d_model. "
                f"Received: d_model={d_model}, num_heads={num_heads}"
            )
        self.source_vocab_size = source_vocab_size
        self.target_vocab_size = target_vocab_size
        self.d_model = d_model
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.encoder_layers = encoder_layers
        self.decoder_layers = decoder_layers
        self.dropout = dropout
        self.shared_target_embeddings = shared_target_embeddings
        self.alignment_head = alignment_head

        self.encoder = TransformerEncoder(
            source_vocab_size,
            d_model,
            num_heads,
            ff_dim,
            encoder_layers,
            dropout=dropout,
            name="encoder",
        )
        self.decoder = TransformerDecoder(
            target_vocab_size,
            d_model,
            num_heads,
            ff_dim,
            decoder_layers,
            dropout=dropout,
            shared_embeddings=shared_target_embeddings,
            alignment_head=alignment_head,
            name="decoder",
        )

    @property
    def supports_hard_attention(self) -> bool:
        """False: multi-head attention has no single alignment to harden."""
        return False

    @property
    def has_attention(self) -> bool:
        """Whether decoding produces attention weights: always, cross-attention."""
        return True

    def build(self, input_shape=None):
        """Creates every weight: their sizes follow from the constructor arguments alone.

        So `Transformer(...).build()` is enough before `load_weights()`.

        Args:
            input_shape: Unused; Keras passes the inputs' shapes on the first call.
        """
        del input_shape
        for stack in (self.encoder, self.decoder):
            if not stack.built:
                stack.build((None, None))

    def encode(self, source, training=None) -> dict:
        """Encodes `(batch, src_len)` ids into the decoder's memory (see the class docstring)."""
        outputs, mask = self.encoder(source, training=training)
        return self.decoder.prepare_memory(outputs, mask)

    def call(self, inputs, training=None):
        """Teacher-forced logits; see the class docstring."""
        logits, _ = self.teacher_forced(inputs["source"], inputs["target"], training)
        return logits

    def teacher_forced(self, source, target, training=None):
        """Teacher forcing that also returns the attention weights.

        Returns:
            `(logits, attention)`: float32 `(batch, tgt_len, vocab)` and float32
            `(batch, tgt_len, src_len)`.
        """
        return self.decoder(target, self.encode(source, training), training=training)

    def initial_search_state(self, source) -> dict:
        """The search state before the first step for `(batch, src_len)` ids."""
        memory = self.encode(source, training=False)
        return {"memory": memory, "cache": self.decoder.initial_cache(memory)}

    def next_fn(self, tokens, state: dict, step):
        """One inference step, the `next_fn` contract of `nmt_keras.search`.

        Args:
            tokens: `(batch,)` previous target ids.
            state: From `initial_search_state()` or the previous step.
            step: int scalar, the position of `tokens` in the target (0 for `<s>`).

        Returns:
            `(logits, state, attention)`: float32 `(batch, vocab)`, the next state and
            float32 `(batch, src_len)` weights.
        """
        logits, cache, attention = self.decoder.step(
            tokens, state["cache"], state["memory"], step, training=False
        )
        return logits, {"memory": state["memory"], "cache": cache}, attention

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            source_vocab_size=self.source_vocab_size,
            target_vocab_size=self.target_vocab_size,
            d_model=self.d_model,
            num_heads=self.num_heads,
            ff_dim=self.ff_dim,
            encoder_layers=self.encoder_layers,
            decoder_layers=self.decoder_layers,
            dropout=self.dropout,
            shared_target_embeddings=self.shared_target_embeddings,
            alignment_head=self.alignment_head,
        )
        return config
