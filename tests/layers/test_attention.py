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
    "luong_scale": lambda: LuongAttention(score_mode="general", score_scale=True),
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


def test_explicit_mask_gives_no_warning_and_context_keeps_query_mask():
    query = keras.Input((None,), dtype="int32")
    value = keras.Input((None, DIM))
    mask = keras.Input((None,), dtype="bool")
    embedded = keras.layers.Embedding(10, DIM, mask_zero=True)(query)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        context = LuongAttention()(embedded, value, mask=mask)
    assert tuple(context._keras_mask.shape) == (None, None)


@pytest.fixture
def mixed_float16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: LuongAttention(score_mode="additive"), "Expected score_mode to be one of"),
        (lambda: LuongAttention(score_scale="yes"), "Expected score_scale to be a bool"),
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


# Local attention (Luong et al. 2015, sec. 3.2).

WINDOW = 1
LOCAL_LAYERS = {
    "local-m": lambda: LuongAttention("general", window_mode="local-m", half_window=WINDOW),
    "local-p": lambda: LuongAttention("general", window_mode="local-p", half_window=WINDOW),
    "local-p-concat": lambda: LuongAttention(
        "concat", units=UNITS, window_mode="local-p", half_window=WINDOW
    ),
}
# Target positions of the 3 queries: the second row runs past its source (length 3).
POSITIONS = np.array([[1, 2, 3], [1, 3, 4]], "int32")


@pytest.fixture(params=sorted(LOCAL_LAYERS))
def local_case(request):
    return request.param


def local_positions(name, positions=POSITIONS):
    return positions if name == "local-m" else None


def masked_softmax(scores, allowed):
    e = np.where(allowed, np.exp(scores - scores.max(axis=-1, keepdims=True)), 0.0)
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def numpy_local_weights(layer, name, query, value, mask, positions=POSITIONS):
    """Weights from eq. 7-10 of Luong et al. (2015) and the layer's weights."""
    base = "concat" if name == "local-p-concat" else "general"
    scores = numpy_scores(layer, base, query, value)
    lengths = mask.sum(-1)[:, None].astype("float64")  # S, (batch, 1)
    if name == "local-m":
        centers = np.minimum(np.broadcast_to(positions, query.shape[:2]), lengths - 1)
    else:
        w_p = layer.position_dense.kernel.numpy()
        v_p = layer.position_v.numpy()
        centers = lengths / (1.0 + np.exp(-(np.tanh(query @ w_p) @ v_p)))  # eq. 9
    distances = np.arange(value.shape[1])[None, None, :] - centers[:, :, None]
    allowed = (np.abs(distances) <= WINDOW) & mask[:, None, :]
    weights = masked_softmax(scores, allowed)
    if name != "local-m":
        sigma = WINDOW / 2.0
        weights = weights * np.exp(-(distances**2) / (2 * sigma**2))  # eq. 10
    return weights, allowed


def test_local_weights_match_equations(local_case):
    query, value, mask = make_inputs(src_len=6)
    layer = LOCAL_LAYERS[local_case]()
    layer.build(query.shape, value.shape)
    context, weights = layer(
        query,
        value,
        mask=mask,
        positions=local_positions(local_case),
        return_attention_scores=True,
    )
    expected, allowed = numpy_local_weights(layer, local_case, query, value, mask)
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(context.numpy(), expected @ value, rtol=1e-5, atol=1e-5)
    weights = weights.numpy()
    assert np.all(weights[~allowed] == 0.0)  # padding and outside the window: exactly 0
    assert np.all(weights[allowed] > 0.0)
    if local_case == "local-m":
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    else:
        # The Gaussian of eq. 10 scales the softmax: rows sum to less than 1.
        assert np.all(weights.sum(-1) < 1.0)


def test_local_m_window_is_centred_on_the_clipped_position():
    query, value, mask = make_inputs(src_len=6)  # source lengths 4 and 3 (see make_inputs)
    lengths = mask.sum(-1)
    _, weights = LOCAL_LAYERS["local-m"]()(
        query, value, mask=mask, positions=POSITIONS, return_attention_scores=True
    )
    for row in range(2):
        for t in range(3):
            center = min(POSITIONS[row, t], lengths[row] - 1)
            support = np.flatnonzero(weights.numpy()[row, t])
            expected = [s for s in range(center - 1, center + 2) if 0 <= s < lengths[row]]
            np.testing.assert_array_equal(support, expected)


