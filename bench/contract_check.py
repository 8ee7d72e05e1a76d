"""Check a running target against the contract before it is measured (httpx, sync).

Assumes the database was just seeded with targets.schema's deterministic data: /db and /queries answers are
compared with the seeded values, which proves the target really reads the database. The /updates checks
write to the database (and to a caching target's cache); re-seeding afterwards is the caller's job.
Problems with the target (refused connections, non-200, invalid JSON, wrong bodies) become one-line
problems; errors reaching the database through ``dsn`` are the harness's and propagate.

Query counts are measured by the target itself (POST /_bench/stats/reset, the request, GET /_bench/stats),
never guessed from the client: TechEmpower's rule (/db 1, /queries?queries=N N, /updates N reads plus N
single or 1 batch writes, /fortunes 1), relaxed to "at most" on the endpoints a variant's cache declares
in /_bench/info (cache.fewer_queries_ok). Endpoints that take a size are also measured at two sizes:
growth there is reported as an N+1 suspect (a finding, not a failure) unless one query per row is the
contract (/queries, /updates). A target that is not instrumented is not counted, and ``info`` says so.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.contract_check_data import check_data_endpoints
from bench.seed import world_snapshot
from targets.schema import (
    ADDED_FORTUNE,
    FORTUNES,
    MAX_RANDOM_NUMBER,
    WORLD_ROWS,
    seeded_authors_json,
    seeded_world,
)

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
# Endpoints whose result size the client picks, with the parameter that picks it, and the two sizes at
# which queries per request are compared.
SIZED_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("/queries", "queries"),
    ("/updates", "queries"),
    ("/authors/lazy", "limit"),
    ("/authors/eager", "limit"),
)
GROWTH_SIZES = (5, 20)
# One query per row is what TechEmpower asks of these: their growth is the contract, not an N+1.
GROWTH_BY_CONTRACT = frozenset({"/queries", "/updates"})
WRITE_VERBS = ("UPDATE", "INSERT", "DELETE")
JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"
INFO_KEYS = ("variant", "driver", "pool_size", "max_overflow", "threadpool_size", "cache", "refresh")


@dataclass(frozen=True)
class CheckReport:
    ok: bool
    problems: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Counts:
    """What the target recorded for one endpoint since the last reset."""

    requests: int
    queries: int
    reads: int
    writes: int

    @property
    def per_request(self) -> float:
        return self.queries / self.requests


class Unreachable(Exception):
    """The target stopped answering; every further request would fail the same way."""


def check_variant(base_url: str, dsn: str | None) -> CheckReport:
    """``dsn=None`` (a server that is not ours, e.g. ``--url``): /updates is not read back from the database."""
    checker = Checker(base_url, dsn)
    try:
        with checker:
            checker.check_info()
            checker.detect_instrumentation()
            checker.check_db()
            checker.check_queries()
            checker.check_fortunes()
            checker.check_authors()
            check_data_endpoints(checker)  # /search, /report, /refresh-views, /worlds/{id}: see its module
            checker.check_updates()  # it changes the values the other checks compare with the seed
            checker.check_query_growth()  # after check_updates: it runs /updates too
    except Unreachable as error:
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


class Checker:
    def __init__(self, base_url: str, dsn: str | None) -> None:
        # A new connection per request: uvicorn closes a keep-alive connection after an unhandled error,
        # and the next request on it would fail as if the whole target were down.
        self.client = httpx.Client(
            base_url=base_url, timeout=TIMEOUT_SECONDS, limits=httpx.Limits(max_keepalive_connections=0)
        )
        self.dsn = dsn
        self._seeded = seeded_world()
        self.problems: list[str] = []
        self.info: dict[str, Any] = {}
        self.counting = False
        self._fewer_queries_ok: frozenset[str] = frozenset()
        self._per_request: dict[str, int | float] = {}

    def __enter__(self) -> Checker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.close()

    def problem(self, line: str) -> None:
        if line not in self.problems:  # repeated requests to one path report a fault once
            self.problems.append(line)

    def check_info(self) -> None:
        payload = self.get_json("/_bench/info", JSON_TYPE)
        if not isinstance(payload, dict):
            if payload is not None:
                self.problem(f"/_bench/info: expected a JSON object, got {_short(payload)}")
            return
        self.info = payload
        missing = [key for key in INFO_KEYS if key not in payload]
        if missing:
            self.problem(f"/_bench/info: missing keys {', '.join(missing)}")
        cache = payload.get("cache")
        if isinstance(cache, dict) and isinstance(cache.get("fewer_queries_ok"), list):
            self._fewer_queries_ok = frozenset(str(path) for path in cache["fewer_queries_ok"])

    def detect_instrumentation(self) -> None:
        """Count queries only if the target says it records them (GET /_bench/stats, instrumented: true)."""
        try:
            response = self.client.get("/_bench/stats")
            stats = response.json() if response.status_code == 200 else None
        except httpx.TransportError as error:
            raise Unreachable(f"/_bench/stats: {type(error).__name__}: {error or 'no response'}") from None
        except ValueError:
            stats = None
        self.counting = isinstance(stats, dict) and stats.get("instrumented") is True
        if self.counting:
            self.info["query_counts"] = "checked"
            self.info["queries_per_request"] = self._per_request
        else:
            self.info["query_counts"] = "not checked: the target is not instrumented (no /_bench/stats)"

    def check_db(self) -> None:
        self.reset_stats()
        worlds = []
        for _ in range(DB_REQUESTS):
            payload = self.get_json("/db", JSON_TYPE)
            if payload is None:
                continue
            if (fault := _world_fault(payload)) is not None:
                self.problem(f"/db: {fault}")
                continue
            worlds.append((payload["id"], payload["randomNumber"]))
        self._compare_with_seed("/db", worlds)
        if len(worlds) == DB_REQUESTS and len({world_id for world_id, _ in worlds}) == 1:
            self.problem(f"/db: all {DB_REQUESTS} responses returned id {worlds[0][0]}; ids must be random")
        self.expect_queries("/db", "/db", 1)

    def check_queries(self) -> None:
        for raw, expected in QUERIES_CASES:
            path = _with_queries("/queries", raw)
            self.reset_stats()
            worlds = self._get_worlds(path, expected)
            if worlds is not None:
                self._compare_with_seed(path, worlds)
                self.expect_queries(path, "/queries", expected)

    def check_fortunes(self) -> None:
        self.reset_stats()
        response = self.get("/fortunes", HTML_TYPE)
        if response is None:
            return
        self.expect_queries("/fortunes", "/fortunes", 1)
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
            before = world_snapshot(self.dsn) if self.dsn is not None else None
            self.reset_stats()
            worlds = self._get_worlds(path, expected)
            if worlds is None:
                continue
            counts = self._counts("/updates")
            returned: dict[int, int] = {}
            for world_id, number in worlds:
                if returned.setdefault(world_id, number) != number:
                    self.problem(f"{path}: id {world_id} returned with two values ({returned[world_id]}, {number})")
            if before is None or self.dsn is None:
                self.info["updates_read_back"] = "skipped: no database access"
                if counts is not None:  # unknown which values changed: per-row writes may be 0..distinct
                    self._expect_update_queries(path, expected, counts, returned, 0)
                continue
            after = world_snapshot(self.dsn)
            self._report_mismatches(path, "returned values differ from the database", returned, after, "stored")
            changed = sorted(i for i in after if after[i] != before.get(i))
            unreturned = [i for i in changed if i not in returned]
            if unreturned:
                self.problem(f"{path}: {len(unreturned)} rows changed that were not returned (e.g. id {unreturned[0]})")
            # A new random value equals the old one with probability 1/10000, so only a batch can be judged.
            if expected >= 20 and not changed:
                self.problem(f"{path}: no stored value changed")
            if counts is not None:
                self._expect_update_queries(path, expected, counts, returned, sum(i in changed for i in returned))

    def check_authors(self) -> None:
        """Both N+1 endpoints return the seeded authors and books, byte for byte (so also each other)."""
        for endpoint in AUTHORS_ENDPOINTS:
            for raw, expected in AUTHORS_CASES:
                path = endpoint if raw is None else f"{endpoint}?limit={raw}"
                self.reset_stats()
                response = self.get(path, JSON_TYPE)
                if response is None:
                    continue
                self._record_queries(path, endpoint)
                want = seeded_authors_json(expected)
                if response.content == _compact_json(want):
                    continue
                try:
                    got = json.loads(response.content)
                except ValueError:
                    self.problem(f"{path}: invalid JSON: {response.content[:60]!r}")
                    continue
                self.problem(f"{path}: {_authors_difference(got, want)}")

    def check_query_growth(self) -> None:
        """Queries per request at two result sizes: growth with the size is the N+1 signature."""
        if not self.counting:
            return
        growth: dict[str, dict[str, int | float]] = {}
        for endpoint, parameter in SIZED_ENDPOINTS:
            for size in GROWTH_SIZES:
                self.reset_stats()
                if self.get(f"{endpoint}?{parameter}={size}", JSON_TYPE) is None:
                    break
                counts = self._counts(endpoint)
                if counts is None:
                    break
                growth.setdefault(endpoint, {})[str(size)] = _number(counts.per_request)
        suspects: list[dict[str, Any]] = []
        by_contract: list[dict[str, Any]] = []
        for endpoint, by_size in growth.items():
            small, large = (by_size.get(str(size)) for size in GROWTH_SIZES)
            if small is None or large is None or large <= small:
                continue
            if endpoint in GROWTH_BY_CONTRACT:
                message = "one query per row is the TechEmpower contract"
                by_contract.append({"endpoint": endpoint, "queries_per_request": large, "message": message})
            else:
                message = f"N+1 suspected: {large} similar statements per request"
                suspects.append({"endpoint": endpoint, "queries_per_request": large, "message": message})
        self.info["query_growth"] = growth
        self.info["nplus1_suspects"] = suspects
        self.info["query_growth_by_contract"] = by_contract

    # --- query counting through /_bench/stats ---------------------------------------------------

    def reset_stats(self) -> None:
        if not self.counting:
            return
        try:
            response = self.client.post("/_bench/stats/reset")
        except httpx.TransportError as error:
            raise Unreachable(f"/_bench/stats/reset: {type(error).__name__}: {error or 'no response'}") from None
        if response.status_code != 204:
            self.problem(f"/_bench/stats/reset: HTTP {response.status_code}, expected 204; counts not checked")
            self.counting = False
            self.info["query_counts"] = "not checked: /_bench/stats/reset failed"

    def _counts(self, endpoint: str) -> _Counts | None:
        """The target's counts for ``endpoint`` since the last reset; None if not counting or none served."""
        if not self.counting:
            return None
        stats = self.get_json("/_bench/stats", JSON_TYPE)
        try:
            served = stats["endpoints"][endpoint]
            reads = writes = 0
            for statement in stats["statements"]:
                calls = int(statement["endpoints"].get(endpoint, 0))
                if statement["fingerprint"].lstrip().upper().startswith(WRITE_VERBS):
                    writes += calls
                else:
                    reads += calls
            counts = _Counts(int(served["requests"]), int(served["queries"]), reads, writes)
        except (KeyError, TypeError, AttributeError, ValueError):
            self.problem(f"/_bench/stats: no usable counts for {endpoint}: {_short(stats)}")
            return None
        return counts if counts.requests else None

    def _record_queries(self, path: str, endpoint: str) -> _Counts | None:
        counts = self._counts(endpoint)
        if counts is not None:
            self._per_request[path] = _number(counts.per_request)
        return counts

    def expect_queries(self, path: str, endpoint: str, expected: int, *, fewer_ok_like: str | None = None) -> None:
        """``fewer_ok_like``: an endpoint served by the same store method, whose cache rule applies here too."""
        counts = self._record_queries(path, endpoint)
        if counts is None:
            return
        saw = counts.per_request
        fewer_ok = bool({endpoint, fewer_ok_like} & self._fewer_queries_ok)
        if saw == expected or (fewer_ok and saw <= expected):
            return
        at_most = "at most " if fewer_ok else ""
        noun = "query" if expected == 1 else "queries"
        each = " per request" if counts.requests > 1 else ""
        self.problem(f"{path}: expected {at_most}{expected} {noun}{each}, saw {_number(saw)}")

    def _expect_update_queries(
        self, path: str, expected: int, counts: _Counts, returned: Mapping[int, int], changed: int
    ) -> None:
        """N reads, then either one batch write or one write per distinct id. An ORM skips rows whose new
        value equals the stored one, so per-row writes may be as few as the rows that really changed."""
        self._per_request[path] = _number(counts.per_request)
        distinct = len(returned)
        writes_ok = counts.writes == 1 or changed <= counts.writes <= distinct
        if counts.requests == 1 and counts.reads == expected and writes_ok:
            return
        self.problem(
            f"{path}: expected {expected} reads + ({distinct} single or 1 batch) writes, "
            f"saw {counts.reads} reads + {counts.writes} writes"
        )

    def _compare_with_seed(self, path: str, worlds: list[tuple[int, int]]) -> None:
        self._report_mismatches(path, "randomNumber differs from the seed", dict(worlds), self._seeded, "seeded")

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
        payload = self.get_json(path, JSON_TYPE)
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

    def get_json(self, path: str, content_type: str) -> Any:
        response = self.get(path, content_type)
        if response is None:
            return None
        try:
            return json.loads(response.content)
        except ValueError:
            self.problem(f"{path}: invalid JSON: {response.content[:60]!r}")
            return None

    def get(self, path: str, content_type: str) -> httpx.Response | None:
        response = self.send("GET", path)
        if response.status_code != 200:
            self.problem(f"{path}: HTTP {response.status_code}, expected 200")
            return None
        self.check_headers(path, response, content_type)
        return response

    def send(self, method: str, path: str, **options: Any) -> httpx.Response:
        """Any request; a target that does not answer raises Unreachable (the remaining checks are skipped)."""
        try:
            return self.client.request(method, path, **options)
        except httpx.TransportError as error:
            where = path if method == "GET" else f"{method} {path}"
            raise Unreachable(f"{where}: {type(error).__name__}: {error or 'no response'}") from None

    def check_headers(self, path: str, response: httpx.Response, content_type: str) -> None:
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


def _compact_json(value: object) -> bytes:
    """The bytes every variant sends (orjson's output: compact, UTF-8, non-ASCII not escaped)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _authors_difference(got: object, want: list[dict[str, Any]]) -> str:
    """One line naming the first difference between an /authors/* response and the seeded authors."""
    if got == want:
        return "body is equal as JSON but not byte for byte (key order or whitespace)"
    if not isinstance(got, list):
        return f"expected a JSON list, got {_short(got)}"
    if len(got) != len(want):
        return f"expected {len(want)} authors, got {len(got)}"
    for index, (item, truth) in enumerate(zip(got, want, strict=True)):
        if item != truth:
            if isinstance(item, dict) and item.get("id") == truth["id"] and "books" in item:
                ids = [book.get("id") for book in item["books"] if isinstance(book, dict)]
                if sorted(ids, key=str) == sorted((b["id"] for b in truth["books"]), key=str):
                    return f"author {truth['id']}: books not sorted by id ({_short(ids)})"
            return f"item {index}: expected {_short(truth)}, got {_short(item)}"
    return "body differs from the seeded authors"


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 2)


def _with_queries(path: str, raw: str | None) -> str:
    return path if raw is None else f"{path}?queries={raw}"


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
