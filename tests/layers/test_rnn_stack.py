import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.layers.rnn_stack import RNNStack, check_rnn, states_per_layer

BATCH, TIME, FEATURES, UNITS = 2, 4, 3, 5
CASES = [
    pytest.param("gru", 1, False, marks=pytest.mark.slow),
    ("gru", 2, True),
    ("lstm", 1, False),
    ("lstm", 3, True),
    pytest.param("lstm", 2, False, marks=pytest.mark.slow),
]


def make_stack(rnn, num_layers, residual, seed=0):
    keras.utils.set_random_seed(seed)
    stack = RNNStack(UNITS, num_layers, rnn=rnn, residual=residual, name="stack")
    stack.build((None, None, FEATURES))
    return stack


def random_inputs(seed=1, time=TIME):
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(BATCH, time, FEATURES)).astype("float32")
    return inputs


def random_states(rnn, num_layers, seed=2):
    rng = np.random.default_rng(seed)
    count = num_layers * states_per_layer(rnn)
    return [rng.normal(size=(BATCH, UNITS)).astype("float32") * 0.5 for _ in range(count)]


def run_steps(stack, inputs, states):
    outputs = []
    for time in range(inputs.shape[1]):
        output, states = stack.step(inputs[:, time], states)
        outputs.append(output)
    return np.stack(outputs, axis=1), states


@pytest.mark.parametrize("rnn, num_layers, residual", CASES)
def test_step_loop_equals_call(rnn, num_layers, residual):
    stack = make_stack(rnn, num_layers, residual)
    inputs = random_inputs()
    states = random_states(rnn, num_layers)
    outputs, final = stack(inputs, states)
    step_outputs, step_final = run_steps(stack, inputs, states)
    assert outputs.shape == (BATCH, TIME, UNITS)
    np.testing.assert_allclose(outputs, step_outputs, atol=1e-5)
    assert len(final) == len(step_final) == num_layers * states_per_layer(rnn)
    for a, b in zip(final, step_final, strict=True):
        assert a.shape == (BATCH, UNITS)
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
def test_final_states_are_layer_by_layer(rnn):
    stack = make_stack(rnn, 2, False)
    inputs = random_inputs()
    outputs, final = stack(inputs, random_states(rnn, 2))
    # The top layer's hidden state is its last output; LSTM keeps [h, c] per layer.
    top_h = final[states_per_layer(rnn)]
    np.testing.assert_allclose(outputs[:, -1], top_h, atol=1e-6)
    if rnn == "lstm":
        assert not np.allclose(final[2], final[3])  # h differs from c


def test_state_of_one_layer_only_affects_that_layer_and_above():
    stack = make_stack("gru", 2, False)
    inputs = random_inputs()
    states = random_states("gru", 2)
    _, base = stack(inputs, states)
    changed = [states[0], states[1] + 1.0]
    _, final = stack(inputs, changed)
    np.testing.assert_allclose(base[0], final[0], atol=1e-6)  # layer 1 untouched
    assert not np.allclose(base[1], final[1])


def test_residual_adds_the_layer_input():
    plain = make_stack("gru", 2, False, seed=3)
    residual = make_stack("gru", 2, True, seed=3)
    residual.set_weights(plain.get_weights())
    inputs = random_inputs(time=1)[:, 0]
    states = random_states("gru", 2)
    out_plain, states_plain = plain.step(inputs, states)
    out_residual, states_residual = residual.step(inputs, states)
    # Layer 2 reads h_1 in both; the residual output is h_1 + h_2.
    np.testing.assert_allclose(states_plain[1], states_residual[1], atol=1e-6)
    np.testing.assert_allclose(out_residual, states_plain[0] + states_plain[1], atol=1e-6)
    np.testing.assert_allclose(out_plain, states_plain[1], atol=1e-6)


@pytest.mark.filterwarnings("ignore:Layer 'stack' .* was passed an input with a mask")
@pytest.mark.parametrize("rnn", ["gru", "lstm"])
def test_masked_steps_keep_the_state(rnn):
    stack = make_stack(rnn, 2, True)
    inputs = random_inputs(time=5)
    states = random_states(rnn, 2)
    mask = np.array([[True] * 5, [True, True, True, False, False]])
    _, final = stack(inputs, states, mask=mask)
    _, short = stack(inputs[:, :3], states)
    _, full = stack(inputs, states)
    for a, b, c in zip(final, short, full, strict=True):
        np.testing.assert_allclose(a[1], b[1], atol=1e-5)  # stopped after 3 steps
        np.testing.assert_allclose(a[0], c[0], atol=1e-5)  # unmasked row runs on


def test_dropout_only_in_training_and_only_between_layers():
    keras.utils.set_random_seed(0)
    stack = RNNStack(UNITS, 2, rnn="gru", dropout=0.5)
    inputs = random_inputs()
    states = random_states("gru", 2)
    inference, _ = stack(inputs, states, training=False)
    again, _ = stack(inputs, states)
    np.testing.assert_allclose(inference, again)
    training, train_states = stack(inputs, states, training=True)
    assert not np.allclose(inference, training)
    single = RNNStack(UNITS, 1, rnn="gru", dropout=0.5)
    a, _ = single(inputs, states[:1], training=True)
    b, _ = single(inputs, states[:1], training=False)
    np.testing.assert_allclose(a, b, atol=1e-6)  # no dropout before the first layer


def test_states_per_layer():
    assert states_per_layer("gru") == 1
    assert states_per_layer("lstm") == 2


