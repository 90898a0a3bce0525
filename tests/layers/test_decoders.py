import keras
import numpy as np
import pytest

from nmt_keras.layers.bahdanau_decoder import BahdanauDecoder
from nmt_keras.layers.context_decoder import ContextDecoder
from nmt_keras.layers.luong_decoder import LuongDecoder
from nmt_keras.layers.rnn_stack import states_per_layer

VOCAB, EMBEDDING, UNITS, ATTENTION_UNITS = 11, 6, 8, 5
BATCH, SRC_LEN, TGT_LEN = 2, 5, 4
SOURCE_LENGTHS = np.array([5, 3])  # the second source sentence is padded
TOKENS = np.array([[2, 4, 5, 6], [2, 7, 7, 8]], "int32")

# name -> (class, constructor kwargs)
DECODERS = {
    "context-gru": (ContextDecoder, dict(rnn="gru")),
    "context-lstm-2-residual": (ContextDecoder, dict(rnn="lstm", num_layers=2, residual=True)),
    "bahdanau-gru": (BahdanauDecoder, dict(rnn="gru")),
    "bahdanau-normalize-lstm-2-residual": (
        BahdanauDecoder,
        dict(rnn="lstm", num_layers=2, residual=True, attention_normalize=True),
    ),
    "luong-dot": (LuongDecoder, dict(score_mode="dot")),
    "luong-general-lstm": (LuongDecoder, dict(score_mode="general", rnn="lstm")),
    "luong-concat-scale": (LuongDecoder, dict(score_mode="concat", score_scale=True)),
    "luong-feed-lstm-2": (
        LuongDecoder,
        dict(score_mode="general", rnn="lstm", num_layers=2, input_feeding=True),
    ),
    "luong-feed-dot": (LuongDecoder, dict(score_mode="dot", input_feeding=True)),
    # Local attention with a window narrower than the source, so that it matters.
    "luong-local-m": (LuongDecoder, dict(window_mode="local-m", half_window=1)),
    "luong-local-p": (LuongDecoder, dict(window_mode="local-p", half_window=1)),
    "luong-feed-local-m-lstm": (
        LuongDecoder,
        dict(window_mode="local-m", half_window=1, input_feeding=True, rnn="lstm"),
    ),
    "luong-feed-local-p": (
        LuongDecoder,
        dict(window_mode="local-p", half_window=1, input_feeding=True),
    ),
}


def make_decoder(name, seed=0, **overrides):
    cls, kwargs = DECODERS[name]
    kwargs = {**kwargs, **overrides}
    if cls is not ContextDecoder:
        kwargs.setdefault("attention_units", ATTENTION_UNITS)
    keras.utils.set_random_seed(seed)
    return cls(VOCAB, EMBEDDING, UNITS, name="decoder", **kwargs)


