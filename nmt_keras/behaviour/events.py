"""Customer invoices read from a transactions file in the Online Retail layout.

One CSV row is one invoice line, with the header
`InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country`
(`Description` and `Country` are not read; columns may come in any order). The file is
plain (`.csv`) or gzipped (`.gz`), UTF-8. `read_transactions` keeps a line as an event
when, checked in this order:

- the row has as many fields as the header (else "malformed row");
- the customer is known (else "missing customer": guest checkouts, about a quarter of
  the Online Retail lines) and so is the invoice number (else "missing invoice");
- the stock code is a product: 5 digits optionally followed by letters (`85123A`,
  `15056BL`), the letters upper-cased because the file spells 111 codes in both cases
  (`15056bl` is the same parasol as `15056BL`). Everything else is a charge, fee,
  voucher or adjustment (`POST`, `DOT`, `M`, `C2`, `D`, `S`, `B`, `BANK CHARGES`,
  `AMAZONFEE`, `CRUK`, `PADS`, `DCGS0003`, `gift_0001_20`, ...): "non-product code";
- the date is `YYYY-MM-DD HH:MM`, read as UTC (else "bad date");
- the quantity is a finite non-zero number, negative exactly on cancellations, whose
  invoice number starts with `C` (else "bad quantity");
- the unit price is a finite number >= 0 (else "bad price").

A row that fails is counted under its first failing reason in the `ReadReport`, with
the first `path:line` where that happened; it never stops the read. What does stop it
is a file that cannot be read as a whole: a missing file, a missing column, bytes that
are not UTF-8 or a damaged gzip raise `BehaviourDataError`, naming the file.
"""

from __future__ import annotations

import calendar
import csv
import dataclasses
import datetime
import gzip
import math
import operator
import os
import re
import zlib
from collections.abc import Callable
from typing import IO, Any

from nmt_keras.errors import NmtKerasError

REQUIRED_COLUMNS = ("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID")

_PRODUCT_CODE = re.compile(r"\d{5}[A-Za-z]*")
_DATE_FORMAT = "%Y-%m-%d %H:%M"


class BehaviourDataError(NmtKerasError, ValueError):
    """A transactions file or one of its rows/columns is unusable."""


@dataclasses.dataclass(frozen=True)
class Invoice:
    """One customer's invoice: its product lines in file order.

    Attributes:
        number: The invoice number, e.g. `"536365"`, or `"C536379"` for a cancellation.
        timestamp: Unix seconds of the invoice date read as UTC (the earliest of its
            lines' dates: a few invoices span two minutes).
        items: Stock codes, one per invoice line, in file order.
        quantities: Quantity of each line, negative on cancellations.
        prices: Unit price of each line, >= 0.
    """

    number: str
    timestamp: int
    items: tuple[str, ...]
    quantities: tuple[float, ...]
    prices: tuple[float, ...]

    @property
    def is_cancellation(self) -> bool:
        """Whether the invoice cancels earlier purchases (its number starts with `C`)."""
        return self.number.startswith("C")


@dataclasses.dataclass(frozen=True)
class ReadReport:
    """What `read_transactions` kept and skipped.

    Attributes:
        rows: Data rows read (the header and blank lines are not rows).
        events: Invoice lines kept.
        customers: Customers with at least one kept line.
        invoices: Invoices kept, counted per (customer, invoice number).
        skipped: Skip reason -> number of rows, most frequent first.
        examples: Skip reason -> `"path:line"` of the first row skipped for it.
    """

    rows: int
    events: int
    customers: int
    invoices: int
    skipped: dict[str, int]
    examples: dict[str, str]

    def summary(self) -> str:
        """One readable line: what was kept, then each skip reason with its first line."""
        kept = (
            f"{self.events:,} of {self.rows:,} rows kept as {self.invoices:,} invoices "
            f"of {self.customers:,} customers"
        )
        if not self.skipped:
            return f"{kept}; nothing skipped"
        skipped = ", ".join(
            f"{count:,} {reason} (first at {self.examples[reason]})"
            for reason, count in self.skipped.items()
        )
        return f"{kept}; skipped: {skipped}"


def read_transactions(path: str | os.PathLike) -> tuple[dict[str, list[Invoice]], ReadReport]:
    """Reads a transactions file into each customer's invoices.

    Args:
        path: A `.csv` or `.csv.gz` file in the Online Retail layout (see the module
            docstring for which rows are kept).

    Returns:
        `(invoices_by_customer, report)`: customer id -> that customer's invoices sorted
        by (timestamp, order of first appearance in the file), customers in order of
        first appearance; the lines of one invoice need not be contiguous. An invoice
        number whose lines name several customers gives one invoice per customer.

    Raises:
        BehaviourDataError: The file is missing, lacks a required column, holds bytes
            that are not UTF-8 or is a damaged gzip; the message names the file (and the
            line).
    """
    path = os.fspath(path)
    rows = None
    try:
        with _open_text(path) as file:
            rows = csv.reader(file)
            header = next(rows, None)
            grouper = _Grouper(path, _column_indices(path, header), width=len(header))
            for row in rows:
                if row:
                    grouper.add(row, rows.line_num)
    except FileNotFoundError as error:
        raise BehaviourDataError(f"{path}: no such file.") from error
    except UnicodeDecodeError as error:
        raise BehaviourDataError(_undecodable_message(path)) from error
    except csv.Error as error:
        raise BehaviourDataError(f"{path}:{rows.line_num}: unreadable CSV: {error}") from error
    except (OSError, EOFError, zlib.error) as error:
        raise BehaviourDataError(f"{path}: cannot be read: {error}") from error
    return grouper.result()


