"""Every variant, served by real uvicorn against real PostgreSQL, meets the contract and does the same work.

Fixtures relied on (tests/conftest.py):
  pg_dsn: str
      session-scoped; a libpq URL to a fresh, empty database on a real PostgreSQL server (superuser, so the
      test can read pg_stat_* and terminate the target's backends).
  run_target(app_import: str, env: dict[str, str]) -> str
      function-scoped factory; starts ``python -m uvicorn <app_import> --host 127.0.0.1 --port <free>
      --no-access-log`` with ``env`` merged into the environment, waits until GET /health is 200, returns
      the base URL (e.g. "http://127.0.0.1:54321") and stops the server at teardown.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from bench.check.variant import check_variant
from bench.seed import apply_schema, seed, world_snapshot
from targets import VARIANTS, UnknownVariant, Variant
from targets.cached import WorldCache
from targets.common import settings
from targets.common.contract import Settings
from targets.common.schema import FORTUNES, seeded_world
from targets.common.settings import TargetSpec

POOL_SIZE = 4
PROJECT_ROOT = Path(__file__).resolve().parents[1]
RunTarget = Callable[[str, dict[str, str]], str]


def target_env(dsn: str, variant: str) -> dict[str, str]:
    # Warnings are errors inside the target too: a deprecation in a request path fails the request.
    # Instrument on: some variants are opt-in (their hooks cost more than 5 %).
    spec = TargetSpec(dsn, POOL_SIZE, variant=variant, instrument=True)
    return {**spec.to_env(), "PYTHONWARNINGS": "error"}


@pytest.fixture
def seeded_dsn(pg_dsn: str) -> str:
    apply_schema(pg_dsn)
    seed(pg_dsn)
    return pg_dsn


def start(run_target: RunTarget, dsn: str, variant: Variant) -> str:
    return run_target(variant.app, target_env(dsn, variant.name))


def get_json(url: str) -> object:
    response = httpx.get(url, timeout=30)
    response.raise_for_status()
    return response.json()


def get_worlds(url: str) -> dict[int, int]:
    payload = get_json(url)
    assert isinstance(payload, list)
    return {item["id"]: item["randomNumber"] for item in payload}


# --- registry and configuration (no server) -------------------------------------------------------


def test_registry_lists_variants_from_most_abstraction_to_rawest() -> None:
    assert VARIANTS.names == ["sync", "async_orm", "databases", "pooled", "cached", "nopool"]
    pooled = VARIANTS.get("pooled")
    assert (pooled.module, pooled.app) == ("targets.pooled", "targets.pooled:app")
    assert VARIANTS.get("databases").app == "targets.encode_databases:app"
    for variant in VARIANTS:
        assert variant.source.is_file()
        assert variant.label and "\n" not in variant.label
        assert variant.hypothesis.startswith("Hypothesis: ")


def test_unknown_variant_names_the_valid_ones() -> None:
    with pytest.raises(UnknownVariant, match="unknown variant 'x'; choose from sync, async_orm, databases"):
        VARIANTS.get("x")
    assert issubclass(UnknownVariant, ValueError)


def test_listing_variants_imports_no_framework_or_driver() -> None:
    code = (
        "import sys, targets\n"
        "[(v.label, v.hypothesis) for v in targets.VARIANTS]\n"
        "print(sorted({'fastapi', 'sqlalchemy', 'asyncpg', 'databases', 'psycopg'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("variant", list(VARIANTS), ids=VARIANTS.names)
def test_importing_a_variant_needs_no_configuration(variant: Variant, monkeypatch: pytest.MonkeyPatch) -> None:
    # Configuration is read in the lifespan, so import works without DBBENCH_DSN and connects to nothing.
    monkeypatch.delenv(settings.DSN, raising=False)
    code = f"import fastapi, {variant.module} as m; print(isinstance(m.app, fastapi.FastAPI))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT
    ).stdout
    assert out.strip() == "True"  # a FastAPI (the contract's subclass of it, targets.common.contract)


def test_settings_from_env() -> None:
    assert Settings.from_env(TargetSpec("postgresql://h/db").to_env()) == Settings("postgresql://h/db", 10)
    assert Settings.from_env(TargetSpec("postgresql://h/db", 3).to_env()).pool_size == 3
    with pytest.raises(RuntimeError, match=settings.DSN):
        Settings.from_env({})
    with pytest.raises(RuntimeError, match=settings.POOL_SIZE):  # a value the spec cannot write
        Settings.from_env({settings.DSN: "postgresql://h/db", settings.POOL_SIZE: "0"})


# --- seeding ------------------------------------------------------------------------------------


def test_seed_is_deterministic_and_repeatable(pg_dsn: str) -> None:
    apply_schema(pg_dsn)
    apply_schema(pg_dsn)  # idempotent
    seed(pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("UPDATE world SET randomnumber = 0 WHERE id <= 100")
    seed(pg_dsn)
    assert world_snapshot(pg_dsn) == seeded_world()
    assert world_snapshot(pg_dsn, [1, 10_000, 10_001]) == {
        1: seeded_world()[1],
        10_000: seeded_world()[10_000],
    }
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT id, message FROM fortune ORDER BY id").fetchall() == list(FORTUNES)


# --- every variant under real uvicorn -----------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS), ids=VARIANTS.names)
def test_variant_meets_the_contract(variant: Variant, seeded_dsn: str, run_target: RunTarget) -> None:
    report = check_variant(start(run_target, seeded_dsn, variant), seeded_dsn)

    assert report.problems == []
    assert report.ok
    info = report.info
    assert info["variant"] == variant.name
    assert info["pool_size"] == POOL_SIZE
    if variant.name in ("sync", "async_orm"):
        assert info["max_overflow"] == 0
    assert info["threadpool_size"] == (40 if variant.name == "sync" else None)
    assert (info["cache"] is not None) == (variant.name == "cached")
    # Query counts, measured by the target itself during the check.
    assert info["instrumented"] is True and info["query_counts"] == "checked"
    counts = info["queries_per_request"]
    if variant.name == "cached":  # declared: the cache may answer /db and /queries without a query
        assert info["cache"]["fewer_queries_ok"] == ["/db", "/queries"]
        assert counts["/db"] <= 1 and counts["/queries?queries=20"] <= 20
    else:
        assert counts["/db"] == 1 and counts["/queries?queries=20"] == 20
    assert counts["/fortunes"] == 1
    batched = variant.name not in ("sync", "async_orm")  # the ORMs flush one UPDATE per changed row
    assert counts["/updates?queries=1"] == 2
    assert (counts["/updates?queries=20"] == 21) if batched else (38 <= counts["/updates?queries=20"] <= 40)
    # N+1: the lazy endpoint grows with the number of authors and is flagged; the eager one is not.
    growth = info["query_growth"]
    assert growth["/authors/lazy"] == {"5": 6, "20": 21}
    assert growth["/authors/eager"] == {"5": 2, "20": 2}
    assert info["nplus1_suspects"] == [
        {
            "endpoint": "/authors/lazy",
            "queries_per_request": 21,
            "message": "N+1 suspected: 21 similar statements per request",
        }
    ]
    assert [entry["endpoint"] for entry in info["query_growth_by_contract"]] == ["/queries", "/updates"]


def world_index_scans(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT idx_scan FROM pg_stat_user_tables WHERE relname = 'world'").fetchone()
    assert row is not None
    return int(row[0] or 0)


OTHER_CLIENTS = (
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND backend_type = 'client backend'"
)


def wait_until_gone(conn: psycopg.Connection, pids: list[int] | None) -> None:
    """Wait until sessions ``pids`` (None: all other sessions) have exited, so their statistics are in."""
    deadline = time.monotonic() + 10
    while sessions := [
        row for row in conn.execute(f"SELECT pid, state, query {OTHER_CLIENTS}") if pids is None or row[0] in pids
    ]:
        assert time.monotonic() < deadline, f"sessions did not end: {sessions}"
        time.sleep(0.05)


def end_other_sessions(dsn: str) -> None:
    """Terminate the target's sessions: a backend flushes its statistics when it exits, an idle one may hold
    them for up to 10 s. (asyncpg pools reconnect at once; the new sessions have read nothing.)"""
    with psycopg.connect(dsn, autocommit=True) as conn:
        pids = [pid for pid, _ in conn.execute(f"SELECT pid, pg_terminate_backend(pid) {OTHER_CLIENTS}")]
        wait_until_gone(conn, pids)


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v.name != "cached"], ids=lambda v: v.name)
def test_one_query_per_row_read(variant: Variant, seeded_dsn: str, run_target: RunTarget) -> None:
    # Counted by PostgreSQL itself: every world row read must be one primary-key index scan, including
    # repeated ids (an ORM identity map or a driver-side cache would skip them).
    with psycopg.connect(seeded_dsn, autocommit=True) as conn:
        wait_until_gone(conn, None)  # earlier tests' targets have exited, so their counts are in
    before = world_index_scans(seeded_dsn)
    base_url = start(run_target, seeded_dsn, variant)
    for _ in range(5):
        get_json(f"{base_url}/db")
    for _ in range(3):
        get_worlds(f"{base_url}/queries?queries=500")
    end_other_sessions(seeded_dsn)  # the target is not used after this

    assert world_index_scans(seeded_dsn) - before == 5 + 3 * 500


@pytest.mark.parametrize("variant", list(VARIANTS), ids=VARIANTS.names)
def test_concurrent_updates_neither_deadlock_nor_leave_stale_reads(
    variant: Variant, seeded_dsn: str, run_target: RunTarget
) -> None:
    # More concurrent requests than pooled connections: overlapping 500-row writes (sorted ids, so no
    # deadlocks) mixed with reads that, for the cached variant, race the writes to fill the cache.
    base_url = start(run_target, seeded_dsn, variant)
    paths = ["/updates?queries=500", "/queries?queries=500"] * 8
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda path: httpx.get(base_url + path, timeout=60).status_code, paths))
    assert statuses == [200] * len(paths)

    stored = world_snapshot(seeded_dsn)
    for _ in range(5):
        served = get_worlds(f"{base_url}/queries?queries=500")
        assert served == {world_id: stored[world_id] for world_id in served}


# --- the cached variant --------------------------------------------------------------------------


def test_cached_never_serves_a_value_older_than_the_database(seeded_dsn: str, run_target: RunTarget) -> None:
    base_url = start(run_target, seeded_dsn, VARIANTS.get("cached"))
    for _ in range(10):  # fill the cache with seeded values first, so stale entries would exist
        get_worlds(f"{base_url}/queries?queries=500")
    for _ in range(10):
        get_worlds(f"{base_url}/updates?queries=500")
        get_worlds(f"{base_url}/queries?queries=500")

    stored = world_snapshot(seeded_dsn)
    for _ in range(10):
        served = get_worlds(f"{base_url}/queries?queries=500")
        assert {i: stored[i] for i in served} == served

    cache = get_json(f"{base_url}/_bench/info")["cache"]  # type: ignore[index]
    assert cache["hits"] > 0 and cache["misses"] > 0


def test_cached_updates_write_through(seeded_dsn: str, run_target: RunTarget) -> None:
    base_url = start(run_target, seeded_dsn, VARIANTS.get("cached"))
    written = get_worlds(f"{base_url}/updates?queries=500")
    # Change every row behind the target's back to a value no request could produce: a served value is
    # then visibly either the one /updates put in the cache (positive) or read from the database (negative).
    with psycopg.connect(seeded_dsn) as conn:
        conn.execute("UPDATE world SET randomnumber = -randomnumber")

    served_from_write_through = 0
    for _ in range(20):
        for world_id, number in get_worlds(f"{base_url}/queries?queries=500").items():
            if world_id in written:
                assert number == written[world_id]
                served_from_write_through += 1
            else:
                assert number < 0
    assert served_from_write_through > 0


def test_cached_empties_its_cache_between_cells_without_a_restart(seeded_dsn: str, run_target: RunTarget) -> None:
    # bench.target_pool asks for this before each cell of the cached variant instead of replacing its server.
    base_url = start(run_target, seeded_dsn, VARIANTS.get("cached"))
    get_worlds(f"{base_url}/queries?queries=500")
    before = get_json(f"{base_url}/_bench/info")["cache"]  # type: ignore[index]
    assert before["entries"] > 0
    response = httpx.post(f"{base_url}/_bench/cache/clear", timeout=10)
    assert response.status_code == 200 and response.json() == {"cleared": before["entries"]}
    after = get_json(f"{base_url}/_bench/info")["cache"]  # type: ignore[index]
    # Empty, and the counters stay cumulative: a window's figures are the difference between its edges.
    assert after["entries"] == 0 and (after["hits"], after["misses"]) == (before["hits"], before["misses"])
    served = get_worlds(f"{base_url}/queries?queries=20")
    assert get_json(f"{base_url}/_bench/info")["cache"]["misses"] == after["misses"] + len(served)  # type: ignore[index]
    # A variant with no cache has nothing to empty, and says so.
    pooled = start(run_target, seeded_dsn, VARIANTS.get("pooled"))
    assert httpx.post(f"{pooled}/_bench/cache/clear", timeout=10).status_code == 404


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cache_aside_counts_hits_and_misses_and_expires() -> None:
    clock = FakeClock()
    cache = WorldCache(ttl=60.0, clock=clock)
    assert cache.get(1) is None
    cache.fill(1, 11, cache.fill_token(1))
    assert cache.get(1) == 11
    clock.now = 61.0
    assert cache.get(1) is None
    assert (cache.hits, cache.misses) == (1, 2)


def test_cache_drops_fills_that_raced_a_write() -> None:
    cache = WorldCache()
    token = cache.fill_token(1)  # a read looks up id 1 and queries the database (old value 5) ...
    with cache.writing({1: 7}):  # ... while a write of 7 starts and commits ...
        pass
    cache.fill(1, 5, token)  # ... then the read's old value arrives: it must not replace 7
    assert cache.get(1) == 7

    with cache.writing({2: 8}):  # a read looked up during a write may have seen the row before it
        token = cache.fill_token(2)
    cache.fill(2, 3, token)
    assert cache.get(2) == 8


def test_cache_forgets_ids_whose_writes_overlapped() -> None:
    cache = WorldCache()
    # Two requests write id 1 concurrently; their commit order is unknown, so neither value may be cached.
    with cache.writing({1: 10, 2: 20}), cache.writing({1: 11}):
        pass
    assert cache.get(1) is None
    assert cache.get(2) == 20


def test_cache_forgets_ids_of_a_failed_write() -> None:
    cache = WorldCache()
    cache.fill(1, 5, cache.fill_token(1))
    with pytest.raises(RuntimeError), cache.writing({1: 6}):
        raise RuntimeError("write failed")
    assert cache.get(1) is None


def test_clearing_the_cache_forgets_entries_and_keeps_the_counters() -> None:
    cache = WorldCache()
    cache.fill(1, 5, cache.fill_token(1))
    cache.fill(2, 6, cache.fill_token(2))
    assert cache.get(1) == 5
    assert cache.clear() == 2 and cache.clear() == 0
    assert cache.get(1) is None and cache.get(2) is None
    assert (cache.hits, cache.misses) == (1, 2)
