"""The Transformer translation model (Vaswani et al. 2017), pre-norm."""

from __future__ import annotations

import keras

from nmt_keras.layers.transformer_decoder import TransformerDecoder
from nmt_keras.layers.transformer_encoder import TransformerEncoder
from nmt_keras.models.encoder_decoder import EncoderDecoder


@keras.saving.register_keras_serializable(package="nmt_keras")
class Transformer(EncoderDecoder):
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

    with depth = units / num_heads: the memory is each decoder layer's cross-attention
    keys and values, projected once per sentence; the cache holds each layer's
    self-attention keys and values of the tokens decoded so far and grows along time by
    one position a step (only the last dimension is fixed, as `nmt_keras.search` allows).
    Float tensors are in the compute dtype (float16 under `"mixed_float16"`).

    The attention returned with the logits is the cross-attention of the last decoder
    layer, averaged over heads, or the head `alignment_head` (Python indexing, -1 is the
    last head): 0 on source padding, each row sums to 1 over the real source tokens.

    The model only wires its two stacks (OpenNMT-tf's model-from-components
    composition); `nmt_keras.models.build_model` builds both from a config.

    Args:
        encoder: A `TransformerEncoder`.
        decoder: A `TransformerDecoder` of the encoder's `units`.
        **kwargs: `keras.Model` arguments (`name`, `dtype`, ...).

    Call args:
        inputs: `{"source": (batch, src_len), "target": (batch, tgt_len)}` int ids,
            0-padded; `target` is the decoder input `<s> y_1 .. y_{n-1}`.

    Returns:
        Logits `(batch, tgt_len, target_vocab_size)`, float32.

    Raises:
        ValueError: If the decoder's `units` differ from the encoder's.

    Example:
        >>> import numpy as np
        >>> from nmt_keras.layers import TransformerDecoder, TransformerEncoder
        >>> from nmt_keras.models import Transformer
        >>> sizes = dict(units=16, num_heads=4, ff_dim=32, num_layers=2)
        >>> model = Transformer(
        ...     TransformerEncoder(vocab_size=20, **sizes),
        ...     TransformerDecoder(vocab_size=30, shared_embeddings=True, **sizes),
        ... )
        >>> source = np.array([[1, 5, 7, 2], [1, 9, 2, 0]])
        >>> target_in = np.array([[1, 4, 6], [1, 8, 0]])
        >>> tuple(model({"source": source, "target": target_in}).shape)
        (2, 3, 30)
    """

    def __init__(self, encoder: TransformerEncoder, decoder: TransformerDecoder, **kwargs):
        if encoder.units != decoder.units:
            raise ValueError(
                "Expected a decoder of the encoder's units. "
                f"Received: encoder.units={encoder.units}, decoder.units={decoder.units}"
            )
        super().__init__(encoder, decoder, **kwargs)

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

    def teacher_forced(self, source, target, training=None):
        """Teacher forcing that also returns the attention weights.

        Returns:
            `(logits, attention)`: float32 `(batch, tgt_len, vocab)` and float32
            `(batch, tgt_len, src_len)`.
        """
        memory = self.encode(source, training)
        return self.decoder(target, memory, return_attention_scores=True, training=training)

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
