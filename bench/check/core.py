"""The check of the TechEmpower endpoints (/db, /queries, /fortunes, /updates), /authors/* and /_bench/info.

Against a database dbbench seeded, /db and /queries answers are compared with the seeded values (which proves
the server really reads the database), /fortunes and /authors/* byte for byte, and /updates read back from
the database. Without one (``--url``) the same requests are judged by bench.check.rules alone. Errors
reaching the database through the scope's ``dsn`` are the harness's and propagate.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from bench.check.expected import expected_fortunes_html
from bench.check.probe import HTML_TYPE, JSON_TYPE
from bench.check.rules import (
    authors_difference,
    authors_shape_fault,
    compact_json,
    fortunes_shape_fault,
    short,
    world_fault,
)
from bench.check.session import Session
from bench.seed import world_snapshot
from targets.common.schema import ADDED_FORTUNE, seeded_authors_json, seeded_world

DB_REQUESTS = 10
# (value sent as ?queries=, None for no parameter) -> number of objects the contract requires.
QUERIES_CASES: tuple[tuple[str | None, int], ...] = (
    ("1", 1),
    ("20", 20),
    ("0", 1),
    ("501", 500),
    ("foo", 1),
    ("", 1),
    (None, 1),
)
UPDATES_CASES: tuple[tuple[str | None, int], ...] = (("1", 1), ("20", 20), ("0", 1), ("501", 500), ("foo", 1))
# (value sent as ?limit=, None for no parameter) -> number of authors the contract requires.
AUTHORS_CASES: tuple[tuple[str | None, int], ...] = (
    ("5", 5),
    ("20", 20),
    ("0", 1),
    ("101", 100),
    ("foo", 20),
    (None, 20),
)
AUTHORS_ENDPOINTS = ("/authors/lazy", "/authors/eager")
INFO_KEYS = ("variant", "driver", "pool_size", "max_overflow", "threadpool_size", "cache", "refresh")


def check_info(session: Session) -> None:
    """/_bench/info: the variant's account of itself; its cache's fewer_queries_ok relaxes query counts."""
    probe = session.probe
    payload = probe.get_json("/_bench/info", JSON_TYPE)
    if not isinstance(payload, dict):
        if payload is not None:
            probe.problem(f"/_bench/info: expected a JSON object, got {short(payload)}")
        return
    session.info.update(payload)
    missing = [key for key in INFO_KEYS if key not in payload]
    if missing:
        probe.problem(f"/_bench/info: missing keys {', '.join(missing)}")
    cache = payload.get("cache")
    if isinstance(cache, dict) and isinstance(cache.get("fewer_queries_ok"), list):
        session.counter.fewer_queries_ok = frozenset(str(path) for path in cache["fewer_queries_ok"])


def check_db(session: Session) -> None:
    probe = session.probe
    session.counter.reset()
    worlds = []
    for _ in range(DB_REQUESTS):
        payload = probe.get_json("/db", JSON_TYPE)
        if payload is None:
            continue
        if (fault := world_fault(payload)) is not None:
            probe.problem(f"/db: {fault}")
            continue
        worlds.append((payload["id"], payload["randomNumber"]))
    _compare_with_seed(session, "/db", worlds)
    if len(worlds) == DB_REQUESTS and len({world_id for world_id, _ in worlds}) == 1:
        probe.problem(f"/db: all {DB_REQUESTS} responses returned id {worlds[0][0]}; ids must be random")
    session.counter.expect("/db", "/db", 1)


def check_queries(session: Session) -> None:
    for raw, expected in QUERIES_CASES:
        path = _with_queries("/queries", raw)
        session.counter.reset()
        worlds = _get_worlds(session, path, expected)
        if worlds is not None:
            _compare_with_seed(session, path, worlds)
            session.counter.expect(path, "/queries", expected)


def check_fortunes(session: Session) -> None:
    probe = session.probe
    response = session.get_counted("/fortunes", HTML_TYPE, "/fortunes", 1)
    if response is None:
        return
    try:
        body = response.content.decode("utf-8")
    except UnicodeDecodeError as error:
        probe.problem(f"/fortunes: body is not valid UTF-8 ({error})")
        return
    if session.scope.dsn is None:
        if (fault := fortunes_shape_fault(body)) is not None:
            probe.problem(f"/fortunes: {fault}")
        return
    expected = expected_fortunes_html()
    if body == expected:
        return
    specific = len(probe.problems)
    if "<script>" in body:
        probe.problem("/fortunes: fortune 11 is not HTML-escaped (<script> appears raw)")
    if "<td>12</td><td>フレームワークのベンチマーク</td>" not in body:
        probe.problem("/fortunes: fortune 12 (フレームワークのベンチマーク) is missing or mis-encoded")
    if f"<td>0</td><td>{ADDED_FORTUNE[1]}</td>" not in body:
        probe.problem("/fortunes: the fortune added at request time (id 0) is missing")
    if len(probe.problems) == specific:
        at = next((i for i, (a, b) in enumerate(zip(body, expected, strict=False)) if a != b), None)
        at = min(len(body), len(expected)) if at is None else at
        probe.problem(
            f"/fortunes: body differs from the expected page at character {at}: "
            f"expected {expected[at : at + 40]!r}, got {body[at : at + 40]!r}"
        )


def check_updates(session: Session) -> None:
    """Only when the scope allows writes. With the seeded database, every returned value is read back."""
    probe, counter, dsn = session.probe, session.counter, session.scope.dsn
    for raw, expected in UPDATES_CASES:
        path = _with_queries("/updates", raw)
        before = world_snapshot(dsn) if dsn is not None else None
        counter.reset()
        worlds = _get_worlds(session, path, expected)
        if worlds is None:
            continue
        counts = counter.counts("/updates")
        returned: dict[int, int] = {}
        for world_id, number in worlds:
            if returned.setdefault(world_id, number) != number:
                probe.problem(f"{path}: id {world_id} returned with two values ({returned[world_id]}, {number})")
        if before is None or dsn is None:
            session.info["updates_read_back"] = "skipped: no database access"
            if counts is not None:  # unknown which values changed: per-row writes may be 0..distinct
                counter.expect_updates(path, expected, counts, returned, 0)
            continue
        after = world_snapshot(dsn)
        _report_mismatches(session, path, "returned values differ from the database", returned, after, "stored")
        changed = sorted(i for i in after if after[i] != before.get(i))
        unreturned = [i for i in changed if i not in returned]
        if unreturned:
            probe.problem(f"{path}: {len(unreturned)} rows changed that were not returned (e.g. id {unreturned[0]})")
        # A new random value equals the old one with probability 1/10000, so only a batch can be judged.
        if expected >= 20 and not changed:
            probe.problem(f"{path}: no stored value changed")
        if counts is not None:
            counter.expect_updates(path, expected, counts, returned, sum(i in changed for i in returned))


def check_authors(session: Session) -> None:
    """Both N+1 endpoints return the seeded authors and books, byte for byte (so also each other); without
    the seeded database, the rules any author list obeys."""
    probe = session.probe
    for endpoint in AUTHORS_ENDPOINTS:
        for raw, expected in AUTHORS_CASES:
            path = endpoint if raw is None else f"{endpoint}?limit={raw}"
            session.counter.reset()
            response = probe.get(path, JSON_TYPE)
            if response is None:
                continue
            session.counter.record(path, endpoint)
            want = seeded_authors_json(expected) if session.scope.dsn is not None else None
            if want is not None and response.content == compact_json(want):
                continue
            try:
                got = json.loads(response.content)
            except ValueError:
                probe.problem(f"{path}: invalid JSON: {response.content[:60]!r}")
                continue
            fault = authors_shape_fault(got, expected) if want is None else authors_difference(got, want)
            if fault is not None:
                probe.problem(f"{path}: {fault}")


def _compare_with_seed(session: Session, path: str, worlds: list[tuple[int, int]]) -> None:
    if session.scope.dsn is not None:
        _report_mismatches(session, path, "randomNumber differs from the seed", dict(worlds), _seeded(), "seeded")


@functools.cache
def _seeded() -> dict[int, int]:
    return seeded_world()


def _report_mismatches(
    session: Session, path: str, what: str, got: dict[int, int], truth: dict[int, int], truth_name: str
) -> None:
    wrong = [world_id for world_id in got if got[world_id] != truth.get(world_id)]
    if wrong:
        example = wrong[0]
        session.probe.problem(
            f"{path}: {what} for {len(wrong)} of {len(got)} ids "
            f"(e.g. id {example}: got {got[example]}, {truth_name} {truth.get(example)})"
        )


def _get_worlds(session: Session, path: str, expected: int) -> list[tuple[int, int]] | None:
    """The response as (id, randomNumber) pairs, or None after reporting why it is not a valid list."""
    probe = session.probe
    payload: Any = probe.get_json(path, JSON_TYPE)
    if payload is None:
        return None
    if not isinstance(payload, list):
        probe.problem(f"{path}: expected a JSON list, got {short(payload)}")
        return None
    if len(payload) != expected:
        probe.problem(f"{path}: expected {expected} objects, got {len(payload)}")
    for index, item in enumerate(payload):
        if (fault := world_fault(item)) is not None:
            probe.problem(f"{path}: item {index}: {fault}")
            return None
    return [(item["id"], item["randomNumber"]) for item in payload]


def _with_queries(path: str, raw: str | None) -> str:
    return path if raw is None else f"{path}?queries={raw}"
