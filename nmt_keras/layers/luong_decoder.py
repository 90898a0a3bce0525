"""The attention decoder of Luong et al. (2015): step the RNN, then attend."""

from __future__ import annotations

import keras
from keras import ops

from nmt_keras.layers.luong_attention import LuongAttention
from nmt_keras.layers.positionwise import positionwise_dense
from nmt_keras.layers.rnn_decoder import RNNDecoder


@keras.saving.register_keras_serializable(package="nmt_keras")
class LuongDecoder(RNNDecoder):
    """An RNN decoder that attends from the current state after each step.

    Luong, Pham, Manning (2015), "Effective Approaches to Attention-based Neural Machine
    Translation", sec. 3: h_t = RNN(h_{t-1}, x_t); a_t = align(h_t, h_s) (eq. 7, the
    score of eq. 8); c_t = sum_s a_t(s) h_s; the attentional vector
    h~_t = tanh(W_c [c_t; h_t]) (eq. 5) and p(y_t | y_<t, x) = softmax(W_s h~_t) (eq. 6).

    With input feeding (sec. 3.3) x_t = [E y_{t-1}; h~_{t-1}], so teacher forcing scans
    `step()`. Without it x_t = E y_{t-1}: the RNN runs over the whole target at once and
    attention is computed for all target positions in parallel, the fast path.

    Attention is global or local (sec. 3.2, see `LuongAttention`). Local-m places its
    window at the target position t of the token a step predicts (1 for y_1, the first
    step), which the decoder state carries as `"position"`, int32 `(batch, 1)`,
    incremented by each step; teacher forcing uses positions 1 .. tgt_len.

    Args:
        score_mode: `"dot"`, `"general"` or `"concat"`.
        score_scale: Learned scalar on the scores.
        attention_units: Hidden size of the concat score.
        input_feeding: Feed h~_{t-1} into the next step.
        window_mode: `"global"`, `"local-m"` or `"local-p"`.
        half_window: Half-width D of a local window.
        Others: see `RNNDecoder`.

    Example:
        >>> import numpy as np
        >>> source = np.array([[1, 5, 7, 2], [1, 9, 2, 0]])  # 0-padded ids
        >>> target_in = np.array([[1, 4, 6], [1, 8, 0]])  # <s> y_1 .. y_{n-1}
        >>> from nmt_keras.layers import Encoder, LuongDecoder
        >>> encoder = Encoder(vocab_size=20, embedding_dim=8, units=16)
        >>> decoder = LuongDecoder(
        ...     vocab_size=30, embedding_dim=8, units=16, score_mode="general", input_feeding=True
        ... )
        >>> values, mask, summary, initial_state = encoder(source)
        >>> memory = decoder.prepare_memory(values, mask, summary)
        >>> logits, attention = decoder(  # teacher forcing
        ...     target_in, memory, initial_state, return_attention_scores=True
        ... )
        >>> tuple(logits.shape), tuple(attention.shape)
        ((2, 3, 30), (2, 3, 4))

        Inference runs `step()` one token at a time, as a search does:

        >>> state = decoder.initial_state(memory, initial_state)
        >>> step_logits, state, weights = decoder.step(target_in[:, 0], state, memory)
        >>> bool(np.allclose(step_logits, logits[:, 0], atol=1e-5))
        True
    """

    def __init__(
        self,
        *args,
        score_mode: str = "general",
        score_scale: bool = False,
        attention_units: int = 256,
        input_feeding: bool = False,
        window_mode: str = "global",
        half_window: int = 10,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.score_mode = score_mode
        self.score_scale = score_scale
        self.attention_units = attention_units
        self.input_feeding = input_feeding
        self.window_mode = window_mode
        self.half_window = half_window
        self.attention = LuongAttention(
            score_mode,
            score_scale=score_scale,
            units=attention_units if score_mode == "concat" else None,
            window_mode=window_mode,
            half_window=half_window,
            dtype=self.dtype_policy,
            name="attention",
        )
        self.attentional = keras.layers.Dense(
            self.units,
            activation="tanh",
            use_bias=False,
            dtype=self.dtype_policy,
            name="attentional",
        )

    @property
    def _aligns_by_position(self) -> bool:
        """Whether the attention window follows the target position (local-m)."""
        return self.window_mode == "local-m"

    def initial_state(self, memory: dict, rnn_states: list) -> dict:
        """Adds h~_0 = 0 `(batch, units)` with input feeding, position 1 with local-m."""
        state = super().initial_state(memory, rnn_states)
        batch = ops.shape(memory["values"])[0]
        if self.input_feeding:
            state["feed"] = ops.zeros((batch, self.units), dtype=self.compute_dtype)
        if self._aligns_by_position:
            state["position"] = ops.ones((batch, 1), dtype="int32")
        return state

    def _attend(self, outputs, memory: dict, positions=None, hard_attention=False):
        """h~ = tanh(W_c [c; h]) for RNN outputs `(batch, tgt_len, units)`.

        Args:
            outputs: RNN outputs `(batch, tgt_len, units)`, the queries.
            memory: From `prepare_memory()`.
            positions: Target positions `(batch, tgt_len)` or `(tgt_len,)` for local-m,
                else None.
            hard_attention: Attend to the argmax source position only.

        Returns:
            `(attentional, weights)`: `(batch, tgt_len, units)` and
            `(batch, tgt_len, src_len)`.
        """
        context, weights = self.attention(
            outputs,
            memory["values"],
            mask=memory["mask"],
            key=memory["keys"],
            positions=positions,
            return_attention_scores=True,
            hard=hard_attention,
        )
        attentional = positionwise_dense(
            self.attentional, ops.concatenate([context, outputs], axis=-1)
        )
        return attentional, weights

    def _recur(self, embedded, state: dict, memory: dict, training=None, hard_attention=False):
        inputs = embedded
        if self.input_feeding:
            inputs = ops.concatenate([embedded, state["feed"]], axis=-1)
        output, rnn_states = self.rnn_stack.step(inputs, state["rnn"], training=training)
        attentional, weights = self._attend(
            ops.expand_dims(output, 1), memory, state.get("position"), hard_attention
        )
        attentional, weights = attentional[:, 0], weights[:, 0]  # drop the time axis
        new_state = {"rnn": rnn_states}
        if self.input_feeding:
            new_state["feed"] = attentional
        if self._aligns_by_position:
            new_state["position"] = state["position"] + 1
        return attentional, new_state, weights

    def _teacher_forced_recurrence(self, embedded, state: dict, memory: dict, training=None):
        if self.input_feeding:
            return self._scan(embedded, state, memory, training)
        outputs, _ = self.rnn_stack(embedded, state["rnn"], training=training)
        positions = None
        if self._aligns_by_position:
            # The step at time i predicts y_{i+1}: positions 1 .. tgt_len, (tgt_len,).
            positions = ops.arange(1, ops.shape(embedded)[1] + 1, dtype="int32")
        return self._attend(outputs, memory, positions)

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            score_mode=self.score_mode,
            score_scale=self.score_scale,
            attention_units=self.attention_units,
            input_feeding=self.input_feeding,
            window_mode=self.window_mode,
            half_window=self.half_window,
        )
        return config
