"""Check a running target against the contract before it is measured (httpx, sync).

Assumes the database was just seeded with targets.schema's deterministic data: /db and /queries answers are
compared with the seeded values, which proves the target really reads the database. The /updates checks
write to the database (and to a caching target's cache); re-seeding afterwards is the caller's job.
Problems with the target (refused connections, non-200, invalid JSON, wrong bodies) become one-line
problems; errors reaching the database through ``dsn`` are the harness's and propagate.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.seed import world_snapshot
from targets.schema import ADDED_FORTUNE, FORTUNES, MAX_RANDOM_NUMBER, WORLD_ROWS, seeded_world

TIMEOUT_SECONDS = 30.0
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
JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"
INFO_KEYS = ("variant", "driver", "pool_size", "max_overflow", "threadpool_size", "cache")


@dataclass(frozen=True)
class CheckReport:
    ok: bool
    problems: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


class _Unreachable(Exception):
    """The target stopped answering; every further request would fail the same way."""


def check_variant(base_url: str, dsn: str) -> CheckReport:
    checker = _Checker(base_url, dsn)
    try:
        with checker:
            checker.check_info()
            checker.check_db()
            checker.check_queries()
            checker.check_fortunes()
            checker.check_updates()  # last: it changes the values the other checks compare with the seed
    except _Unreachable as error:
        checker.problem(f"{error}; remaining checks skipped")
    return CheckReport(ok=not checker.problems, problems=checker.problems, info=checker.info)


def expected_fortunes_html() -> str:
    """The /fortunes page, written out independently of targets.contract's renderer."""
    rows = sorted([*FORTUNES, ADDED_FORTUNE], key=lambda row: row[1])
    cells = "".join(f"<tr><td>{i}</td><td>{html.escape(message)}</td></tr>" for i, message in rows)
    return (
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body>"
        f"<table><tr><th>id</th><th>message</th></tr>{cells}</table></body></html>"
    )


