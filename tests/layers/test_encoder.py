import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from nmt_keras.layers.encoder import Encoder

VOCAB, EMBEDDING, UNITS = 20, 6, 8
# One sentence alone, and the same sentence padded in a batch with others.
ALONE = np.array([[2, 5, 6, 7, 3]], "int32")
BATCH = np.array([[2, 5, 6, 7, 3, 0, 0], [2, 8, 3, 0, 0, 0, 0], [2, 9, 10, 11, 12, 13, 3]], "int32")
LENGTHS = (BATCH != 0).sum(axis=1)
# (rnn, bidirectional, num_layers, residual)
CASES = {
    "bigru": ("gru", True, 1, False),
    "lstm": ("lstm", False, 1, False),
    "bilstm-2-residual": ("lstm", True, 2, True),
    "gru-2-residual": ("gru", False, 2, True),
}


def make_encoder(rnn, bidirectional, num_layers=1, residual=False, decoder_layers=2, **kwargs):
    keras.utils.set_random_seed(0)
    return Encoder(
        VOCAB,
        EMBEDDING,
        UNITS,
        num_layers=num_layers,
        rnn=rnn,
        bidirectional=bidirectional,
        residual=residual,
        decoder_layers=decoder_layers,
        **kwargs,
    )


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(name, marks=pytest.mark.slow if name == "gru-2-residual" else ())
        for name in CASES
    ],
)
def encoded(request):
    """An encoder of each kind with its outputs on BATCH and on ALONE (computed once)."""
    case = CASES[request.param]
    encoder = make_encoder(*case)
    to_numpy = lambda outputs: keras.tree.map_structure(np.asarray, outputs)  # noqa: E731
    return case, encoder, to_numpy(encoder(BATCH)), to_numpy(encoder(ALONE))


def test_output_shapes_and_mask(encoded):
    (rnn, _, _, _), _, (outputs, mask, summary, decoder_state), _ = encoded
    assert outputs.shape == (3, 7, UNITS)
    assert summary.shape == (3, UNITS)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, BATCH != 0)
    per_layer = 2 if rnn == "lstm" else 1
    assert len(decoder_state) == 2 * per_layer  # decoder_layers=2
    for state in decoder_state:
        assert state.shape == (3, UNITS)
        assert np.all(np.abs(state) <= 1.0)  # tanh bridge
    # Each decoder layer has its own bridge, so the layers start from different states.
    assert not np.allclose(decoder_state[0], decoder_state[per_layer])


def test_padding_does_not_change_real_positions_or_the_summary(encoded):
    _, _, padded, alone = encoded
    length = ALONE.shape[1]
    np.testing.assert_allclose(padded[0][:1, :length], alone[0], atol=1e-5)
    np.testing.assert_allclose(padded[2][:1], alone[2], atol=1e-5)
    for a, b in zip(padded[3], alone[3], strict=True):
        np.testing.assert_allclose(a[:1], b, atol=1e-5)


def test_summary_is_the_final_state_of_each_direction(encoded):
    (rnn, bidirectional, _, residual), encoder, (outputs, _, summary, _), _ = encoded
    if residual:
        # The top layer's own outputs are outputs minus the layer below's: check via shapes.
        assert summary.shape == (3, UNITS)
        return
    half = UNITS // 2
    for row, length in enumerate(LENGTHS):
        if bidirectional:
            # Forward ends on the last real token; backward ends on x_1.
            np.testing.assert_allclose(summary[row, :half], outputs[row, length - 1, :half], 1e-6)
            np.testing.assert_allclose(summary[row, half:], outputs[row, 0, half:], atol=1e-6)
        else:
            np.testing.assert_allclose(summary[row], outputs[row, length - 1], atol=1e-6)


def test_bridge_is_tanh_of_a_dense_layer_on_the_summary(encoded):
    (rnn, _, _, _), encoder, (_, _, summary, decoder_state), _ = encoded
    kernel, bias = encoder.bridges[0].get_weights()
    np.testing.assert_allclose(decoder_state[0], np.tanh(summary @ kernel + bias), atol=1e-5)


