"""`run_layer_test`: the contract every public layer keeps, checked one way for all of them.

Modelled on keras-hub's `TestCase.run_layer_test`. For a layer class, its constructor
arguments and a batch of inputs, it checks:

- registration for Keras serialization and a `get_config` / `from_config` round trip;
- an eager call and a symbolic call (`keras.Input`) with the expected output shapes;
- one `model.fit` step on the layer that moves every trainable weight;
- a per-layer `dtype="mixed_float16"` that reaches every sublayer: float32 variables,
  float16 compute and outputs, except the sublayers and outputs the layer keeps in
  float32 on purpose;
- a `.keras` save and `keras.models.load_model` that gives identical outputs.

Layers are called through one of the call adapters below, one per call contract, so a
saved test model can be rebuilt from its config.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops, tree

MIXED = "mixed_float16"


def call_single(layer, inputs, training=None):
    """`layer(inputs["inputs"])`: encoders, feed-forward and embedding layers."""
    return layer(inputs["inputs"], training=training)


def call_attention(layer, inputs, training=None):
    """`Attention` layers: weights as well as the context, source mask and positions."""
    return layer(
        inputs["query"],
        inputs["value"],
        mask=inputs.get("mask"),
        positions=inputs.get("positions"),
        return_attention_scores=True,
        training=training,
    )


def call_multi_head_attention(layer, inputs, training=None):
    """`MultiHeadAttention(query, memory, key_mask=...)`, with its weights."""
    return layer(
        inputs["query"],
        inputs["memory"],
        key_mask=inputs.get("mask"),
        return_attention_scores=True,
        training=training,
    )


def call_rnn_stack(layer, inputs, training=None):
    """`RNNStack(inputs, states, mask=...)`."""
    return layer(inputs["inputs"], inputs["states"], mask=inputs.get("mask"), training=training)


def call_rnn_decoder(layer, inputs, training=None):
    """An `RNNDecoder` under teacher forcing, from encoder outputs and bridged states."""
    memory = layer.prepare_memory(inputs["values"], inputs["mask"], inputs["summary"])
    attends = layer.attention is not None
    return layer(
        inputs["tokens"],
        memory,
        inputs["states"],
        return_attention_scores=attends,
        training=training,
    )


def call_transformer_encoder_layer(layer, inputs, training=None):
    """`TransformerEncoderLayer(inputs, padding_mask)`."""
    return layer(inputs["inputs"], padding_mask=inputs["mask"], training=training)


def call_transformer_decoder_layer(layer, inputs, training=None):
    """`TransformerDecoderLayer` over projected encoder outputs."""
    if not layer.built:
        layer.build(inputs["inputs"].shape)
    keys, values = layer.cross_attention.project_key_value(inputs["memory"])
    return layer(inputs["inputs"], keys, values, inputs["mask"], training=training)


def call_transformer_decoder(layer, inputs, training=None):
    """`TransformerDecoder` under teacher forcing, from encoder outputs."""
    memory = layer.prepare_memory(inputs["memory"], inputs["mask"])
    return layer(inputs["tokens"], memory, return_attention_scores=True, training=training)


def call_repeat_decoder(layer, inputs, training=None):
    """`RepeatDecoder(statistics, repeat_set, item_embeddings, user)`."""
    del training  # the decoder has no dropout
    return layer(
        inputs["statistics"], inputs["repeat_set"], inputs["item_embeddings"], inputs["user"]
    )


CALLS = {
    function.__name__: function
    for function in (
        call_single,
        call_attention,
        call_multi_head_attention,
        call_rnn_stack,
        call_rnn_decoder,
        call_transformer_encoder_layer,
        call_transformer_decoder_layer,
        call_transformer_decoder,
        call_repeat_decoder,
    )
}


def _is_float(tensor) -> bool:
    return "float" in keras.backend.standardize_dtype(tensor.dtype)


@keras.saving.register_keras_serializable(package="nmt_keras_tests")
class LayerCall(keras.Model):
    """A model that calls one layer through a named call adapter.

    Its outputs are the layer's tensor outputs, flattened. Its loss, for the `fit` step,
    is the sum of the mean squares of the float outputs: attention weights sum to one, so
    a plain sum would give their scores no gradient.
    """

    def __init__(self, layer, call_name, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer
        self.call_name = call_name

    def call(self, inputs, training=None):
        return tuple(tree.flatten(CALLS[self.call_name](self.layer, inputs, training=training)))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        del x, y, sample_weight, training
        return sum(
            ops.mean(ops.square(ops.cast(output, "float32")))
            for output in y_pred
            if _is_float(output)
        )

    def get_config(self):
        return {
            "layer": keras.saving.serialize_keras_object(self.layer),
            "call_name": self.call_name,
        }

    @classmethod
    def from_config(cls, config):
        return cls(keras.saving.deserialize_keras_object(config["layer"]), config["call_name"])


def run_layer_test(
    layer_cls,
    init_kwargs: dict,
    inputs: dict,
    expected_output_shape,
    call=call_single,
    float32_sublayers: tuple[str, ...] = (),
    float32_outputs: tuple[int, ...] = (),
    tmp_path=None,
):
    """Runs every contract check on `layer_cls(**init_kwargs)`.

    Args:
        layer_cls: The layer class.
        init_kwargs: Constructor arguments.
        inputs: The `call` adapter's inputs, numpy arrays (nested lists allowed) with
            the batch first.
        expected_output_shape: The shapes of the layer's outputs, nested like them.
        call: The call adapter, one of `CALLS`.
        float32_sublayers: Names of sublayers kept in float32 under mixed precision.
        float32_outputs: Indices, among the flattened tensor outputs, of the float
            outputs that stay float32 under mixed precision (logits).
        tmp_path: A directory for the `.keras` file; None skips the saving check.
    """
    _check_registration_and_config(layer_cls, init_kwargs)
    _check_calls(layer_cls, init_kwargs, inputs, expected_output_shape, call)
    _check_fit_step(layer_cls(**init_kwargs), inputs, call)
    _check_mixed_precision(layer_cls, init_kwargs, inputs, call, float32_sublayers, float32_outputs)
    if tmp_path is not None:
        _check_saving(layer_cls(**init_kwargs), inputs, call, tmp_path)


def _check_registration_and_config(layer_cls, init_kwargs):
    registered_name = keras.saving.get_registered_name(layer_cls)
    assert registered_name == f"nmt_keras>{layer_cls.__name__}", registered_name
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    assert layer_cls.from_config(config).get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is layer_cls
    assert revived.get_config() == config


def _check_calls(layer_cls, init_kwargs, inputs, expected_output_shape, call):
    eager = call(layer_cls(**init_kwargs), inputs)
    assert _shapes(eager) == expected_output_shape
    symbolic_inputs = tree.map_structure(
        lambda array: keras.Input(shape=array.shape[1:], dtype=str(array.dtype)), inputs
    )
    symbolic = call(layer_cls(**init_kwargs), symbolic_inputs)
    assert _shapes(symbolic, skip_batch=True) == _shapes(expected_output_shape, skip_batch=True)


def _shapes(structure, skip_batch=False):
    """Tensor (or expected shape) leaves of `structure` to shape tuples, nesting kept."""
    if isinstance(structure, (list, tuple)) and not all(isinstance(d, int) for d in structure):
        return type(structure)(_shapes(item, skip_batch) for item in structure)
    shape = tuple(structure if isinstance(structure, tuple) else structure.shape)
    return shape[1:] if skip_batch else shape


def _check_fit_step(layer, inputs, call):
    model = LayerCall(layer, call.__name__)
    model(inputs)
    if not layer.trainable_weights:
        return
    # Eager: one step of a tiny model, not worth tracing a train function for.
    model.compile(optimizer=keras.optimizers.Adam(0.01), run_eagerly=True)
    before = [weight.numpy().copy() for weight in layer.trainable_weights]
    batch = len(tree.flatten(inputs)[0])
    model.fit(inputs, batch_size=batch, epochs=1, verbose=0)
    frozen = [
        weight.path
        for weight, value in zip(layer.trainable_weights, before, strict=True)
        if np.array_equal(weight.numpy(), value)
    ]
    assert not frozen, f"weights without a gradient: {frozen}"


def _check_mixed_precision(
    layer_cls, init_kwargs, inputs, call, float32_sublayers, float32_outputs
):
    layer = layer_cls(**init_kwargs, dtype=MIXED)
    outputs = tree.flatten(call(layer, inputs))
    for sublayer in layer._flatten_layers(include_self=False):
        expected = "float32" if sublayer.name in float32_sublayers else MIXED
        assert sublayer.dtype_policy.name == expected, (sublayer.path, sublayer.dtype_policy)
    assert all(weight.dtype == "float32" for weight in layer.weights)
    for index, output in enumerate(outputs):
        if _is_float(output):
            expected = "float32" if index in float32_outputs else "float16"
            assert keras.backend.standardize_dtype(output.dtype) == expected, (index, output.dtype)


def _check_saving(layer, inputs, call, tmp_path):
    model = LayerCall(layer, call.__name__)
    outputs = model(inputs)
    path = tmp_path / "layer.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert type(restored.layer) is type(layer)
    for output, restored_output in zip(outputs, restored(inputs), strict=True):
        np.testing.assert_array_equal(np.asarray(output), np.asarray(restored_output))
