import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.layers.attention import Attention
from nmt_keras.layers.bahdanau_attention import BahdanauAttention
from nmt_keras.layers.luong_attention import LuongAttention

DIM = 4
UNITS = 6

LAYERS = {
    "dot": lambda: LuongAttention(score_mode="dot"),
    "general": lambda: LuongAttention(score_mode="general"),
    "concat": lambda: LuongAttention(score_mode="concat", units=UNITS),
    "luong_scale": lambda: LuongAttention(score_mode="general", scale=True),
    "bahdanau": lambda: BahdanauAttention(UNITS),
    "bahdanau_normalize": lambda: BahdanauAttention(UNITS, normalize=True),
}


@pytest.fixture(params=sorted(LAYERS))
def case(request):
    return request.param


def make_inputs(batch=2, tgt_len=3, src_len=5, dim_q=DIM, dim_v=DIM, seed=0):
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(batch, tgt_len, dim_q)).astype("float32")
    value = rng.normal(size=(batch, src_len, dim_v)).astype("float32")
    lengths = rng.integers(1, src_len + 1, size=batch)
    lengths[0] = src_len - 2  # at least one row with padding
    mask = np.arange(src_len)[None, :] < lengths[:, None]
    return query, value, mask


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def numpy_scores(layer, name, query, value):
    """Scores (batch, tgt_len, src_len) from the paper's equations and the layer's weights."""
    if name == "dot":
        return np.einsum("btd,bsd->bts", query, value)
    if name in ("general", "luong_scale"):
        w_a = layer.key_dense.kernel.numpy()  # (dim_v, dim_q)
        scores = np.einsum("btd,bsd->bts", query, value @ w_a)
        return layer.attention_g.numpy() * scores if name == "luong_scale" else scores
    w_q = layer.query_dense.kernel.numpy()
    w_k = layer.key_dense.kernel.numpy()
    v = layer.attention_v.numpy()
    inner = (query @ w_q)[:, :, None, :] + (value @ w_k)[:, None, :, :]
    if name == "bahdanau_normalize":
        inner = inner + layer.attention_b.numpy()
        v = layer.attention_g.numpy() * v / np.linalg.norm(v)
    return np.tanh(inner) @ v


def set_non_default_weights(layer, name):
    # Make the scalar gain and the bias matter in the hand-computed check.
    if name == "luong_scale":
        layer.attention_g.assign(0.5)
    if name == "bahdanau_normalize":
        layer.attention_g.assign(1.7)
        layer.attention_b.assign(np.linspace(-1.0, 1.0, UNITS).astype("float32"))


def test_scores_match_equations(case):
    query, value, mask = make_inputs()
    layer = LAYERS[case]()
    layer.build(query.shape, value.shape)
    set_non_default_weights(layer, case)

    context, weights = layer(query, value, mask=mask, return_attention_scores=True)

    scores = np.where(mask[:, None, :], numpy_scores(layer, case, query, value), -np.inf)
    expected_weights = softmax(scores)
    np.testing.assert_allclose(weights.numpy(), expected_weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(context.numpy(), expected_weights @ value, rtol=1e-5, atol=1e-5)


def test_padding_gets_zero_weight_and_rows_sum_to_one(case):
    query, value, mask = make_inputs(src_len=6)
    layer = LAYERS[case]()
    _, weights = layer(query, value, mask=mask, return_attention_scores=True)
    weights = weights.numpy()
    assert weights.shape == (2, 3, 6)
    assert np.all(weights[np.broadcast_to(~mask[:, None, :], weights.shape)] == 0.0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-6)


def test_fully_padded_row_gives_zero_weights_and_context():
    query, value, mask = make_inputs()
    mask[1] = False
    context, weights = LuongAttention()(query, value, mask=mask, return_attention_scores=True)
    assert np.all(weights.numpy()[1] == 0.0)
    assert np.all(context.numpy()[1] == 0.0)
    np.testing.assert_allclose(weights.numpy()[0].sum(axis=-1), 1.0, rtol=1e-6)


def test_no_mask_attends_everywhere(case):
    query, value, _ = make_inputs()
    _, weights = LAYERS[case]()(query, value, return_attention_scores=True)
    assert np.all(weights.numpy() > 0.0)
    np.testing.assert_allclose(weights.numpy().sum(axis=-1), 1.0, rtol=1e-6)


def test_precomputed_key_matches_key_none(case):
    query, value, mask = make_inputs()
    layer = LAYERS[case]()
    context, weights = layer(query, value, mask=mask, return_attention_scores=True)
    key = layer.project_key(value)
    context_k, weights_k = layer(query, value, mask=mask, key=key, return_attention_scores=True)
    np.testing.assert_allclose(context_k.numpy(), context.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(weights_k.numpy(), weights.numpy(), rtol=1e-6, atol=1e-6)


def test_project_key_shapes():
    _, value, _ = make_inputs(dim_v=3)
    query, _, _ = make_inputs(dim_q=DIM)
    for layer, depth in [
        (LuongAttention("general"), DIM),
        (LuongAttention("concat"), DIM),
        (LuongAttention("concat", units=UNITS), UNITS),
        (BahdanauAttention(UNITS), UNITS),
    ]:
        layer.build(query.shape, value.shape)
        assert tuple(layer.project_key(value).shape) == (2, 5, depth)
    dot = LuongAttention("dot")
    dot.build(value.shape, value.shape)
    assert dot.project_key(value) is value


def test_different_query_and_value_depths():
    query, value, mask = make_inputs(dim_q=4, dim_v=3)
    for layer in [LuongAttention("general"), LuongAttention("concat"), BahdanauAttention(UNITS)]:
        context, weights = layer(query, value, mask=mask, return_attention_scores=True)
        assert tuple(context.shape) == (2, 3, 3)
        assert tuple(weights.shape) == (2, 3, 5)


def test_eager_call_returns_context_only_by_default(case):
    query, value, mask = make_inputs()
    context = LAYERS[case]()(query, value, mask=mask)
    assert tuple(context.shape) == (2, 3, DIM)


def test_symbolic_call(case):
    query = keras.Input((None, DIM))
    value = keras.Input((None, DIM))
    mask = keras.Input((None,), dtype="bool")
    context, weights = LAYERS[case]()(query, value, mask=mask, return_attention_scores=True)
    assert tuple(context.shape) == (None, None, DIM)
    assert tuple(weights.shape) == (None, None, None)


def test_explicit_mask_gives_no_warning_and_context_keeps_query_mask():
    query = keras.Input((None,), dtype="int32")
    value = keras.Input((None, DIM))
    mask = keras.Input((None,), dtype="bool")
    embedded = keras.layers.Embedding(10, DIM, mask_zero=True)(query)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        context = LuongAttention()(embedded, value, mask=mask)
    assert tuple(context._keras_mask.shape) == (None, None)


def test_tf_function_with_unknown_batch_and_time(case):
    layer = LAYERS[case]()
    query, value, mask = make_inputs()
    layer.build(query.shape, value.shape)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, DIM], tf.float32),
            tf.TensorSpec([None, None, DIM], tf.float32),
            tf.TensorSpec([None, None], tf.bool),
        ]
    )
    def attend(query, value, mask):
        key = layer.project_key(value)
        return layer(query, value, mask=mask, key=key, return_attention_scores=True)

    for batch, tgt_len, src_len in [(2, 3, 5), (1, 4, 7)]:
        query, value, mask = make_inputs(batch, tgt_len, src_len)
        context, weights = attend(query, value, mask)
        expected_context, expected_weights = layer(
            query, value, mask=mask, return_attention_scores=True
        )
        assert tuple(weights.shape) == (batch, tgt_len, src_len)
        np.testing.assert_allclose(context.numpy(), expected_context.numpy(), atol=1e-5)
        np.testing.assert_allclose(weights.numpy(), expected_weights.numpy(), atol=1e-6)