def test_direction_of_reading(encoded):
    (_, bidirectional, num_layers, _), encoder, _, alone = encoded
    if num_layers > 1:
        return  # a second layer reads both directions of the first
    changed = ALONE.copy()
    changed[0, 3] = 15
    a, b = alone[0], np.asarray(encoder(changed)[0])
    half = UNITS // 2
    if bidirectional:
        np.testing.assert_allclose(a[0, :3, :half], b[0, :3, :half], atol=1e-6)  # forward
        assert not np.allclose(a[0, :3, half:], b[0, :3, half:])  # backward reads token 3
    else:
        np.testing.assert_allclose(a[0, :3], b[0, :3], atol=1e-6)  # only the past
        assert not np.allclose(a[0, 3:], b[0, 3:])


def test_lstm_bridges_the_cell_state_too(encoded):
    (rnn, bidirectional, num_layers, _), encoder, _, alone = encoded
    if (rnn, bidirectional, num_layers) != ("lstm", False, 1):
        return
    _, _, summary, decoder_state = alone
    _, h, c = encoder.rnn_layers[0](encoder.embedding(ALONE))
    np.testing.assert_allclose(summary, h, atol=1e-6)
    kernel, bias = encoder.bridges[1].get_weights()
    np.testing.assert_allclose(decoder_state[1], np.tanh(c @ kernel + bias), atol=1e-5)


def test_decoder_units_may_differ_from_units():
    encoder = make_encoder("gru", True, decoder_layers=1, decoder_units=10)
    _, _, summary, decoder_state = encoder(ALONE[:, :2])
    assert summary.shape == (1, UNITS)
    assert [state.shape for state in decoder_state] == [(1, 10)]


def test_dropout_only_in_training():
    encoder = make_encoder("gru", bidirectional=False, dropout=0.5)
    tokens = ALONE[:, :3]
    inference = encoder(tokens)[0]
    np.testing.assert_allclose(encoder(tokens, training=False)[0], inference)
    assert not np.allclose(encoder(tokens, training=True)[0], inference)


def test_odd_units_with_bidirectional_are_rejected():
    with pytest.raises(ValueError, match="even units"):
        Encoder(VOCAB, EMBEDDING, 7, bidirectional=True)
    assert Encoder(VOCAB, EMBEDDING, 7, bidirectional=False).units == 7


def test_bad_rnn_is_rejected():
    with pytest.raises(ValueError, match="rnn=cnn"):
        Encoder(VOCAB, EMBEDDING, UNITS, rnn="cnn")


def keras_layers_path(encoder, tokens, training=None):
    """`Encoder.call` as it ran before the hoisted recurrence: its Keras (Bi)RNN layers."""
    mask = keras.ops.not_equal(tokens, 0)
    outputs = encoder.dropout_layer(encoder.embedding(tokens), training=training)
    for index, layer in enumerate(encoder.rnn_layers):
        layer_inputs = outputs if index == 0 else encoder.dropout_layer(outputs, training=training)
        layer_outputs, *final_states = layer(layer_inputs, mask=mask, training=training)
        if encoder.residual and index > 0:
            layer_outputs = layer_outputs + outputs
        outputs = layer_outputs
    summaries = encoder._summaries(final_states)
    width = 2 if encoder.rnn == "lstm" else 1
    decoder_state = [bridge(summaries[i % width]) for i, bridge in enumerate(encoder.bridges)]
    return outputs, mask, summaries[0], decoder_state


def weighted_loss(tensors):
    """Sum of every element of every float tensor, each with its own weight (any shape)."""
    total = 0.0
    for tensor in tensors:
        if tensor.dtype.is_floating:
            weights = tf.reshape(tf.range(tf.size(tensor), dtype=tensor.dtype), tf.shape(tensor))
            total += tf.reduce_sum(tensor * tf.sin(weights))
    return total


