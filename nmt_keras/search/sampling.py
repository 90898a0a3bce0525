"""Ancestral sampling with temperature and top-k filtering over a model-agnostic `next_fn`."""

from typing import Any

import tensorflow as tf

from nmt_keras.search.next_fn import NextFn
from nmt_keras.search.result import SearchResult
from nmt_keras.search.token_loop import TokenSelector, token_by_token_search


def _token_sampler(temperature: float, top_k: int, seed: int | None) -> TokenSelector:
    """Returns a `select_tokens` that draws every token from the tempered top-k distribution.

    The sampling distribution is `softmax(log_probs / temperature)` restricted to the `top_k`
    most probable tokens (top-k sampling, Fan et al. 2018, "Hierarchical Neural Story
    Generation"), renormalised; `top_k=0` keeps the whole vocabulary.
    """
    base_seed = None if seed is None else tf.constant([seed, 0], tf.int64)

    def draw(logits: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        """float32 `(batch, classes)` -> int32 `(batch,)` class drawn in every row."""
        if base_seed is None:
            samples = tf.random.categorical(logits, 1, dtype=tf.int32)
        else:
            # A distinct, reproducible seed per step: the same seed replays the same draws.
            step_seed = tf.random.experimental.stateless_fold_in(base_seed, step)
            samples = tf.random.stateless_categorical(logits, 1, step_seed, dtype=tf.int32)
        return samples[:, 0]

    def select_tokens(log_probs: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        logits = log_probs / temperature  # (batch, vocab)
        if top_k == 0:
            return draw(logits, step)
        k = tf.minimum(top_k, tf.shape(logits)[-1])
        top_logits, top_tokens = tf.math.top_k(logits, k=k)  # (batch, k) each
        return tf.gather(top_tokens, draw(top_logits, step), batch_dims=1)

    return select_tokens


def sample(
    next_fn: NextFn,
    initial_state: Any,
    *,
    batch_size: int | tf.Tensor,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    max_length: int | tf.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    seed: int | None = None,
) -> SearchResult:
    """Decodes by drawing every token from the model's distribution (ancestral sampling).

    At each step the token is drawn from `softmax(logits / temperature)`, restricted to the
    `top_k` most probable tokens and renormalised when `top_k > 0` (top-k sampling, Fan et
    al. 2018, "Hierarchical Neural Story Generation"). The loop is the one greedy search
    runs (`token_by_token_search`): same stopping, PAD after EOS, core TensorFlow ops only.

    Args:
        next_fn: `next_fn(tokens, state, step) -> (logits, state, attention)`; see
            `greedy_search`.
        initial_state: The `state` passed to `next_fn` at step 0.
        batch_size: int32 scalar, the number of sequences.
        bos_id: Token fed to `next_fn` at step 0.
        eos_id: Token that ends a sequence.
        pad_id: Token emitted after the EOS.
        max_length: int32 scalar >= 1, the maximum number of generated tokens including EOS.
        temperature: Divides the logits before sampling: below 1 sharpens the distribution
            (towards greedy search), above 1 flattens it.
        top_k: Samples among the `top_k` most probable tokens; 0 samples from the whole
            vocabulary.
        seed: With a seed, sampling is stateless (`tf.random.stateless_categorical`) and the
            same seed reproduces the same tokens; None draws anew at every call.

    Returns:
        A `SearchResult` with `tokens (batch, time)`, `lengths (batch,)`, `attention (batch,
        time, src_len)` or None, and `scores (batch,)`: the summed log-probabilities of the
        sampled tokens under the model's own distribution, `log_softmax(logits)`, without
        temperature or top-k, so that they compare with greedy and beam search scores.

    Raises:
        ValueError: If `temperature <= 0`, `top_k < 0`, or `max_length` is a Python int
            smaller than 1 or is not a scalar.
    """
    if temperature <= 0:
        raise ValueError(f"Expected temperature > 0. Received: temperature={temperature}")
    if top_k < 0:
        raise ValueError(f"Expected top_k >= 0. Received: top_k={top_k}")
    return token_by_token_search(
        next_fn,
        initial_state,
        select_tokens=_token_sampler(temperature, top_k, seed),
        batch_size=batch_size,
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=pad_id,
        max_length=max_length,
    )
