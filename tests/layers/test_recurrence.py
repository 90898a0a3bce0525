import keras
import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.layers.recurrence import run_cell

BATCH, TIME, FEATURES, UNITS = 3, 6, 4, 5
# Row 0 full, row 1 right-padded, row 2 with a hole and masked first and last steps.
MASK = np.array(
    [
        [True] * TIME,
        [True, True, True, False, False, False],
        [False, True, True, False, True, False],
    ]
)
CELLS = {
    "gru": lambda: keras.layers.GRUCell(UNITS),
    "gru-reset-before": lambda: keras.layers.GRUCell(UNITS, reset_after=False),
    "gru-no-bias": lambda: keras.layers.GRUCell(UNITS, use_bias=False),
    "lstm": lambda: keras.layers.LSTMCell(UNITS),
}


def make_cell(kind, seed=0):
    keras.utils.set_random_seed(seed)
    cell = CELLS[kind]()
    cell.build((None, FEATURES))
    return cell


def random_inputs(seed=1):
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    states = [rng.normal(size=(BATCH, UNITS)).astype("float32") * 0.5 for _ in range(2)]
    return inputs, states


def state_count(cell):
    return 2 if isinstance(cell, keras.layers.LSTMCell) else 1


def keras_reference(cell, inputs, states, mask, go_backwards, zero_output_for_mask=False):
    """`keras.layers.RNN` over the same cell, outputs put back in input order."""
    layer = keras.layers.RNN(
        cell,
        return_sequences=True,
        return_state=True,
        go_backwards=go_backwards,
        zero_output_for_mask=zero_output_for_mask,
    )
    outputs, *final = layer(inputs, initial_state=states, mask=mask)
    if go_backwards:
        outputs = tf.reverse(outputs, axis=[1])
    return outputs, final


def weighted_loss(outputs, final, seed=3):
    """A loss that weighs every output and state element differently."""
    rng = np.random.default_rng(seed)
    total = tf.reduce_sum(outputs * rng.normal(size=outputs.shape).astype("float32"))
    for state in final:
        total += tf.reduce_sum(state * rng.normal(size=state.shape).astype("float32"))
    return total


