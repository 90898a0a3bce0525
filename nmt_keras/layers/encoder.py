"""The recurrent encoder shared by every RNN model family."""

from __future__ import annotations

import keras
from keras import ops

from nmt_keras.layers.recurrence import run_cell
from nmt_keras.layers.rnn_stack import RNN_CELLS, check_rnn, states_per_layer
from nmt_keras.rules import check_bidirectional_units


@keras.saving.register_keras_serializable(package="nmt_keras")
class Encoder(keras.layers.Layer):
    """Embedding and stacked (bidirectional) GRU/LSTM layers, with a bridge to the decoder.

    Reads the source sentence x_1..x_S into annotations h_1..h_S (Bahdanau et al. 2015,
    sec. 3.2: forward and backward states concatenated) and summarises it in the final
    states. The bridge maps that summary to the decoder's initial state,
    s_0 = tanh(W_s [h->_S; h<-_1]) (Bahdanau et al. 2015, appendix A.2.2; Cho et al. 2014
    eq. in sec. 2.2 for the fixed-context model), one state per decoder layer.

    Each `keras.layers.RNN` / `keras.layers.Bidirectional` in `rnn_layers` holds the cells'
    weights (so checkpoints keep their layout), but the sequences run through
    `recurrence.run_cell`, which projects all time steps' inputs in one matmul before the
    recurrence loop; the results are those of the Keras layers.

    Args:
        vocab_size: Source vocabulary size (id 0 is padding).
        embedding_dim: Token embedding size.
        units: Output feature size; a bidirectional layer uses `units // 2` per direction.
        num_layers: Stacked RNN layers.
        rnn: `"gru"` or `"lstm"`.
        bidirectional: Read the source in both directions.
        dropout: Dropout on embeddings and between layers.
        residual: Residual connections from the second layer on.
        decoder_units: Hidden size of the decoder the bridge initialises.
        decoder_layers: Decoder layers the bridge initialises.

    Call args:
        tokens: `(batch, src_len)` int source ids, 0-padded.
        training: Whether dropout is active.

    Returns:
        A tuple `(outputs, mask, summary, decoder_state)`: annotations
        `(batch, src_len, units)`, the `(batch, src_len)` bool mask of real tokens, the
        sentence summary `(batch, units)` (final hidden states of the top layer) and the
        decoder's initial states, a flat list of `(batch, decoder_units)` tensors
        (`[h_1, ...]` for GRU, `[h_1, c_1, ...]` for LSTM).

    Example:
        >>> import numpy as np
        >>> from nmt_keras.layers import Encoder
        >>> encoder = Encoder(vocab_size=20, embedding_dim=8, units=16, rnn="lstm")
        >>> tokens = np.array([[1, 5, 7, 2], [1, 9, 2, 0]])  # 0-padded ids
        >>> outputs, mask, summary, decoder_state = encoder(tokens)
        >>> tuple(outputs.shape), np.asarray(mask).tolist()[1], tuple(summary.shape)
        ((2, 4, 16), [True, True, True, False], (2, 16))
        >>> [tuple(state.shape) for state in decoder_state]  # LSTM: [h, c]
        [(2, 16), (2, 16)]
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        units: int,
        num_layers: int = 1,
        rnn: str = "gru",
        bidirectional: bool = True,
        dropout: float = 0.0,
        residual: bool = False,
        decoder_units: int | None = None,
        decoder_layers: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_rnn(rnn)
        check_bidirectional_units(units, bidirectional)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.num_layers = num_layers
        self.rnn = rnn
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.residual = residual
        self.decoder_units = decoder_units or units
        self.decoder_layers = decoder_layers

        self.embedding = keras.layers.Embedding(
            vocab_size, embedding_dim, mask_zero=True, dtype=self.dtype_policy, name="embedding"
        )
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="dropout")
        direction_units = units // 2 if bidirectional else units
        self.rnn_layers = []
        for index in range(num_layers):
            layer = RNN_CELLS[rnn](direction_units, dtype=self.dtype_policy, name=f"cell_{index}")
            layer = keras.layers.RNN(
                layer,
                return_sequences=True,
                return_state=True,
                dtype=self.dtype_policy,
                name=f"rnn_{index}",
            )
            if bidirectional:
                layer = keras.layers.Bidirectional(
                    layer, dtype=self.dtype_policy, name=f"birnn_{index}"
                )
            self.rnn_layers.append(layer)
        self.bridges = [
            keras.layers.Dense(
                self.decoder_units,
                activation="tanh",
                dtype=self.dtype_policy,
                name=f"bridge_{index}",
            )
            for index in range(decoder_layers * states_per_layer(rnn))
        ]

    def build(self, tokens_shape):
        """Builds the embedding, the RNN layers and the bridges for `(batch, src_len)` ids."""
        self.embedding.build(tokens_shape)
        features_shape = (*tokens_shape, self.embedding_dim)
        for layer in self.rnn_layers:
            with keras.name_scope(layer.name, caller=layer):
                layer.build(features_shape)
            features_shape = (*tokens_shape, self.units)
        for bridge in self.bridges:
            bridge.build((tokens_shape[0], self.units))

    def _summaries(self, final_states: list) -> list:
        """Joins both directions' final states: `[h]` (GRU) or `[h, c]` (LSTM), `(batch, units)`."""
        if not self.bidirectional:
            return final_states
        width = states_per_layer(self.rnn)
        forward, backward = final_states[:width], final_states[width:]
        return [ops.concatenate([f, b], axis=-1) for f, b in zip(forward, backward, strict=True)]

    def _run_layer(self, layer, inputs, mask):
        """Runs one (bidirectional) layer like `layer(inputs, mask=mask)` would.

        Args:
            layer: A `keras.layers.RNN` or `keras.layers.Bidirectional` of `rnn_layers`.
            inputs: `(batch, src_len, features)`.
            mask: `(batch, src_len)` bool.

        Returns:
            `(outputs, final_states)`: `(batch, src_len, units)` (forward and backward
            concatenated) and the final states, forward ones first.
        """
        if not self.bidirectional:
            return run_cell(
                layer.cell, inputs, mask=mask, zero_output_for_mask=layer.zero_output_for_mask
            )
        # Bidirectional sets zero_output_for_mask on both: padded steps output zeros.
        forward, forward_states = run_cell(
            layer.forward_layer.cell,
            inputs,
            mask=mask,
            zero_output_for_mask=layer.forward_layer.zero_output_for_mask,
        )
        backward, backward_states = run_cell(
            layer.backward_layer.cell,
            inputs,
            mask=mask,
            go_backwards=True,
            zero_output_for_mask=layer.backward_layer.zero_output_for_mask,
        )
        outputs = ops.concatenate([forward, backward], axis=-1)  # (batch, src_len, units)
        return outputs, forward_states + backward_states

    def call(self, tokens, training=None):
        """Encodes `(batch, src_len)` ids; see the class docstring for the outputs."""
        mask = ops.not_equal(tokens, 0)  # (batch, src_len)
        outputs = self.dropout_layer(self.embedding(tokens), training=training)
        for index, layer in enumerate(self.rnn_layers):
            layer_inputs = outputs if index == 0 else self.dropout_layer(outputs, training=training)
            layer_outputs, final_states = self._run_layer(layer, layer_inputs, mask)
            if self.residual and index > 0:
                layer_outputs = layer_outputs + outputs
            outputs = layer_outputs
        summaries = self._summaries(final_states)
        width = states_per_layer(self.rnn)
        decoder_state = [
            bridge(summaries[index % width]) for index, bridge in enumerate(self.bridges)
        ]
        return outputs, mask, summaries[0], decoder_state

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            num_layers=self.num_layers,
            rnn=self.rnn,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
            residual=self.residual,
            decoder_units=self.decoder_units,
            decoder_layers=self.decoder_layers,
        )
        return config
