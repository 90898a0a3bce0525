import keras
import numpy as np
import tensorflow as tf

from nmt_keras.layers.positionwise import positionwise_dense

SPEC = tf.TensorSpec((None, None, 6), tf.float32)  # batch and length unknown, as in training


def test_gives_what_the_dense_layer_gives():
    dense = keras.layers.Dense(5, activation="tanh")
    sequence = np.random.default_rng(0).normal(size=(3, 4, 6)).astype("float32")
    positionwise = tf.function(lambda x: positionwise_dense(dense, x), input_signature=[SPEC])
    whole = tf.function(dense, input_signature=[SPEC])

    np.testing.assert_allclose(positionwise(sequence), whole(sequence), rtol=1e-6, atol=1e-7)
    outputs = positionwise.get_concrete_function().structured_outputs
    assert outputs.shape.as_list() == [None, None, 5]
