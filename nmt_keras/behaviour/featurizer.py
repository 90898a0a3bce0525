"""Raw customer events to the integer features a behaviour model reads, in the graph.

One `EventFeaturizer` serves the `tf.data` pipeline, evaluation and the exported
SavedModel, so the item vocabulary and the time and amount buckets cannot drift between
training and serving (as the tokenizer does for translation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from nmt_keras.behaviour.purchase_statistics import purchase_statistics

#: Id of a padding event (an empty item code) in every feature.
PAD_ID = 0
#: Item id of a code missing from the vocabulary; vocabulary items start at 2.
UNKNOWN_ITEM_ID = 1
#: Ids of the behaviour feature.
PURCHASE_ID = 1
CANCELLATION_ID = 2
#: Buckets of each logarithmic feature, padding included: 0 is padding, 1..15 values.
NUM_BUCKETS = 16
#: The integer features of one event, in the order the model reads them.
FEATURE_NAMES = ("items", "behaviours", "gaps", "ages", "quantities", "prices")


def log2_bucket(values):
    """Buckets non-negative amounts by powers of two: 1 + clip(floor(log2(1 + v)), 0, 14).

    Args:
        values: float `(batch, history_len)`; negative, NaN or infinite values land in a
            bucket at an end of the range, never outside it.

    Returns:
        int32 `(batch, history_len)` in [1, NUM_BUCKETS - 1].
    """
    exponent = tf.math.floor(tf.math.log(1.0 + tf.maximum(values, 0.0)) / np.log(2.0))
    finite = tf.where(tf.math.is_finite(exponent), exponent, float(NUM_BUCKETS))
    # Clipped as floats before the cast, so no value overflows int32.
    return 1 + tf.cast(tf.clip_by_value(finite, 0.0, float(NUM_BUCKETS - 2)), tf.int32)


class EventFeaturizer(tf.Module):
    """Maps raw event histories to item ids, behaviour types and time and amount buckets.

    A history row is `(history_len,)` events, oldest first, padded at the end with the
    empty item code. Each event becomes (with `log2_bucket` for the buckets):

    | feature | value |
    |---|---|
    | `items` | 2 + index of the code in `vocabulary`; `UNKNOWN_ITEM_ID` for other codes |
    | `behaviours` | `PURCHASE_ID` (quantity >= 0) or `CANCELLATION_ID` (quantity < 0) |
    | `gaps` | hours since the row's previous event (0 for the first), bucketed |
    | `ages` | hours from the event to the row's latest event, bucketed |
    | `quantities` | the absolute quantity, bucketed |
    | `prices` | four times the unit price (quarter pounds), bucketed |

    Every feature is `PAD_ID` on padding. Time buckets follow ATRank's (Zhou et al. 2018,
    https://arxiv.org/abs/1711.06632, sec. 4.2) logarithmic time-gap buckets.

    The vocabulary is a lookup table built in the graph, so a SavedModel holding the
    featurizer maps codes to ids without any file.

    Args:
        vocabulary: The item codes the model knows, each once, none empty.

    Raises:
        ValueError: If the vocabulary is empty or has an empty or repeated code.

    Example:
        >>> from nmt_keras.behaviour import EventFeaturizer
        >>> featurizer = EventFeaturizer(["85123A", "71053"])
        >>> features = featurizer(
        ...     items=[["71053", "85123A", "99999", ""]],
        ...     timestamps=[[0, 3600, 7200, 0]],
        ...     quantities=[[6.0, -2.0, 1.0, 0.0]],
        ...     prices=[[2.55, 3.39, 0.5, 0.0]],
        ... )
        >>> features["items"].numpy().tolist(), features["behaviours"].numpy().tolist()
        ([[3, 2, 1, 0]], [[1, 2, 1, 0]])
    """

    def __init__(self, vocabulary: Sequence[str]):
        super().__init__(name="event_featurizer")
        vocabulary = [str(code) for code in vocabulary]
        if not vocabulary:
            raise ValueError("Expected a non-empty item vocabulary. Received: no items")
        if "" in vocabulary:
            raise ValueError("Expected no empty item code in the vocabulary. Received: ''")
        if len(set(vocabulary)) != len(vocabulary):
            repeated = next(code for code in vocabulary if vocabulary.count(code) > 1)
            raise ValueError(
                f"Expected each item code once in the vocabulary. Received: {repeated!r} repeated"
            )
        self.vocabulary = tuple(vocabulary)
        first_id = UNKNOWN_ITEM_ID + 1
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(vocabulary),
                tf.range(first_id, first_id + len(vocabulary), dtype=tf.int32),
            ),
            default_value=UNKNOWN_ITEM_ID,
        )
        # id -> code; padding and unknown map to "".
        self._codes = tf.constant(["", ""] + vocabulary)

    @property
    def num_ids(self) -> int:
        """Size of the item id space: padding, unknown and the vocabulary."""
        return len(self.vocabulary) + UNKNOWN_ITEM_ID + 1

    @property
    def first_item_id(self) -> int:
        """The id of the first vocabulary item; items are `first_item_id .. num_ids - 1`."""
        return UNKNOWN_ITEM_ID + 1

    def __call__(
        self, items, timestamps, quantities, prices, statistics: bool = False
    ) -> dict[str, tf.Tensor]:
        """Featurizes a batch of histories.

        Args:
            items: string `(batch, history_len)`, "" on padding.
            timestamps: int `(batch, history_len)`, unix seconds.
            quantities: float `(batch, history_len)`, negative on cancellations.
            prices: float `(batch, history_len)`, unit prices.
            statistics: Whether to add each event's product's `purchase_statistics`.

        Returns:
            `FEATURE_NAMES` -> int32 `(batch, history_len)`; with `statistics`, also
            `statistics` float32 `(batch, history_len, NUM_STATISTICS)` and `repeat_set`
            bool `(batch, history_len)`.
        """
        items = tf.convert_to_tensor(items, tf.string)
        timestamps = tf.cast(timestamps, tf.int64)
        quantities = tf.cast(quantities, tf.float32)
        prices = tf.cast(prices, tf.float32)
        real = items != ""  # (batch, history_len)
        ids = tf.where(real, self._table.lookup(items), PAD_ID)
        behaviours = tf.where(quantities < 0.0, CANCELLATION_ID, PURCHASE_ID)
        # (batch, history_len): each event's previous timestamp, itself for the first.
        previous = tf.concat([timestamps[:, :1], timestamps[:, :-1]], axis=1)
        latest = tf.reduce_max(tf.where(real, timestamps, tf.int64.min), axis=1, keepdims=True)
        features = {
            "items": ids,
            "behaviours": behaviours,
            "gaps": log2_bucket(_hours(timestamps - previous)),
            "ages": log2_bucket(_hours(latest - timestamps)),
            "quantities": log2_bucket(tf.abs(quantities) - 1.0),
            "prices": log2_bucket(4.0 * prices),
        }
        features = {name: tf.where(real, features[name], PAD_ID) for name in FEATURE_NAMES}
        if statistics:
            features.update(
                purchase_statistics(ids, timestamps, quantities, first_item_id=self.first_item_id)
            )
        return features

    def codes(self, ids):
        """Item codes of ids: int `(...)` -> string `(...)`, "" for padding and unknown."""
        return tf.gather(self._codes, ids)


def _hours(seconds):
    """int64 seconds -> float32 hours."""
    return tf.cast(seconds, tf.float32) / 3600.0
