"""The contract check's part for the data endpoints: /search, /report, POST /refresh-views, GET/PUT /worlds/{id}.

Called by bench.contract_check.check_variant with its checker (problems list, query counting, HTTP helpers).
Expected answers are computed here from targets.schema's generator, rendered independently of the targets'
code: /search and /report bodies must match byte for byte. With ``dsn`` (a database we seeded) the refresh
check adds one item through psycopg (bench.seed.probe_item), POSTs /refresh-views and polls /report until
the change shows, then restores items, the view and the seed marker; without it (``--url``) only shapes,
orders and the target's own refresh counters are checked.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bench.seed import probe_item, world_snapshot
from targets.data_rules import NEW_NUMBER_RULE, WORLD_NOT_FOUND
from targets.schema import (
    ITEM_CATEGORIES,
    ITEMS_EPOCH,
    MAX_PRICE_CENTS,
    MAX_RANDOM_NUMBER,
    SEARCH_DEFAULT_LIMIT,
    SEARCH_MAX_LIMIT,
    SEARCH_MAX_PRICE,
    WORLD_ROWS,
    item_offsets,
)

if TYPE_CHECKING:  # contract_check imports this module to call it
    from bench.contract_check import Checker

JSON_TYPE = "application/json"
# Seconds to wait for a refresh to show in /report; a module constant so a test can shorten it.
REFRESH_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.02
# (query string, (category, max_price, limit) the contract makes of it). Categories 1, 42 and 100 only:
# their rows are all the check keeps from the 200,000.
SEARCH_CASES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("category=42&max_price=50000&limit=20", (42, 50_000, 20)),
    ("category=1&max_price=1000&limit=100", (1, 1_000, 100)),  # fewer matches than the limit
    ("category=100&max_price=100000&limit=100", (100, 100_000, 100)),
    ("", (1, SEARCH_MAX_PRICE, SEARCH_DEFAULT_LIMIT)),
    ("category=foo&max_price=bar&limit=baz", (1, SEARCH_MAX_PRICE, SEARCH_DEFAULT_LIMIT)),
    ("category=0&limit=0", (1, SEARCH_MAX_PRICE, 1)),
    ("category=101&limit=101", (ITEM_CATEGORIES, SEARCH_MAX_PRICE, SEARCH_MAX_LIMIT)),
    ("category=42&max_price=-5", (42, 0, SEARCH_DEFAULT_LIMIT)),  # nothing costs less than 0: []
    ("category=42&max_price=99999999999", (42, MAX_PRICE_CENTS, SEARCH_DEFAULT_LIMIT)),
)
SEARCH_KEYS = ("id", "category", "priceCents", "createdAt")
REPORT_KEYS = (
    "category",
    "items",
    "minPriceCents",
    "avgPriceCents",
    "medianPriceCents",
    "p90PriceCents",
    "maxPriceCents",
    "activeDays",
    "newestCreatedAt",
)
REFRESH_COUNTERS = ("requested", "coalesced", "started", "completed", "failed")
WORLD_IDS = (1, 5_000, WORLD_ROWS)
MISSING_WORLDS = ("0", str(WORLD_ROWS + 1), "abc")
PUT_WORLD = 77
BAD_BODIES: tuple[tuple[bytes, int], ...] = (
    (b'{"randomNumber": 0}', 422),
    (b'{"randomNumber": "5"}', 422),
    (b'{"randomNumber": true}', 422),
    (b"[]", 422),
    (b"not json", 400),
)


@dataclass(frozen=True)
class Seeded:
    """What the check keeps of the seeded items: three categories' rows, newest first, and the report."""

    rows: dict[int, list[tuple[int, int, int, int]]]  # category -> [(id, category, price, seconds)]
    report: list[dict[str, Any]]
    prices: dict[int, list[int]]  # category -> prices, for every category
    days: dict[int, set[int]]  # category -> days (since ITEMS_EPOCH) with an item
    newest: dict[int, int]  # category -> newest item's seconds since ITEMS_EPOCH


