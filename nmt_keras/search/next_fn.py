"""The contract between a search and the model it drives: `next_fn`."""

from collections.abc import Callable
from typing import Any

import tensorflow as tf

#: `next_fn(tokens, state, step) -> (logits, state, attention)`.
#:
#: `tokens` is int32 `(batch,)`, the previously emitted tokens (BOS at step 0); `state` is any
#: `tf.nest` structure of tensors with batch as dimension 0 whose last dimension is constant
#: across steps; `step` is an int32 scalar. `logits` is float `(batch, vocab)` of any float
#: dtype; `attention` is float `(batch, src_len)`, or None for every step.
#:
#: Searches reorder, repeat and drop rows of `state` between calls (beam search reorders and
#: repeats hypotheses; greedy search and sampling drop the sequences that have ended), so
#: every per-sequence tensor a model needs must live in `state`, not in a closure.
NextFn = Callable[[tf.Tensor, Any, tf.Tensor], tuple[tf.Tensor, Any, tf.Tensor | None]]
