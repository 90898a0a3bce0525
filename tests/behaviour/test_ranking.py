"""ranking_metrics on hand-computed cases."""

import math

import pytest

from nmt_keras.behaviour.ranking import ranking_metrics


def test_means_of_recall_ndcg_and_hit_rate():
    ranked = [["a", "x", "b", "c"], ["x", "y", "z"]]
    targets = [["a", "b", "c"], ["q"]]
    metrics = ranking_metrics(ranked, targets, k=3)

    # Example 0: hits at ranks 1 and 3 of the top 3 ("c" at rank 4 is cut off).
    ndcg = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    assert ndcg == pytest.approx(0.703918, abs=1e-6)
    assert metrics == pytest.approx(
        {"recall@3": (2 / 3) / 2, "ndcg@3": ndcg / 2, "hit_rate@3": 0.5, "examples": 2}
    )


def test_the_ideal_dcg_stops_at_k_hits():
    metrics = ranking_metrics([["a", "b"]], [["a", "b", "c", "d"]], k=2)
    assert metrics == {"recall@2": 0.5, "ndcg@2": 1.0, "hit_rate@2": 1.0, "examples": 1}


def test_repeats_count_once_at_their_first_rank():
    metrics = ranking_metrics([["a", "a", "b"]], [["b", "b"]], k=3)
    assert metrics == {"recall@3": 1.0, "ndcg@3": 0.5, "hit_rate@3": 1.0, "examples": 1}
    assert ranking_metrics([["a", "a"]], [["a"]], k=2)["recall@2"] == 1.0


@pytest.mark.parametrize(
    "ranked, targets, k, message",
    [
        ([["a"]], [["a"]], 0, "Expected k >= 1. Received: 0"),
        ([["a"]], [["a"], ["b"]], 10, "Received: 1 rankings and 2 target lists"),
        ([], [], 10, "Expected at least one example"),
        ([["a"], ["b"]], [["a"], []], 10, "Received: none at index 1"),
    ],
)
def test_invalid_arguments(ranked, targets, k, message):
    with pytest.raises(ValueError, match=message):
        ranking_metrics(ranked, targets, k=k)
