"""Recommenders that count instead of training: the floor a learned model has to clear.

The next-basket literature's strongest simple methods, as re-run by Li et al., "A Next
Basket Recommendation Reality Check" (ACM TOIS 2023, https://arxiv.org/abs/2109.04584):

| name | recommender | ranks |
|---|---|---|
| `popularity` | `PopularityRecommender` | G-TopFreq: the items bought most often, for everyone |
| `p-topfreq` | `PersonalTopFrequency(fill=False)` | the customer's items by baskets holding them |
| `gp-topfreq` | `PersonalTopFrequency()` | the same, then popular items to fill k |
| `decayed-topfreq` | `PersonalTopFrequency(half_life_days=...)` | baskets weighted by age |
| `repeat-basket` | `RepeatBasketRecommender` | the customer's last basket first |
| `tifu-knn` | `TIFUKNN` | Hu et al. 2020: decayed basket vectors and nearest customers |
| `up-cf` | `UPCF` | Faggioli et al. 2020: recent baskets and similar customers (UP-CF@r) |

Every recommender is built from a `Past` (what may be counted: purchases and every
customer's history before a date) and ranks items for the rows of a `HistoryExamples`,
reading the same `history_length` events a model reads. Hyperparameters (`GRIDS`) are
chosen by `select_hyperparameters` on a validation window before the cutoff, counting only
what came before that window, never on the evaluation invoices. Ties in a score rank the
more recent item first, then by popularity.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from nmt_keras.behaviour.examples import (
    HistoryExamples,
    history_examples,
    item_counts,
    latest_histories,
    purchase_baskets,
)
from nmt_keras.behaviour.ranking import ranking_metrics

_SECONDS_PER_DAY = 86_400.0
# Histories scored at once by the neighbour baselines: a block gathers a
# (block, neighbours, catalogue) array, 300 MB at 64 x 300 x 3,600.
_BLOCK = 64


@dataclasses.dataclass(frozen=True, eq=False)
class Past:
    """What a baseline may count: everything before a date.

    Attributes:
        counts: Stock code -> purchase lines before the date (`item_counts`).
        histories: Every customer's latest `history_length` events before the date
            (`latest_histories`): the neighbours of the collaborative baselines.
    """

    counts: collections.Counter
    histories: HistoryExamples

    @classmethod
    def before(cls, invoices_by_customer: Mapping, date: int, history_length: int) -> Past:
        """The purchases and histories of `invoices_by_customer` before `date` (unix s)."""
        return cls(
            item_counts(invoices_by_customer, before=date),
            latest_histories(invoices_by_customer, date, history_length),
        )

    @property
    def catalogue(self) -> list[str]:
        """Every item bought before the date, most bought first (ties by code)."""
        return sorted(self.counts, key=lambda item: (-self.counts[item], item))


class PopularityRecommender:
    """G-TopFreq: the k items bought most often before the date, the same for everyone.

    Popularity is the number of purchase lines; ties in it rank by stock code, so the
    ranking is reproducible.

    Args:
        past: What may be counted.
    """

    def __init__(self, past: Past):
        self._ranking = past.catalogue

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


class _PersonalRecommender:
    """Scores each history's items with `_scores` and fills k with popular items."""

    def __init__(self, past: Past, fill: bool = True):
        self._popular = past.catalogue
        self._fill = fill

    def recommend(self, examples: HistoryExamples, k: int = 10) -> list[list[str]]:
        """`k` items per example, the best scored first.

        Args:
            examples: The examples to recommend for.
            k: Items per example, >= 1.

        Returns:
            One list of at most `k` distinct stock codes per example, best first.
        """
        _check_k(k)
        return [self._rank(scores, k) for scores in self._scores(examples)]

    def _scores(self, examples: HistoryExamples) -> list[dict[str, float]]:
        """Item -> score for each example, items in the order ties keep (first wins)."""
        raise NotImplementedError

    def _rank(self, scores: dict[str, float], k: int) -> list[str]:
        """The `k` best-scored items (stable on ties), then popular ones when filling."""
        ranking = sorted(scores, key=lambda item: -scores[item])[:k]
        if self._fill and len(ranking) < k:
            chosen = set(ranking)
            popular = (item for item in self._popular if item not in chosen)
            ranking += itertools.islice(popular, k - len(ranking))
        return ranking


