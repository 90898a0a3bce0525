"""Top-k ranking metrics for next-basket recommendation, their breakdown and a paired test."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np


def ranking_metrics(
    ranked: Sequence[Sequence[str]], targets: Sequence[Sequence[str]], k: int = 10
) -> dict[str, float]:
    """Recall, NDCG and hit rate at `k`, averaged over examples.

    For one example with ranking `r` and target set `T`, where `rel_i = 1` when the item
    at rank `i` (1-based) of `r` is in `T` and 0 otherwise:

        recall@k   = |top-k(r) ∩ T| / |T|
        DCG@k      = sum_{i=1..k} rel_i / log2(i + 1)
        IDCG@k     = sum_{i=1..min(|T|, k)} 1 / log2(i + 1)
        ndcg@k     = DCG@k / IDCG@k
        hit_rate@k = 1 if |top-k(r) ∩ T| > 0 else 0

    An item repeated in a ranking counts once, at its first rank; repeats in a target
    list count once too.

    Args:
        ranked: One ranking per example, best first; only the first `k` items are read.
        targets: One target list per example (e.g. `HistoryExamples.targets`).
        k: The cut-off rank, >= 1.

    Returns:
        `{f"recall@{k}", f"ndcg@{k}", f"hit_rate@{k}"}`: means over the examples, and
        `"examples"`: their number.

    Raises:
        ValueError: `k` is below 1, `ranked` and `targets` differ in length, there are no
            examples, or an example has no targets (the message names its index).

    Example:
        >>> from nmt_keras.behaviour.ranking import ranking_metrics
        >>> ranking_metrics([["a", "b"]], [["b"]], k=2)["ndcg@2"]  # 1 / log2(3)
        0.6309297535714575
    """
    per_example = example_metrics(ranked, targets, k)
    return {
        **{name: float(np.mean(values)) for name, values in per_example.items()},
        "examples": len(targets),
    }


def example_metrics(
    ranked: Sequence[Sequence[str]], targets: Sequence[Sequence[str]], k: int = 10
) -> dict[str, np.ndarray]:
    """Recall, NDCG and hit rate at `k` of each example (`ranking_metrics` averages them).

    Args:
        ranked: One ranking per example, best first.
        targets: One target list per example.
        k: The cut-off rank, >= 1.

    Returns:
        `{f"recall@{k}", f"ndcg@{k}", f"hit_rate@{k}"}` -> float64 `(examples,)`.

    Raises:
        ValueError: As `ranking_metrics`.
    """
    if k < 1:
        raise ValueError(f"Expected k >= 1. Received: {k}")
    if len(ranked) != len(targets):
        raise ValueError(
            "Expected as many rankings as target lists. "
            f"Received: {len(ranked)} rankings and {len(targets)} target lists."
        )
    if not targets:
        raise ValueError("Expected at least one example. Received: none.")
    discounts = [1.0 / math.log2(rank + 1) for rank in range(1, k + 1)]
    recall, ndcg, hit_rate = (np.zeros(len(targets)) for _ in range(3))
    for index, (ranking, target) in enumerate(zip(ranked, targets, strict=True)):
        relevant = set(target)
        if not relevant:
            raise ValueError(
                f"Expected at least one target item per example. Received: none at index {index}."
            )
        hit_ranks = _hit_ranks(ranking[:k], relevant)
        recall[index] = len(hit_ranks) / len(relevant)
        ideal = sum(discounts[: min(len(relevant), k)])
        ndcg[index] = sum(discounts[rank] for rank in hit_ranks) / ideal
        hit_rate[index] = bool(hit_ranks)
    return {f"recall@{k}": recall, f"ndcg@{k}": ndcg, f"hit_rate@{k}": hit_rate}


def repeat_explore_metrics(
    ranked: Sequence[Sequence[str]],
    targets: Sequence[Sequence[str]],
    histories: Sequence[Iterable[str]],
    k: int = 10,
) -> dict[str, float]:
    """Where the hits come from: items the customer bought before (repeat) or new ones.

    For an example with past items `H` (every item of its history), target set `T` and
    top-k set `R`: repeat recall is `|R ∩ T ∩ H| / |T ∩ H|` over the examples with a
    repeat target, explore recall `|R ∩ (T - H)| / |T - H|` over those with a new target,
    and the repeat share `|R ∩ H| / |R|` over every example with a ranking.

    Args:
        ranked: One ranking per example, best first.
        targets: One target list per example.
        histories: The items of each example's history (padding `""` is ignored).
        k: The cut-off rank, >= 1.

    Returns:
        `repeat_recall@k`, `explore_recall@k`, `repeat_share@k` (NaN where no example
        qualifies), and `repeat_target_share`: the mean share of target items bought before.

    Example:
        >>> from nmt_keras.behaviour.ranking import repeat_explore_metrics
        >>> metrics = repeat_explore_metrics([["a", "x"]], [["a", "b"]], [["a", "b"]], k=2)
        >>> metrics["repeat_recall@2"], metrics["repeat_share@2"]
        (0.5, 0.5)
    """
    if k < 1:
        raise ValueError(f"Expected k >= 1. Received: {k}")
    repeat, explore, share, target_share = [], [], [], []
    for ranking, target, history in zip(ranked, targets, histories, strict=True):
        past = set(history) - {""}
        top, wanted = set(ranking[:k]), set(target)
        bought_again, new = wanted & past, wanted - past
        if bought_again:
            repeat.append(len(top & bought_again) / len(bought_again))
        if new:
            explore.append(len(top & new) / len(new))
        if top:
            share.append(len(top & past) / len(top))
        if wanted:
            target_share.append(len(bought_again) / len(wanted))
    return {
        f"repeat_recall@{k}": _mean(repeat),
        f"explore_recall@{k}": _mean(explore),
        f"repeat_share@{k}": _mean(share),
        "repeat_target_share": _mean(target_share),
    }


def paired_randomization_test(
    first: Sequence[float], second: Sequence[float], rounds: int = 10_000, seed: int = 0
) -> float:
    """Two-sided p-value that two systems' per-example scores have the same mean.

    The paired randomization (sign-flip) test that IR evaluations use (Smucker, Allan and
    Carterette, CIKM 2007): under the null hypothesis each example's difference is as
    likely negated, so the p-value is the share of `rounds` random sign flips whose mean
    difference is at least as far from 0 as the observed one.

    Args:
        first: One score per example (e.g. `example_metrics(...)["recall@10"]`).
        second: The other system's scores of the same examples, in the same order.
        rounds: Random sign flips drawn.
        seed: Seed of the flips.

    Returns:
        The p-value, in (0, 1].

    Raises:
        ValueError: If the two differ in length or are empty.

    Example:
        >>> from nmt_keras.behaviour.ranking import paired_randomization_test
        >>> paired_randomization_test([1.0] * 30, [0.0] * 30) < 0.001
        True
    """
    differences = np.asarray(first, np.float64) - np.asarray(second, np.float64)
    if differences.ndim != 1 or len(differences) != len(second) or not len(differences):
        raise ValueError(
            "Expected two non-empty score lists of one length. "
            f"Received: {len(first)} and {len(second)} scores."
        )
    observed = abs(differences.mean())
    signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(rounds, len(differences)))
    extreme = np.sum(np.abs(signs @ differences) / len(differences) >= observed - 1e-12)
    return float((extreme + 1) / (rounds + 1))


def _mean(values: list[float]) -> float:
    """The mean, or NaN for no values."""
    return float(np.mean(values)) if values else float("nan")


def _hit_ranks(ranking: Sequence[str], relevant: set[str]) -> list[int]:
    """The 0-based ranks at which a relevant item first appears in `ranking`."""
    seen = set()
    ranks = []
    for rank, item in enumerate(ranking):
        if item in relevant and item not in seen:
            ranks.append(rank)
        seen.add(item)
    return ranks
