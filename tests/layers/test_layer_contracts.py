"""Every public layer through `run_layer_test`: config, calls, fit, mixed precision, `.keras`.

Behaviour particular to one layer (its equations, masking, step-by-step decoding) is
tested in that layer's own test file; the contract all layers share is tested here once.
`Attention` and `RNNDecoder` are abstract bases and run through their subclasses.
"""

import numpy as np
import pytest

from nmt_keras import layers
from tests.layers import harness

BATCH, SRC_LEN, TGT_LEN, DIM, VOCAB = 2, 5, 3, 8, 20
RNG = np.random.default_rng(0)


def floats(*shape):
    return RNG.normal(size=shape).astype("float32")


SOURCE_MASK = np.array([[True] * SRC_LEN, [True, True, True, False, False]])
SOURCE_TOKENS = np.array([[1, 5, 7, 9, 2], [1, 6, 2, 0, 0]], dtype="int32")
TARGET_TOKENS = np.array([[1, 4, 8], [1, 3, 0]], dtype="int32")
ATTENTION_INPUTS = {"query": floats(BATCH, TGT_LEN, DIM), "value": floats(BATCH, SRC_LEN, DIM)}
ATTENTION_INPUTS["mask"] = SOURCE_MASK
ATTENTION_OUTPUTS = ((BATCH, TGT_LEN, DIM), (BATCH, TGT_LEN, SRC_LEN))
SEQUENCE = (BATCH, TGT_LEN, DIM)
LOGITS = (BATCH, TGT_LEN, VOCAB)
RNN_SIZES = dict(vocab_size=VOCAB, embedding_dim=DIM, units=DIM, dropout=0.1)


def decoder_inputs(states=1):
    return {
        "tokens": TARGET_TOKENS,
        "values": floats(BATCH, SRC_LEN, DIM),
        "mask": SOURCE_MASK,
        "summary": floats(BATCH, DIM),
        "states": [floats(BATCH, DIM) for _ in range(states)],
    }


TRANSFORMER_SIZES = dict(units=DIM, num_heads=2, ff_dim=16, dropout=0.1)
TRANSFORMER_MEMORY = {"memory": floats(BATCH, SRC_LEN, DIM), "mask": SOURCE_MASK}
DECODER_FLOAT32 = dict(float32_sublayers=("output_projection",), float32_outputs=(0,))