class PersonalTopFrequency(_PersonalRecommender):
    """P-TopFreq and its variants: the customer's items by the baskets that hold them.

    The score of item i for a history with purchase baskets `B` is `sum_{b in B, i in b} w_b`
    with `w_b = 1` (P-TopFreq), or `w_b = 0.5 ** (age_b / half_life_days)` for a basket
    `age_b` days before the history's latest event (time-decayed P-TopFreq). Ties rank the
    most recently bought item first. With `fill` (GP-TopFreq), popular items complete k.

    Args:
        past: What may be counted (the popular items that fill k).
        half_life_days: The decay's half-life; None weighs every basket 1.
        fill: Whether popular items complete a list shorter than k.
    """

    GRID = {"half_life_days": (15.0, 30.0, 60.0, 120.0, 240.0, 480.0)}

    def __init__(self, past: Past, half_life_days: float | None = None, fill: bool = True):
        super().__init__(past, fill)
        if half_life_days is not None and half_life_days <= 0:
            raise ValueError(f"Expected half_life_days > 0. Received: {half_life_days}")
        self.half_life_days = half_life_days

    def _scores(self, examples):
        for (items, timestamps, _), baskets in zip(
            _rows(examples), _baskets(examples), strict=True
        ):
            scores: dict[str, float] = {}
            latest = max((int(t) for t in timestamps[items != ""]), default=0)
            for timestamp, basket in reversed(baskets):  # newest first: ties keep recency
                weight = 1.0
                if self.half_life_days is not None:
                    age = (latest - timestamp) / _SECONDS_PER_DAY
                    weight = 0.5 ** (age / self.half_life_days)
                for item in basket:
                    scores[item] = scores.get(item, 0.0) + weight
            yield scores


class RepeatBasketRecommender(_PersonalRecommender):
    """Repeats the customer's last purchase basket, then their other purchases, then popularity.

    For each example, in this order and never an item twice:

    1. the items of the most recent purchase basket in the history, most frequent in the
       whole history first (ties: most recently bought first);
    2. the customer's other past purchases, by the same order;
    3. the most popular items (as `PopularityRecommender`) to fill `k`.

    Frequency is the number of purchase events (positive quantity) of the item in the
    history; cancellations are not purchases. A basket is as in `purchase_baskets`.

    Args:
        past: What may be counted (the popular items that fill k).
    """

    def _scores(self, examples):
        for items, timestamps, quantities in _rows(examples):
            purchases = [
                item
                for item, quantity in zip(items, quantities, strict=True)
                if item and quantity > 0
            ]
            frequency = collections.Counter(purchases)
            baskets = purchase_baskets(items, timestamps, quantities)
            last = set(baskets[-1][1]) if baskets else set()
            # Most recently bought first, so that the stable sort keeps recency on ties.
            recent_first = dict.fromkeys(reversed(purchases))
            yield {
                item: frequency[item] + (len(purchases) + 1) * (item in last)
                for item in recent_first
            }


class TIFUKNN(_PersonalRecommender):
    """TIFU-KNN: temporal item frequencies of the customer and of their nearest customers.

    Hu et al., "Modeling Personalized Item Frequency Information for Next-basket
    Recommendation", SIGIR 2020, https://arxiv.org/abs/2006.00556, sec. 3. A history's
    purchase baskets (multi-hot vectors `b`, oldest first) are cut into groups of
    `group_size` from the newest back (the oldest group may be smaller); a group's vector
    is the mean of its baskets decayed by `within_decay ** (baskets after it in the group)`,
    and the user vector `u` the mean of the groups decayed by
    `group_decay ** (groups after it)` (eq. 1-3). The score is
    `alpha u + (1 - alpha) mean(u_n)` over the `neighbours` customers of `past` nearest
    to `u` in Euclidean distance (eq. 4-5), the customer's own past row excluded.

    Args:
        past: What may be counted: the neighbours' histories and the popular items.
        group_size: Baskets per group, `m`.
        within_decay: `r_b`, in (0, 1].
        group_decay: `r_g`, in (0, 1].
        neighbours: `k`, nearest customers averaged.
        alpha: Weight of the customer's own vector, in [0, 1].
    """

    GRID = {
        "group_size": (1, 3, 7),
        "within_decay": (0.9, 1.0),
        "group_decay": (0.6, 0.7, 0.8, 0.9),
        "neighbours": (100, 300),
        "alpha": (0.7, 0.9),
    }

    def __init__(
        self,
        past: Past,
        group_size: int = 3,
        within_decay: float = 1.0,
        group_decay: float = 0.7,
        neighbours: int = 300,
        alpha: float = 0.9,
    ):
        super().__init__(past)
        self.group_size = group_size
        self.within_decay = within_decay
        self.group_decay = group_decay
        self.neighbours = neighbours
        self.alpha = alpha
        self._index = {item: column for column, item in enumerate(past.catalogue)}
        self._items = past.catalogue
        self._neighbour_customers = np.array(past.histories.customers, dtype=object)
        self._neighbour_vectors = self._vectors(past.histories)

    def _vectors(self, examples: HistoryExamples) -> np.ndarray:
        """float32 `(len(examples), catalogue)`: the user vector of each row (eq. 1-3)."""
        vectors = np.zeros((len(examples), len(self._items)), np.float32)
        for row, dated_baskets in enumerate(_baskets(examples)):
            baskets = [basket for _, basket in dated_baskets]
            groups = [
                baskets[max(0, end - self.group_size) : end]
                for end in range(len(baskets), 0, -self.group_size)
            ]  # newest first
            for age, group in enumerate(groups):
                for position, basket in enumerate(group):
                    columns = [self._index[item] for item in basket if item in self._index]
                    weight = self.within_decay ** (len(group) - 1 - position) / len(group)
                    vectors[row, columns] += weight * self.group_decay**age
            if groups:
                vectors[row] /= len(groups)
        return vectors

    def _scores(self, examples):
        users = self._vectors(examples)
        squared = np.sum(self._neighbour_vectors**2, axis=1)
        for start in range(0, len(users), _BLOCK):
            block = users[start : start + _BLOCK]
            # (block, neighbours): squared Euclidean distances, less the constant |u|^2.
            distances = squared[None, :] - 2.0 * block @ self._neighbour_vectors.T
            customers = np.array(examples.customers[start : start + _BLOCK], dtype=object)
            distances[customers[:, None] == self._neighbour_customers[None, :]] = np.inf
            count = min(self.neighbours, distances.shape[1])
            nearest = np.argpartition(distances, count - 1, axis=1)[:, :count]
            scores = self.alpha * block + (1.0 - self.alpha) * self._neighbour_vectors[
                nearest
            ].mean(axis=1)
            for row in scores:
                yield _nonzero(row, self._items)