@functools.cache
def seeded_items() -> Seeded:
    """One pass over the generator (~0.3 s), once per process."""
    kept: dict[int, list[tuple[int, int, int, int]]] = {case[1][0]: [] for case in SEARCH_CASES}
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
        expected_report_row(category, prices[category], len(days[category]), _when(newest[category]))
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
        "newestCreatedAt": _iso(newest),
    }


def expected_search(category: int, max_price: int, limit: int) -> list[dict[str, Any]]:
    rows = [row for row in seeded_items().rows[category] if row[2] <= max_price][:limit]
    return [
        {"id": item_id, "category": cat, "priceCents": price, "createdAt": _iso(_when(seconds))}
        for item_id, cat, price, seconds in rows
    ]


def check_data_endpoints(checker: Checker) -> None:
    check_search(checker)
    check_report(checker)
    check_worlds(checker)
    check_refresh(checker)


def check_search(checker: Checker) -> None:
    for query, (category, max_price, limit) in SEARCH_CASES:
        path = f"/search?{query}" if query else "/search"
        checker.reset_stats()
        response = checker.get(path, JSON_TYPE)
        if response is None:
            continue
        checker.expect_queries(path, "/search", 1)
        if checker.dsn is not None:
            want = expected_search(category, max_price, limit)
            if response.content != _compact_json(want):
                checker.problem(f"{path}: {_list_difference(response.content, want, 'id')}")
        elif (fault := _search_shape_fault(response.content, category, max_price, limit)) is not None:
            checker.problem(f"{path}: {fault}")


def check_report(checker: Checker) -> None:
    checker.reset_stats()
    response = checker.get("/report", JSON_TYPE)
    if response is None:
        return
    checker.expect_queries("/report", "/report", 1)
    if checker.dsn is not None:
        want = seeded_items().report
        if response.content != _compact_json(want):
            checker.problem(f"/report: {_list_difference(response.content, want, 'category')}")
        return
    payload = _loads(response.content)
    if not isinstance(payload, list) or any(not isinstance(row, dict) or tuple(row) != REPORT_KEYS for row in payload):
        checker.problem(f"/report: expected a list of {{{', '.join(REPORT_KEYS)}}}, got {_short(payload)}")
    elif [row["category"] for row in payload] != list(range(1, ITEM_CATEGORIES + 1)):
        checker.problem(f"/report: expected one row per category 1..{ITEM_CATEGORIES}, in order")


def check_worlds(checker: Checker) -> None:
    stored = world_snapshot(checker.dsn, [*WORLD_IDS, PUT_WORLD]) if checker.dsn is not None else None
    for world_id in WORLD_IDS:
        path = f"/worlds/{world_id}"
        checker.reset_stats()
        payload = checker.get_json(path, JSON_TYPE)
        if payload is None:
            continue
        # read_worlds serves it, as it serves /db: a cache allowed fewer queries there may answer it too.
        checker.expect_queries(path, "/worlds/{id}", 1, fewer_ok_like="/db")
        number = stored[world_id] if stored is not None else payload.get("randomNumber")
        if payload != {"id": world_id, "randomNumber": number} or not _is_world_number(number):
            checker.problem(
                f"{path}: expected {_short({'id': world_id, 'randomNumber': number})}, got {_short(payload)}"
            )
    for raw in MISSING_WORLDS:
        _expect_error(checker, "GET", f"/worlds/{raw}", 404, WORLD_NOT_FOUND)
    _expect_error(checker, "PUT", "/worlds/0", 404, WORLD_NOT_FOUND, content=b'{"randomNumber": 1}')
    _check_put(checker, stored)