class _Checker:
    def __init__(self, base_url: str, dsn: str) -> None:
        # A new connection per request: uvicorn closes a keep-alive connection after an unhandled error,
        # and the next request on it would fail as if the whole target were down.
        self._client = httpx.Client(
            base_url=base_url, timeout=TIMEOUT_SECONDS, limits=httpx.Limits(max_keepalive_connections=0)
        )
        self._dsn = dsn
        self._seeded = seeded_world()
        self.problems: list[str] = []
        self.info: dict[str, Any] = {}

    def __enter__(self) -> _Checker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.close()

    def problem(self, line: str) -> None:
        if line not in self.problems:  # repeated requests to one path report a fault once
            self.problems.append(line)

    def check_info(self) -> None:
        payload = self._get_json("/_bench/info", JSON_TYPE)
        if not isinstance(payload, dict):
            if payload is not None:
                self.problem(f"/_bench/info: expected a JSON object, got {_short(payload)}")
            return
        self.info = payload
        missing = [key for key in INFO_KEYS if key not in payload]
        if missing:
            self.problem(f"/_bench/info: missing keys {', '.join(missing)}")

    def check_db(self) -> None:
        worlds = []
        for _ in range(DB_REQUESTS):
            payload = self._get_json("/db", JSON_TYPE)
            if payload is None:
                continue
            if (fault := _world_fault(payload)) is not None:
                self.problem(f"/db: {fault}")
                continue
            worlds.append((payload["id"], payload["randomNumber"]))
        self._compare_with_seed("/db", worlds)
        if len(worlds) == DB_REQUESTS and len({world_id for world_id, _ in worlds}) == 1:
            self.problem(f"/db: all {DB_REQUESTS} responses returned id {worlds[0][0]}; ids must be random")

    def check_queries(self) -> None:
        for raw, expected in QUERIES_CASES:
            path = _with_queries("/queries", raw)
            worlds = self._get_worlds(path, expected)
            if worlds is not None:
                self._compare_with_seed(path, worlds)

    def check_fortunes(self) -> None:
        response = self._get("/fortunes", HTML_TYPE)
        if response is None:
            return
        try:
            body = response.content.decode("utf-8")
        except UnicodeDecodeError as error:
            self.problem(f"/fortunes: body is not valid UTF-8 ({error})")
            return
        expected = expected_fortunes_html()
        if body == expected:
            return
        specific = len(self.problems)
        if "<script>" in body:
            self.problem("/fortunes: fortune 11 is not HTML-escaped (<script> appears raw)")
        if "<td>12</td><td>フレームワークのベンチマーク</td>" not in body:
            self.problem("/fortunes: fortune 12 (フレームワークのベンチマーク) is missing or mis-encoded")
        if f"<td>0</td><td>{ADDED_FORTUNE[1]}</td>" not in body:
            self.problem("/fortunes: the fortune added at request time (id 0) is missing")
        if len(self.problems) == specific:
            at = next((i for i, (a, b) in enumerate(zip(body, expected, strict=False)) if a != b), None)
            at = min(len(body), len(expected)) if at is None else at
            self.problem(
                f"/fortunes: body differs from the expected page at character {at}: "
                f"expected {expected[at : at + 40]!r}, got {body[at : at + 40]!r}"
            )

    def check_updates(self) -> None:
        for raw, expected in UPDATES_CASES:
            path = _with_queries("/updates", raw)
            before = world_snapshot(self._dsn)
            worlds = self._get_worlds(path, expected)
            if worlds is None:
                continue
            returned: dict[int, int] = {}
            for world_id, number in worlds:
                if returned.setdefault(world_id, number) != number:
                    self.problem(
                        f"{path}: id {world_id} returned with two values ({returned[world_id]}, {number})"
                    )
            after = world_snapshot(self._dsn)
            self._report_mismatches(
                path, "returned values differ from the database", returned, after, "stored"
            )
            changed = sorted(i for i in after if after[i] != before.get(i))
            unreturned = [i for i in changed if i not in returned]
            if unreturned:
                self.problem(
                    f"{path}: {len(unreturned)} rows changed that were not returned (e.g. id {unreturned[0]})"
                )
            # A new random value equals the old one with probability 1/10000, so only a batch can be judged.
            if expected >= 20 and not changed:
                self.problem(f"{path}: no stored value changed")

    def _compare_with_seed(self, path: str, worlds: list[tuple[int, int]]) -> None:
        self._report_mismatches(
            path, "randomNumber differs from the seed", dict(worlds), self._seeded, "seeded"
        )

    def _report_mismatches(
        self, path: str, what: str, got: Mapping[int, int], truth: Mapping[int, int], truth_name: str
    ) -> None:
        wrong = [world_id for world_id in got if got[world_id] != truth.get(world_id)]
        if wrong:
            example = wrong[0]
            self.problem(
                f"{path}: {what} for {len(wrong)} of {len(got)} ids "
                f"(e.g. id {example}: got {got[example]}, {truth_name} {truth.get(example)})"
            )

    def _get_worlds(self, path: str, expected: int) -> list[tuple[int, int]] | None:
        """The response as (id, randomNumber) pairs, or None after reporting why it is not a valid list."""
        payload = self._get_json(path, JSON_TYPE)
        if payload is None:
            return None
        if not isinstance(payload, list):
            self.problem(f"{path}: expected a JSON list, got {_short(payload)}")
            return None
        if len(payload) != expected:
            self.problem(f"{path}: expected {expected} objects, got {len(payload)}")
        for index, item in enumerate(payload):
            if (fault := _world_fault(item)) is not None:
                self.problem(f"{path}: item {index}: {fault}")
                return None
        return [(item["id"], item["randomNumber"]) for item in payload]

    def _get_json(self, path: str, content_type: str) -> Any:
        response = self._get(path, content_type)
        if response is None:
            return None
        try:
            return json.loads(response.content)
        except ValueError:
            self.problem(f"{path}: invalid JSON: {response.content[:60]!r}")
            return None

    def _get(self, path: str, content_type: str) -> httpx.Response | None:
        try:
            response = self._client.get(path)
        except httpx.TransportError as error:
            raise _Unreachable(f"{path}: {type(error).__name__}: {error or 'no response'}") from None
        if response.status_code != 200:
            self.problem(f"{path}: HTTP {response.status_code}, expected 200")
            return None
        headers = response.headers
        if headers.get("content-type", "").lower() != content_type:
            self.problem(f"{path}: Content-Type {headers.get('content-type')!r}, expected {content_type!r}")
        for name in ("Server", "Date"):
            if name not in headers:
                self.problem(f"{path}: missing header {name}")
        length = headers.get("content-length")
        if length is None:
            self.problem(f"{path}: missing header Content-Length")
        elif length != str(len(response.content)):
            self.problem(f"{path}: Content-Length {length}, body has {len(response.content)} bytes")
        return response


def _world_fault(item: object) -> str | None:
    """Why ``item`` is not {"id": 1..10000, "randomNumber": 1..10000}, or None if it is."""
    if not isinstance(item, dict) or set(item) != {"id", "randomNumber"}:
        return f'expected {{"id", "randomNumber"}}, got {_short(item)}'
    for key, top in (("id", WORLD_ROWS), ("randomNumber", MAX_RANDOM_NUMBER)):
        value = item[key]
        # bool is an int subclass; JSON true must not pass as 1.
        if type(value) is not int or not 1 <= value <= top:
            return f"{key} must be an integer in 1..{top}, got {_short(value)}"
    return None


def _with_queries(path: str, raw: str | None) -> str:
    return path if raw is None else f"{path}?queries={raw}"


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
