import numpy as np
import pytest

from nmt_keras.behaviour.featurizer import (
    CANCELLATION_ID,
    NUM_BUCKETS,
    PAD_ID,
    PURCHASE_ID,
    UNKNOWN_ITEM_ID,
    EventFeaturizer,
    log2_bucket,
)

HOUR = 3600


def featurize(items, timestamps, quantities, prices):
    features = EventFeaturizer(["A", "B"])([items], [timestamps], [quantities], [prices])
    return {name: value.numpy()[0].tolist() for name, value in features.items()}


def test_items_map_to_ids_with_unknown_and_padding():
    features = featurize(["B", "Z", "A", ""], [0, 0, 0, 0], [1.0, 1.0, 1.0, 0.0], [1.0] * 4)
    assert features["items"] == [3, UNKNOWN_ITEM_ID, 2, PAD_ID]


def test_every_feature_is_padding_on_padding_events():
    features = featurize(["A", "", ""], [5 * HOUR, 0, 0], [3.0, 0.0, 9.0], [2.0, 0.0, 7.0])
    assert all(values[1:] == [PAD_ID, PAD_ID] for values in features.values())


def test_behaviours_gaps_and_ages():
    features = featurize(
        ["A", "B", "A", "B"], [0, 0, 3 * HOUR, 1000 * HOUR], [2.0, -1.0, 1.0, 1.0], [1.0] * 4
    )
    assert features["behaviours"] == [PURCHASE_ID, CANCELLATION_ID, PURCHASE_ID, PURCHASE_ID]
    # Hours since the previous event: 0, 0, 3, 997 -> 1 + floor(log2(1 + h)).
    assert features["gaps"] == [1, 1, 3, 10]
    # Hours to the latest event: 1000, 1000, 997, 0.
    assert features["ages"] == [10, 10, 10, 1]


def test_buckets_stay_in_range_for_any_float():
    values = np.array([[-5.0, 0.0, 1.0, 1e30, np.inf, np.nan]], "float32")
    buckets = log2_bucket(values).numpy()[0]
    assert buckets.min() >= 1 and buckets.max() <= NUM_BUCKETS - 1
    assert buckets[:3].tolist() == [1, 1, 2]


def test_codes_invert_the_lookup():
    featurizer = EventFeaturizer(["A", "B"])
    codes = featurizer.codes(np.array([[2, 3, UNKNOWN_ITEM_ID, PAD_ID]])).numpy()
    assert codes.tolist() == [[b"A", b"B", b"", b""]]
    assert (featurizer.num_ids, featurizer.first_item_id) == (4, 2)


@pytest.mark.parametrize(
    "vocabulary, message",
    [([], "non-empty"), (["A", ""], "empty item code"), (["A", "B", "A"], "'A' repeated")],
)
def test_bad_vocabularies(vocabulary, message):
    with pytest.raises(ValueError, match=message):
        EventFeaturizer(vocabulary)