@pytest.mark.parametrize("rnn", ["rnn", "GRU", "transformer"])
def test_bad_rnn_is_rejected(rnn):
    with pytest.raises(ValueError, match="Expected rnn to be one of gru, lstm"):
        check_rnn(rnn)
    with pytest.raises(ValueError, match=f"rnn={rnn}"):
        RNNStack(UNITS, rnn=rnn)


def test_bad_num_layers_is_rejected():
    with pytest.raises(ValueError, match="num_layers >= 1"):
        RNNStack(UNITS, num_layers=0)


def keras_sequence_path(stack, inputs, states, mask=None, training=None):
    """`RNNStack.call` as it ran before the hoisted recurrence: its `keras.layers.RNN`s."""
    final_states = []
    for index, layer in enumerate(stack.sequence_layers):
        layer_inputs = inputs if index == 0 else stack.dropout_layer(inputs, training=training)
        outputs, *layer_states = layer(
            layer_inputs, initial_state=stack._layer_states(states, index), mask=mask
        )
        inputs = stack._residual(index, inputs, outputs)
        final_states.extend(layer_states)
    return inputs, final_states


def weighted_loss(outputs, final):
    """Sum of every output and state element, each with its own weight (any shape)."""
    total = 0.0
    for tensor in [outputs, *final]:
        weights = tf.reshape(tf.range(tf.size(tensor), dtype=tensor.dtype), tf.shape(tensor))
        total += tf.reduce_sum(tensor * tf.sin(weights))
    return total


# Lengths 5, 2 and 4 of 5 steps.
MASK = np.array([[True] * 5, [True, True] + [False] * 3, [True] * 4 + [False]])


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("rnn, num_layers, residual", [("gru", 1, False), *CASES[1:4]])
def test_call_equals_keras_rnn_path_with_gradients(rnn, num_layers, residual, masked):
    stack = make_stack(rnn, num_layers, residual)
    spec = tf.TensorSpec((None, UNITS), tf.float32)
    signature = [
        tf.TensorSpec((None, None, FEATURES), tf.float32),
        [spec] * (num_layers * states_per_layer(rnn)),
        tf.TensorSpec((None, None), tf.bool),
    ]

    def with_gradients(fn):
        @tf.function(input_signature=signature)
        def run(inputs, states, mask):
            with tf.GradientTape() as tape:
                tape.watch([inputs, *states])
                outputs, final = fn(stack, inputs, states, mask=mask if masked else None)
                loss = weighted_loss(outputs, final)
            gradients = tape.gradient(loss, [inputs, *states, *stack.trainable_variables])
            return outputs, final, gradients

        return run

    hoisted, reference = with_gradients(RNNStack.call), with_gradients(keras_sequence_path)
    rng = np.random.default_rng(4)
    for batch in (3, 2):  # unknown batch and time: the same traced graph runs both
        inputs = rng.normal(size=(batch, 5, FEATURES)).astype("float32")
        states = [s[:1].repeat(batch, 0) for s in random_states(rnn, num_layers)]
        actual = hoisted(inputs, states, MASK[:batch])
        expected = reference(inputs, states, MASK[:batch])
        flat_actual, flat_expected = keras.tree.flatten(actual), keras.tree.flatten(expected)
        assert len(flat_actual) == len(flat_expected) == 1 + 2 * len(states) + 1 + 3 * num_layers
        for a, b in zip(flat_actual, flat_expected, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.filterwarnings("ignore:Layer '.*' .* was passed an input with a mask")
@pytest.mark.parametrize("rnn", ["gru", "lstm"])
def test_mixed_float16(rnn):
    keras.utils.set_random_seed(0)
    stack = RNNStack(UNITS, 2, rnn=rnn, residual=True, dtype="mixed_float16")
    stack.build((None, None, FEATURES))
    inputs, states = random_inputs(time=5), random_states(rnn, 2)
    with tf.GradientTape() as tape:
        outputs, final = stack(inputs, states, mask=MASK[:BATCH])
        loss = tf.reduce_sum(tf.cast(outputs, tf.float32))
    gradients = tape.gradient(loss, stack.trainable_variables)
    assert outputs.dtype == tf.float16 and all(s.dtype == tf.float16 for s in final)
    assert all(v.dtype == "float32" for v in stack.trainable_variables)
    assert all(g.dtype == tf.float32 and np.all(np.isfinite(g)) for g in gradients)
    expected, expected_final = keras_sequence_path(stack, inputs, states, mask=MASK[:BATCH])
    np.testing.assert_allclose(outputs, expected, atol=1e-2)
    for a, b in zip(final, expected_final, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-2)


class Holder(keras.Model):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def call(self, inputs, states):
        return self.layer(inputs, states)


def test_checkpoint_layout_and_values_are_those_of_the_keras_rnn_version(tmp_path):
    stack = make_stack("gru", 2, True)
    model = Holder(stack)
    inputs, states = random_inputs(), random_states("gru", 2)
    model(inputs, states)
    path = str(tmp_path / "stack.weights.h5")
    model.save_weights(path)
    keys = []
    with h5py.File(path) as file:
        file.visititems(lambda name, item: keys.append(name) if hasattr(item, "shape") else None)
    # The layout that RNNStack had when call() ran its keras.layers.RNN sequence_layers.
    assert keys == [
        f"layer/cells/{cell}/vars/{index}"
        for cell in ("gru_cell", "gru_cell_1")
        for index in range(3)
    ]
    restored = Holder(make_stack("gru", 2, True, seed=9))
    restored(inputs, states)
    restored.load_weights(path)
    expected, _ = keras_sequence_path(stack, inputs, states)
    np.testing.assert_allclose(restored(inputs, states)[0], expected, atol=1e-5)
