"""Small synthetic transaction files in the Online Retail layout, for tests without ../shared."""

from __future__ import annotations

import csv
import gzip

import numpy as np

HEADER = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice")
COLUMNS = (*HEADER, "CustomerID", "Country")
#: The synthetic catalogue: 40 product codes in the real file's pattern.
CATALOGUE = [f"{20000 + i}" for i in range(40)]


def write_transactions(path, customers: int = 30, invoices: int = 8, seed: int = 0) -> str:
    """Writes a gzipped CSV where each customer rebuys from a personal set of 4 products.

    Invoices run monthly from 2011-01 (8 per customer reach 2011-08), so a cutoff of
    2011-07-01 leaves test invoices after it; every fifth invoice is followed by the
    cancellation of one of its lines.

    Returns:
        The path, as a string.
    """
    rng = np.random.default_rng(seed)
    rows = []
    number = 500000
    for customer in range(customers):
        favourites = rng.choice(CATALOGUE, size=4, replace=False)
        for month in range(invoices):
            number += 1
            date = f"2011-{month + 1:02d}-{1 + customer % 27:02d} 10:{customer % 60:02d}"
            basket = rng.choice(favourites, size=2, replace=False)
            for code in basket:
                rows.append((number, code, f"ITEM {code}", 2, date, "1.25", 12000 + customer, "UK"))
            if month % 5 == 4:
                rows.append(
                    (f"C{number}", basket[0], "X", -1, date, "1.25", 12000 + customer, "UK")
                )
    with gzip.open(path, "wt", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return str(path)