@pytest.fixture
def mixed_float16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_mixed_float16(case, mixed_float16):
    query, value, mask = make_inputs()
    layer = LAYERS[case]()
    context, weights = layer(query, value, mask=mask, return_attention_scores=True)
    assert context.dtype == tf.float16
    assert weights.dtype == tf.float16
    assert all(w.dtype == "float32" for w in layer.weights)
    weights = weights.numpy().astype("float32")
    assert np.all(np.isfinite(weights))
    assert np.all(np.isfinite(context.numpy()))
    assert np.all(weights[np.broadcast_to(~mask[:, None, :], weights.shape)] == 0.0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-2)
    # A key projected outside the call (float32 value in) is accepted as well.
    context_k = layer(query, value, mask=mask, key=layer.project_key(value))
    np.testing.assert_allclose(
        context_k.numpy().astype("float32"), context.numpy().astype("float32"), atol=1e-3
    )


def test_get_config_round_trip(case):
    layer = LAYERS[case]()
    config = layer.get_config()
    restored = type(layer).from_config(config)
    assert restored.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"].startswith("nmt_keras>")
    assert keras.saving.deserialize_keras_object(serialized).get_config() == config


def test_model_saves_and_reloads(case, tmp_path):
    query_in = keras.Input((None, DIM))
    value_in = keras.Input((None, DIM))
    mask_in = keras.Input((None,), dtype="bool")
    outputs = LAYERS[case]()(query_in, value_in, mask=mask_in, return_attention_scores=True)
    model = keras.Model([query_in, value_in, mask_in], outputs)
    path = tmp_path / "attention.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)

    inputs = make_inputs()
    for expected, actual in zip(model(inputs), reloaded(inputs), strict=True):
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: LuongAttention(score_mode="additive"), "Expected score_mode to be one of"),
        (lambda: LuongAttention(scale="yes"), "Expected scale to be a bool"),
        (lambda: LuongAttention("concat", units=0), "Received: units=0"),
        (lambda: LuongAttention("general", units=8), "units only with score_mode='concat'"),
        (lambda: BahdanauAttention(units=-1), "Expected units to be a positive integer"),
        (lambda: BahdanauAttention(units=8.0), "Received: units=8.0"),
        (lambda: BahdanauAttention(8, normalize=1), "Expected normalize to be a bool"),
    ],
)
def test_invalid_args_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_dot_with_different_depths_raises_at_build():
    query, value, _ = make_inputs(dim_q=4, dim_v=3)
    with pytest.raises(ValueError, match="same depth for score_mode='dot'"):
        LuongAttention("dot")(query, value)


def test_project_key_before_build_raises():
    _, value, _ = make_inputs()
    with pytest.raises(ValueError, match="to be built before project_key"):
        BahdanauAttention(UNITS).project_key(value)


def test_base_class_is_abstract():
    query, value, _ = make_inputs()
    with pytest.raises(NotImplementedError):
        Attention()(query, value)
