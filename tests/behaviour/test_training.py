import collections

import numpy as np
import pytest

from nmt_keras.behaviour.examples import HistoryExamples
from nmt_keras.behaviour.featurizer import PAD_ID, EventFeaturizer
from nmt_keras.behaviour.training import basket_ids, training_dataset, vocabulary


def examples(targets):
    n = len(targets)
    return HistoryExamples(
        items=np.full((n, 2), "A", object),
        timestamps=np.zeros((n, 2), np.int64),
        quantities=np.ones((n, 2), np.float32),
        prices=np.ones((n, 2), np.float32),
        targets=tuple(targets),
        customers=tuple(str(i) for i in range(n)),
        target_times=np.zeros(n, np.int64),
    )


def test_vocabulary_is_most_bought_first_above_the_minimum():
    counts = collections.Counter({"B": 3, "A": 3, "C": 5, "D": 1})
    assert vocabulary(counts) == ["C", "A", "B", "D"]
    assert vocabulary(counts, min_count=2) == ["C", "A", "B"]
    with pytest.raises(ValueError, match="min_item_count=9"):
        vocabulary(counts, min_count=9)


def test_baskets_keep_known_items_and_drop_empty_ones():
    featurizer = EventFeaturizer(["A", "B", "C"])
    rows, baskets = basket_ids(featurizer, examples([("B", "Z"), ("Z",), ("A", "B", "C")]), 2, 0)
    assert rows.tolist() == [0, 2]
    assert baskets[0].tolist() == [3, PAD_ID]
    assert sorted(baskets[1].tolist()) in ([2, 3], [2, 4], [3, 4])  # 2 of the 3, at random
    with pytest.raises(ValueError, match="Received: none"):
        basket_ids(featurizer, examples([("Z",)]), 2, 0)


def test_dataset_labels_mark_the_real_basket_items():
    features = {"items": np.arange(6, dtype=np.int32).reshape(3, 2)}
    baskets = np.array([[2, 0], [3, 4], [5, 0]], np.int32)
    inputs, labels = next(iter(training_dataset(features, baskets, batch_size=3, seed=0)))
    order = np.argsort(inputs["items"].numpy()[:, 0])
    assert inputs["basket"].numpy()[order].tolist() == baskets.tolist()
    assert labels.numpy()[order].tolist() == [[1, 0], [1, 1], [1, 0]]
