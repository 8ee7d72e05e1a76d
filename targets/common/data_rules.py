"""Rules and rendering for the data endpoints (/search, /report, /refresh-views, /worlds/{id}), shared by
every variant through targets.common.contract: one parse rule and one JSON shape each, so bodies are byte-identical.

Query parameters follow parse_queries' TechEmpower manner: a missing or non-integer value gets a documented
default and out-of-range values are clamped, never a 422.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from targets.common.schema import (
    ITEM_CATEGORIES,
    MAX_PRICE_CENTS,
    MAX_RANDOM_NUMBER,
    SEARCH_DEFAULT_LIMIT,
    SEARCH_MAX_LIMIT,
    SEARCH_MAX_PRICE,
    WORLD_ROWS,
    ItemRow,
    ReportRow,
)

NEW_NUMBER_RULE = f'expected {{"randomNumber": n}} with n an integer in 1..{MAX_RANDOM_NUMBER}'
WORLD_NOT_FOUND = {"error": f"no world with that id (ids are 1..{WORLD_ROWS})"}
REFRESH_ACCEPTED = {"status": "accepted"}


@dataclass(frozen=True)
class Rejected:
    """A request body the contract refuses: the status and the one-line JSON error every variant sends."""

    status: int
    body: dict[str, str]


def _int_or(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def parse_category(raw: str | None) -> int:
    """/search?category=C: missing, empty or non-integer → 1; clamp to 1..ITEM_CATEGORIES."""
    return min(max(_int_or(raw, 1), 1), ITEM_CATEGORIES)


def parse_max_price(raw: str | None) -> int:
    """/search?max_price=P (cents): missing, empty or non-integer → SEARCH_MAX_PRICE; clamp to 0..MAX_PRICE_CENTS
    (0 matches nothing, MAX_PRICE_CENTS everything; the clamp also keeps the value inside a SQL integer)."""
    return min(max(_int_or(raw, SEARCH_MAX_PRICE), 0), MAX_PRICE_CENTS)


def parse_search_limit(raw: str | None) -> int:
    """/search?limit=N: missing, empty or non-integer → 20; clamp to 1..100."""
    return min(max(_int_or(raw, SEARCH_DEFAULT_LIMIT), 1), SEARCH_MAX_LIMIT)


def parse_world_id(raw: str) -> int | None:
    """/worlds/{id}: an integer in 1..WORLD_ROWS, else None (answered 404)."""
    try:
        world_id = int(raw)
    except ValueError:
        return None
    return world_id if 1 <= world_id <= WORLD_ROWS else None


def parse_new_number(body: bytes) -> int | Rejected:
    """The PUT /worlds/{id} body ``{"randomNumber": n}``: n, or why not (400 not JSON, 422 anything else)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Rejected(400, {"error": f"body is not JSON; {NEW_NUMBER_RULE}"})
    number = payload.get("randomNumber") if isinstance(payload, dict) else None
    # bool is an int subclass; JSON true must not pass as 1.
    if type(number) is not int or not 1 <= number <= MAX_RANDOM_NUMBER:
        return Rejected(422, {"error": NEW_NUMBER_RULE})
    return number


def iso_utc(moment: datetime) -> str:
    """ISO 8601 with "Z": stored timestamps are naive UTC, so one spelling whatever the driver returns."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat() + "Z"


def items_json(rows: Iterable[ItemRow]) -> list[dict[str, Any]]:
    return [
        {"id": item_id, "category": category, "priceCents": price, "createdAt": iso_utc(created)}
        for item_id, category, price, created in rows
    ]


def report_json(rows: Iterable[ReportRow]) -> list[dict[str, Any]]:
    return [
        {
            "category": category,
            "items": items,
            "minPriceCents": low,
            "avgPriceCents": mean,
            "medianPriceCents": median,
            "p90PriceCents": p90,
            "maxPriceCents": high,
            "activeDays": days,
            "newestCreatedAt": iso_utc(newest),
        }
        for category, items, low, mean, median, p90, high, days, newest in rows
    ]
