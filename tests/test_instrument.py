"""Per-statement timings: fingerprints and aggregation (pure), the hook each driver needs (real asyncpg),
and every variant's /_bench/stats under real uvicorn against real PostgreSQL.

Server tests use the fixtures described at the top of tests/test_targets.py (``pg_dsn``, ``run_target``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import httpx
import pytest

from bench.seed import apply_schema, seed
from targets import VARIANTS, Variant
from targets.common import settings
from targets.common.asyncpg_timing import status_rows, timed_connection_class
from targets.common.fingerprint import fingerprint
from targets.common.instrument import current_request, enabled
from targets.common.settings import TargetSpec
from targets.common.stats import (
    _BUCKET_VALUES,
    Collector,
    RequestScope,
    bucket_index,
    bucket_us,
    jsonable_params,
    statement_key,
)

RunTarget = Callable[[str, dict[str, str]], str]


def target_env(dsn: str, variant: str, *, instrument: bool = True) -> dict[str, str]:
    # As tests/test_targets.py: warnings are errors inside the target too. Instrument on is every variant's
    # default now; said explicitly, as a variant may opt out.
    spec = TargetSpec(dsn, 4, variant=variant, instrument=instrument)
    return {**spec.to_env(), "PYTHONWARNINGS": "error"}


@pytest.fixture
def seeded_dsn(pg_dsn: str) -> str:
    apply_schema(pg_dsn)
    seed(pg_dsn)
    return pg_dsn


# --- fingerprints --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT id, randomnumber FROM world WHERE id = $1", "SELECT id, randomnumber FROM world WHERE id = ?"),
        ("SELECT  a\n\tFROM t  WHERE b = 'x''y' AND c = 42", "SELECT a FROM t WHERE b = ? AND c = ?"),
        ("SELECT * FROM t WHERE a = :name AND b = :other", "SELECT * FROM t WHERE a = ? AND b = ?"),
        ("SELECT * FROM t WHERE a = %(id_1)s::INTEGER", "SELECT * FROM t WHERE a = ?::INTEGER"),
        ("SELECT * FROM t WHERE a = %s LIMIT 10", "SELECT * FROM t WHERE a = ? LIMIT ?"),
        ("UPDATE w SET r = u.r FROM unnest($1::int[], $2::int[]) AS u(id, r)", None),
        ('SELECT x2, "Col 1", t1.c FROM t1 WHERE c = -3.5e2', 'SELECT x2, "Col 1", t1.c FROM t1 WHERE c = -?'),
        ("SELECT a FROM t WHERE b IN ($1::INTEGER, $2::INTEGER, $3::INTEGER)", "SELECT a FROM t WHERE b IN (?)"),
        ("SELECT a FROM t WHERE b IN (%(b_1_1)s, %(b_1_2)s)", "SELECT a FROM t WHERE b IN (?)"),
        ("SELECT 1 -- it's $1\nFROM t /* 'c' */ WHERE x = '$2'", "SELECT ? FROM t WHERE x = ?"),
    ],
)
def test_fingerprint_removes_values_and_keeps_shape(sql: str, expected: str | None) -> None:
    if expected is None:  # casts survive; placeholders do not
        expected = "UPDATE w SET r = u.r FROM unnest(?::int[], ?::int[]) AS u(id, r)"
    assert fingerprint(sql) == expected


def test_fingerprint_is_the_same_whatever_the_values() -> None:
    assert fingerprint("SELECT * FROM t WHERE id = 1") == fingerprint("SELECT * FROM t WHERE id = 20")
    assert fingerprint("SELECT * FROM t WHERE id IN (1, 2)") == fingerprint("SELECT * FROM t WHERE id IN (3)")


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN",
        "begin;",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT sa_1",
        "RELEASE SAVEPOINT sa_1",
        "SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;",
        "WITH RECURSIVE typeinfo_tree(oid, ns) AS (SELECT 1)",
        "\n  SELECT current_setting('jit') AS cur, set_config('jit', 'off', false) AS new",
    ],
)
def test_transaction_control_and_driver_internals_are_not_counted(sql: str) -> None:
    assert statement_key(sql) is None


def test_params_become_a_positional_json_list() -> None:
    sql = "UPDATE t SET a = %(a)s WHERE id = %(id)s AND b = %(a)s"
    assert jsonable_params(sql, {"id": 7, "a": 3}) == [3, 7]
    assert jsonable_params("x = :b AND y = :a", {"a": 1, "b": 2}) == [2, 1]
    assert jsonable_params("$1 $2", ([1, 2], (3, "x"))) == [[1, 2], [3, "x"]]
    assert jsonable_params("$1", (b"\x00",)) == ["b'\\x00'"]
    assert jsonable_params("SELECT 1", None) is None


def test_instrumentation_switch() -> None:
    assert enabled(True, {}) and not enabled(False, {})
    assert not enabled(True, {settings.INSTRUMENT: "0"})  # the spellings a person may set by hand
    assert enabled(False, {settings.INSTRUMENT: "1"})


# --- aggregation (fake clock) ---------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("us", [1, 2, 127, 128, 129, 255, 1_000, 12_345, 999_999, 59_000_000])
def test_latency_buckets_keep_better_than_one_percent(us: int) -> None:
    bucket = bucket_us(us / 1e6 + 1e-9)
    assert us * (1 - 1 / 128) <= bucket <= us
    assert bucket_us(0) == 1 and bucket_us(3600) <= 60_000_000


def test_the_bucket_table_gives_bucket_us_bucket_at_every_microsecond_and_beyond_it() -> None:
    # The fold reads a duration's bucket from a table below 65,536 µs and computes it above: both must be
    # bucket_us's, at every microsecond the table covers and across the powers of two above it.
    above = [(1 << k) + d for k in range(16, 27) for d in (-1, 0, 1)] + [59_999_999, 60_000_000, 60_000_001, 10**10]
    for us in [*range(0, 1 << 16), *above]:
        assert _BUCKET_VALUES[bucket_index(us)] == bucket_us(us / 1e6 + 1e-9), us


def test_collector_aggregates_by_fingerprint_and_endpoint() -> None:
    clock = FakeClock()
    collector = Collector("test hook", clock=clock)
    select = "SELECT id FROM world WHERE id = $1"
    queries, db, updates = RequestScope("/queries"), RequestScope("/db"), RequestScope("/updates")
    for ms in (1, 2, 3, 4, 100):
        collector.record_statement(queries, select, ms / 1000, 1, (ms,))
    collector.record_statement(db, select, 0.001, 1, (9,))
    # An executemany of 4 parameter sets timed as one 8 ms call: 4 calls at 2 ms each.
    collector.record_statement(updates, "UPDATE w SET r = $1 WHERE id = $2", 0.008, None, [(1, 2)] * 4, calls=4)
    collector.record_statement(updates, "ROLLBACK", 0.5, None, None)
    collector.record_request(queries, 0.2)
    collector.record_request(db, 0.01)
    # /updates is still in flight: neither it nor its statements are counted yet.
    clock.now = 102.5

    snapshot = collector.snapshot()
    assert [s["calls"] for s in snapshot["statements"]] == [6]

    assert snapshot["instrumented"] is True and snapshot["hook"] == "test hook"
    assert snapshot["window_s"] == pytest.approx(2.5)
    assert snapshot["endpoints"]["/queries"] == pytest.approx(
        {"requests": 1, "queries": 5, "request_time_s": 0.2, "db_time_s": 0.11}
    )
    assert "/updates" not in snapshot["endpoints"]
    collector.record_request(updates, 0.02)
    snapshot = collector.snapshot()
    assert snapshot["endpoints"]["/updates"] == pytest.approx(
        {"requests": 1, "queries": 4, "request_time_s": 0.02, "db_time_s": 0.008}
    )
    first, second = snapshot["statements"]  # ROLLBACK dropped; sorted by total time
    assert first["fingerprint"] == "SELECT id FROM world WHERE id = ?"
    assert first["calls"] == 6 and first["rows"] == 6
    assert first["total_ms"] == pytest.approx(111)
    assert first["p50_ms"] == pytest.approx(2, rel=0.01)
    assert first["p95_ms"] == pytest.approx(100, rel=0.01)
    assert first["endpoints"] == {"/queries": 5, "/db": 1}
    assert first["sample_params"] == [1]
    assert second["calls"] == 4 and second["rows"] is None
    assert second["p50_ms"] == pytest.approx(2, rel=0.01)
    assert second["sample_params"] == [1, 2]

    collector.reset()
    clock.now = 103.0
    assert collector.snapshot() == {
        "instrumented": True,
        "hook": "test hook",
        "window_s": 0.5,
        "endpoints": {},
        "statements": [],
    }


# --- the request timing in the app's own __call__ (instrument.RequestTiming) ----------------------------------


def _recording_app(collector: Collector | None) -> tuple[Any, list[dict[str, Any]]]:
    from targets.common.contract import _NO_TELEMETRY, _ContractApp

    app = _ContractApp(**_NO_TELEMETRY)
    app.stats_collector = collector
    seen: list[dict[str, Any]] = []

    async def stack(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(dict(scope))
        request = current_request.get()
        if request is not None:
            request.append(("SELECT 1", 0.001, 1, (), 1))

    app.middleware_stack = stack
    return app, seen


def _http_scope(path: str) -> dict[str, Any]:
    return {"type": "http", "path": path, "method": "GET", "headers": [], "query_string": b"", "root_path": ""}


def test_the_apps_own_call_hands_the_stack_the_scope_fastapis_call_would() -> None:
    from fastapi import FastAPI

    app, seen = _recording_app(None)
    asyncio.run(app(_http_scope("/db"), None, None))  # RequestTiming's path
    asyncio.run(FastAPI.__call__(app, _http_scope("/db"), None, None))  # FastAPI's and Starlette's own
    assert len(seen) == 2 and seen[0] == seen[1] and seen[0]["app"] is app


def test_the_apps_own_call_times_requests_and_skips_dbbenchs_own_routes() -> None:
    collector = Collector()
    app, seen = _recording_app(collector)
    for path in ("/db", "/db", "/_bench/stats", "/health"):
        asyncio.run(app(_http_scope(path), None, None))
    endpoints = collector.snapshot()["endpoints"]
    assert list(endpoints) == ["/db"] and endpoints["/db"]["requests"] == 2 and endpoints["/db"]["queries"] == 2
    assert len(seen) == 4  # every request reached the app
    asyncio.run(app({"type": "lifespan"}, _lifespan_receive(), _ignore))  # other scopes: FastAPI's own path


def _lifespan_receive() -> Callable[[], Any]:
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, str]:
        return next(messages)

    return receive


async def _ignore(message: Any) -> None:
    return None


# --- which hook sees asyncpg (the evidence for targets.common.instrument's choice) ----------------------------


def test_asyncpg_query_logger_sees_our_calls_but_not_prepared_statements(pg_dsn: str) -> None:
    async def probe() -> list[Any]:
        seen: list[Any] = []
        conn = await asyncpg.connect(pg_dsn)
        try:
            conn.add_query_logger(seen.append)
            for value in (1, 2):  # the second call runs the connection's cached prepared statement
                await conn.fetchrow("SELECT $1::int AS v", value)
            await conn.fetch("SELECT 3")
            await conn.execute("SELECT $1::int[]", [4])
            await (await conn.prepare("SELECT 5 + $1::int")).fetchval(1)  # explicit PreparedStatement
            await asyncio.sleep(0)  # loggers run via loop.call_soon
        finally:
            await conn.close()
        return seen

    queries = [record.query for record in asyncio.run(probe())]
    ours = [q for q in queries if statement_key(q) is not None]
    assert ours == ["SELECT $1::int AS v", "SELECT $1::int AS v", "SELECT 3", "SELECT $1::int[]"]
    assert "SELECT 5 + $1::int" not in queries


def test_status_rows() -> None:
    assert (status_rows("UPDATE 20"), status_rows("INSERT 0 1"), status_rows("SELECT 3")) == (20, 1, 3)
    assert status_rows("REFRESH MATERIALIZED VIEW") is None and status_rows("") is None


def test_timed_connection_class_times_every_query_method_inside_a_request(pg_dsn: str) -> None:
    collector = Collector()
    request = RequestScope("/probe")

    async def probe() -> None:
        pool = await asyncpg.create_pool(
            pg_dsn, min_size=1, max_size=1, connection_class=timed_connection_class(collector, "pool")
        )
        try:
            await pool.fetchrow("SELECT 0")  # outside a request: not counted
            token = current_request.set(request)
            try:
                async with pool.acquire() as conn:  # a PoolConnectionProxy: calls reach the subclass
                    await conn.execute("CREATE TEMP TABLE t (v int)")
                    await conn.executemany("INSERT INTO t VALUES ($1)", [(1,), (2,), (3,)])
                    for value in (1, 2):  # the second runs the cached prepared statement
                        await conn.fetchrow("SELECT v FROM t WHERE v = $1", value)
                    await conn.fetch("SELECT v FROM t")
                    await conn.fetchval("SELECT count(*) FROM t")
                    await conn.execute("UPDATE t SET v = v + $1", 1)
                    await conn.fetchmany("SELECT $1::int", [(1,), (2,)])
                # the release above ran asyncpg's pool reset through execute(): noise, not counted
            finally:
                current_request.reset(token)
        finally:
            await pool.close()

    asyncio.run(probe())
    assert collector.snapshot()["statements"] == []  # counted when the request ends, not before
    collector.record_request(request, 1.0)
    assert collector.hook == "asyncpg connection methods (pool)"
    by_sql = {s["fingerprint"]: s for s in collector.snapshot()["statements"]}
    assert {k: (s["calls"], s["rows"]) for k, s in by_sql.items()} == {
        "CREATE TEMP TABLE t (v int)": (1, None),
        "INSERT INTO t VALUES (?)": (3, None),
        "SELECT v FROM t WHERE v = ?": (2, 2),
        "SELECT v FROM t": (1, 3),
        "SELECT count(*) FROM t": (1, None),
        "UPDATE t SET v = v + ?": (1, 3),
        "SELECT ?::int": (2, 2),
    }
    assert collector.snapshot()["endpoints"]["/probe"]["queries"] == 11
    assert collector.snapshot()["endpoints"]["/probe"]["db_time_s"] > 0
    assert by_sql["SELECT v FROM t WHERE v = ?"]["sample_params"] == [1]


# --- every variant under real uvicorn -------------------------------------------------------------------

EXPECTED_HOOK = {
    "sync": "sqlalchemy dialect execute (psycopg)",
    "async_orm": "sqlalchemy dialect execute (asyncpg via sqlalchemy)",
    "databases": "asyncpg connection methods (pool via databases)",
    "pooled": "asyncpg connection methods (pool)",
    "cached": "asyncpg connection methods (pool)",
    "nopool": "asyncpg connection methods (per connection)",
}


def stats(base_url: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/_bench/stats", timeout=30)
    response.raise_for_status()
    payload: dict[str, Any] = response.json()
    return payload


def reset(base_url: str) -> None:
    assert httpx.post(f"{base_url}/_bench/stats/reset", timeout=30).status_code == 204


@pytest.mark.parametrize("variant", list(VARIANTS), ids=VARIANTS.names)
def test_every_statement_is_timed_and_attributed_to_its_request(
    variant: Variant, seeded_dsn: str, run_target: RunTarget
) -> None:
    base_url = run_target(variant.app, target_env(seeded_dsn, variant.name))
    info = httpx.get(f"{base_url}/_bench/info", timeout=30).json()
    assert (info["instrumented"], info["hook"]) == (True, EXPECTED_HOOK[variant.name])
    for path in ["/updates?queries=3", "/db", "/health"]:  # warm: first use on a connection introspects types
        httpx.get(base_url + path, timeout=30).raise_for_status()
    reset(base_url)

    # Concurrent requests to different endpoints (more than the pool holds): attribution must not mix them.
    paths = ["/db", "/queries?queries=5", "/fortunes", "/updates?queries=3", "/health"] * 6
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(lambda path: httpx.get(base_url + path, timeout=60).status_code, paths)) == {200}
    httpx.get(f"{base_url}/_bench/info", timeout=30)
    payload = stats(base_url)

    assert payload["instrumented"] is True and payload["hook"] == EXPECTED_HOOK[variant.name]
    assert payload["window_s"] > 0
    # The process's garbage collections since the reset (targets.common.gcclock), per generation.
    assert len(payload["gc"]["collections"]) == len(payload["gc"]["seconds"]) == 3
    assert all(n >= 0 for n in payload["gc"]["collections"]) and all(s >= 0 for s in payload["gc"]["seconds"])
    assert isinstance(payload["pid"], int)  # which process answered (each uvicorn worker keeps its own)
    endpoints = payload["endpoints"]
    assert set(endpoints) == {"/db", "/queries", "/fortunes", "/updates"}  # /health and /_bench/* skipped
    per_request = {path: e["queries"] / e["requests"] for path, e in endpoints.items()}
    if variant.name == "cached":  # cache hits answer reads without a query
        assert per_request["/db"] <= 1 and per_request["/queries"] <= 5
    else:
        assert per_request["/db"] == 1 and per_request["/queries"] == 5
    assert per_request["/fortunes"] == 1
    updates_reads = sum(
        s["endpoints"].get("/updates", 0) for s in payload["statements"] if s["fingerprint"].startswith("SELECT")
    )
    assert updates_reads == 3 * 6
    for e in endpoints.values():
        assert e["requests"] == 6 and 0 < e["db_time_s"] < e["request_time_s"]

    statements = payload["statements"]
    assert [s["total_ms"] for s in statements] == sorted((s["total_ms"] for s in statements), reverse=True)
    for s in statements:
        assert s["fingerprint"].split()[0] in ("SELECT", "UPDATE"), s["fingerprint"]
        assert "$" not in s["fingerprint"] and "%(" not in s["fingerprint"]
        assert s["calls"] == sum(s["endpoints"].values()) > 0
        assert 0 < s["p50_ms"] <= s["p95_ms"] and s["total_ms"] > 0
        assert isinstance(s["sample_params"], list)
    world_read = next(
        s for s in statements if "FROM world" in s["fingerprint"] and s["fingerprint"].startswith("SELECT")
    )
    assert len(world_read["sample_params"]) == 1 and 1 <= world_read["sample_params"][0] <= 10_000
    if variant.name in ("sync", "pooled", "cached", "nopool"):  # psycopg's rowcount; asyncpg's fetchrow
        assert world_read["rows"] == world_read["calls"]


@pytest.mark.parametrize("variant", [VARIANTS.get("pooled"), VARIANTS.get("sync")], ids=lambda v: v.name)
def test_instrumentation_off_installs_nothing(variant: Variant, seeded_dsn: str, run_target: RunTarget) -> None:
    base_url = run_target(variant.app, target_env(seeded_dsn, variant.name, instrument=False))
    httpx.get(f"{base_url}/queries?queries=3", timeout=30).raise_for_status()
    info = httpx.get(f"{base_url}/_bench/info", timeout=30).json()
    assert (info["instrumented"], info["hook"]) == (False, "none")
    payload = stats(base_url)
    assert payload["instrumented"] is False
    assert (payload["endpoints"], payload["statements"]) == ({}, [])
    # The garbage collector is counted with the hooks off too (targets.common.gcclock; tests/test_gcclock.py
    # checks the counting: sequential requests here free what they allocate and may trigger no collection).
    assert set(payload["gc"]) == {"collections", "seconds", "collected"} and len(payload["gc"]["collections"]) == 3
    reset(base_url)


@pytest.mark.parametrize("variant", [VARIANTS.get("pooled"), VARIANTS.get("sync")], ids=lambda v: v.name)
def test_a_background_refresh_is_not_its_requests_time_or_statements(
    variant: Variant, seeded_dsn: str, run_target: RunTarget
) -> None:
    # Starlette runs background tasks inside the request's ASGI call, after the body went out: the request
    # ends there, and the REFRESH it scheduled belongs to no endpoint.
    base_url = run_target(variant.app, target_env(seeded_dsn, variant.name))
    reset(base_url)
    assert httpx.post(f"{base_url}/refresh-views", timeout=30).status_code == 202
    deadline = time.monotonic() + 20
    refresh: dict[str, Any] = {}
    while time.monotonic() < deadline:
        refresh = httpx.get(f"{base_url}/_bench/info", timeout=30).json()["refresh"]
        if refresh["completed"]:
            break
        time.sleep(0.05)
    assert refresh["completed"] == 1, refresh
    payload = stats(base_url)
    endpoint = payload["endpoints"]["/refresh-views"]
    assert endpoint["requests"] == 1 and endpoint["queries"] == 0, endpoint
    assert endpoint["request_time_s"] * 1000 < refresh["last_ms"], (endpoint, refresh)
    assert not any("REFRESH" in s["fingerprint"].upper() for s in payload["statements"]), payload["statements"]


def test_the_fold_buckets_latencies_as_bucket_us_does() -> None:
    # record_request inlines bucket_us (a call per statement cost a third of the fold): the same buckets.
    collector = Collector()
    request = RequestScope("/db")
    seconds = [0, 1e-7, 1e-6, 127e-6, 128e-6, 129e-6, 255e-6, 1e-3, 0.0123456, 0.999999, 59.0, 3600.0]
    for value in seconds:
        collector.record_statement(request, "SELECT 1", value, 1, None)
    collector.record_statement(request, "INSERT INTO t VALUES ($1)", 0.008, None, [(1,), (2,)], calls=4)  # 2 ms each
    collector.record_request(request, 4000.0)
    (one,) = (s for key, s in collector._statements().items() if key == "SELECT ?")
    expected: dict[int, int] = {}
    for value in seconds:
        expected[bucket_us(value)] = expected.get(bucket_us(value), 0) + 1
    assert one.buckets == expected
    (two,) = (s for key, s in collector._statements().items() if key != "SELECT ?")
    assert two.buckets == {bucket_us(0.002): 4}


def test_a_request_counts_only_when_it_ends_and_noise_is_dropped() -> None:
    collector = Collector()
    request = RequestScope("/updates")
    select = "SELECT id FROM world WHERE id = $1"
    for sql in ("BEGIN", select, select, "COMMIT", "SELECT pg_advisory_unlock_all(); CLOSE ALL;"):
        collector.record_statement(request, sql, 0.001, 1, (7,))
    assert collector.snapshot()["statements"] == [] and collector.snapshot()["endpoints"] == {}
    collector.record_request(request, 0.01)
    snapshot = collector.snapshot()
    assert snapshot["endpoints"]["/updates"] == pytest.approx(
        {"requests": 1, "queries": 2, "request_time_s": 0.01, "db_time_s": 0.002}
    )
    assert [(s["fingerprint"], s["calls"], s["sample_params"]) for s in snapshot["statements"]] == [
        ("SELECT id FROM world WHERE id = ?", 2, [7])
    ]


@pytest.mark.parametrize("method", ["fetch", "fetchrow", "fetchval", "execute"])
def test_timed_connection_restates_asyncpgs_own_signatures(method: str) -> None:
    # fetch/fetchrow/fetchval/execute do what asyncpg's own bodies do (targets.common.asyncpg_timing): a new
    # asyncpg whose methods take other arguments must fail here, not silently drop them.
    import inspect

    from targets.common.asyncpg_timing import TimedConnection

    ours, theirs = (
        inspect.signature(getattr(TimedConnection, method)),
        inspect.signature(getattr(asyncpg.Connection, method)),
    )
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
        (p.name, p.kind, p.default) for p in theirs.parameters.values()
    ]


def test_timed_connection_answers_as_asyncpg_does(pg_dsn: str) -> None:
    collector = Collector()
    request = RequestScope("/probe")

    async def answers(connection_class: type[asyncpg.Connection]) -> list[Any]:
        conn = await asyncpg.connect(pg_dsn, connection_class=connection_class)
        token = current_request.set(request)
        try:
            await conn.execute("CREATE TEMP TABLE t (v int, w text)")
            return [
                await conn.execute("INSERT INTO t SELECT g, g::text FROM generate_series(1, $1) g", 3),
                await conn.execute("UPDATE t SET w = 'x' WHERE v > $1", 1),
                [tuple(r) for r in await conn.fetch("SELECT v, w FROM t WHERE v >= $1 ORDER BY v", 2)],
                tuple(await conn.fetchrow("SELECT v, w FROM t WHERE v = $1", 3)),
                await conn.fetchrow("SELECT v FROM t WHERE v = $1", 99),
                await conn.fetchval("SELECT v, w FROM t WHERE v = $1", 2, column=1),
                await conn.fetchval("SELECT v FROM t WHERE v = $1", 99),
                await conn.execute("SELECT 1"),
            ]
        finally:
            current_request.reset(token)
            await conn.close()

    plain = asyncio.run(answers(asyncpg.Connection))
    assert asyncio.run(answers(timed_connection_class(collector, "connect"))) == plain
    collector.record_request(request, 1.0)
    assert collector.snapshot()["endpoints"]["/probe"]["queries"] == 9  # the plain run's were not timed
