import math

import numpy as np
import pytest

from nmt_keras.behaviour.purchase_statistics import (
    NUM_STATISTICS,
    STATISTIC_NAMES,
    purchase_statistics,
)

DAY = 86_400
# Product 2 in the baskets of days 0, 10 and 40 (twice on day 10: two lines), product 3
# on day 10 and cancelled on day 12, product 4 on day 40, an unknown product (1) on day
# 40, then padding. The latest event is on day 40.
ITEMS = [2, 3, 2, 2, 3, 2, 4, 1, 0]
DAYS = [0, 10, 10, 10, 12, 40, 40, 40, 0]
QUANTITIES = [1.0, 5.0, 2.0, 3.0, -5.0, 4.0, 6.0, 1.0, 0.0]


def statistics():
    out = purchase_statistics([ITEMS], [[day * DAY for day in DAYS]], [QUANTITIES], first_item_id=2)
    values = out["statistics"].numpy()[0]
    return {name: values[:, index] for index, name in enumerate(STATISTIC_NAMES)}, out[
        "repeat_set"
    ].numpy()[0]


def log_scaled(value, largest):
    return math.log1p(value) / math.log1p(largest)


def test_the_repeat_set_is_the_last_purchase_of_each_known_product():
    _, repeat_set = statistics()
    # Product 2's last purchase is event 5, product 3's event 1 (event 4 cancels), product
    # 4's event 6; the unknown product and padding never enter.
    assert repeat_set.tolist() == [False, True, False, False, False, True, True, False, False]


def test_counts_recency_and_gaps_of_each_product():
    values, _ = statistics()
    # Product 2 (event 5): baskets on days 0, 10, 40 of the customer's 3 baskets.
    assert values["baskets"][5] == pytest.approx(log_scaled(3, 100))
    assert values["basket_share"][5] == pytest.approx(1.0)
    assert values["days_since"][5] == 0.0 and values["in_last_basket"][5] == 1.0
    assert values["mean_gap_days"][5] == pytest.approx(log_scaled(20, 365))
    assert values["last_gap_days"][5] == pytest.approx(log_scaled(30, 365))
    assert values["bought_again"][5] == 1.0 and values["overdue"][5] == 0.0
    assert values["total_quantity"][5] == pytest.approx(log_scaled(10, 1000))
    assert values["last_quantity"][5] == pytest.approx(log_scaled(4, 1000))
    # Product 3 (event 1): one basket, 30 days and one basket before the latest, cancelled once.
    assert values["baskets"][1] == pytest.approx(log_scaled(1, 100))
    assert values["days_since"][1] == pytest.approx(log_scaled(30, 365))
    assert values["baskets_since"][1] == pytest.approx(log_scaled(1, 100))
    assert values["in_last_basket"][1] == 0.0 and values["bought_again"][1] == 0.0
    assert values["mean_gap_days"][1] == 0.0 and values["last_gap_days"][1] == 0.0
    assert values["cancellations"][1] == pytest.approx(log_scaled(1, 100))
    # Recency profiles: product 2 is in each of the 3 baskets, product 3 in one.
    assert values["share_of_last_3"][5] == values["share_of_last_10"][5] == pytest.approx(1.0)
    assert values["share_of_last_3"][1] == pytest.approx(1 / 3)
    decayed = 0.5 ** (40 / 30) + 0.5 ** (30 / 30) + 1.0  # the baskets of days 0, 10, 40
    assert values["decayed_30"][5] == pytest.approx(math.log1p(decayed) / math.log1p(100))
    assert values["decayed_180"][1] == pytest.approx(
        math.log1p(0.5 ** (30 / 180)) / math.log1p(100)
    )
    # The customer: 3 baskets, first event 40 days before the latest.
    assert values["customer_baskets"][0] == pytest.approx(log_scaled(3, 100))
    assert values["tenure_days"][0] == pytest.approx(log_scaled(40, 365))


def test_cancellations_and_padding_carry_no_statistics():
    values, _ = statistics()
    stacked = np.stack(list(values.values()), axis=-1)
    assert stacked.shape == (len(ITEMS), NUM_STATISTICS)
    assert not np.any(stacked[[4, 8]])
    assert np.all(np.isfinite(stacked))


def test_rows_are_independent_and_padding_is_neutral():
    timestamps = [day * DAY for day in DAYS]
    batch = purchase_statistics(
        [ITEMS, [0] * len(ITEMS)],
        [timestamps, [0] * len(ITEMS)],
        [QUANTITIES, [0.0] * len(ITEMS)],
        first_item_id=2,
    )
    alone = purchase_statistics([ITEMS[:8]], [timestamps[:8]], [QUANTITIES[:8]], first_item_id=2)
    np.testing.assert_allclose(batch["statistics"][0, :8], alone["statistics"][0], rtol=1e-6)
    assert not np.any(batch["statistics"][1]) and not np.any(batch["repeat_set"][1])
