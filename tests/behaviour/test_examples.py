"""history_examples, time_split, parse_date and item_counts on hand-made invoices."""

import numpy as np
import pytest

from nmt_keras.behaviour.events import Invoice
from nmt_keras.behaviour.examples import (
    history_examples,
    item_counts,
    parse_date,
    time_split,
)

DAY = 86_400


def invoice(number, day, *items, quantity=1.0):
    quantities = tuple(quantity for _ in items)
    prices = tuple(float(index + 1) for index in range(len(items)))
    return Invoice(number, day * DAY, tuple(items), quantities, prices)


INVOICES = {
    "alice": [
        invoice("1", 1, "A", "B"),
        invoice("C2", 2, "B", quantity=-1.0),
        invoice("3", 3, "C", "A", "C"),
        invoice("4", 5, "D"),
    ],
    "bob": [invoice("5", 4, "A")],  # a single invoice: never a target
    "carol": [invoice("6", 2, "E"), invoice("7", 6, "F")],
}


def test_one_example_per_purchase_with_an_earlier_event():
    examples = history_examples(INVOICES, start=None, end=None, history_length=4)

    assert len(examples) == 3
    assert examples.customers == ("alice", "alice", "carol")
    assert examples.targets == (("C", "A"), ("D",), ("F",))  # distinct, in line order
    assert examples.target_times.tolist() == [3 * DAY, 5 * DAY, 6 * DAY]
    assert examples.items.tolist() == [
        ["A", "B", "B", ""],
        ["B", "C", "A", "C"],  # the last 4 of the 6 earlier events
        ["E", "", "", ""],
    ]
    assert examples.timestamps[0].tolist() == [DAY, DAY, 2 * DAY, 0]
    assert examples.quantities[0].tolist() == [1.0, 1.0, -1.0, 0.0]
    assert examples.prices[1].tolist() == [1.0, 1.0, 2.0, 3.0]
    assert examples.items.dtype == object and examples.timestamps.dtype == np.int64
    assert examples.quantities.dtype == np.float32 and examples.prices.dtype == np.float32


def test_a_window_keeps_targets_in_it_and_histories_before_it():
    examples = history_examples(INVOICES, start=4 * DAY, end=6 * DAY, history_length=10)
    assert examples.targets == (("D",),)
    assert examples.items[0, :6].tolist() == ["A", "B", "B", "C", "A", "C"]


def test_same_time_invoices_are_history_in_file_order():
    invoices = {"dan": [invoice("1", 1, "A"), invoice("2", 1, "B"), invoice("3", 1, "C")]}
    examples = history_examples(invoices, start=None, end=None, history_length=3)
    assert examples.items.tolist() == [["A", "", ""], ["A", "B", ""]]


def test_no_examples_gives_empty_arrays_of_the_history_length():
    examples = history_examples({"bob": INVOICES["bob"]}, start=None, end=None, history_length=5)
    assert len(examples) == 0 and examples.items.shape == (0, 5)
    assert examples.target_times.shape == (0,)


def test_the_history_length_must_be_positive():
    with pytest.raises(ValueError, match="Expected history_length >= 1. Received: 0"):
        history_examples(INVOICES, start=None, end=None, history_length=0)


def test_the_time_split_leaks_nothing_from_the_cutoff_on():
    train, _ = time_split(INVOICES, 3 * DAY, history_length=2)
    assert train.targets == ()  # alice's 3 and carol's 7 are at or after the cutoff
    train, test = time_split(INVOICES, 5 * DAY, history_length=2)
    assert train.targets == (("C", "A"),) and test.targets == (("D",), ("F",))
    assert test.items.tolist() == [["A", "C"], ["E", ""]]  # every earlier event is history
    for cutoff in range(7):
        train, test = time_split(INVOICES, cutoff * DAY, history_length=2)
        assert (train.target_times < cutoff * DAY).all()
        assert (train.timestamps[train.items != ""] < cutoff * DAY).all()
        assert (test.target_times >= cutoff * DAY).all()
        assert len(train) + len(test) == 3


def test_parse_date_reads_utc_dates_and_rejects_others():
    assert parse_date("1970-01-02") == DAY
    assert parse_date("2011-11-01 08:30") == 1320136200
    for text in ["2011-11-01T08:30", "01/11/2011", "2011-02-30", "2011-11-01 8:30", ""]:
        with pytest.raises(ValueError, match="^Expected a date as YYYY-MM-DD or YYYY-MM-DD HH:MM"):
            parse_date(text)


def test_item_counts_counts_purchase_lines_before_a_time():
    assert item_counts(INVOICES, before=3 * DAY) == {"A": 1, "B": 1, "E": 1}
    assert item_counts(INVOICES, before=4 * DAY) == {"A": 2, "B": 1, "C": 2, "E": 1}
