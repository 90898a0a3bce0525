"""Training and test examples cut from customer invoices: past events -> next basket.

A customer's events are the lines of their invoices (purchases and cancellations), in
the order of `read_transactions`: by invoice time, ties in file order, lines in file
order. Each purchase invoice that has earlier events is one example: its history is the
last `history_length` events of the invoices sorted before it, its targets the distinct
stock codes it bought. `time_split` cuts the examples at a date so that no event at or
after it reaches training.
"""

from __future__ import annotations

import calendar
import collections
import dataclasses
import datetime
import re
from collections.abc import Mapping, Sequence

import numpy as np

from nmt_keras.behaviour.events import Invoice

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2})?")


@dataclasses.dataclass(frozen=True, eq=False)
class HistoryExamples:
    """One example per target purchase invoice: the customer's past events and what they bought.

    Row `i` of the history arrays holds the last `history_length` events (invoice lines,
    purchases and cancellations) strictly before target invoice `i`, oldest first and
    left-aligned; shorter histories are padded at the end.

    Attributes:
        items: object array `(n, history_length)` of stock codes, `""` on padding.
        timestamps: int64 array `(n, history_length)`, unix seconds, 0 on padding.
        quantities: float32 array `(n, history_length)`, negative on cancellations,
            0 on padding.
        prices: float32 array `(n, history_length)`, unit prices, 0 on padding.
        targets: The distinct stock codes of each target invoice, in line order.
        customers: The customer of each example.
        target_times: int64 array `(n,)`, unix seconds of each target invoice.
    """

    items: np.ndarray
    timestamps: np.ndarray
    quantities: np.ndarray
    prices: np.ndarray
    targets: tuple[tuple[str, ...], ...]
    customers: tuple[str, ...]
    target_times: np.ndarray

    def __len__(self) -> int:
        return len(self.customers)


@dataclasses.dataclass(frozen=True, eq=False)
class _Timeline:
    """One customer's events flattened over their invoices, in order."""

    items: np.ndarray
    timestamps: np.ndarray
    quantities: np.ndarray
    prices: np.ndarray

    @classmethod
    def of(cls, invoices: Sequence[Invoice]) -> _Timeline:
        """The events of `invoices`, one per invoice line."""
        return cls(
            items=np.array([item for invoice in invoices for item in invoice.items], dtype=object),
            timestamps=np.array(
                [invoice.timestamp for invoice in invoices for _ in invoice.items], dtype=np.int64
            ),
            quantities=np.array(
                [quantity for invoice in invoices for quantity in invoice.quantities],
                dtype=np.float32,
            ),
            prices=np.array(
                [price for invoice in invoices for price in invoice.prices], dtype=np.float32
            ),
        )


def history_examples(
    invoices_by_customer: Mapping[str, Sequence[Invoice]],
    *,
    start: int | None,
    end: int | None,
    history_length: int,
) -> HistoryExamples:
    """Examples for the purchase invoices with `start <= timestamp < end`.

    Args:
        invoices_by_customer: Customer id -> invoices, as `read_transactions` returns.
        start: First target time included (unix seconds); None: unbounded.
        end: First target time excluded (unix seconds); None: unbounded.
        history_length: Events kept per history (the most recent ones), >= 1.

    Returns:
        One example per purchase invoice in `[start, end)` that has at least one earlier
        event: the customer's earlier invoices (purchases and cancellations, at any date
        before the target, also after `start`), customers in mapping order, invoices in
        list order. A customer's first invoice is never a target.

    Raises:
        ValueError: `history_length` is below 1.
    """
    if history_length < 1:
        raise ValueError(f"Expected history_length >= 1. Received: {history_length}")
    chosen = []  # (customer, timeline, events before the target, target invoice)
    for customer, invoices in invoices_by_customer.items():
        timeline = None
        offset = 0
        for invoice in invoices:
            if offset and not invoice.is_cancellation and _within(invoice.timestamp, start, end):
                if timeline is None:
                    timeline = _Timeline.of(invoices)
                chosen.append((customer, timeline, offset, invoice))
            offset += len(invoice.items)
    return _assemble(chosen, history_length)


def latest_history(
    invoices_by_customer: Mapping[str, Sequence[Invoice]],
    customer: str,
    before: int | None,
    history_length: int,
) -> HistoryExamples:
    """One customer's latest events, as the single row of examples to recommend for.

    Args:
        invoices_by_customer: Customer id -> invoices, as `read_transactions` returns.
        customer: The customer id.
        before: Only invoices before this time (unix seconds) are read; None reads all.
        history_length: Events kept (the most recent ones), >= 1.

    Returns:
        One example whose target is unknown (an empty basket), its target time `before`
        (or the last event's time when None).

    Raises:
        ValueError: If the customer is unknown or has no event before `before`.
    """
    if history_length < 1:
        raise ValueError(f"Expected history_length >= 1. Received: {history_length}")
    if customer not in invoices_by_customer:
        raise ValueError(f"Expected a customer of the transactions. Received: {customer!r}")
    invoices = [
        invoice
        for invoice in invoices_by_customer[customer]
        if before is None or invoice.timestamp < before
    ]
    if not invoices:
        raise ValueError(
            f"Expected events of customer {customer!r} before the date. Received: none"
        )
    timeline = _Timeline.of(invoices)
    now = invoices[-1].timestamp if before is None else before
    target = Invoice(number="", timestamp=now, items=(), quantities=(), prices=())
    return _assemble([(customer, timeline, len(timeline.items), target)], history_length)


