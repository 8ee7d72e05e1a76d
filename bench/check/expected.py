"""Right answers computed from targets.common.schema's generator, independently of the targets' own code.

Used only against a database dbbench seeded: there /fortunes, /authors/*, /search and /report must match
these byte for byte.
"""

from __future__ import annotations

import functools
import html
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from targets.common.schema import ADDED_FORTUNE, FORTUNES, ITEMS_EPOCH, item_offsets

# The categories whose rows the check keeps from the 200,000 items (the search cases use only these).
KEPT_CATEGORIES = (1, 42, 100)


@dataclass(frozen=True)
class Seeded:
    """What the check keeps of the seeded items: three categories' rows, newest first, and the report."""

    rows: dict[int, list[tuple[int, int, int, int]]]  # category -> [(id, category, price, seconds)]
    report: list[dict[str, Any]]
    prices: dict[int, list[int]]  # category -> prices, for every category
    days: dict[int, set[int]]  # category -> days (since ITEMS_EPOCH) with an item
    newest: dict[int, int]  # category -> newest item's seconds since ITEMS_EPOCH


def expected_fortunes_html() -> str:
    """The /fortunes page, written out independently of targets.common.contract's renderer."""
    rows = sorted([*FORTUNES, ADDED_FORTUNE], key=lambda row: row[1])
    cells = "".join(f"<tr><td>{i}</td><td>{html.escape(message)}</td></tr>" for i, message in rows)
    return (
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body>"
        f"<table><tr><th>id</th><th>message</th></tr>{cells}</table></body></html>"
    )


@functools.cache
def seeded_items() -> Seeded:
    """One pass over the generator (~0.3 s), once per process."""
    kept: dict[int, list[tuple[int, int, int, int]]] = {category: [] for category in KEPT_CATEGORIES}
    prices: dict[int, list[int]] = {}
    days: dict[int, set[int]] = {}
    newest: dict[int, int] = {}
    for row in item_offsets():
        _, category, price, seconds = row
        if category in kept:
            kept[category].append(row)
        prices.setdefault(category, []).append(price)
        days.setdefault(category, set()).add(seconds // 86_400)
        newest[category] = max(newest.get(category, 0), seconds)
    for rows in kept.values():
        rows.sort(key=lambda row: (row[3], row[0]), reverse=True)
    report = [
        expected_report_row(category, prices[category], len(days[category]), when(newest[category]))
        for category in sorted(prices)
    ]
    return Seeded(kept, report, prices, days, newest)


def expected_report_row(category: int, prices: list[int], active_days: int, newest: datetime) -> dict[str, Any]:
    """One /report row as PostgreSQL computes it: percentile_disc is the first value whose position reaches
    the fraction, avg the floor of the integer mean."""
    ordered = sorted(prices)
    n = len(ordered)

    def percentile(fraction: float) -> int:
        return ordered[max(math.ceil(fraction * n), 1) - 1]

    return {
        "category": category,
        "items": n,
        "minPriceCents": ordered[0],
        "avgPriceCents": sum(ordered) // n,
        "medianPriceCents": percentile(0.5),
        "p90PriceCents": percentile(0.9),
        "maxPriceCents": ordered[-1],
        "activeDays": active_days,
        "newestCreatedAt": iso(newest),
    }


def expected_search(category: int, max_price: int, limit: int) -> list[dict[str, Any]]:
    """/search's answer on the seeded items; ``category`` is one of KEPT_CATEGORIES."""
    rows = [row for row in seeded_items().rows[category] if row[2] <= max_price][:limit]
    return [
        {"id": item_id, "category": cat, "priceCents": price, "createdAt": iso(when(seconds))}
        for item_id, cat, price, seconds in rows
    ]


def when(seconds: int) -> datetime:
    return ITEMS_EPOCH + timedelta(seconds=seconds)


def iso(moment: datetime) -> str:
    return moment.isoformat() + "Z"
