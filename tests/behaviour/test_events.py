"""read_transactions: grouping, ordering, skipped rows and unreadable files."""

import gzip
import time
from pathlib import Path

import pytest

from nmt_keras.behaviour.events import BehaviourDataError, Invoice, read_transactions
from nmt_keras.behaviour.examples import parse_date

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
REAL_FILE = Path(__file__).parents[3] / "shared/data/online-retail/online_retail.csv.gz"


def write_csv(path, rows, header=HEADER, compress=False):
    text = "".join(f"{line}\n" for line in [header, *rows])
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as file:
            file.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


ROWS = [
    # Customer 1: invoice 2 is at 10:00, invoice 1 at 09:00 but its lines are split.
    '2,85123A,"HEART, WHITE",6,2011-01-02 10:00,2.55,1,UK',
    "1,71053,LANTERN,4,2011-01-02 09:00,3.39,1,UK",
    "9,22423,CAKESTAND,1,2011-01-01 08:00,12.75,2,France",
    "1,84406b,HANGER,8,2011-01-02 09:01,2.75,1,UK",
    "C3,71053,LANTERN,-2,2011-01-03 11:00,3.39,1,UK",
    # Same time as invoice 2: file order breaks the tie.
    "4,22423,CAKESTAND,1,2011-01-02 10:00,12.75,1,UK",
]


@pytest.mark.parametrize("compress", [False, True], ids=["csv", "gz"])
def test_groups_lines_into_invoices_sorted_by_time_then_file_order(tmp_path, compress):
    name = "t.csv.gz" if compress else "t.csv"
    invoices, report = read_transactions(write_csv(tmp_path / name, ROWS, compress=compress))

    assert list(invoices) == ["1", "2"]
    assert [invoice.number for invoice in invoices["1"]] == ["1", "2", "4", "C3"]
    first = invoices["1"][0]
    assert first == Invoice(
        number="1",
        timestamp=parse_date("2011-01-02 09:00"),  # the earliest of its lines
        items=("71053", "84406B"),  # lower-case letters upper-cased
        quantities=(4.0, 8.0),
        prices=(3.39, 2.75),
    )
    assert not first.is_cancellation
    cancellation = invoices["1"][-1]
    assert cancellation.is_cancellation and cancellation.quantities == (-2.0,)
    assert invoices["2"][0].timestamp == 1293868800  # 2011-01-01 08:00 UTC
    assert (report.rows, report.events, report.customers, report.invoices) == (6, 6, 2, 5)
    assert report.skipped == {} and report.summary().endswith("nothing skipped")


def test_an_invoice_number_shared_by_two_customers_is_one_invoice_each(tmp_path):
    rows = [
        "5,22423,CAKESTAND,1,2011-01-01 08:00,12.75,1,UK",
        "5,71053,LANTERN,2,2011-01-01 08:00,3.39,2,UK",
    ]
    invoices, report = read_transactions(write_csv(tmp_path / "t.csv", rows))
    assert invoices["1"][0].items == ("22423",) and invoices["2"][0].items == ("71053",)
    assert report.invoices == 2


