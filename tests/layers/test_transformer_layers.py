import keras
import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.layers.feed_forward import FeedForward
from nmt_keras.layers.multi_head_attention import MultiHeadAttention, causal_mask
from nmt_keras.layers.positional_encoding import PositionalEncoding, sinusoidal_positions
from nmt_keras.layers.shared_embedding import SharedEmbedding
from nmt_keras.layers.transformer_decoder import TransformerDecoder, TransformerDecoderLayer
from nmt_keras.layers.transformer_encoder import TransformerEncoder

UNITS, HEADS = 8, 2
DEPTH = UNITS // HEADS


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def random(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_sinusoidal_positions_match_the_paper():
    encoding = np.asarray(sinusoidal_positions(np.arange(3), 4))
    # depth 4: wavelengths 10000^(0/4) = 1 and 10000^(2/4) = 100.
    expected = [
        [np.sin(p), np.cos(p), np.sin(p / 100.0), np.cos(p / 100.0)] for p in (0.0, 1.0, 2.0)
    ]
    np.testing.assert_allclose(encoding, expected, atol=1e-6)
    assert encoding.dtype == np.float32


def test_positional_encoding_scales_embeddings_and_adds_positions():
    inputs = random(2, 5, UNITS)
    outputs = np.asarray(PositionalEncoding()(inputs))
    expected = inputs * np.sqrt(UNITS) + np.asarray(sinusoidal_positions(np.arange(5), UNITS))
    np.testing.assert_allclose(outputs, expected, atol=1e-5)


@pytest.mark.parametrize("start", [3, tf.constant(3)])
def test_positional_encoding_start_places_a_slice(start):
    inputs = random(2, 5, UNITS)
    layer = PositionalEncoding()
    whole = np.asarray(layer(inputs))
    np.testing.assert_allclose(layer(inputs[:, 3:4], start=start), whole[:, 3:4], atol=1e-5)


def test_positional_encoding_rejects_odd_size():
    with pytest.raises(ValueError, match="even embedding size"):
        PositionalEncoding()(random(1, 2, 5))


def mha_inputs(batch=2, tgt_len=3, src_len=5):
    query = random(batch, tgt_len, UNITS, seed=1)
    memory = random(batch, src_len, UNITS, seed=2)
    mask = np.arange(src_len)[None, :] < np.array([[src_len - 2], [src_len]])
    return query, memory, mask


def numpy_multi_head(layer, query, memory, visible):
    """Sec. 3.2.2 with the layer's weights: per-head projections, eq. 1, W^O."""

    def project(dense, x):  # (batch, time, units) -> (batch, time, heads, depth)
        return np.einsum("btu,uhd->bthd", x, dense.kernel.numpy()) + dense.bias.numpy()

    q = project(layer.query_dense, query)
    k = project(layer.key_dense, memory)
    v = project(layer.value_dense, memory)
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(DEPTH)
    weights = softmax(np.where(visible, scores, -np.inf))
    heads = np.einsum("bhqk,bkhd->bqhd", weights, v)
    output = layer.output_dense
    outputs = np.einsum("bqhd,hdu->bqu", heads, output.kernel.numpy()) + output.bias.numpy()
    return outputs, weights


def test_multi_head_attention_matches_numpy():
    query, memory, mask = mha_inputs()
    layer = MultiHeadAttention(UNITS, HEADS)
    outputs, weights = layer(query, memory, key_mask=mask, return_attention_scores=True)
    assert outputs.shape == (2, 3, UNITS) and weights.shape == (2, HEADS, 3, 5)
    assert weights.dtype == tf.float32
    expected_outputs, expected_weights = numpy_multi_head(
        layer, query, memory, mask[:, None, None, :]
    )
    np.testing.assert_allclose(weights, expected_weights, atol=1e-6)
    np.testing.assert_allclose(outputs, expected_outputs, atol=1e-5)


def test_padding_gets_zero_weight_and_rows_sum_to_one():
    query, memory, mask = mha_inputs()
    _, weights = MultiHeadAttention(UNITS, HEADS)(
        query, memory, key_mask=mask, return_attention_scores=True
    )
    weights = np.asarray(weights)
    assert np.all(weights[0, :, :, 3:] == 0.0)
    assert np.all(weights[1] > 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)


def test_fully_padded_memory_gives_zero_weights():
    query, memory, mask = mha_inputs()
    mask[1] = False
    outputs, weights = MultiHeadAttention(UNITS, HEADS)(
        query, memory, key_mask=mask, return_attention_scores=True
    )
    assert np.all(np.asarray(weights)[1] == 0.0)
    assert np.all(np.isfinite(np.asarray(outputs)))


def test_causal_mask_aligns_queries_with_the_last_keys():
    np.testing.assert_array_equal(causal_mask(3, 3), np.tril(np.ones((3, 3), bool)))
    # Two queries at positions 3 and 4 of five keys; one query sees every key.
    np.testing.assert_array_equal(causal_mask(2, 5), [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(causal_mask(1, 4), [[1, 1, 1, 1]])


def test_causal_self_attention_matches_numpy_and_ignores_the_future():
    inputs = random(2, 4, UNITS)
    layer = MultiHeadAttention(UNITS, HEADS)
    outputs, weights = layer(inputs, inputs, use_causal_mask=True, return_attention_scores=True)
    future = ~np.tril(np.ones((4, 4), bool))
    assert np.all(np.asarray(weights)[..., future] == 0.0)
    expected_outputs, _ = numpy_multi_head(layer, inputs, inputs, ~future)
    np.testing.assert_allclose(outputs, expected_outputs, atol=1e-5)
    # Changing the last position leaves the earlier outputs unchanged.
    changed = inputs.copy()
    changed[:, -1] += 1.0
    np.testing.assert_allclose(
        layer(changed, changed, use_causal_mask=True)[:, :-1], outputs[:, :-1], atol=1e-6
    )


def test_attend_with_projected_memory_equals_call():
    query, memory, mask = mha_inputs()
    layer = MultiHeadAttention(UNITS, HEADS)
    outputs = layer(query, memory, key_mask=mask)
    keys, values = layer.project_key_value(memory)
    assert keys.shape == values.shape == (2, 5, HEADS, DEPTH)
    np.testing.assert_allclose(layer.attend(query, keys, values, key_mask=mask), outputs, atol=1e-6)


def test_attention_dropout_only_in_training():
    query, memory, mask = mha_inputs()
    layer = MultiHeadAttention(UNITS, HEADS, dropout=0.5)
    inference = layer(query, memory, key_mask=mask)
    np.testing.assert_array_equal(layer(query, memory, key_mask=mask, training=False), inference)
    assert not np.allclose(layer(query, memory, key_mask=mask, training=True), inference)


def test_multi_head_attention_errors():
    with pytest.raises(ValueError, match="Received: units=10, num_heads=3"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="built before project_key_value"):
        MultiHeadAttention(UNITS, HEADS).project_key_value(random(1, 2, UNITS))


def test_feed_forward_is_relu_then_linear():
    layer = FeedForward(UNITS, 16)
    inputs = random(2, 3, UNITS)
    outputs = layer(inputs)
    hidden = np.maximum(0.0, inputs @ layer.inner_dense.kernel.numpy() + layer.inner_dense.bias)
    expected = hidden @ layer.output_dense.kernel.numpy() + layer.output_dense.bias.numpy()
    np.testing.assert_allclose(outputs, expected, atol=1e-5)


def test_shared_embedding_projects_with_the_transposed_table():
    layer = SharedEmbedding(7, UNITS, dtype="float32")
    tokens = np.array([[1, 6, 0]], "int32")
    embedded = layer(tokens)
    table = layer.embeddings.numpy()
    np.testing.assert_array_equal(embedded, table[tokens])
    features = random(1, 3, UNITS)
    np.testing.assert_allclose(layer(features, reverse=True), features @ table.T, atol=1e-5)


SOURCE = np.array([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]], "int32")
TARGET = np.array([[2, 4, 5, 6], [2, 7, 7, 8]], "int32")


def make_encoder():
    keras.utils.set_random_seed(0)
    return TransformerEncoder(13, UNITS, HEADS, 16, num_layers=2)


def test_encoder_ignores_padding():
    encoder = make_encoder()
    outputs, mask = encoder(SOURCE)
    assert outputs.shape == (2, 5, UNITS)
    np.testing.assert_array_equal(mask, SOURCE != 0)
    alone, _ = encoder(SOURCE[1:, :3])
    np.testing.assert_allclose(alone, outputs[1:, :3], atol=1e-5)


def make_decoder(**kwargs):
    keras.utils.set_random_seed(0)
    return TransformerDecoder(11, UNITS, HEADS, 16, num_layers=2, **kwargs)


def decode(decoder, encoder):
    memory = decoder.prepare_memory(*encoder(SOURCE))
    return decoder(TARGET, memory, return_attention_scores=True)


def test_alignment_is_the_mean_of_the_heads_or_one_head():
    encoder = make_encoder()
    mean_decoder = make_decoder()
    logits, alignment = decode(mean_decoder, encoder)
    assert logits.dtype == tf.float32 and logits.shape == (2, 4, 11)
    assert alignment.shape == (2, 4, 5)
    assert np.all(np.asarray(alignment)[1, :, 3:] == 0.0)
    np.testing.assert_allclose(np.sum(alignment, -1), 1.0, atol=1e-6)
    heads = []
    for head in range(-HEADS, HEADS):
        decoder = make_decoder(alignment_head=head)
        decoder.build((None, None))
        decoder.set_weights(mean_decoder.get_weights())
        head_logits, head_alignment = decode(decoder, encoder)
        np.testing.assert_array_equal(head_logits, logits)
        heads.append(np.asarray(head_alignment))
    np.testing.assert_array_equal(heads[0], heads[HEADS])  # -2 is head 0
    np.testing.assert_allclose(np.mean(heads[HEADS:], axis=0), alignment, atol=1e-6)
    assert not np.allclose(heads[HEADS], heads[HEADS + 1])


def test_alignment_head_out_of_range():
    with pytest.raises(ValueError, match="Received: alignment_head=2, num_heads=2"):
        make_decoder(alignment_head=2)


def test_decoder_layer_cache_grows_along_time():
    layer = TransformerDecoderLayer(UNITS, HEADS, 16)
    memory = random(2, 5, UNITS)
    layer.build((None, None, UNITS))
    memory_keys, memory_values = layer.cross_attention.project_key_value(memory)
    mask = SOURCE != 0
    inputs = random(2, 3, UNITS, seed=3)
    outputs, weights, keys, values = layer(inputs, memory_keys, memory_values, mask)
    assert weights.shape == (2, HEADS, 3, 5) and keys.shape == values.shape == (2, 3, HEADS, DEPTH)
    step_outputs, _, step_keys, step_values = layer(
        inputs[:, 2:],
        memory_keys,
        memory_values,
        mask,
        past_keys=keys[:, :2],
        past_values=values[:, :2],
    )
    np.testing.assert_allclose(step_outputs, outputs[:, 2:], atol=1e-5)
    np.testing.assert_allclose(step_keys, keys, atol=1e-6)
    np.testing.assert_allclose(step_values, values, atol=1e-6)