@pytest.mark.parametrize(
    "case",
    [pytest.param(n, marks=pytest.mark.slow if n == "gru-2-residual" else ()) for n in CASES],
)
def test_equals_the_keras_layers_forward_and_gradient(case):
    encoder = make_encoder(*CASES[case])
    encoder(BATCH[:, :2])  # builds the weights

    def with_gradients(fn):
        @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32)])
        def run(tokens):
            with tf.GradientTape() as tape:
                results = keras.tree.flatten(fn(encoder, tokens))
                loss = weighted_loss(results)
            return results, tape.gradient(loss, encoder.trainable_variables)

        return run

    hoisted, reference = with_gradients(Encoder.call), with_gradients(keras_layers_path)
    # Varied lengths, then another batch and time size through the same traced graphs.
    for tokens in (BATCH, np.concatenate([ALONE, [[4, 3, 0, 0, 0]]])):
        (actual, actual_gradients), (expected, expected_gradients) = (
            hoisted(tokens),
            reference(tokens),
        )
        assert len(actual) == len(expected)
        for a, b in zip(actual, expected, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)
        assert len(actual_gradients) == len(encoder.trainable_variables)
        for variable, a, b in zip(
            encoder.trainable_variables, actual_gradients, expected_gradients, strict=True
        ):
            a, b = (tf.convert_to_tensor(g) for g in (a, b))  # embeddings: IndexedSlices
            np.testing.assert_allclose(a, b, atol=1e-5, err_msg=variable.path)


@pytest.fixture
def mixed_float16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    yield
    keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
def test_mixed_float16(rnn, mixed_float16):
    encoder = make_encoder(rnn, True, num_layers=2, residual=True)
    with tf.GradientTape() as tape:
        outputs, _, summary, decoder_state = encoder(BATCH)
        loss = weighted_loss([tf.cast(t, tf.float32) for t in (outputs, *decoder_state)])
    assert outputs.dtype == summary.dtype == tf.float16
    gradients = tape.gradient(loss, encoder.trainable_variables)
    assert all(v.dtype == "float32" for v in encoder.trainable_variables)
    for gradient in gradients:
        gradient = tf.convert_to_tensor(gradient)
        assert gradient.dtype == tf.float32 and np.all(np.isfinite(gradient))
    expected = keras_layers_path(encoder, BATCH)
    np.testing.assert_allclose(outputs, expected[0], atol=1e-2)
    np.testing.assert_allclose(summary, expected[2], atol=1e-2)


class Holder(keras.Model):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def call(self, tokens):
        return self.layer(tokens)


def test_checkpoint_layout_and_values_are_those_of_the_keras_layers_version(tmp_path):
    encoder = make_encoder("lstm", True, num_layers=2)
    model = Holder(encoder)
    model(BATCH)
    path = str(tmp_path / "encoder.weights.h5")
    model.save_weights(path)
    keys = []
    with h5py.File(path) as file:
        file.visititems(lambda name, item: keys.append(name) if hasattr(item, "shape") else None)
    # The layout that Encoder had when call() ran its keras.layers.Bidirectional layers.
    cells = [
        f"layer/rnn_layers/{layer}/{direction}_layer/cell/vars/{index}"
        for layer in ("bidirectional", "bidirectional_1")
        for direction in ("backward", "forward")
        for index in range(3)
    ]
    bridges = [
        f"layer/bridges/{dense}/vars/{i}"
        for dense in ("dense", "dense_1", "dense_2", "dense_3")  # decoder_layers=2, h and c
        for i in range(2)
    ]
    assert keys == [*bridges, "layer/embedding/vars/0", *cells]
    keras.utils.set_random_seed(9)
    restored = Holder(Encoder.from_config(encoder.get_config()))
    restored(BATCH[:, :1])
    restored.load_weights(path)
    expected = keras.tree.flatten(keras_layers_path(encoder, BATCH))
    for a, b in zip(keras.tree.flatten(restored(BATCH)), expected, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
