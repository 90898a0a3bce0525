"""The counting baselines: their orders, their neighbours and their tuning window."""

import collections

import numpy as np
import pytest

from nmt_keras.behaviour import BASELINES
from nmt_keras.behaviour.baselines import (
    RECOMMENDERS,
    TIFUKNN,
    UPCF,
    Past,
    PersonalTopFrequency,
    PopularityRecommender,
    RepeatBasketRecommender,
    select_hyperparameters,
)
from nmt_keras.behaviour.events import Invoice
from nmt_keras.behaviour.examples import history_examples, latest_histories

DAY = 86_400
COUNTS = collections.Counter({"P3": 3, "P2": 5, "P1": 5, "A": 1})


def invoice(number, day, *items, quantity=1.0):
    quantities = tuple(quantity for _ in items)
    return Invoice(number, day * DAY, tuple(items), quantities, tuple(1.0 for _ in items))


def examples_of(invoices_by_customer, history_length=10):
    return history_examples(
        invoices_by_customer, start=None, end=None, history_length=history_length
    )


def last_example(invoices, customer="c"):
    """The example whose target is the last of one customer's `invoices`."""
    return history_examples(
        {customer: invoices}, start=invoices[-1].timestamp, end=None, history_length=10
    )


def past_of(invoices_by_customer=None, counts=COUNTS):
    """A `Past` with the given counts and, as neighbours, the customers' full histories."""
    histories = latest_histories(invoices_by_customer or {}, 10_000 * DAY, history_length=10)
    return Past(counts, histories)


ALICE = [
    invoice("1", 1, "A", "B", "B"),
    invoice("2", 2, "C"),
    invoice("C3", 3, "C", quantity=-1.0),
    invoice("4", 4, "D", "A", "E"),  # the last basket
    invoice("5", 5, "F"),  # the target
]
BOB = [invoice("C6", 1, "A", quantity=-1.0), invoice("7", 2, "B")]
EXAMPLES = examples_of({"alice": ALICE, "bob": BOB})


def test_every_baseline_name_has_a_recommender():
    assert set(RECOMMENDERS) == set(BASELINES)


def test_popularity_is_the_same_top_k_for_everyone():
    recommendations = PopularityRecommender(past_of()).recommend(EXAMPLES, k=3)
    assert len(recommendations) == len(EXAMPLES)
    assert all(ranking == ["P1", "P2", "P3"] for ranking in recommendations)  # ties by code
    recommendations[0].append("X")
    assert recommendations[-1] == ["P1", "P2", "P3"]
    assert PopularityRecommender(past_of()).recommend(EXAMPLES, k=10)[0] == ["P1", "P2", "P3", "A"]


def test_repeat_basket_ranks_the_last_basket_then_the_history_then_popularity():
    alice = examples_of({"alice": ALICE})
    recommender = RepeatBasketRecommender(past_of())
    # The cancellation of C ends the basket D, A, E: A was bought twice, then E is more
    # recent than D; then B (twice) and C (once); then the popular items not yet listed.
    assert recommender.recommend(alice, k=7)[-1] == ["A", "E", "D", "B", "C", "P1", "P2"]
    assert recommender.recommend(alice, k=2)[-1] == ["A", "E"]
    assert recommender.recommend(alice, k=20)[-1] == ["A", "E", "D", "B", "C", "P1", "P2", "P3"]


def test_invoices_at_one_time_form_one_basket_cut_by_the_history_length():
    invoices = [
        invoice("1", 1, "A"),
        invoice("2", 2, "B"),
        invoice("3", 2, "C"),  # same time as 2: one basket with it
        invoice("4", 3, "Z"),
    ]
    examples = examples_of({"dan": invoices})
    assert RepeatBasketRecommender(past_of()).recommend(examples, k=3)[-1] == ["C", "B", "A"]
    truncated = examples_of({"dan": invoices}, history_length=1)
    assert RepeatBasketRecommender(past_of()).recommend(truncated, k=3)[-1] == ["C", "P1", "P2"]


def test_a_history_of_cancellations_only_falls_back_to_popularity():
    bob = RepeatBasketRecommender(past_of()).recommend(EXAMPLES, k=3)[-1]
    assert EXAMPLES.customers[-1] == "bob" and bob == ["P1", "P2", "P3"]


def test_personal_top_frequency_counts_baskets_and_breaks_ties_by_recency():
    history = [
        invoice("1", 1, "A", "A", "B"),  # A twice in one basket counts once
        invoice("2", 2, "B", "C"),
        invoice("3", 3, "D", "A"),
        invoice("4", 4, "Z"),  # the target
    ]
    examples = examples_of({"eve": history})
    # A and B in two baskets each (A more recently), then D (newer) and C.
    assert PersonalTopFrequency(past_of(), fill=False).recommend(examples, 10)[-1] == [
        "A",
        "B",
        "D",
        "C",
    ]
    filled = PersonalTopFrequency(past_of()).recommend(examples, 6)[-1]
    assert filled == ["A", "B", "D", "C", "P1", "P2"]


