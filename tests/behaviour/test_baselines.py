"""PopularityRecommender and RepeatBasketRecommender orders."""

import collections

import pytest

from nmt_keras.behaviour.baselines import PopularityRecommender, RepeatBasketRecommender
from nmt_keras.behaviour.events import Invoice
from nmt_keras.behaviour.examples import history_examples

COUNTS = collections.Counter({"P3": 3, "P2": 5, "P1": 5, "A": 1})


def invoice(number, day, *items, quantity=1.0):
    quantities = tuple(quantity for _ in items)
    return Invoice(number, day * 86_400, tuple(items), quantities, tuple(1.0 for _ in items))


def examples_of(invoices_by_customer, history_length=10):
    return history_examples(
        invoices_by_customer, start=None, end=None, history_length=history_length
    )


ALICE = [
    invoice("1", 1, "A", "B", "B"),
    invoice("2", 2, "C"),
    invoice("C3", 3, "C", quantity=-1.0),
    invoice("4", 4, "D", "A", "E"),  # the last basket
    invoice("5", 5, "F"),  # the target
]
BOB = [invoice("C6", 1, "A", quantity=-1.0), invoice("7", 2, "B")]
EXAMPLES = examples_of({"alice": ALICE, "bob": BOB})


def test_popularity_is_the_same_top_k_for_everyone():
    recommendations = PopularityRecommender(COUNTS).recommend(EXAMPLES, k=3)
    assert len(recommendations) == len(EXAMPLES)
    assert all(ranking == ["P1", "P2", "P3"] for ranking in recommendations)  # ties by code
    recommendations[0].append("X")
    assert recommendations[-1] == ["P1", "P2", "P3"]
    assert PopularityRecommender(COUNTS).recommend(EXAMPLES, k=10)[0] == ["P1", "P2", "P3", "A"]


def test_repeat_basket_ranks_the_last_basket_then_the_history_then_popularity():
    alice = examples_of({"alice": ALICE})
    recommender = RepeatBasketRecommender(COUNTS)
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
    assert RepeatBasketRecommender(COUNTS).recommend(examples, k=3)[-1] == ["C", "B", "A"]
    truncated = examples_of({"dan": invoices}, history_length=1)
    assert RepeatBasketRecommender(COUNTS).recommend(truncated, k=3)[-1] == ["C", "P1", "P2"]


def test_a_history_of_cancellations_only_falls_back_to_popularity():
    bob = RepeatBasketRecommender(COUNTS).recommend(EXAMPLES, k=3)[-1]
    assert EXAMPLES.customers[-1] == "bob" and bob == ["P1", "P2", "P3"]


@pytest.mark.parametrize("recommender", [PopularityRecommender, RepeatBasketRecommender])
def test_k_must_be_positive(recommender):
    with pytest.raises(ValueError, match="Expected k >= 1. Received: 0"):
        recommender(COUNTS).recommend(EXAMPLES, k=0)