def outputs_and_gradients(fn, cell, inputs, states):
    inputs = tf.constant(inputs)
    states = [tf.constant(s) for s in states]
    with tf.GradientTape() as tape:
        tape.watch([inputs, *states])
        outputs, final = fn(inputs, states)
        loss = weighted_loss(outputs, final)
    gradients = tape.gradient(loss, [inputs, *states, *cell.trainable_variables])
    return outputs, final, gradients


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked, zeros", [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("kind", list(CELLS))
def test_matches_keras_rnn_forward_and_gradient(kind, masked, zeros, go_backwards):
    cell = make_cell(kind)
    inputs, states = random_inputs()
    states = states[: state_count(cell)]
    mask = tf.constant(MASK) if masked else None
    expected = outputs_and_gradients(
        lambda x, s: keras_reference(cell, x, s, mask, go_backwards, zeros), cell, inputs, states
    )
    actual = outputs_and_gradients(
        lambda x, s: run_cell(
            cell, x, s, mask=mask, go_backwards=go_backwards, zero_output_for_mask=zeros
        ),
        cell,
        inputs,
        states,
    )
    np.testing.assert_allclose(actual[0], expected[0], atol=1e-5)
    assert actual[0].shape == (BATCH, TIME, UNITS)
    assert len(actual[1]) == len(expected[1]) == state_count(cell)
    for a, b in zip(actual[1], expected[1], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # Gradients with respect to the inputs, the initial states and every cell variable.
    assert len(actual[2]) == 1 + state_count(cell) + len(cell.trainable_variables)
    for a, b in zip(actual[2], expected[2], strict=True):
        assert a is not None and b is not None
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_masked_steps_output_the_previous_output_or_zeros():
    cell = make_cell("gru")
    inputs, states = random_inputs()
    outputs, (final,) = run_cell(cell, inputs, states[:1], mask=MASK)
    outputs = np.asarray(outputs)
    np.testing.assert_array_equal(outputs[2, 0], 0.0)  # nothing read yet
    np.testing.assert_array_equal(outputs[1, 3:], np.repeat(outputs[1, 2:3], 3, axis=0))
    np.testing.assert_array_equal(outputs[2, 3], outputs[2, 2])
    np.testing.assert_allclose(final[1], outputs[1, 2])
    zeroed, (same_final,) = run_cell(cell, inputs, states[:1], mask=MASK, zero_output_for_mask=True)
    np.testing.assert_array_equal(np.asarray(zeroed)[~MASK], 0.0)
    np.testing.assert_array_equal(np.asarray(zeroed)[MASK], outputs[MASK])
    np.testing.assert_array_equal(same_final, final)


def test_zero_initial_state_by_default():
    cell = make_cell("lstm")
    inputs, _ = random_inputs()
    zeros = [np.zeros((BATCH, UNITS), "float32")] * 2
    default = run_cell(cell, inputs, mask=MASK, go_backwards=True)
    explicit = run_cell(cell, inputs, zeros, mask=MASK, go_backwards=True)
    for a, b in zip(keras.tree.flatten(default), keras.tree.flatten(explicit), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_tf_function_with_unknown_batch_and_time(kind):
    cell = make_cell(kind)
    spec = tf.TensorSpec((None, None, FEATURES), tf.float32)

    @tf.function(input_signature=[spec, tf.TensorSpec((None, None), tf.bool)])
    def run(inputs, mask):
        outputs, final = run_cell(cell, inputs, mask=mask, go_backwards=True)
        assert outputs.shape.as_list() == [None, None, UNITS]
        return outputs, final

    inputs, _ = random_inputs()
    for batch, time in [(BATCH, TIME), (2, 3)]:
        x, mask = inputs[:batch, :time], MASK[:batch, :time]
        expected = keras_reference(cell, x, None, mask, go_backwards=True)
        actual = run(x, mask)
        for a, b in zip(keras.tree.flatten(actual), keras.tree.flatten(expected), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_mixed_float16(kind):
    keras.utils.set_random_seed(0)
    policy = keras.DTypePolicy("mixed_float16")
    cell = {"gru": keras.layers.GRUCell, "lstm": keras.layers.LSTMCell}[kind](UNITS, dtype=policy)
    cell.build((None, FEATURES))
    inputs, states = random_inputs()
    states = states[: state_count(cell)]
    actual = outputs_and_gradients(
        lambda x, s: run_cell(cell, x, s, mask=MASK, go_backwards=True), cell, inputs, states
    )
    layer = keras.layers.RNN(
        cell, return_sequences=True, return_state=True, go_backwards=True, dtype=policy
    )
    outputs, *final = layer(inputs, initial_state=states, mask=MASK)
    assert actual[0].dtype == outputs.dtype == tf.float16
    assert all(state.dtype == tf.float16 for state in actual[1])
    np.testing.assert_allclose(actual[0], tf.reverse(outputs, axis=[1]), atol=1e-2)
    for a, b in zip(actual[1], final, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-2)
    assert all(v.dtype == "float32" for v in cell.trainable_variables)
    for gradient in actual[2][-len(cell.trainable_variables) :]:
        assert gradient.dtype == tf.float32
        assert np.all(np.isfinite(gradient))


def test_rejects_cells_it_cannot_hoist():
    inputs, _ = random_inputs()
    with pytest.raises(ValueError, match="Expected a keras.layers.GRUCell or LSTMCell"):
        run_cell(keras.layers.SimpleRNNCell(UNITS), inputs)
    with pytest.raises(ValueError, match="recurrent_dropout=0.2"):
        run_cell(keras.layers.GRUCell(UNITS, recurrent_dropout=0.2), inputs)
    with pytest.raises(ValueError, match="not built"):
        run_cell(keras.layers.LSTMCell(UNITS), inputs)