def test_local_m_positions_of_one_row_apply_to_every_sentence():
    query, value, mask = make_inputs()
    layer = LOCAL_LAYERS["local-m"]()
    shared = layer(query, value, mask=mask, positions=np.array([1, 2, 3]))
    per_row = layer(query, value, mask=mask, positions=np.array([[1, 2, 3], [1, 2, 3]]))
    floats = layer(query, value, mask=mask, positions=np.array([1.0, 2.0, 3.0], "float32"))
    np.testing.assert_allclose(shared.numpy(), per_row.numpy(), atol=1e-7)
    np.testing.assert_allclose(shared.numpy(), floats.numpy(), atol=1e-7)


def test_local_window_wider_than_the_source_is_global():
    query, value, mask = make_inputs()
    wide = LuongAttention("general", window_mode="local-m", half_window=10)
    wide.build(query.shape, value.shape)
    plain = LuongAttention("general")
    plain.build(query.shape, value.shape)
    plain.set_weights(wide.get_weights())
    expected = plain(query, value, mask=mask)
    actual = wide(query, value, mask=mask, positions=np.array([1, 2, 3]))
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), atol=1e-6)


def test_local_fully_padded_row_gives_zero_weights_and_context(local_case):
    query, value, mask = make_inputs()
    mask[1] = False
    context, weights = LOCAL_LAYERS[local_case]()(
        query,
        value,
        mask=mask,
        positions=local_positions(local_case),
        return_attention_scores=True,
    )
    assert np.all(weights.numpy()[1] == 0.0)
    assert np.all(context.numpy()[1] == 0.0)


def test_local_without_mask_uses_the_whole_length(local_case):
    query, value, _ = make_inputs()
    layer = LOCAL_LAYERS[local_case]()
    full = np.ones(value.shape[:2], bool)
    positions = local_positions(local_case)
    without = layer(query, value, positions=positions)
    with_full_mask = layer(query, value, mask=full, positions=positions)
    np.testing.assert_allclose(without.numpy(), with_full_mask.numpy(), atol=1e-7)


def test_local_p_weights_exist_only_in_local_p():
    query, value, _ = make_inputs()
    names = {}
    for mode in ("global", "local-m", "local-p"):
        layer = LuongAttention("general", window_mode=mode)
        layer.build(query.shape, value.shape)
        names[mode] = sorted(w.path.split("/", 1)[1] for w in layer.weights)
    assert names["global"] == names["local-m"] == ["key_dense/kernel"]
    assert names["local-p"] == ["key_dense/kernel", "position_dense/kernel", "position_v"]


def test_default_window_is_luongs():
    assert LuongAttention().half_window == 10
    assert LuongAttention().window_mode == "global"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: LuongAttention(window_mode="local"), "Expected window_mode to be one of"),
        (lambda: LuongAttention(half_window=0), r"Expected half_window >= 1\. Received: \w+=0"),
        (lambda: LuongAttention(half_window=2.5), "Received: half_window=2.5"),
        (lambda: LuongAttention(half_window=True), "Received: half_window=True"),
    ],
)
def test_invalid_local_args_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "make, positions, message",
    [
        (LOCAL_LAYERS["local-m"], None, "Expected positions, the target position"),
        (LOCAL_LAYERS["local-m"], np.ones((2, 3, 1)), r"shape \(batch, tgt_len\)"),
        (LOCAL_LAYERS["local-p"], POSITIONS, "Expected no positions with window_mode='local-p'"),
        (LAYERS["general"], POSITIONS, "Expected positions only with a position-aligned"),
        (LAYERS["bahdanau"], POSITIONS, "Expected positions only with a position-aligned"),
    ],
)
def test_wrong_positions_raise(make, positions, message):
    query, value, mask = make_inputs()
    with pytest.raises(ValueError, match=message):
        make()(query, value, mask=mask, positions=positions)


# Hard attention (Xu et al. 2015, sec. 4.1).

ALL_LAYERS = {**LAYERS, **LOCAL_LAYERS}