CASES = {
    "bahdanau_attention": dict(
        layer_cls=layers.BahdanauAttention,
        init_kwargs=dict(units=6),
        inputs=ATTENTION_INPUTS,
        expected_output_shape=ATTENTION_OUTPUTS,
        call=harness.call_attention,
    ),
    "bahdanau_attention_normalize": dict(
        layer_cls=layers.BahdanauAttention,
        init_kwargs=dict(units=6, normalize=True),
        inputs=ATTENTION_INPUTS,
        expected_output_shape=ATTENTION_OUTPUTS,
        call=harness.call_attention,
    ),
    "luong_attention_general_scale": dict(
        layer_cls=layers.LuongAttention,
        init_kwargs=dict(score_mode="general", score_scale=True),
        inputs=ATTENTION_INPUTS,
        expected_output_shape=ATTENTION_OUTPUTS,
        call=harness.call_attention,
    ),
    "luong_attention_concat_local_p": dict(
        layer_cls=layers.LuongAttention,
        init_kwargs=dict(score_mode="concat", units=6, window_mode="local-p", half_window=1),
        inputs=ATTENTION_INPUTS,
        expected_output_shape=ATTENTION_OUTPUTS,
        call=harness.call_attention,
    ),
    "luong_attention_local_m": dict(
        layer_cls=layers.LuongAttention,
        init_kwargs=dict(score_mode="general", window_mode="local-m", half_window=1),
        inputs={**ATTENTION_INPUTS, "positions": np.array([[1, 2, 3]] * BATCH, "int32")},
        expected_output_shape=ATTENTION_OUTPUTS,
        call=harness.call_attention,
    ),
    "multi_head_attention": dict(
        layer_cls=layers.MultiHeadAttention,
        init_kwargs=dict(units=DIM, num_heads=2, dropout=0.1),
        inputs={"query": floats(BATCH, TGT_LEN, DIM), **TRANSFORMER_MEMORY},
        expected_output_shape=(SEQUENCE, (BATCH, 2, TGT_LEN, SRC_LEN)),
        call=harness.call_multi_head_attention,
        float32_outputs=(1,),
    ),
    "feed_forward": dict(
        layer_cls=layers.FeedForward,
        init_kwargs=dict(units=DIM, ff_dim=16),
        inputs={"inputs": floats(*SEQUENCE)},
        expected_output_shape=SEQUENCE,
    ),
    "positional_encoding": dict(
        layer_cls=layers.PositionalEncoding,
        init_kwargs={},
        inputs={"inputs": floats(*SEQUENCE)},
        expected_output_shape=SEQUENCE,
    ),
    "shared_embedding": dict(
        layer_cls=layers.SharedEmbedding,
        init_kwargs=dict(vocab_size=VOCAB, units=DIM),
        inputs={"inputs": TARGET_TOKENS},
        expected_output_shape=SEQUENCE,
    ),
    "encoder_gru_bidirectional": dict(
        layer_cls=layers.Encoder,
        init_kwargs=dict(**RNN_SIZES, bidirectional=True),
        inputs={"inputs": SOURCE_TOKENS},
        expected_output_shape=(
            (BATCH, SRC_LEN, DIM),
            (BATCH, SRC_LEN),
            (BATCH, DIM),
            [(BATCH, DIM)],
        ),
    ),
    "encoder_lstm_two_layers_residual": dict(
        layer_cls=layers.Encoder,
        init_kwargs=dict(**RNN_SIZES, rnn="lstm", bidirectional=False, num_layers=2, residual=True),
        inputs={"inputs": SOURCE_TOKENS},
        expected_output_shape=(
            (BATCH, SRC_LEN, DIM),
            (BATCH, SRC_LEN),
            (BATCH, DIM),
            [(BATCH, DIM), (BATCH, DIM)],
        ),
    ),
    "rnn_stack": dict(
        layer_cls=layers.RNNStack,
        init_kwargs=dict(units=DIM, num_layers=2, rnn="lstm", dropout=0.1, residual=True),
        inputs={
            "inputs": floats(BATCH, TGT_LEN, 6),
            "states": [floats(BATCH, DIM) for _ in range(4)],
            "mask": np.array([[True] * TGT_LEN, [True, True, False]]),
        },
        expected_output_shape=(SEQUENCE, [(BATCH, DIM)] * 4),
        call=harness.call_rnn_stack,
    ),
    "context_decoder": dict(
        layer_cls=layers.ContextDecoder,
        init_kwargs=RNN_SIZES,
        inputs=decoder_inputs(),
        expected_output_shape=LOGITS,
        call=harness.call_rnn_decoder,
        **DECODER_FLOAT32,
    ),
    "bahdanau_decoder_lstm": dict(
        layer_cls=layers.BahdanauDecoder,
        init_kwargs=dict(**RNN_SIZES, rnn="lstm", attention_units=6, attention_normalize=True),
        inputs=decoder_inputs(states=2),
        expected_output_shape=(LOGITS, (BATCH, TGT_LEN, SRC_LEN)),
        call=harness.call_rnn_decoder,
        **DECODER_FLOAT32,
    ),
    "luong_decoder_input_feeding": dict(
        layer_cls=layers.LuongDecoder,
        init_kwargs=dict(**RNN_SIZES, score_mode="concat", attention_units=6, input_feeding=True),
        inputs=decoder_inputs(),
        expected_output_shape=(LOGITS, (BATCH, TGT_LEN, SRC_LEN)),
        call=harness.call_rnn_decoder,
        **DECODER_FLOAT32,
    ),
    "luong_decoder_local_m": dict(
        layer_cls=layers.LuongDecoder,
        init_kwargs=dict(**RNN_SIZES, window_mode="local-m", half_window=1),
        inputs=decoder_inputs(),
        expected_output_shape=(LOGITS, (BATCH, TGT_LEN, SRC_LEN)),
        call=harness.call_rnn_decoder,
        **DECODER_FLOAT32,
    ),
    "transformer_encoder_layer": dict(
        layer_cls=layers.TransformerEncoderLayer,
        init_kwargs=TRANSFORMER_SIZES,
        inputs={"inputs": floats(BATCH, SRC_LEN, DIM), "mask": SOURCE_MASK},
        expected_output_shape=(BATCH, SRC_LEN, DIM),
        call=harness.call_transformer_encoder_layer,
    ),
    "transformer_encoder": dict(
        layer_cls=layers.TransformerEncoder,
        init_kwargs=dict(vocab_size=VOCAB, num_layers=2, **TRANSFORMER_SIZES),
        inputs={"inputs": SOURCE_TOKENS},
        expected_output_shape=((BATCH, SRC_LEN, DIM), (BATCH, SRC_LEN)),
    ),
    "transformer_decoder_layer": dict(
        layer_cls=layers.TransformerDecoderLayer,
        init_kwargs=TRANSFORMER_SIZES,
        inputs={"inputs": floats(*SEQUENCE), **TRANSFORMER_MEMORY},
        expected_output_shape=(
            SEQUENCE,
            (BATCH, 2, TGT_LEN, SRC_LEN),
            (BATCH, TGT_LEN, 2, DIM // 2),
            (BATCH, TGT_LEN, 2, DIM // 2),
        ),
        call=harness.call_transformer_decoder_layer,
        float32_outputs=(1,),
    ),
    "transformer_decoder": dict(
        layer_cls=layers.TransformerDecoder,
        init_kwargs=dict(vocab_size=VOCAB, num_layers=2, **TRANSFORMER_SIZES),
        inputs={"tokens": TARGET_TOKENS, **TRANSFORMER_MEMORY},
        expected_output_shape=(LOGITS, (BATCH, TGT_LEN, SRC_LEN)),
        call=harness.call_transformer_decoder,
        float32_sublayers=("output_projection",),
        float32_outputs=(0, 1),
    ),
    "transformer_decoder_shared_embeddings": dict(
        layer_cls=layers.TransformerDecoder,
        init_kwargs=dict(
            vocab_size=VOCAB, num_layers=1, shared_embeddings=True, **TRANSFORMER_SIZES
        ),
        inputs={"tokens": TARGET_TOKENS, **TRANSFORMER_MEMORY},
        expected_output_shape=(LOGITS, (BATCH, TGT_LEN, SRC_LEN)),
        call=harness.call_transformer_decoder,
        float32_sublayers=("embedding",),
        float32_outputs=(0, 1),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_layer_contract(name, tmp_path):
    harness.run_layer_test(**CASES[name], tmp_path=tmp_path)


def test_every_public_layer_has_a_case():
    abstract = {layers.Attention, layers.RNNDecoder}
    tested = {case["layer_cls"] for case in CASES.values()}
    public = {getattr(layers, name) for name in layers.__all__}
    assert public - abstract == tested
