"""Recommenders without training, the floor a learned model has to clear.

Both take the purchase counts before the cut-off (`item_counts`) and rank items for the
examples of a `HistoryExamples`, `k` distinct items each.
"""

from __future__ import annotations

import collections

import numpy as np

from nmt_keras.behaviour.examples import HistoryExamples


class PopularityRecommender:
    """Recommends the k items bought most often before the cutoff, the same for everyone.

    Popularity is the number of purchase lines; ties in it rank by stock code, so the
    ranking is reproducible.

    Args:
        counts: Stock code -> purchase lines, e.g. `item_counts(invoices, before=cutoff)`.
    """

    def __init__(self, counts: collections.Counter):
        self._ranking = _by_popularity(counts)

    def recommend(self, examples: HistoryExamples, k: int = 10) -> list[list[str]]:
        """The `k` most popular items, for each example.

        Args:
            examples: The examples to recommend for (only their number is read).
            k: Items per example, >= 1.

        Returns:
            One list of at most `k` stock codes per example, most popular first.
        """
        _check_k(k)
        return [self._ranking[:k] for _ in range(len(examples))]


class RepeatBasketRecommender:
    """Repeats the customer's last purchase basket, then their other purchases, then popularity.

    For each example, in this order and never an item twice:

    1. the items of the most recent purchase basket in the history (the last run of
       consecutive history events with the same timestamp and a positive quantity),
       most frequent in the whole history first (ties: most recently bought first);
    2. the customer's other past purchases, by the same order;
    3. the most popular items (as `PopularityRecommender`) to fill `k`.

    Frequency is the number of purchase events (positive quantity) of the item in the
    history; cancellations are not purchases.

    Args:
        counts: Stock code -> purchase lines, e.g. `item_counts(invoices, before=cutoff)`.
    """

    def __init__(self, counts: collections.Counter):
        self._popular = _by_popularity(counts)

    def recommend(self, examples: HistoryExamples, k: int = 10) -> list[list[str]]:
        """`k` items per example, from its own history first.

        Args:
            examples: The examples to recommend for.
            k: Items per example, >= 1.

        Returns:
            One list of at most `k` distinct stock codes per example, best first.
        """
        _check_k(k)
        return [
            self._recommend_one(items, timestamps, quantities, k)
            for items, timestamps, quantities in zip(
                examples.items, examples.timestamps, examples.quantities, strict=True
            )
        ]

    def _recommend_one(
        self, items: np.ndarray, timestamps: np.ndarray, quantities: np.ndarray, k: int
    ) -> list[str]:
        """The ranking for one history row."""
        purchases = [
            position
            for position, (item, quantity) in enumerate(zip(items, quantities, strict=True))
            if item and quantity > 0
        ]
        frequency = collections.Counter(items[position] for position in purchases)
        recency = {items[position]: position for position in purchases}

        def key(item: str) -> tuple[int, int]:
            return -frequency[item], -recency[item]

        basket = sorted(
            {items[position] for position in _last_basket(purchases, timestamps)}, key=key
        )
        ranking = dict.fromkeys([*basket, *sorted(frequency, key=key)])
        for item in self._popular:
            if len(ranking) >= k:
                break
            ranking.setdefault(item)
        return list(ranking)[:k]


def _last_basket(purchases: list[int], timestamps: np.ndarray) -> list[int]:
    """The positions of the last run of consecutive purchases sharing one timestamp."""
    basket = purchases[-1:]
    for position in reversed(purchases[:-1]):
        if position != basket[-1] - 1 or timestamps[position] != timestamps[basket[-1]]:
            break
        basket.append(position)
    return basket


def _by_popularity(counts: collections.Counter) -> list[str]:
    """Stock codes by count, highest first, ties by code."""
    return sorted(counts, key=lambda item: (-counts[item], item))


def _check_k(k: int) -> None:
    """Raises ValueError unless `k >= 1`."""
    if k < 1:
        raise ValueError(f"Expected k >= 1. Received: {k}")