class UPCF(_PersonalRecommender):
    """UP-CF@r: recent item popularity of the customer and of similar customers.

    Faggioli, Polato and Aiolli, "Recency Aware Collaborative Filtering for Next Basket
    Recommendation", UMAP 2020, https://doi.org/10.1145/3340631.3394850. `rc_u(i)` is
    the share of the customer's last `recency` purchase baskets that hold item i; customers
    are compared by the asymmetric cosine of their basket counts `x`,
    `sim(u, v) = x_u . x_v / (|x_u| ** (2 a) |x_v| ** (2 (1 - a)))` with `a = asymmetry`
    (Aiolli 2013); the score is `rc_u(i) + sum_v sim(u, v) ** locality rc_v(i)` over the
    `neighbours` most similar customers of `past`, the customer's own past row excluded
    (the customer is its own neighbour with similarity 1).

    Args:
        past: What may be counted: the neighbours' histories and the popular items.
        recency: `r`, the latest baskets read for `rc`.
        asymmetry: `a`, in [0, 1].
        locality: `q`, the power that sharpens the similarities.
        neighbours: Most similar customers summed.
    """

    GRID = {"recency": (1, 5, 10, 25), "asymmetry": (0.25, 0.5, 0.75), "locality": (1, 5, 10)}

    def __init__(
        self,
        past: Past,
        recency: int = 5,
        asymmetry: float = 0.5,
        locality: float = 5,
        neighbours: int = 100,
    ):
        super().__init__(past)
        self.recency = recency
        self.asymmetry = asymmetry
        self.locality = locality
        self.neighbours = neighbours
        self._index = {item: column for column, item in enumerate(past.catalogue)}
        self._items = past.catalogue
        self._neighbour_customers = np.array(past.histories.customers, dtype=object)
        self._neighbour_counts, self._neighbour_recent = self._profiles(past.histories)

    def _profiles(self, examples: HistoryExamples) -> tuple[np.ndarray, np.ndarray]:
        """float32 `(len(examples), catalogue)` basket counts `x` and recent shares `rc`."""
        counts = np.zeros((len(examples), len(self._items)), np.float32)
        recent = np.zeros_like(counts)
        for row, dated_baskets in enumerate(_baskets(examples)):
            baskets = [basket for _, basket in dated_baskets]
            for position, basket in enumerate(baskets):
                columns = [self._index[item] for item in basket if item in self._index]
                counts[row, columns] += 1.0
                if position >= len(baskets) - self.recency:
                    recent[row, columns] += 1.0 / min(self.recency, len(baskets))
        return counts, recent

    def _scores(self, examples):
        counts, recent = self._profiles(examples)
        norms = np.sqrt(np.sum(self._neighbour_counts**2, axis=1))
        neighbour_norms = norms ** (2.0 * (1.0 - self.asymmetry))
        for start in range(0, len(counts), _BLOCK):
            block = counts[start : start + _BLOCK]
            block_norms = np.sqrt(np.sum(block**2, axis=1, keepdims=True)) ** (2.0 * self.asymmetry)
            similarity = (block @ self._neighbour_counts.T) / np.maximum(
                block_norms * neighbour_norms[None, :], 1e-12
            )
            customers = np.array(examples.customers[start : start + _BLOCK], dtype=object)
            similarity[customers[:, None] == self._neighbour_customers[None, :]] = 0.0
            count = min(self.neighbours, similarity.shape[1])
            nearest = np.argpartition(-similarity, count - 1, axis=1)[:, :count]
            weights = np.take_along_axis(similarity, nearest, axis=1) ** self.locality
            # (block, count) x (block, count, catalogue) -> (block, catalogue)
            scores = recent[start : start + _BLOCK] + np.einsum(
                "bn,bni->bi", weights, self._neighbour_recent[nearest]
            )
            for row in scores:
                yield _nonzero(row, self._items)