def make_memory_inputs(src_len=SRC_LEN, seed=1):
    """Encoder outputs (garbage on padding), the mask and a summary."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(BATCH, src_len, UNITS)).astype("float32")
    mask = np.arange(src_len)[None, :] < SOURCE_LENGTHS[:, None]
    summary = rng.normal(size=(BATCH, UNITS)).astype("float32")
    return values, mask, summary


def make_states(decoder, seed=2):
    rng = np.random.default_rng(seed)
    count = decoder.num_layers * states_per_layer(decoder.rnn)
    return [np.tanh(rng.normal(size=(BATCH, UNITS))).astype("float32") for _ in range(count)]


def teacher_forced(decoder, tokens, memory, rnn_states, **kwargs):
    """`(logits, attention)` of a teacher-forced call; attention is None without attention."""
    if decoder.attention is None:
        return decoder(tokens, memory, rnn_states, **kwargs), None
    return decoder(tokens, memory, rnn_states, return_attention_scores=True, **kwargs)


def step_loop(decoder, tokens, memory, rnn_states):
    """Logits and attention from decoder.step(), one token at a time."""
    state = decoder.initial_state(memory, rnn_states)
    logits, attention = [], []
    for time in range(tokens.shape[1]):
        step_logits, state, weights = decoder.step(tokens[:, time], state, memory)
        logits.append(np.asarray(step_logits))
        attention.append(None if weights is None else np.asarray(weights))
    if attention[0] is None:
        return np.stack(logits, 1), None
    return np.stack(logits, 1), np.stack(attention, 1)


# `make test` (-m "not slow") skips the two variants closest to others kept.
SLOW_DECODERS = ("context-gru", "luong-feed-dot")


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(name, marks=pytest.mark.slow if name in SLOW_DECODERS else ())
        for name in DECODERS
    ],
)
def decoded(request):
    """A decoder, its inputs and its teacher-forced and step-by-step outputs."""
    name = request.param
    decoder = make_decoder(name)
    values, mask, summary = make_memory_inputs()
    memory = decoder.prepare_memory(values, mask, summary)
    states = make_states(decoder)
    logits, attention = teacher_forced(decoder, TOKENS, memory, states)
    attention = None if attention is None else np.asarray(attention)
    step_logits, step_attention = step_loop(decoder, TOKENS, memory, states)
    return {
        "name": name,
        "decoder": decoder,
        "memory": memory,
        "inputs": (values, mask, summary),
        "states": states,
        "logits": np.asarray(logits),
        "attention": attention,
        "step_logits": step_logits,
        "step_attention": step_attention,
    }


def test_teacher_forcing_equals_the_step_loop(decoded):
    np.testing.assert_allclose(decoded["logits"], decoded["step_logits"], atol=1e-5)
    if decoded["attention"] is None:
        assert decoded["step_attention"] is None
    else:
        np.testing.assert_allclose(decoded["attention"], decoded["step_attention"], atol=1e-5)


def test_output_shapes_and_dtypes(decoded):
    logits = decoded["logits"]
    assert logits.shape == (BATCH, TGT_LEN, VOCAB)
    assert logits.dtype == np.float32
    assert np.all(np.isfinite(logits))
    # Different positions and sentences give different distributions.
    assert not np.allclose(logits[:, 0], logits[:, 1])
    if decoded["name"].startswith("context"):
        assert decoded["attention"] is None
        assert "keys" not in decoded["memory"]
    else:
        assert decoded["attention"].shape == (BATCH, TGT_LEN, SRC_LEN)
        assert decoded["memory"]["keys"].shape[:2] == (BATCH, SRC_LEN)


def test_attention_rows_sum_to_one_and_skip_padding(decoded):
    attention = decoded["attention"]
    if attention is None:
        pytest.skip("the fixed-context decoder does not attend")
    window = decoded["decoder"].get_config().get("window_mode", "global")
    if window == "local-p":
        # Luong et al. (2015), eq. 10: the Gaussian scales the weights below a sum of 1.
        assert np.all((attention.sum(-1) > 0.0) & (attention.sum(-1) < 1.0))
    else:
        np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-5)
    for row, length in enumerate(SOURCE_LENGTHS):
        assert np.all(attention[row, :, length:] == 0.0)
        if window == "global":
            assert np.all(attention[row, :, :length] > 0.0)


@pytest.mark.parametrize("name", ["luong-local-m", "luong-feed-local-m-lstm"])
def test_local_m_attends_around_the_target_position(name):
    # Step t (0-based) predicts y_{t+1}: its window is centred on source position t + 1,
    # clipped to the last real source token, with half-width half_window = 1.
    decoder = make_decoder(name)
    memory = decoder.prepare_memory(*make_memory_inputs())
    _, attention = teacher_forced(decoder, TOKENS, memory, make_states(decoder))
    for row, length in enumerate(SOURCE_LENGTHS):
        for time in range(TGT_LEN):
            center = min(time + 1, length - 1)
            expected = [s for s in (center - 1, center, center + 1) if s < length]
            np.testing.assert_array_equal(np.flatnonzero(attention[row, time]), expected)


def test_local_m_state_carries_the_target_position():
    decoder = make_decoder("luong-feed-local-m-lstm")
    memory = decoder.prepare_memory(*make_memory_inputs())
    state = decoder.initial_state(memory, make_states(decoder))
    np.testing.assert_array_equal(state["position"], np.ones((BATCH, 1)))
    assert keras.backend.standardize_dtype(state["position"].dtype) == "int32"
    for time in range(3):
        _, state, _ = decoder.step(TOKENS[:, time], state, memory)
    np.testing.assert_array_equal(state["position"], np.full((BATCH, 1), 4))
    for other in ("luong-dot", "luong-local-p"):
        decoder = make_decoder(other)
        memory = decoder.prepare_memory(*make_memory_inputs())
        assert "position" not in decoder.initial_state(memory, make_states(decoder))


@pytest.mark.parametrize(
    "name", ["bahdanau-gru", "luong-general-lstm", "luong-local-m", "luong-feed-local-p"]
)
def test_hard_attention_step_attends_to_one_source_position(name):
    decoder = make_decoder(name)
    memory = decoder.prepare_memory(*make_memory_inputs())
    state = decoder.initial_state(memory, make_states(decoder))
    hard_state = state
    for time in range(TGT_LEN):
        _, state, soft = decoder.step(TOKENS[:, time], state, memory)
        logits, hard_state, hard = decoder.step(
            TOKENS[:, time], hard_state, memory, hard_attention=True
        )
        hard = np.asarray(hard)
        assert logits.shape == (BATCH, VOCAB)
        assert np.all(np.isin(hard, [0.0, 1.0]))
        np.testing.assert_array_equal(hard.sum(-1), 1.0)
        for row, length in enumerate(SOURCE_LENGTHS):
            assert hard[row].argmax() < length  # never padding
        if time == 0:
            # Same state: the hard weights are the argmax of the soft ones.
            np.testing.assert_array_equal(hard.argmax(-1), np.asarray(soft).argmax(-1))


def test_hard_attention_changes_the_logits():
    decoder = make_decoder("luong-general-lstm")
    memory = decoder.prepare_memory(*make_memory_inputs())
    state = decoder.initial_state(memory, make_states(decoder))
    soft, _, _ = decoder.step(TOKENS[:, 0], state, memory)
    hard, _, _ = decoder.step(TOKENS[:, 0], state, memory, hard_attention=True)
    assert not np.allclose(soft, hard, atol=1e-5)


def test_attention_scores_need_attention():
    decoder = make_decoder("context-gru")
    memory = decoder.prepare_memory(*make_memory_inputs())
    with pytest.raises(ValueError, match="Expected return_attention_scores only on a decoder"):
        decoder(TOKENS, memory, make_states(decoder), return_attention_scores=True)


def test_hard_attention_needs_attention():
    decoder = make_decoder("context-gru")
    memory = decoder.prepare_memory(*make_memory_inputs())
    state = decoder.initial_state(memory, make_states(decoder))
    with pytest.raises(ValueError, match="Expected hard_attention only on a decoder with"):
        decoder.step(TOKENS[:, 0], state, memory, hard_attention=True)


def test_future_target_tokens_do_not_change_earlier_logits(decoded):
    decoder = decoded["decoder"]
    changed = TOKENS.copy()
    changed[:, 2:] = [[9, 10], [1, 3]]
    logits, _ = teacher_forced(decoder, changed, decoded["memory"], decoded["states"])
    np.testing.assert_allclose(logits[:, :2], decoded["logits"][:, :2], atol=1e-5)
    assert not np.allclose(logits[:, 2:], decoded["logits"][:, 2:])


def test_extra_source_padding_changes_nothing(decoded):
    decoder = decoded["decoder"]
    values, mask, summary = decoded["inputs"]
    rng = np.random.default_rng(5)
    garbage = rng.normal(size=(BATCH, 3, UNITS)).astype("float32") * 10
    longer_values = np.concatenate([values, garbage], axis=1)
    longer_mask = np.concatenate([mask, np.zeros((BATCH, 3), bool)], axis=1)
    memory = decoder.prepare_memory(longer_values, longer_mask, summary)
    logits, attention = teacher_forced(decoder, TOKENS, memory, decoded["states"])
    np.testing.assert_allclose(logits, decoded["logits"], atol=1e-5)
    if attention is not None:
        np.testing.assert_allclose(attention[:, :, :SRC_LEN], decoded["attention"], atol=1e-6)
        assert np.all(np.asarray(attention)[:, :, SRC_LEN:] == 0.0)


def test_what_the_decoder_reads_from_memory(decoded):
    decoder = decoded["decoder"]
    values, mask, summary = decoded["inputs"]
    # Change the annotations of the real source tokens, keep the summary.
    memory = decoder.prepare_memory(values[:, ::-1] * 2.0, mask, summary)
    logits, _ = teacher_forced(decoder, TOKENS, memory, decoded["states"])
    if decoded["name"].startswith("context"):
        # Cho et al. (2014): only the fixed context vector c is read.
        np.testing.assert_allclose(logits, decoded["logits"], atol=1e-6)
    else:
        assert not np.allclose(logits, decoded["logits"], atol=1e-4)


def test_initial_states_matter(decoded):
    decoder = decoded["decoder"]
    states = [state * -1.0 for state in decoded["states"]]
    logits, _ = teacher_forced(decoder, TOKENS, decoded["memory"], states)
    assert not np.allclose(logits[:, 0], decoded["logits"][:, 0], atol=1e-4)


@pytest.mark.parametrize(
    "name, reads_the_token",
    # Bahdanau's first query is s_0; Luong's is h_t, computed from the current token.
    [("bahdanau-gru", False), ("luong-general-lstm", True)],
)
def test_when_attention_reads_the_state(name, reads_the_token):
    decoder = make_decoder(name)
    memory = decoder.prepare_memory(*make_memory_inputs())
    state = decoder.initial_state(memory, make_states(decoder))
    _, _, first = decoder.step(np.array([2, 2]), state, memory)
    _, _, other = decoder.step(np.array([5, 9]), state, memory)
    assert np.allclose(first, other, atol=1e-7) != reads_the_token


@pytest.mark.parametrize("input_feeding", [False, True])
def test_luong_input_feeding_state(input_feeding):
    decoder = make_decoder("luong-dot", input_feeding=input_feeding)
    memory = decoder.prepare_memory(*make_memory_inputs())
    state = decoder.initial_state(memory, make_states(decoder))
    assert ("feed" in state) == input_feeding
    if input_feeding:
        np.testing.assert_array_equal(state["feed"], np.zeros((BATCH, UNITS)))
        _, new_state, _ = decoder.step(np.array([2, 2]), state, memory)
        assert new_state["feed"].shape == (BATCH, UNITS)
        assert np.all(np.abs(new_state["feed"]) <= 1.0)  # h~ = tanh(W_c [c; h])
        assert np.any(np.asarray(new_state["feed"]) != 0.0)


def test_dropout_only_in_training():
    decoder = make_decoder("luong-dot", dropout=0.5)
    memory = decoder.prepare_memory(*make_memory_inputs())
    states = make_states(decoder)
    inference, _ = teacher_forced(decoder, TOKENS, memory, states)
    again, _ = teacher_forced(decoder, TOKENS, memory, states, training=False)
    np.testing.assert_allclose(inference, again)
    training, _ = teacher_forced(decoder, TOKENS, memory, states, training=True)
    assert not np.allclose(inference, training)


def test_luong_dot_needs_matching_depths():
    decoder = make_decoder("luong-dot")
    values, mask, summary = make_memory_inputs()
    wider = np.concatenate([values, values], axis=-1)
    with pytest.raises(ValueError, match="score_mode='dot'"):
        decoder.prepare_memory(wider, mask, summary)