def _open_text(path: str) -> IO[str]:
    """Opens `path` as UTF-8 text (a leading byte-order mark is dropped), gunzipping `.gz`."""
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _column_indices(path: str, header: list[str] | None) -> dict[str, int]:
    """Column name -> index for the required columns, or `BehaviourDataError`."""
    expected = ", ".join(REQUIRED_COLUMNS)
    if header is None:
        raise BehaviourDataError(f"{path}: empty file. Expected a header row with {expected}.")
    names = [name.strip() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise BehaviourDataError(
            f"{path}:1: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))}. Expected columns "
            f"{expected}. Received: {', '.join(names)}."
        )
    return {name: names.index(name) for name in REQUIRED_COLUMNS}


def _undecodable_message(path: str) -> str:
    """`path:line: ...` for the first line of `path` that is not UTF-8."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as file:
        for number, line in enumerate(file, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                return (
                    f"{path}:{number}: byte 0x{line[error.start]:02x} at byte "
                    f"{error.start + 1} of the line is not UTF-8. Expected a UTF-8 file."
                )
    return f"{path}: not UTF-8 (a truncated character at the end). Expected a UTF-8 file."


class _Grouper:
    """Checks rows and gathers the kept lines per (customer, invoice number).

    Stock codes, dates and numbers are parsed once per distinct text: a file repeats a
    few thousand of each over hundreds of thousands of rows.
    """

    def __init__(self, path: str, columns: dict[str, int], width: int):
        self._path = path
        self._width = width
        self._fields = operator.itemgetter(*(columns[name] for name in REQUIRED_COLUMNS))
        self._rows = 0
        self._skipped: dict[str, int] = {}
        self._examples: dict[str, str] = {}
        self._codes = _Cache(_product_code)
        self._dates = _Cache(_timestamp)
        self._numbers = _Cache(_number)
        # (customer, number) -> [timestamp, items, quantities, prices], in order of appearance.
        self._invoices: dict[tuple[str, str], list] = {}

    def add(self, row: list[str], line: int) -> None:
        """Keeps the invoice line in `row` (at `line` of the file) or counts why not."""
        self._rows += 1
        event = self._event(row)
        if isinstance(event, str):
            self._skipped[event] = self._skipped.get(event, 0) + 1
            self._examples.setdefault(event, f"{self._path}:{line}")
            return
        customer, number, code, timestamp, quantity, price = event
        invoice = self._invoices.get((customer, number))
        if invoice is None:
            invoice = self._invoices[customer, number] = [timestamp, [], [], []]
        elif timestamp < invoice[0]:
            invoice[0] = timestamp
        invoice[1].append(code)
        invoice[2].append(quantity)
        invoice[3].append(price)

    def _event(self, row: list[str]) -> tuple | str:
        """`(customer, number, code, timestamp, quantity, price)`, or the skip reason."""
        if len(row) != self._width:
            return "malformed row"
        number, code, quantity, date, price, customer = self._fields(row)
        customer = customer.strip()
        if not customer:
            return "missing customer"
        number = number.strip()
        if not number:
            return "missing invoice"
        code = self._codes[code]
        if code is None:
            return "non-product code"
        timestamp = self._dates[date]
        if timestamp is None:
            return "bad date"
        quantity = self._numbers[quantity]
        if quantity is None or quantity == 0 or (quantity < 0) != number.startswith("C"):
            return "bad quantity"
        price = self._numbers[price]
        if price is None or price < 0:
            return "bad price"
        return customer, number, code, timestamp, quantity, price

    def result(self) -> tuple[dict[str, list[Invoice]], ReadReport]:
        """The invoices per customer, each list sorted by time then first appearance."""
        by_customer: dict[str, list[Invoice]] = {}
        for (customer, number), (timestamp, items, quantities, prices) in self._invoices.items():
            invoice = Invoice(number, timestamp, tuple(items), tuple(quantities), tuple(prices))
            by_customer.setdefault(customer, []).append(invoice)
        for invoices in by_customer.values():
            invoices.sort(key=lambda invoice: invoice.timestamp)  # stable: ties keep file order
        skipped = dict(sorted(self._skipped.items(), key=lambda entry: -entry[1]))
        report = ReadReport(
            rows=self._rows,
            events=sum(len(invoice[1]) for invoice in self._invoices.values()),
            customers=len(by_customer),
            invoices=len(self._invoices),
            skipped=skipped,
            examples={reason: self._examples[reason] for reason in skipped},
        )
        return by_customer, report


class _Cache(dict):
    """`cache[text]` is `parse(text)`, computed on the first look-up only."""

    def __init__(self, parse: Callable[[str], Any]):
        super().__init__()
        self._parse = parse

    def __missing__(self, text: str) -> Any:
        value = self[text] = self._parse(text)
        return value


def _product_code(text: str) -> str | None:
    """The upper-cased product code in `text`, or None when it is not one."""
    code = text.strip()
    return code.upper() if _PRODUCT_CODE.fullmatch(code) else None


def _timestamp(text: str) -> int | None:
    """Unix seconds of a `YYYY-MM-DD HH:MM` date read as UTC, or None."""
    try:
        moment = datetime.datetime.strptime(text.strip(), _DATE_FORMAT)
    except ValueError:
        return None
    return calendar.timegm(moment.timetuple())


def _number(text: str) -> float | None:
    """`text` as a finite float, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