def test_decay_prefers_recent_baskets():
    history = [
        invoice("1", 1, "OLD"),
        invoice("2", 2, "OLD"),
        invoice("3", 100, "NEW"),
        invoice("4", 101, "Z"),
    ]
    examples = examples_of({"fay": history})
    assert PersonalTopFrequency(past_of()).recommend(examples, 2)[-1] == ["OLD", "NEW"]
    # 98 days at a 30-day half-life: 2 * 0.5 ** (98 / 30) < 1.
    decayed = PersonalTopFrequency(past_of(), half_life_days=30.0).recommend(examples, 2)
    assert decayed[-1] == ["NEW", "OLD"]


def test_tifu_knn_user_vectors_follow_the_paper():
    history = [invoice("1", 1, "A"), invoice("2", 2, "B"), invoice("3", 3, "A", "C")]
    row = last_example([*history, invoice("4", 4, "Z")])
    past = past_of({"gus": history}, collections.Counter({"A": 2, "B": 1, "C": 1}))
    tifu = TIFUKNN(past, group_size=2, within_decay=0.5, group_decay=0.5, alpha=1.0)
    # Groups from the newest: {B, AC} and {A}. Group 1: (0.5 B + 1 AC) / 2; group 2: A / 1;
    # user = (group 1 + 0.5 group 2) / 2.
    vector = tifu._vectors(row)[0]
    expected = {"A": (0.5 + 0.5) / 2, "B": 0.25 / 2, "C": 0.5 / 2}
    np.testing.assert_allclose(vector, [expected[item] for item in past.catalogue])
    assert tifu.recommend(row, 3)[-1] == ["A", "C", "B"]


def test_neighbours_bring_their_items_but_never_the_customer_itself():
    histories = {
        "ann": [invoice("1", 1, "A", "B")],
        "ben": [invoice("2", 1, "A", "B", "C")],  # ann's nearest neighbour brings C
        "cat": [invoice("3", 1, "X", "Y")],
    }
    counts = collections.Counter({"X": 9, "Y": 8, "A": 2, "B": 2, "C": 1})
    past = past_of(histories, counts)
    ann = last_example([*histories["ann"], invoice("4", 2, "Z")], "ann")
    tifu = TIFUKNN(past, group_size=1, neighbours=1, alpha=0.5)
    assert tifu.recommend(ann, 3)[-1] == ["A", "B", "C"]
    upcf = UPCF(past, recency=1, asymmetry=0.5, locality=1, neighbours=1)
    assert upcf.recommend(ann, 3)[-1] == ["A", "B", "C"]
    # Alone among the neighbours, ann's own past row is skipped: popular items fill.
    lonely = Past(counts, latest_histories({"ann": histories["ann"]}, 10 * DAY, 10))
    assert TIFUKNN(lonely, group_size=1, neighbours=1).recommend(ann, 3)[-1] == ["A", "B", "X"]


def test_hyperparameters_are_chosen_on_the_window_before_the_cutoff():
    # Before day 60 customers rebuy what they bought last; from day 60 on (the evaluation),
    # they rebuy what they bought first. Only a long half-life fits the latter.
    invoices = {}
    for customer in range(6):
        first, last = f"F{customer}", f"L{customer}"
        invoices[str(customer)] = [
            invoice(f"{customer}a", 1, first),
            invoice(f"{customer}b", 2, first),
            invoice(f"{customer}c", 30, last),
            invoice(f"{customer}d", 45, last),
            invoice(f"{customer}e", 70, first),
        ]
    chosen, metrics = select_hyperparameters(
        "decayed-topfreq", invoices, cutoff=60 * DAY, validation_days=20, history_length=10, k=1
    )
    # The window [40, 60) holds only the day-45 invoices, which rebuy the recent product.
    assert chosen == {"half_life_days": 15.0} and metrics["recall@1"] == 1.0
    assert select_hyperparameters("gp-topfreq", invoices, 60 * DAY, 20, 10) == ({}, None)
    with pytest.raises(ValueError, match="validation days before the cutoff"):
        select_hyperparameters("up-cf", invoices, 20 * DAY, 5, 10)


@pytest.mark.parametrize("name", sorted(RECOMMENDERS))
def test_k_must_be_positive(name):
    make, _ = RECOMMENDERS[name]
    with pytest.raises(ValueError, match="Expected k >= 1. Received: 0"):
        make(past_of({"alice": ALICE})).recommend(EXAMPLES, k=0)