def test_every_skip_reason_is_counted_with_its_first_line(tmp_path):
    rows = [
        "1,22423,OK,1,2011-01-01 08:00,12.75,1,UK",  # line 2, kept
        "1,22423,GUEST,1,2011-01-01 08:00,12.75,,UK",  # 3 missing customer
        "1,POST,POSTAGE,1,2011-01-01 08:00,18.0,1,UK",  # 4 non-product code
        "1,DCGS0003,ASHTRAY,1,2011-01-01 08:00,2.0,1,UK",  # 5 non-product code
        "1,gift_0001_20,VOUCHER,1,2011-01-01 08:00,20.0,1,UK",  # 6 non-product code
        "1,22423,X,1,01/01/2011 08:00,12.75,1,UK",  # 7 bad date
        "1,22423,X,0,2011-01-01 08:00,12.75,1,UK",  # 8 bad quantity: zero
        "1,22423,X,-1,2011-01-01 08:00,12.75,1,UK",  # 9 bad quantity: negative purchase
        "C2,22423,X,1,2011-01-01 08:00,12.75,1,UK",  # 10 bad quantity: positive cancellation
        "1,22423,X,many,2011-01-01 08:00,12.75,1,UK",  # 11 bad quantity
        "1,22423,X,1,2011-01-01 08:00,-1,1,UK",  # 12 bad price
        "1,22423,X,1,2011-01-01 08:00,nan,1,UK",  # 13 bad price
        "1,22423,X,1,2011-01-01 08:00",  # 14 malformed row
        ",22423,X,1,2011-01-01 08:00,12.75,1,UK",  # 15 missing invoice
        "",  # blank: not a row
        "1,22423,GUEST,1,2011-01-01 08:00,12.75,,UK",  # 17 missing customer again
    ]
    path = write_csv(tmp_path / "t.csv", rows)
    _, report = read_transactions(path)

    assert report.skipped == {
        "bad quantity": 4,
        "non-product code": 3,
        "missing customer": 2,
        "bad price": 2,
        "bad date": 1,
        "malformed row": 1,
        "missing invoice": 1,
    }
    first_lines = {"missing customer": 3, "non-product code": 4, "bad date": 7}
    first_lines |= {"bad quantity": 8, "bad price": 12, "malformed row": 14, "missing invoice": 15}
    assert report.examples == {reason: f"{path}:{line}" for reason, line in first_lines.items()}
    assert (report.rows, report.events, report.customers, report.invoices) == (15, 1, 1, 1)
    assert report.summary().startswith(
        "1 of 15 rows kept as 1 invoices of 1 customers; "
        f"skipped: 4 bad quantity (first at {path}:8), 3 non-product code (first at {path}:4)"
    )


def test_a_missing_column_names_the_column_and_the_file(tmp_path):
    path = write_csv(tmp_path / "t.csv", [], header=HEADER.replace("CustomerID", "Customer"))
    with pytest.raises(BehaviourDataError, match=rf"^{path}:1: missing column 'CustomerID'\."):
        read_transactions(path)


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz"])
def test_bytes_that_are_not_utf8_name_the_line(tmp_path, name):
    data = f"{HEADER}\n1,22423,OK,1,2011-01-01 08:00,1.0,1,UK\n1,22423,CAF\xe9".encode("latin-1")
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(BehaviourDataError, match=rf"^{path}:3: byte 0xe9 at byte 12 .* not UTF-8"):
        read_transactions(path)


def test_a_damaged_gzip_or_a_missing_file_names_the_file(tmp_path):
    damaged = tmp_path / "t.csv.gz"
    damaged.write_bytes(b"not a gzip file at all")
    with pytest.raises(BehaviourDataError, match=rf"^{damaged}: cannot be read"):
        read_transactions(damaged)
    truncated = tmp_path / "u.csv.gz"
    truncated.write_bytes(gzip.compress(f"{HEADER}\n".encode() * 50)[:-20])
    with pytest.raises(BehaviourDataError, match=rf"^{truncated}: cannot be read"):
        read_transactions(truncated)
    with pytest.raises(BehaviourDataError, match=rf"^{tmp_path / 'none.csv'}: no such file"):
        read_transactions(tmp_path / "none.csv")


def test_a_field_beyond_the_csv_limit_names_the_line(tmp_path):
    path = write_csv(tmp_path / "t.csv", ['1,22423,"' + "x" * 200_000])
    with pytest.raises(BehaviourDataError, match=rf"^{path}:2: unreadable CSV: field larger"):
        read_transactions(path)


def test_an_empty_file_asks_for_a_header(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("")
    with pytest.raises(BehaviourDataError, match="empty file"):
        read_transactions(path)


@pytest.mark.skipif(not REAL_FILE.exists(), reason=f"{REAL_FILE} is absent")
@pytest.mark.slow
def test_reads_the_real_online_retail_file_in_seconds():
    began = time.perf_counter()
    invoices, report = read_transactions(REAL_FILE)
    seconds = time.perf_counter() - began

    assert report.rows == 541_909
    # 4,372 customers have an id; 9 of them bought nothing but postage, fees or adjustments.
    assert report.customers == len(invoices) == 4_363
    assert report.skipped == {"missing customer": 135_080, "non-product code": 1_920}
    assert report.events == 404_909 and report.invoices == 21_788
    assert seconds < 15