@pytest.mark.parametrize("name", sorted(ALL_LAYERS))
def test_hard_attention_is_the_one_hot_argmax(name):
    query, value, mask = make_inputs(src_len=6)
    # Padding rows of the memory that every score would prefer: they must never be chosen.
    value = np.where(mask[:, :, None], value, 50.0 * np.abs(query).max()).astype("float32")
    layer = ALL_LAYERS[name]()
    positions = local_positions(name) if name in LOCAL_LAYERS else None
    _, soft = layer(query, value, mask=mask, positions=positions, return_attention_scores=True)
    context, weights = layer(
        query, value, mask=mask, positions=positions, return_attention_scores=True, hard=True
    )
    soft, weights = soft.numpy(), weights.numpy()
    chosen = soft.argmax(-1)  # (batch, tgt_len)
    np.testing.assert_array_equal(weights, np.eye(6, dtype="float32")[chosen])
    assert np.all(mask[np.arange(2)[:, None], chosen])  # padding never chosen
    np.testing.assert_array_equal(context.numpy(), value[np.arange(2)[:, None], chosen])


def test_hard_attention_on_a_fully_padded_row_is_zero():
    query, value, mask = make_inputs()
    mask[1] = False
    context, weights = LuongAttention()(
        query, value, mask=mask, return_attention_scores=True, hard=True
    )
    assert np.all(weights.numpy()[1] == 0.0)
    assert np.all(context.numpy()[1] == 0.0)
    np.testing.assert_array_equal(weights.numpy()[0].sum(-1), 1.0)


def test_hard_attention_in_tf_function_and_mixed_float16(mixed_float16):
    layer = LOCAL_LAYERS["local-p"]()
    query, value, mask = make_inputs()
    context, weights = tf.function(
        lambda q, v, m: layer(q, v, mask=m, return_attention_scores=True, hard=True)
    )(query, value, mask)
    assert weights.dtype == tf.float16
    np.testing.assert_array_equal(weights.numpy().sum(-1), 1.0)
    assert np.all(np.isin(weights.numpy(), [0.0, 1.0]))


# Every attention, global and local.

ALL_LAYERS = {**LAYERS, **LOCAL_LAYERS}


@pytest.mark.parametrize("name", sorted(ALL_LAYERS))
def test_tf_function_with_unknown_batch_and_time(name):
    layer = ALL_LAYERS[name]()
    query, value, mask = make_inputs()
    layer.build(query.shape, value.shape)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, DIM], tf.float32),
            tf.TensorSpec([None, None, DIM], tf.float32),
            tf.TensorSpec([None, None], tf.bool),
            tf.TensorSpec([None, None], tf.int32),
        ]
    )
    def attend(query, value, mask, positions):
        return layer(
            query,
            value,
            mask=mask,
            key=layer.project_key(value),
            positions=local_positions(name, positions),
            return_attention_scores=True,
        )

    for batch, tgt_len, src_len in [(2, 3, 5), (1, 4, 7)]:
        query, value, mask = make_inputs(batch, tgt_len, src_len)
        positions = np.tile(np.arange(1, tgt_len + 1, dtype="int32"), (batch, 1))
        context, weights = attend(query, value, mask, positions)
        expected_context, expected_weights = layer(
            query,
            value,
            mask=mask,
            positions=local_positions(name, positions),
            return_attention_scores=True,
        )
        assert tuple(weights.shape) == (batch, tgt_len, src_len)
        np.testing.assert_allclose(context.numpy(), expected_context.numpy(), atol=1e-5)
        np.testing.assert_allclose(weights.numpy(), expected_weights.numpy(), atol=1e-6)


@pytest.mark.parametrize("name", sorted(ALL_LAYERS))
def test_float16_weights_are_finite_and_zero_on_padding(name, mixed_float16):
    """Scores are masked in float32: -1e9 would overflow float16 (the dtypes: the harness)."""
    query, value, mask = make_inputs()
    layer = ALL_LAYERS[name]()
    context, weights = layer(
        query, value, mask=mask, positions=local_positions(name), return_attention_scores=True
    )
    weights = weights.numpy().astype("float32")
    assert np.all(np.isfinite(weights)) and np.all(np.isfinite(context.numpy()))
    assert np.all(weights[np.broadcast_to(~mask[:, None, :], weights.shape)] == 0.0)
    if name in LAYERS:
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-2)
    # A key projected outside the call, from the float32 value, is accepted as well.
    context_k = layer(
        query, value, mask=mask, key=layer.project_key(value), positions=local_positions(name)
    )
    np.testing.assert_allclose(
        context_k.numpy().astype("float32"), context.numpy().astype("float32"), atol=1e-3
    )
