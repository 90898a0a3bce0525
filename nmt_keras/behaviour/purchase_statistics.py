"""What counting knows about each product a customer bought: per-product purchase statistics.

Next-basket studies find that a customer's own past products, scored by how often and how
recently they were bought, beat most neural models (Li et al., "A Next Basket
Recommendation Reality Check", ACM TOIS 2023, https://arxiv.org/abs/2109.04584); the
models that win are told those statistics (RepeatNet, Ren et al. 2019; ReCANet,
Ariannezhad et al. 2022). `purchase_statistics` computes them in the graph from the same
raw events the featurizer reads, so training, evaluation and the SavedModel share them.

A basket is the set of purchase events (positive quantity) that share a timestamp: the
lines of one invoice. Every statistic is computed for every event and describes the
event's product as of the latest event of the history; the `repeat_set` marks one event
per distinct known product, its last purchase, which is where a model reads them.
"""

from __future__ import annotations

import math

import tensorflow as tf

#: The statistics of an event's product, in the order of the last axis of `statistics`.
#: Counts and durations enter as log(1 + x) divided by the log of a typical largest value,
#: so each lies mostly in [0, 1].
STATISTIC_NAMES = (
    "baskets",  # baskets holding the product
    "basket_share",  # that count over the customer's baskets
    "days_since",  # days from the product's last purchase to the latest event
    "baskets_since",  # the customer's baskets after the product's last purchase
    "in_last_basket",  # 1 when the product is in the customer's last basket
    "mean_gap_days",  # mean days between the product's baskets (0 when bought once)
    "overdue",  # days_since over (mean gap + 1 day), bought more than once (else 0)
    "bought_again",  # 1 when the product is in more than one basket
    "total_quantity",  # units bought, all baskets
    "last_quantity",  # units of this event
    "cancellations",  # cancellation lines of the product
    "customer_baskets",  # the customer's baskets
    "tenure_days",  # days from the customer's first event to the latest
    "last_gap_days",  # days between the product's last two baskets (0 when bought once)
    "share_of_last_3",  # share of the customer's last 3 baskets that hold the product
    "share_of_last_10",  # the same over the last 10 baskets (UP-CF@r's recency profile)
    "decayed_30",  # the product's baskets weighted 0.5 ** (days before the latest / 30)
    "decayed_180",  # the same at a 180-day half-life (time-decayed P-TopFreq)
)
NUM_STATISTICS = len(STATISTIC_NAMES)

_SECONDS_PER_DAY = 86_400.0
_LOG_DAYS = math.log1p(365.0)
_LOG_COUNT = math.log1p(100.0)
_LOG_QUANTITY = math.log1p(1000.0)