def latest_histories(
    invoices_by_customer: Mapping[str, Sequence[Invoice]], before: int, history_length: int
) -> HistoryExamples:
    """Every customer's latest events before a date, one row each: what counting may see.

    Args:
        invoices_by_customer: Customer id -> invoices, as `read_transactions` returns.
        before: Only invoices before this time (unix seconds) are read.
        history_length: Events kept per customer (the most recent ones), >= 1.

    Returns:
        One example per customer with an event before `before`, in mapping order, its
        target unknown (an empty basket) at time `before`.

    Raises:
        ValueError: `history_length` is below 1.
    """
    if history_length < 1:
        raise ValueError(f"Expected history_length >= 1. Received: {history_length}")
    target = Invoice(number="", timestamp=before, items=(), quantities=(), prices=())
    chosen = []
    for customer, invoices in invoices_by_customer.items():
        past = [invoice for invoice in invoices if invoice.timestamp < before]
        if past:
            timeline = _Timeline.of(past)
            chosen.append((customer, timeline, len(timeline.items), target))
    return _assemble(chosen, history_length)


def purchase_baskets(
    items: np.ndarray, timestamps: np.ndarray, quantities: np.ndarray
) -> list[tuple[int, tuple[str, ...]]]:
    """The purchase baskets of one history row, oldest first.

    A basket is the set of purchase events (positive quantity) that share a timestamp, as
    in `purchase_statistics`: the lines of one invoice.

    Args:
        items: One row of `HistoryExamples.items`.
        timestamps: The same row of `HistoryExamples.timestamps`.
        quantities: The same row of `HistoryExamples.quantities`.

    Returns:
        `(timestamp, distinct items in line order)` per basket.
    """
    baskets: dict[int, dict[str, None]] = {}
    for item, timestamp, quantity in zip(items, timestamps, quantities, strict=True):
        if item and quantity > 0:
            baskets.setdefault(int(timestamp), {})[item] = None
    return [(timestamp, tuple(basket)) for timestamp, basket in baskets.items()]


def _within(timestamp: int, start: int | None, end: int | None) -> bool:
    """Whether `start <= timestamp < end`, a None bound being unbounded."""
    return (start is None or timestamp >= start) and (end is None or timestamp < end)


def _assemble(chosen: list[tuple], history_length: int) -> HistoryExamples:
    """Stacks the chosen `(customer, timeline, offset, invoice)` into padded arrays."""
    shape = (len(chosen), history_length)
    items = np.full(shape, "", dtype=object)
    timestamps = np.zeros(shape, dtype=np.int64)
    quantities = np.zeros(shape, dtype=np.float32)
    prices = np.zeros(shape, dtype=np.float32)
    for row, (_, timeline, offset, _) in enumerate(chosen):
        first = max(0, offset - history_length)
        width = offset - first
        items[row, :width] = timeline.items[first:offset]
        timestamps[row, :width] = timeline.timestamps[first:offset]
        quantities[row, :width] = timeline.quantities[first:offset]
        prices[row, :width] = timeline.prices[first:offset]
    return HistoryExamples(
        items=items,
        timestamps=timestamps,
        quantities=quantities,
        prices=prices,
        targets=tuple(tuple(dict.fromkeys(invoice.items)) for *_, invoice in chosen),
        customers=tuple(customer for customer, *_ in chosen),
        target_times=np.array([invoice.timestamp for *_, invoice in chosen], dtype=np.int64),
    )


def time_split(
    invoices_by_customer: Mapping[str, Sequence[Invoice]],
    cutoff: int,
    history_length: int,
    end: int | None = None,
) -> tuple[HistoryExamples, HistoryExamples]:
    """Train and test examples on either side of `cutoff`, with no future event in training.

    Args:
        invoices_by_customer: Customer id -> invoices, as `read_transactions` returns.
        cutoff: Unix seconds; see `parse_date`.
        history_length: Events kept per history, >= 1.
        end: Unix seconds where the test targets stop (excluded); None: no end.

    Returns:
        `(train, test)`: train targets are the purchase invoices before `cutoff`, whose
        histories are before it too; test targets are the purchase invoices in
        `[cutoff, end)`, each with every earlier event as history (those after `cutoff`
        included: they are known by the time of the target).
    """
    train = history_examples(
        invoices_by_customer, start=None, end=cutoff, history_length=history_length
    )
    test = history_examples(
        invoices_by_customer, start=cutoff, end=end, history_length=history_length
    )
    return train, test


def parse_date(text: str) -> int:
    """Unix seconds of a date read as UTC.

    Args:
        text: `"YYYY-MM-DD"` (midnight) or `"YYYY-MM-DD HH:MM"`.

    Returns:
        The seconds since 1970-01-01 00:00 UTC.

    Raises:
        ValueError: `text` is not such a date.
    """
    expected = "Expected a date as YYYY-MM-DD or YYYY-MM-DD HH:MM."
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError(f"{expected} Received: {text!r}")
    try:
        moment = datetime.datetime.strptime(text, "%Y-%m-%d %H:%M" if match[1] else "%Y-%m-%d")
    except ValueError as error:
        raise ValueError(f"{expected} Received: {text!r} ({error})") from None
    return calendar.timegm(moment.timetuple())


def item_counts(
    invoices_by_customer: Mapping[str, Sequence[Invoice]], before: int
) -> collections.Counter:
    """Purchase lines per stock code before a date (quantities ignored).

    Args:
        invoices_by_customer: Customer id -> invoices, as `read_transactions` returns.
        before: Unix seconds; only invoices with an earlier timestamp count.

    Returns:
        Stock code -> number of purchase invoice lines with timestamp < `before`.
    """
    return collections.Counter(
        item
        for invoices in invoices_by_customer.values()
        for invoice in invoices
        if not invoice.is_cancellation and invoice.timestamp < before
        for item in invoice.items
    )
