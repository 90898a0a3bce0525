"""GRU and LSTM recurrences over whole sequences with the input projection hoisted.

`keras.layers.RNN(cell)` on the TensorFlow backend calls `cell.call` once per time step
inside a `tf.while_loop`, so every step multiplies its input by the input kernel (and the
backward pass does the same per step). Only the recurrent product depends on the previous
state: `run_cell` projects the whole sequence at once, X W + b for all time steps in one
matmul (as cuDNN does), and leaves only h_{t-1} U and the element-wise gates inside the
loop. It reads the cell's own variables, so the weights, their paths in checkpoints and the
results (to float rounding) are those of `keras.layers.RNN(cell)` and
`keras.layers.Bidirectional`; `step()`-style callers keep using the cell itself.

Plain `tf.while_loop` + `tf.TensorArray`: no XLA, no `py_function`, so exported graphs run
on stock TensorFlow Serving.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


def _check_cell(cell) -> None:
    """Raises ValueError unless `cell` is a built GRUCell or LSTMCell without dropout."""
    if not isinstance(cell, (keras.layers.GRUCell, keras.layers.LSTMCell)):
        raise ValueError(
            f"Expected a keras.layers.GRUCell or LSTMCell. Received: cell={type(cell).__name__}"
        )
    if cell.dropout or cell.recurrent_dropout:
        raise ValueError(
            "Expected a cell without dropout or recurrent_dropout (not hoisted). Received: "
            f"dropout={cell.dropout}, recurrent_dropout={cell.recurrent_dropout}"
        )
    if not cell.built:
        raise ValueError(f"Expected a built cell. Received: cell={cell.name} (not built)")


def _gru_step_fn(cell, dtype):
    """The GRU recurrence of Cho et al. (2014), eqs. (5)-(8), as Keras `GRUCell` computes it.

    With the input part x_t W + b_x precomputed as `x` `(batch, 3 * units)`, gates in the
    order z, r, h, sigma = `cell.recurrent_activation`, phi = `cell.activation`:

        z_t = sigma(x_z + h_{t-1} U_z + b_z)
        r_t = sigma(x_r + h_{t-1} U_r + b_r)
        h~_t = phi(x_h + r_t * (h_{t-1} U_h + b_h))    (reset_after=True, the default)
        h~_t = phi(x_h + (r_t * h_{t-1}) U_h)           (reset_after=False)
        h_t = z_t * h_{t-1} + (1 - z_t) * h~_t

    Returns `step(x, [h]) -> (h, [h])`.
    """
    units = cell.units
    recurrent_kernel = ops.cast(cell.recurrent_kernel, dtype)  # (units, 3 * units)
    activation, recurrent_activation = cell.activation, cell.recurrent_activation
    recurrent_bias = None
    if cell.use_bias and cell.reset_after:
        recurrent_bias = ops.cast(cell.bias, dtype)[1]  # (3 * units,)

    # tf.split, not slicing: one op per step and one concat in the gradient, where slices
    # would each pad their gradient back to full width.
    if cell.reset_after:

        def step(x, states):
            (h,) = states
            inner = tf.matmul(h, recurrent_kernel)  # (batch, 3 * units)
            if recurrent_bias is not None:
                inner = tf.nn.bias_add(inner, recurrent_bias)
            x_zr, x_h = tf.split(x, [2 * units, units], axis=1)
            inner_zr, inner_h = tf.split(inner, [2 * units, units], axis=1)
            z, r = tf.split(recurrent_activation(x_zr + inner_zr), 2, axis=1)
            candidate = activation(x_h + r * inner_h)
            h = candidate + z * (h - candidate)  # = z * h + (1 - z) * candidate
            return h, [h]

        return step

    gates_kernel = recurrent_kernel[:, : 2 * units]  # (units, 2 * units): z, r
    candidate_kernel = recurrent_kernel[:, 2 * units :]  # (units, units)

    def step_reset_before(x, states):
        (h,) = states
        x_zr, x_h = tf.split(x, [2 * units, units], axis=1)
        z, r = tf.split(recurrent_activation(x_zr + tf.matmul(h, gates_kernel)), 2, axis=1)
        candidate = activation(x_h + tf.matmul(r * h, candidate_kernel))
        h = candidate + z * (h - candidate)  # = z * h + (1 - z) * candidate
        return h, [h]

    return step_reset_before


def _lstm_step_fn(cell, dtype):
    """The LSTM of Hochreiter & Schmidhuber (1997) with the forget gate of Gers et al. (2000).

    With x_t W + b precomputed as `x` `(batch, 4 * units)`, gates in Keras' order i, f, c, o,
    sigma = `cell.recurrent_activation`, phi = `cell.activation`:

        [a_i, a_f, a_c, a_o] = x + h_{t-1} U
        i_t = sigma(a_i), f_t = sigma(a_f), o_t = sigma(a_o)
        c_t = f_t * c_{t-1} + i_t * phi(a_c)
        h_t = o_t * phi(c_t)

    Returns `step(x, [h, c]) -> (h, [h, c])`.
    """
    recurrent_kernel = ops.cast(cell.recurrent_kernel, dtype)  # (units, 4 * units)
    activation, recurrent_activation = cell.activation, cell.recurrent_activation

    def step(x, states):
        h, c = states
        gates = x + tf.matmul(h, recurrent_kernel)  # (batch, 4 * units)
        i, f, g, o = tf.split(gates, 4, axis=1)  # 4 x (batch, units)
        c = recurrent_activation(f) * c + recurrent_activation(i) * activation(g)
        h = recurrent_activation(o) * activation(c)
        return h, [h, c]

    return step


def _input_projection(cell, dtype):
    """Returns `(kernel, bias)`: W `(features, gates * units)` and b_x or None."""
    kernel = ops.cast(cell.kernel, dtype)
    if not cell.use_bias:
        return kernel, None
    bias = ops.cast(cell.bias, dtype)
    if isinstance(cell, keras.layers.GRUCell) and cell.reset_after:
        bias = bias[0]  # (2, 3 * units): row 0 is the input bias, row 1 the recurrent one
    return kernel, bias


def run_cell(
    cell, inputs, initial_state=None, mask=None, go_backwards=False, zero_output_for_mask=False
):
    """Runs a built GRU or LSTM cell over a sequence, input projection hoisted out of the loop.

    Equivalent to `keras.layers.RNN(cell, return_sequences=True, return_state=True)` (and,
    with `go_backwards=True`, to the backward layer of `keras.layers.Bidirectional` after its
    flip back to input order), including masking: a masked step keeps the previous states and
    outputs the previous step's output (zeros before the first unmasked step), or zeros with
    `zero_output_for_mask=True` (which `keras.layers.Bidirectional` forces on both layers).

    The loop computes the cell's recurrence (see `_gru_step_fn`, `_lstm_step_fn`) with the
    input term X W + b `(time, batch, gates * units)` computed by one matmul before it, so
    the loop body only multiplies h_{t-1} `(batch, units)` by U `(units, gates * units)`.
    Variables are cast to `cell.compute_dtype` (float16 under `mixed_float16`), as Keras'
    autocasting does.

    Args:
        cell: A built `keras.layers.GRUCell` or `keras.layers.LSTMCell` without dropout.
        inputs: `(batch, time, features)`.
        initial_state: List of `(batch, units)` states (`[h]` for GRU, `[h, c]` for LSTM);
            zeros when None.
        mask: Optional `(batch, time)` bool, True on steps to run.
        go_backwards: Read the sequence from the last step to the first. Outputs are still
            returned in input order: `outputs[:, t]` is the state after reading x_T..x_t.
        zero_output_for_mask: Output zeros at masked steps instead of the previous output.

    Returns:
        `(outputs, final_states)`: `(batch, time, units)` outputs and the list of final
        `(batch, units)` states, all in `cell.compute_dtype`.
    """
    _check_cell(cell)
    dtype = cell.compute_dtype
    units = cell.units
    inputs = ops.cast(inputs, dtype)
    batch = tf.shape(inputs)[0]
    time_steps = tf.shape(inputs)[1]
    if initial_state is None:
        state_count = 2 if isinstance(cell, keras.layers.LSTMCell) else 1
        initial_state = [tf.zeros((batch, units), dtype) for _ in range(state_count)]
    states = [ops.cast(state, dtype) for state in initial_state]
    if isinstance(cell, keras.layers.LSTMCell):
        step = _lstm_step_fn(cell, dtype)
    else:
        step = _gru_step_fn(cell, dtype)

    kernel, bias = _input_projection(cell, dtype)
    time_major = tf.transpose(inputs, (1, 0, 2))  # (batch, time, f) -> (time, batch, f)
    if go_backwards:
        time_major = tf.reverse(time_major, axis=[0])
    projected = tf.matmul(
        tf.reshape(time_major, (-1, tf.shape(time_major)[-1])), kernel
    )  # (time * batch, gates * units)
    if bias is not None:
        projected = tf.nn.bias_add(projected, bias)
    projected = tf.reshape(projected, (time_steps, batch, kernel.shape[-1]))
    # projected: (time * batch, gates * units) -> (time, batch, gates * units)
    projected_array = tf.TensorArray(dtype, size=time_steps).unstack(projected)
    output_array = tf.TensorArray(dtype, size=time_steps, element_shape=(None, units))

    mask_array = None
    if mask is not None:
        mask = tf.transpose(tf.cast(mask, tf.bool))[:, :, None]  # (time, batch, 1)
        if go_backwards:
            mask = tf.reverse(mask, axis=[0])
        mask_array = tf.TensorArray(tf.bool, size=time_steps).unstack(mask)

    def masked_states(keep, new_states, states):
        if keep is None:
            return new_states
        return [tf.where(keep, new, old) for new, old in zip(new_states, states, strict=True)]

    if mask is None or zero_output_for_mask:
        # Outputs do not feed back, so masked ones are zeroed after the loop.

        def body(time, output_array, *states):
            output, new_states = step(projected_array.read(time), list(states))
            keep = None if mask_array is None else mask_array.read(time)  # (batch, 1)
            new_states = masked_states(keep, new_states, states)
            return (time + 1, output_array.write(time, output), *new_states)

        loop_vars = (tf.constant(0), output_array, *states)
    else:
        # A masked step outputs the previous step's output (zeros before any real step).

        def body(time, output_array, previous_output, *states):
            output, new_states = step(projected_array.read(time), list(states))
            keep = mask_array.read(time)  # (batch, 1), broadcast over units
            output = tf.where(keep, output, previous_output)
            new_states = masked_states(keep, new_states, states)
            return (time + 1, output_array.write(time, output), output, *new_states)

        loop_vars = (tf.constant(0), output_array, tf.zeros_like(states[0]), *states)

    results = tf.while_loop(
        lambda time, *_: time < time_steps,
        body,
        loop_vars,
        maximum_iterations=time_steps,
        swap_memory=True,
    )
    outputs = results[1].stack()  # (time, batch, units)
    final_states = list(results[len(loop_vars) - len(states) :])
    if mask is not None and zero_output_for_mask:
        outputs = tf.where(mask, outputs, tf.zeros((), dtype))  # (time, batch, units)
    if go_backwards:
        outputs = tf.reverse(outputs, axis=[0])
    outputs = tf.transpose(outputs, (1, 0, 2))  # (time, batch, units) -> (batch, time, units)
    outputs.set_shape((inputs.shape[0], inputs.shape[1], units))
    for state in final_states:
        state.set_shape((inputs.shape[0], units))
    return outputs, final_states