def purchase_statistics(item_ids, timestamps, quantities, first_item_id: int) -> dict:
    """Per-product purchase statistics of each event, and the repeat set.

    Pairwise over the events of a row, so memory grows as `history_len ** 2` per row
    (16M booleans for a batch of 64 histories of 512 events).

    Args:
        item_ids: int `(batch, history_len)`, 0 on padding (the featurizer's `items`).
        timestamps: int `(batch, history_len)`, unix seconds, non-decreasing over the real
            events of a row.
        quantities: float `(batch, history_len)`, negative on cancellations.
        first_item_id: The lowest id of a known product; lower ids (padding, unknown) never
            enter the repeat set.

    Returns:
        `statistics`: float32 `(batch, history_len, NUM_STATISTICS)`, `STATISTIC_NAMES` of
        each event's product, 0 on padding and cancellations; `repeat_set`: bool
        `(batch, history_len)`, True on the last purchase event of each known product.

    Example:
        >>> from nmt_keras.behaviour.purchase_statistics import (
        ...     STATISTIC_NAMES, purchase_statistics)
        >>> day = 86_400
        >>> out = purchase_statistics(
        ...     item_ids=[[2, 3, 2, 0]],  # product 2 on days 0 and 10, product 3 on day 0
        ...     timestamps=[[0, 0, 10 * day, 0]],
        ...     quantities=[[1.0, 5.0, 2.0, 0.0]],
        ...     first_item_id=2,
        ... )
        >>> out["repeat_set"].numpy().tolist()
        [[False, True, True, False]]
        >>> bought_again = STATISTIC_NAMES.index("bought_again")
        >>> out["statistics"].numpy()[0, :, bought_again].tolist()
        [1.0, 0.0, 1.0, 0.0]
    """
    item_ids = tf.convert_to_tensor(item_ids, tf.int32)
    timestamps = tf.cast(timestamps, tf.int64)
    quantities = tf.cast(quantities, tf.float32)
    real = item_ids != 0
    purchase = real & (quantities > 0.0)  # (batch, len)
    cancellation = real & (quantities < 0.0)
    latest = tf.reduce_max(tf.where(real, timestamps, tf.int64.min), axis=1, keepdims=True)
    # Seconds before the latest event, (batch, len), as float32 days below.
    seconds_before = tf.where(real, latest - timestamps, 0)
    days_before = tf.cast(seconds_before, tf.float32) / _SECONDS_PER_DAY

    def pairs(row_flags, column_flags):
        # (batch, len) x (batch, len) -> (batch, len, len): [b, t, s] = row[b, t] & col[b, s].
        return row_flags[:, :, None] & column_flags[:, None, :]

    length = tf.shape(item_ids)[1]
    positions = tf.range(length)
    earlier = positions[None, :] < positions[:, None]  # (len, len): [t, s] = s < t
    later = positions[None, :] > positions[:, None]  # [t, s] = s > t
    same_time = seconds_before[:, :, None] == seconds_before[:, None, :]  # (batch, len, len)
    same_product = item_ids[:, :, None] == item_ids[:, None, :]
    purchase_pairs = pairs(purchase, purchase)
    same_purchase = same_product & purchase_pairs  # purchases of one product

    # The first purchase event of each basket, and of each product within a basket.
    opens_basket = purchase & ~tf.reduce_any(purchase_pairs & same_time & earlier, axis=2)
    opens_product_basket = purchase & ~tf.reduce_any(same_purchase & same_time & earlier, axis=2)
    customer_baskets = tf.reduce_sum(tf.cast(opens_basket, tf.float32), 1, keepdims=True)
    baskets = _count(same_purchase & opens_product_basket[:, None, :])  # (batch, len)
    # Baskets at or before each event's time, to count those after it.
    baskets_by_then = _count(
        opens_basket[:, None, :] & (seconds_before[:, None, :] >= seconds_before[:, :, None])
    )
    baskets_since = tf.where(purchase, customer_baskets - baskets_by_then, 0.0)
    # Seconds before the latest event of the product's first and previous baskets.
    first_bought = tf.reduce_max(tf.where(same_purchase, seconds_before[:, None, :], 0), axis=2)
    bought_before = same_purchase & (seconds_before[:, None, :] > seconds_before[:, :, None])
    previous_bought = tf.reduce_min(
        tf.where(bought_before, seconds_before[:, None, :], tf.int64.max), axis=2
    )
    previous_bought = tf.where(tf.reduce_any(bought_before, 2), previous_bought, seconds_before)
    bought_again = baskets > 1.0
    span_days = tf.cast(first_bought - seconds_before, tf.float32) / _SECONDS_PER_DAY
    mean_gap = tf.where(bought_again, span_days / tf.maximum(baskets - 1.0, 1.0), 0.0)
    last_gap = tf.cast(previous_bought - seconds_before, tf.float32) / _SECONDS_PER_DAY
    total_quantity = tf.reduce_sum(tf.where(same_purchase, quantities[:, None, :], 0.0), axis=2)
    cancellations = _count(same_product & pairs(real, cancellation))
    # The product's baskets, weighted by recency in baskets and in days.
    product_baskets = tf.cast(same_purchase & opens_product_basket[:, None, :], tf.float32)

    def over_product_baskets(weights):
        # (batch, len, len) x (batch, len) -> (batch, len): sum_s [t, s] weights[s].
        return tf.reduce_sum(product_baskets * weights[:, None, :], axis=2)

    def share_of_last(count):
        recent = tf.cast(baskets_since < count, tf.float32)
        return over_product_baskets(recent) / tf.minimum(tf.maximum(customer_baskets, 1.0), count)

    def decayed(half_life_days):
        return tf.math.log1p(over_product_baskets(0.5 ** (days_before / half_life_days)))

    earliest = tf.reduce_max(days_before, axis=1, keepdims=True)  # the first event's age
    repeat_set = (
        purchase & (item_ids >= first_item_id) & ~tf.reduce_any(same_purchase & later, axis=2)
    )
    statistics = {
        "baskets": tf.math.log1p(baskets) / _LOG_COUNT,
        "basket_share": baskets / tf.maximum(customer_baskets, 1.0),
        "days_since": tf.math.log1p(days_before) / _LOG_DAYS,
        "baskets_since": tf.math.log1p(baskets_since) / _LOG_COUNT,
        "in_last_basket": tf.cast(purchase & (baskets_since == 0.0), tf.float32),
        "mean_gap_days": tf.math.log1p(mean_gap) / _LOG_DAYS,
        "overdue": tf.where(
            bought_again, tf.math.log1p(days_before / (mean_gap + 1.0)) / _LOG_DAYS, 0.0
        ),
        "bought_again": tf.cast(bought_again, tf.float32),
        "total_quantity": tf.math.log1p(tf.maximum(total_quantity, 0.0)) / _LOG_QUANTITY,
        "last_quantity": tf.math.log1p(tf.maximum(quantities, 0.0)) / _LOG_QUANTITY,
        "cancellations": tf.math.log1p(cancellations) / _LOG_COUNT,
        "customer_baskets": tf.broadcast_to(
            tf.math.log1p(customer_baskets) / _LOG_COUNT, tf.shape(days_before)
        ),
        "tenure_days": tf.broadcast_to(tf.math.log1p(earliest) / _LOG_DAYS, tf.shape(days_before)),
        "last_gap_days": tf.math.log1p(last_gap) / _LOG_DAYS,
        "share_of_last_3": share_of_last(3.0),
        "share_of_last_10": share_of_last(10.0),
        "decayed_30": decayed(30.0) / _LOG_COUNT,
        "decayed_180": decayed(180.0) / _LOG_COUNT,
    }
    # (batch, len, NUM_STATISTICS), zero except on purchases.
    stacked = tf.stack([statistics[name] for name in STATISTIC_NAMES], axis=-1)
    return {
        "statistics": tf.where(purchase[:, :, None], stacked, 0.0),
        "repeat_set": repeat_set,
    }


def _count(flags):
    """Counts the True entries of each row: bool `(batch, len, len)` -> float `(batch, len)`."""
    return tf.reduce_sum(tf.cast(flags, tf.float32), axis=2)