def _check_put(checker: Checker, stored: Mapping[int, int] | None) -> None:
    path = f"/worlds/{PUT_WORLD}"
    before = stored[PUT_WORLD] if stored is not None else 1
    number = before % MAX_RANDOM_NUMBER + 1  # differs from the stored value, so the write is visible
    for body, status in BAD_BODIES:
        _expect_error(checker, "PUT", path, status, {"error": _put_error(status)}, content=body)
    if checker.dsn is not None and world_snapshot(checker.dsn, [PUT_WORLD]) != {PUT_WORLD: before}:
        checker.problem(f"PUT {path}: a refused body changed the stored value")
    checker.reset_stats()
    response = checker.send("PUT", path, json={"randomNumber": number})
    if response.status_code != 200:
        checker.problem(f"PUT {path}: HTTP {response.status_code}, expected 200")
        return
    checker.check_headers(f"PUT {path}", response, JSON_TYPE)
    checker.expect_queries(f"PUT {path}", "/worlds/{id}", 2)  # read the row, write it
    want = {"id": PUT_WORLD, "randomNumber": number}
    if response.content != _compact_json(want):
        checker.problem(f"PUT {path}: expected {_short(want)}, got {_short(_loads(response.content))}")
    if checker.dsn is not None and (after := world_snapshot(checker.dsn, [PUT_WORLD])) != {PUT_WORLD: number}:
        checker.problem(f"PUT {path}: stored {after.get(PUT_WORLD)}, expected {number}")


