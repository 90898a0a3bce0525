"""A stack of recurrent cells that runs one step at a time or over whole sequences."""

from __future__ import annotations

import keras

from nmt_keras.layers.recurrence import run_cell

RNN_CELLS = {"gru": keras.layers.GRUCell, "lstm": keras.layers.LSTMCell}


def check_rnn(rnn: str) -> None:
    """Raises ValueError unless `rnn` names a supported cell."""
    if rnn not in RNN_CELLS:
        raise ValueError(f"Expected rnn to be one of {', '.join(RNN_CELLS)}. Received: rnn={rnn}")


def states_per_layer(rnn: str) -> int:
    """Number of state tensors one layer of `rnn` carries: 1 for GRU (h), 2 for LSTM (h, c)."""
    return 2 if rnn == "lstm" else 1


@keras.saving.register_keras_serializable(package="nmt_keras")
class RNNStack(keras.layers.Layer):
    """`num_layers` stacked GRU or LSTM cells with dropout and optional residuals.

    The same cells serve both paths, so teacher forcing and inference share weights:
    `step()` advances every layer by one time step (decoders that attend inside the
    recurrence loop over it), `call()` runs each layer over a whole sequence (the fast path
    when nothing inside the loop depends on attention) with `recurrence.run_cell`, which
    computes the input projection X W + b of all time steps in one matmul before the loop.
    `sequence_layers` (`keras.layers.RNN` over the same cells) compute the same thing step
    by step; they are kept so that checkpoints keep their layout.

    States are a flat list, layer by layer: `[h_1, h_2, ...]` for GRU and
    `[h_1, c_1, h_2, c_2, ...]` for LSTM, each `(batch, units)`.

    Args:
        units: Hidden size of every layer.
        num_layers: Stacked layers.
        rnn: `"gru"` or `"lstm"`.
        dropout: Dropout rate between layers (on the input of every layer but the first).
        residual: Add each layer's input to its output from the second layer on.

    Example:
        >>> import numpy as np
        >>> from nmt_keras.layers import RNNStack
        >>> stack = RNNStack(units=16, num_layers=2, rnn="gru")
        >>> inputs = np.ones((2, 3, 8), "float32")
        >>> states = [np.zeros((2, 16), "float32")] * 2  # one per layer
        >>> outputs, final_states = stack(inputs, states)
        >>> tuple(outputs.shape), len(final_states)
        ((2, 3, 16), 2)

        `step()` advances one time step and gives the same result:

        >>> output, states = stack.step(inputs[:, 0], states)
        >>> output, states = stack.step(inputs[:, 1], states)
        >>> output, states = stack.step(inputs[:, 2], states)
        >>> bool(np.allclose(output, outputs[:, -1], atol=1e-6))
        True
    """

    def __init__(
        self,
        units: int,
        num_layers: int = 1,
        rnn: str = "gru",
        dropout: float = 0.0,
        residual: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_rnn(rnn)
        if num_layers < 1:
            raise ValueError(f"Expected num_layers >= 1. Received: num_layers={num_layers}")
        self.units = units
        self.num_layers = num_layers
        self.rnn = rnn
        self.dropout = dropout
        self.residual = residual
        # The outputs keep the time mask given to `call()`.
        self.supports_masking = True
        self.cells = [
            RNN_CELLS[rnn](units, dtype=self.dtype_policy, name=f"cell_{index}")
            for index in range(num_layers)
        ]
        self.sequence_layers = [
            keras.layers.RNN(
                cell,
                return_sequences=True,
                return_state=True,
                dtype=self.dtype_policy,
                name=f"rnn_{index}",
            )
            for index, cell in enumerate(self.cells)
        ]
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="dropout")

    @property
    def states_per_layer(self) -> int:
        """State tensors per layer (1 for GRU, 2 for LSTM)."""
        return states_per_layer(self.rnn)

    def build(self, input_shape):
        """Builds every cell; layer 0 reads `input_shape[-1]` features, the rest `units`."""
        feature_dim = input_shape[-1]
        for cell in self.cells:
            cell.build((None, feature_dim))
            feature_dim = self.units
        for layer in self.sequence_layers:
            layer.built = True

    def _layer_states(self, states: list, index: int) -> list:
        width = self.states_per_layer
        return list(states[index * width : (index + 1) * width])

    def _residual(self, index: int, inputs, outputs):
        if self.residual and index > 0:
            return inputs + outputs
        return outputs

    def step(self, inputs, states: list, training=None):
        """Advances every layer by one time step.

        Args:
            inputs: `(batch, features)`.
            states: Flat list of `(batch, units)` states, layer by layer.
            training: Whether dropout is active.

        Returns:
            `(output, new_states)`: the top layer's output `(batch, units)` and the flat
            list of new states.
        """
        new_states = []
        for index, cell in enumerate(self.cells):
            layer_inputs = inputs if index == 0 else self.dropout_layer(inputs, training=training)
            output, layer_states = cell(
                layer_inputs, self._layer_states(states, index), training=training
            )
            inputs = self._residual(index, inputs, output)
            new_states.extend(layer_states)
        return inputs, new_states

    def call(self, inputs, states: list, mask=None, training=None):
        """Runs every layer over a whole sequence.

        Args:
            inputs: `(batch, time, features)`.
            states: Flat list of initial `(batch, units)` states, layer by layer.
            mask: Optional `(batch, time)` bool; masked steps keep the previous state.
            training: Whether dropout is active.

        Returns:
            `(outputs, final_states)`: top-layer outputs `(batch, time, units)` and the
            flat list of final states.
        """
        final_states = []
        for index, cell in enumerate(self.cells):
            layer_inputs = inputs if index == 0 else self.dropout_layer(inputs, training=training)
            outputs, layer_states = run_cell(
                cell, layer_inputs, self._layer_states(states, index), mask=mask
            )
            inputs = self._residual(index, inputs, outputs)
            final_states.extend(layer_states)
        return inputs, final_states

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            units=self.units,
            num_layers=self.num_layers,
            rnn=self.rnn,
            dropout=self.dropout,
            residual=self.residual,
        )
        return config
