"""The check of the data endpoints: /search, /report, GET/PUT /worlds/{id}, POST /refresh-views.

Against a database dbbench seeded, /search and /report bodies must match bench.check.expected byte for byte,
and the refresh check adds one item through psycopg (bench.seed.probe_item), POSTs /refresh-views and polls
/report until the change shows, then restores items, the view and the seed marker. Without it (``--url``)
only shapes and orders are checked (bench.check.rules), and a dbbench server's own refresh counters. PUT
/worlds/{id} and POST /refresh-views are sent only when the scope allows writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from bench.check.expected import expected_report_row, expected_search, seeded_items, when
from bench.check.probe import JSON_TYPE, where
from bench.check.rules import (
    compact_json,
    is_in_range,
    list_difference,
    loads,
    report_shape_fault,
    search_shape_fault,
    short,
)
from bench.check.session import Session
from bench.seed import probe_item, world_snapshot
from targets.common.data_rules import NEW_NUMBER_RULE, WORLD_NOT_FOUND
from targets.common.schema import (
    ITEM_CATEGORIES,
    ITEMS_EPOCH,
    MAX_PRICE_CENTS,
    MAX_RANDOM_NUMBER,
    SEARCH_DEFAULT_LIMIT,
    SEARCH_MAX_LIMIT,
    SEARCH_MAX_PRICE,
    WORLD_ROWS,
)

# Seconds to wait for a refresh to show in /report; a module constant so a test can shorten it.
REFRESH_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.02
# (query string, (category, max_price, limit) the contract makes of it). Categories 1, 42 and 100 only:
# their rows are all bench.check.expected keeps from the 200,000 (KEPT_CATEGORIES).
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


def check_data_endpoints(session: Session) -> None:
    check_search(session)
    check_report(session)
    check_worlds(session)
    if session.scope.writes:
        check_refresh(session)


def check_search(session: Session) -> None:
    probe = session.probe
    for query, (category, max_price, limit) in SEARCH_CASES:
        path = f"/search?{query}" if query else "/search"
        response = session.get_counted(path, JSON_TYPE, "/search", 1)
        if response is None:
            continue
        if session.scope.dsn is not None:
            want = expected_search(category, max_price, limit)
            if response.content != compact_json(want):
                probe.problem(f"{path}: {list_difference(response.content, want, 'id')}")
        elif (fault := search_shape_fault(response.content, category, max_price, limit)) is not None:
            probe.problem(f"{path}: {fault}")


def check_report(session: Session) -> None:
    probe = session.probe
    response = session.get_counted("/report", JSON_TYPE, "/report", 1)
    if response is None:
        return
    if session.scope.dsn is not None:
        want = seeded_items().report
        if response.content != compact_json(want):
            probe.problem(f"/report: {list_difference(response.content, want, 'category')}")
    elif (fault := report_shape_fault(response.content)) is not None:
        probe.problem(f"/report: {fault}")


def check_worlds(session: Session) -> None:
    probe, dsn = session.probe, session.scope.dsn
    stored = world_snapshot(dsn, [*WORLD_IDS, PUT_WORLD]) if dsn is not None else None
    for world_id in WORLD_IDS:
        path = f"/worlds/{world_id}"
        session.counter.reset()
        payload = probe.get_json(path, JSON_TYPE)
        if payload is None:
            continue
        # read_worlds serves it, as it serves /db: a cache allowed fewer queries there may answer it too.
        session.counter.expect(path, "/worlds/{id}", 1, fewer_ok_like="/db")
        number = stored[world_id] if stored is not None else payload.get("randomNumber")
        if payload != {"id": world_id, "randomNumber": number} or not is_in_range(number, MAX_RANDOM_NUMBER):
            probe.problem(f"{path}: expected {short({'id': world_id, 'randomNumber': number})}, got {short(payload)}")
    for raw in MISSING_WORLDS:
        _expect_error(session, "GET", f"/worlds/{raw}", 404, WORLD_NOT_FOUND)
    if session.scope.writes:
        _expect_error(session, "PUT", "/worlds/0", 404, WORLD_NOT_FOUND, content=b'{"randomNumber": 1}')
        _check_put(session, stored)


def _check_put(session: Session, stored: Mapping[int, int] | None) -> None:
    probe, dsn = session.probe, session.scope.dsn
    path = f"/worlds/{PUT_WORLD}"
    before = stored[PUT_WORLD] if stored is not None else 1
    number = before % MAX_RANDOM_NUMBER + 1  # differs from the stored value, so the write is visible
    for body, status in BAD_BODIES:
        _expect_error(session, "PUT", path, status, {"error": _put_error(status)}, content=body)
    if dsn is not None and world_snapshot(dsn, [PUT_WORLD]) != {PUT_WORLD: before}:
        probe.problem(f"PUT {path}: a refused body changed the stored value")
    session.counter.reset()
    response = probe.send("PUT", path, json={"randomNumber": number})
    if not probe.expect_status("PUT", path, response, 200):
        return
    probe.check_headers(f"PUT {path}", response, JSON_TYPE)
    session.counter.expect(f"PUT {path}", "/worlds/{id}", 2)  # read the row, write it
    want = {"id": PUT_WORLD, "randomNumber": number}
    if response.content != compact_json(want):
        probe.problem(f"PUT {path}: expected {short(want)}, got {short(loads(response.content))}")
    if dsn is not None and (after := world_snapshot(dsn, [PUT_WORLD])) != {PUT_WORLD: number}:
        probe.problem(f"PUT {path}: stored {after.get(PUT_WORLD)}, expected {number}")


def check_refresh(session: Session) -> None:
    """202 at once, and the refresh really happens (in the background: the 202 must not wait for it)."""
    before = _refresh_counts(session) if session.scope.private else None
    dsn = session.scope.dsn
    if dsn is None:
        _post_and_wait(session, before, None)
        return
    seeded = seeded_items()
    with probe_item(dsn) as (_, category, price, created):
        seconds = int((created - ITEMS_EPOCH).total_seconds())
        days = seeded.days[category] | {seconds // 86_400}
        newest = when(max(seeded.newest[category], seconds))
        want = expected_report_row(category, [*seeded.prices[category], price], len(days), newest)
        _post_and_wait(session, before, lambda report: isinstance(report, list) and want in report)


def _post_and_wait(session: Session, before: dict[str, int] | None, changed: Callable[[Any], bool] | None) -> None:
    """``changed``: whether a /report body shows the refresh; None: watch the server's own counters instead
    (a server that is not dbbench has none: only the 202 and its body are checked)."""
    probe = session.probe
    started = time.perf_counter()
    response = probe.send("POST", "/refresh-views")
    answered_ms = (time.perf_counter() - started) * 1000
    if not probe.expect_status("POST", "/refresh-views", response, 202):
        return
    if loads(response.content) != {"status": "accepted"}:
        probe.problem(f'POST /refresh-views: expected {{"status": "accepted"}}, got {short(response.content)}')
    if changed is None and not session.scope.private:
        return
    deadline = started + REFRESH_TIMEOUT_SECONDS
    seen = False
    while not seen and time.perf_counter() < deadline:
        if changed is None:  # no database access: the target's own count of completed refreshes must move
            after = _refresh_counts(session, quiet=True)
            seen = before is not None and after is not None and after["completed"] > before["completed"]
        else:
            response = probe.send("GET", "/report")
            if response.status_code != 200:
                probe.problem(f"POST /refresh-views: GET /report answered HTTP {response.status_code} meanwhile")
                return
            seen = changed(loads(response.content))
        if not seen:
            time.sleep(POLL_SECONDS)
    if not seen:
        waited = f"waited {REFRESH_TIMEOUT_SECONDS:g} s"
        if changed is None:
            probe.problem(f"POST /refresh-views: no refresh completed ({waited})")
        else:
            probe.problem(f"POST /refresh-views: refresh never reached the view ({waited})")
        return
    if session.scope.private:
        _judge_refresh_counts(session, before, answered_ms, deadline)


def _judge_refresh_counts(session: Session, before: dict[str, int] | None, answered_ms: float, deadline: float) -> None:
    probe = session.probe
    after = _refresh_counts(session)
    if before is None or after is None:
        return
    # The view shows the refresh as soon as REFRESH MATERIALIZED VIEW commits, but the target counts it
    # completed only when that call has returned to it: on a loaded machine /report can see the new view a
    # few ms before the counter moves. Wait (up to the same deadline, and at least a second) for it.
    deadline = max(deadline, time.perf_counter() + 1.0)
    while after["completed"] == before["completed"] and not after["failed"] - before["failed"]:
        if time.perf_counter() >= deadline or (after := _refresh_counts(session, quiet=True)) is None:
            break
        time.sleep(POLL_SECONDS)
    if after is None:
        return
    grew = {key: after[key] - before[key] for key in REFRESH_COUNTERS}
    if grew["requested"] != 1 or grew["completed"] < 1 or grew["failed"]:
        probe.problem(f"/_bench/info: refresh counters after one POST /refresh-views: {short(grew)}")
        return
    durations = session.info.get("refresh", {}).get("durations_ms") or []
    refresh_ms = durations[-1] if durations else None
    session.info["refresh_check"] = {"answered_ms": round(answered_ms, 1), "refresh_ms": refresh_ms}
    # A refresh run before answering makes the 202 at least as slow as the refresh itself.
    if isinstance(refresh_ms, int | float) and answered_ms >= refresh_ms:
        probe.problem(
            f"POST /refresh-views: answered in {answered_ms:.0f} ms, the refresh took {refresh_ms:.0f} ms:"
            " it did not run in the background"
        )


def _refresh_counts(session: Session, *, quiet: bool = False) -> dict[str, int] | None:
    payload = loads(session.probe.send("GET", "/_bench/info").content)
    refresh = payload.get("refresh") if isinstance(payload, dict) else None
    if not isinstance(refresh, dict) or any(type(refresh.get(key)) is not int for key in REFRESH_COUNTERS):
        if not quiet:
            session.probe.problem(f"/_bench/info: no refresh counters ({', '.join(REFRESH_COUNTERS)})")
        return None
    session.info["refresh"] = refresh
    return {key: refresh[key] for key in REFRESH_COUNTERS}


def _expect_error(
    session: Session, method: str, path: str, status: int, body: dict[str, str], content: bytes | None = None
) -> None:
    probe = session.probe
    response = probe.send(method, path, content=content)
    if not probe.expect_status(method, path, response, status):
        return
    if response.content != compact_json(body):
        probe.problem(f"{where(method, path)}: expected {short(body)}, got {short(loads(response.content))}")
    else:
        probe.check_headers(where(method, path), response, JSON_TYPE)


def _put_error(status: int) -> str:
    return NEW_NUMBER_RULE if status == 422 else f"body is not JSON; {NEW_NUMBER_RULE}"
