"""Top-k ranking metrics for next-basket recommendation."""

from __future__ import annotations

import math
from collections.abc import Sequence


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
        >>> ranking_metrics([["a", "b"]], [["b"]], k=2)["ndcg@2"]  # 1 / log2(3)
        0.6309297535714575
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
    recall = ndcg = hit_rate = 0.0
    for index, (ranking, target) in enumerate(zip(ranked, targets, strict=True)):
        relevant = set(target)
        if not relevant:
            raise ValueError(
                f"Expected at least one target item per example. Received: none at index {index}."
            )
        hit_ranks = _hit_ranks(ranking[:k], relevant)
        recall += len(hit_ranks) / len(relevant)
        ndcg += sum(discounts[rank] for rank in hit_ranks) / sum(discounts[: min(len(relevant), k)])
        hit_rate += bool(hit_ranks)
    count = len(targets)
    return {
        f"recall@{k}": recall / count,
        f"ndcg@{k}": ndcg / count,
        f"hit_rate@{k}": hit_rate / count,
        "examples": count,
    }


def _hit_ranks(ranking: Sequence[str], relevant: set[str]) -> list[int]:
    """The 0-based ranks at which a relevant item first appears in `ranking`."""
    seen = set()
    ranks = []
    for rank, item in enumerate(ranking):
        if item in relevant and item not in seen:
            ranks.append(rank)
        seen.add(item)
    return ranks