def check_refresh(checker: Checker) -> None:
    """202 at once, and the refresh really happens (in the background: the 202 must not wait for it)."""
    before = _refresh_counts(checker)
    if checker.dsn is None:
        _post_and_wait(checker, before, None)
        return
    seeded = seeded_items()
    with probe_item(checker.dsn) as (_, category, price, created):
        seconds = int((created - ITEMS_EPOCH).total_seconds())
        days = seeded.days[category] | {seconds // 86_400}
        newest = _when(max(seeded.newest[category], seconds))
        want = expected_report_row(category, [*seeded.prices[category], price], len(days), newest)
        _post_and_wait(checker, before, lambda report: isinstance(report, list) and want in report)


def _post_and_wait(checker: Checker, before: dict[str, int] | None, changed: Callable[[Any], bool] | None) -> None:
    started = time.perf_counter()
    response = checker.send("POST", "/refresh-views")
    answered_ms = (time.perf_counter() - started) * 1000
    if response.status_code != 202:
        checker.problem(f"POST /refresh-views: HTTP {response.status_code}, expected 202")
        return
    if _loads(response.content) != {"status": "accepted"}:
        checker.problem(f'POST /refresh-views: expected {{"status": "accepted"}}, got {_short(response.content)}')
    deadline = started + REFRESH_TIMEOUT_SECONDS
    seen = False
    while not seen and time.perf_counter() < deadline:
        if changed is None:  # no database access: the target's own count of completed refreshes must move
            after = _refresh_counts(checker, quiet=True)
            seen = before is not None and after is not None and after["completed"] > before["completed"]
        else:
            response = checker.send("GET", "/report")
            if response.status_code != 200:
                checker.problem(f"POST /refresh-views: GET /report answered HTTP {response.status_code} meanwhile")
                return
            seen = changed(_loads(response.content))
        if not seen:
            time.sleep(POLL_SECONDS)
    if not seen:
        waited = f"waited {REFRESH_TIMEOUT_SECONDS:g} s"
        if changed is None:
            checker.problem(f"POST /refresh-views: no refresh completed ({waited})")
        else:
            checker.problem(f"POST /refresh-views: refresh never reached the view ({waited})")
        return
    _judge_refresh_counts(checker, before, answered_ms)


def _judge_refresh_counts(checker: Checker, before: dict[str, int] | None, answered_ms: float) -> None:
    after = _refresh_counts(checker)
    if before is None or after is None:
        return
    grew = {key: after[key] - before[key] for key in REFRESH_COUNTERS}
    if grew["requested"] != 1 or grew["completed"] < 1 or grew["failed"]:
        checker.problem(f"/_bench/info: refresh counters after one POST /refresh-views: {_short(grew)}")
        return
    durations = checker.info.get("refresh", {}).get("durations_ms") or []
    refresh_ms = durations[-1] if durations else None
    checker.info["refresh_check"] = {"answered_ms": round(answered_ms, 1), "refresh_ms": refresh_ms}
    # A refresh run before answering makes the 202 at least as slow as the refresh itself.
    if isinstance(refresh_ms, int | float) and answered_ms >= refresh_ms:
        checker.problem(
            f"POST /refresh-views: answered in {answered_ms:.0f} ms, the refresh took {refresh_ms:.0f} ms:"
            " it did not run in the background"
        )


def _refresh_counts(checker: Checker, *, quiet: bool = False) -> dict[str, int] | None:
    payload = _loads(checker.send("GET", "/_bench/info").content)
    refresh = payload.get("refresh") if isinstance(payload, dict) else None
    if not isinstance(refresh, dict) or any(type(refresh.get(key)) is not int for key in REFRESH_COUNTERS):
        if not quiet:
            checker.problem(f"/_bench/info: no refresh counters ({', '.join(REFRESH_COUNTERS)})")
        return None
    checker.info["refresh"] = refresh
    return {key: refresh[key] for key in REFRESH_COUNTERS}


def _expect_error(
    checker: Checker, method: str, path: str, status: int, body: dict[str, str], content: bytes | None = None
) -> None:
    where = path if method == "GET" else f"{method} {path}"
    response = checker.send(method, path, content=content)
    if response.status_code != status:
        checker.problem(f"{where}: HTTP {response.status_code}, expected {status}")
    elif response.content != _compact_json(body):
        checker.problem(f"{where}: expected {_short(body)}, got {_short(_loads(response.content))}")
    else:
        checker.check_headers(where, response, JSON_TYPE)


def _put_error(status: int) -> str:
    return NEW_NUMBER_RULE if status == 422 else f"body is not JSON; {NEW_NUMBER_RULE}"


def _search_shape_fault(content: bytes, category: int, max_price: int, limit: int) -> str | None:
    """Without the seeded data to compare with: the rules any right answer obeys."""
    payload = _loads(content)
    if not isinstance(payload, list) or any(not isinstance(row, dict) or tuple(row) != SEARCH_KEYS for row in payload):
        return f"expected a list of {{{', '.join(SEARCH_KEYS)}}}, got {_short(payload)}"
    if len(payload) > limit:
        return f"expected at most {limit} items, got {len(payload)}"
    for row in payload:
        if row["category"] != category or not isinstance(row["priceCents"], int) or row["priceCents"] > max_price:
            return f"item {_short(row)} does not match category={category}, max_price={max_price}"
    order = [(row["createdAt"], row["id"]) for row in payload]
    if order != sorted(order, reverse=True):
        return "items not ordered by createdAt, id descending"
    return None


def _list_difference(content: bytes, want: list[dict[str, Any]], key: str) -> str:
    """One line naming the first difference between a JSON list response and the expected rows."""
    got = _loads(content)
    if got == want:
        return "body is equal as JSON but not byte for byte (key order or whitespace)"
    if not isinstance(got, list):
        return f"expected a JSON list, got {_short(got)}"
    if len(got) != len(want):
        return f"expected {len(want)} rows, got {len(got)}"
    for index, (item, truth) in enumerate(zip(got, want, strict=True)):
        if item != truth:
            return f"row {index} ({key} {truth[key]}): expected {_short(truth)}, got {_short(item)}"
    return "body differs from the expected rows"


def _is_world_number(value: object) -> bool:
    return type(value) is int and 1 <= value <= MAX_RANDOM_NUMBER


def _when(seconds: int) -> datetime:
    return ITEMS_EPOCH + timedelta(seconds=seconds)


def _iso(moment: datetime) -> str:
    return moment.isoformat() + "Z"


def _compact_json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _loads(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return content[:60].decode("utf-8", "replace")


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