#: Baseline name (`families.BASELINES`) -> `(constructor of a Past and hyperparameters,
#: hyperparameter name -> the values `select_hyperparameters` tries)`.
RECOMMENDERS: dict[str, tuple[Callable[..., object], dict[str, Sequence]]] = {
    "popularity": (PopularityRecommender, {}),
    "p-topfreq": (lambda past: PersonalTopFrequency(past, fill=False), {}),
    "gp-topfreq": (PersonalTopFrequency, {}),
    "decayed-topfreq": (PersonalTopFrequency, PersonalTopFrequency.GRID),
    "repeat-basket": (RepeatBasketRecommender, {}),
    "tifu-knn": (TIFUKNN, TIFUKNN.GRID),
    "up-cf": (UPCF, UPCF.GRID),
}


def select_hyperparameters(
    name: str,
    invoices_by_customer: Mapping,
    cutoff: int,
    validation_days: int,
    history_length: int,
    k: int = 10,
) -> tuple[dict, dict | None]:
    """Chooses a baseline's hyperparameters on the validation window before the cutoff.

    Every combination of the baseline's grid counts what came before the window
    (`Past.before(cutoff - validation_days)`) and ranks the purchase invoices inside it;
    the best Recall@k (ties: NDCG@k) wins.

    Args:
        name: A key of `RECOMMENDERS`.
        invoices_by_customer: Customer id -> invoices, as `read_transactions` returns.
        cutoff: Unix seconds of the evaluation cutoff.
        validation_days: Days of the window that ends at the cutoff.
        history_length: Events read per history.
        k: The cut-off rank of the metrics.

    Returns:
        `(hyperparameters, validation_metrics)`: `({}, None)` for a baseline without any.

    Raises:
        ValueError: If the window holds no purchase invoice with a history.
    """
    make, grid = RECOMMENDERS[name]
    if not grid:
        return {}, None
    start = cutoff - int(validation_days * _SECONDS_PER_DAY)
    examples = history_examples(
        invoices_by_customer, start=start, end=cutoff, history_length=history_length
    )
    if not len(examples):
        raise ValueError(
            f"Expected purchase invoices in the {validation_days} validation days before the "
            "cutoff. Received: none"
        )
    past = Past.before(invoices_by_customer, start, history_length)
    best, best_metrics = {}, None
    for values in itertools.product(*grid.values()):
        hyperparameters = dict(zip(grid, values, strict=True))
        ranked = make(past, **hyperparameters).recommend(examples, k)
        metrics = ranking_metrics(ranked, examples.targets, k)
        key = (metrics[f"recall@{k}"], metrics[f"ndcg@{k}"])
        if best_metrics is None or key > (best_metrics[f"recall@{k}"], best_metrics[f"ndcg@{k}"]):
            best, best_metrics = hyperparameters, metrics
    return best, best_metrics


def _rows(examples: HistoryExamples):
    """`(items, timestamps, quantities)` of each history row."""
    return zip(examples.items, examples.timestamps, examples.quantities, strict=True)


@functools.lru_cache(maxsize=4)
def _baskets(examples: HistoryExamples) -> list[list[tuple[int, tuple[str, ...]]]]:
    """`purchase_baskets` of each row, computed once per examples (a grid reuses them)."""
    return [purchase_baskets(*row) for row in _rows(examples)]


def _nonzero(scores: np.ndarray, items: list[str]) -> dict[str, float]:
    """Item -> score for the positive scores of a catalogue row."""
    columns = np.flatnonzero(scores > 0.0)
    return {items[column]: float(scores[column]) for column in columns}


def _check_k(k: int) -> None:
    """Raises ValueError unless `k >= 1`."""
    if k < 1:
        raise ValueError(f"Expected k >= 1. Received: {k}")
