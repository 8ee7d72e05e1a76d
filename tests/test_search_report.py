"""The data endpoints: /search and its index, /report over a materialized view with a background refresh,
per-id world routes. Pure rules first, then the seeder on real PostgreSQL, then real uvicorn targets.

Every variant passing the whole contract check (these endpoints included) is tests/test_targets.py's
test_variant_meets_the_contract; here: what that check cannot show on its own.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import httpx
import psycopg
import pytest

from bench.check import data as check_data
from bench.check.variant import check_variant
from bench.seed import (
    apply_schema,
    probe_item,
    search_index_enabled,
    seed,
    seed_items,
    set_search_index,
    stored_items_checksum,
)
from targets import VARIANTS
from targets.common.data_rules import (
    NEW_NUMBER_RULE,
    Rejected,
    iso_utc,
    parse_category,
    parse_max_price,
    parse_new_number,
    parse_search_limit,
    parse_world_id,
)
from targets.common.refresh import RefreshCoordinator
from targets.common.schema import ITEM_CATEGORIES, ITEM_ROWS, SEARCH_INDEX, SEARCH_MAX_PRICE, items_checksum
from targets.common.settings import TargetSpec

POOL_SIZE = 4
SEARCH_SQL = (
    "SELECT id, category, price_cents, created_at FROM items WHERE category = 42 AND price_cents <= 50000"
    " ORDER BY created_at DESC, id DESC LIMIT 20"
)


# --- pure rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "category", "max_price", "limit"),
    [
        (None, 1, SEARCH_MAX_PRICE, 20),
        ("", 1, SEARCH_MAX_PRICE, 20),
        ("x", 1, SEARCH_MAX_PRICE, 20),
        ("0", 1, 0, 1),
        ("-7", 1, 0, 1),
        ("42", 42, 42, 42),
        ("101", ITEM_CATEGORIES, 101, 100),
        ("99999999999999999999", ITEM_CATEGORIES, 100_000, 100),
    ],
)
def test_search_parameters_get_defaults_and_clamps(raw, category, max_price, limit) -> None:
    assert (parse_category(raw), parse_max_price(raw), parse_search_limit(raw)) == (category, max_price, limit)


def test_world_id_and_new_number_rules() -> None:
    assert [parse_world_id(raw) for raw in ("1", "10000", "0", "10001", "abc", "1.0")] == [1, 10_000] + [None] * 4
    assert parse_new_number(b'{"randomNumber": 7, "other": 1}') == 7
    for body in (b'{"randomNumber": 0}', b'{"randomNumber": 10001}', b'{"randomNumber": true}', b"[1]", b"{}"):
        assert parse_new_number(body) == Rejected(422, {"error": NEW_NUMBER_RULE})
    rejected = parse_new_number(b"{oops")
    assert isinstance(rejected, Rejected) and rejected.status == 400 and "not JSON" in rejected.body["error"]


def test_iso_utc_has_one_spelling_for_naive_and_aware_times() -> None:
    naive = datetime(2024, 3, 5, 12, 34, 56)
    aware = datetime(2024, 3, 5, 14, 34, 56, tzinfo=timezone(timedelta(hours=2)))
    assert iso_utc(naive) == iso_utc(aware) == iso_utc(naive.replace(tzinfo=UTC)) == "2024-03-05T12:34:56Z"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_refreshes_coalesce_to_one_running_and_one_waiting() -> None:
    clock = FakeClock()
    refresher = RefreshCoordinator(clock)
    assert refresher.request() is True  # A: scheduled
    with refresher.running():  # A runs: from now on a request needs a new refresh
        assert refresher.request() is True  # B: scheduled, waits for A
        assert refresher.request() is False  # C: joins B
        assert refresher.request() is False  # D: joins B
        clock.now += 0.25
    with refresher.running():  # B
        clock.now += 0.5
        raise RuntimeError("lost the connection")  # counted, not raised: the 202 was sent long ago
    stats = refresher.snapshot()
    assert {key: stats[key] for key in ("requested", "coalesced", "started", "completed", "failed")} == {
        "requested": 4,
        "coalesced": 2,
        "started": 2,
        "completed": 1,
        "failed": 1,
    }
    assert stats["durations_ms"] == [250.0] and stats["last_ms"] == 250.0 and stats["max_ms"] == 250.0
    assert stats["last_error"] == "RuntimeError: lost the connection"
    assert stats["running"] is False and stats["pending"] is False


# --- the seeder, on real PostgreSQL -----------------------------------------------------------------


@pytest.fixture
def seeded_dsn(pg_dsn: str) -> str:
    apply_schema(pg_dsn)
    seed(pg_dsn)
    return pg_dsn


def test_items_are_the_generator_rows_spread_over_the_heap_and_loaded_once(seeded_dsn: str) -> None:
    assert stored_items_checksum(seeded_dsn) == items_checksum()
    assert seed_items(seeded_dsn) is False  # the marker says they are there: no reload per cell
    with probe_item(seeded_dsn) as probe:
        assert probe[0] == ITEM_ROWS + 1
        assert stored_items_checksum(seeded_dsn)[0] == ITEM_ROWS + 1
    assert seed_items(seeded_dsn) is False  # the probe put back exactly what it found
    assert stored_items_checksum(seeded_dsn) == items_checksum()
    with psycopg.connect(seeded_dsn, autocommit=True) as conn:
        # Neither a category's rows nor the time order follow the physical order: no index, no shortcut.
        correlation = dict(
            conn.execute("SELECT attname, correlation FROM pg_stats WHERE tablename = 'items'").fetchall()
        )
        assert abs(correlation["category"]) < 0.05 and abs(correlation["created_at"]) < 0.05
        conn.execute("UPDATE items SET price_cents = price_cents + 1 WHERE id = 1")
    assert seed_items(seeded_dsn) is True  # any write to items: reloaded
    assert stored_items_checksum(seeded_dsn) == items_checksum()


def _plan(dsn: str) -> tuple[str, int]:
    with psycopg.connect(dsn) as conn:
        conn.execute(SEARCH_SQL).fetchall()  # warm: both plans then read shared buffers only
        lines = [row[0] for row in conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {SEARCH_SQL}")]
    hits = int(lines[1].split("shared hit=")[1].split()[0])
    return "\n".join(lines), hits


def test_search_index_switches_the_plan_from_seq_scan_to_a_few_index_pages(seeded_dsn: str) -> None:
    assert search_index_enabled(seeded_dsn) is True  # apply_schema's default
    try:
        set_search_index(seeded_dsn, False)
        set_search_index(seeded_dsn, False)  # idempotent
        assert search_index_enabled(seeded_dsn) is False
        plan_without, pages_without = _plan(seeded_dsn)
        set_search_index(seeded_dsn, True)
        assert search_index_enabled(seeded_dsn) is True
        plan_with, pages_with = _plan(seeded_dsn)
    finally:
        set_search_index(seeded_dsn, True)
    assert "Seq Scan on items" in plan_without and SEARCH_INDEX not in plan_without
    assert f"Index Only Scan using {SEARCH_INDEX}" in plan_with and "Seq Scan" not in plan_with
    assert "Heap Fetches: 0" in plan_with
    assert pages_with <= 10 < 1_000 < pages_without


# --- real targets ----------------------------------------------------------------------------------


def _env(dsn: str) -> dict[str, str]:
    return TargetSpec(dsn, POOL_SIZE, instrument=True).to_env()


def test_a_refresh_that_is_never_awaited_is_caught(seeded_dsn, run_target, monkeypatch) -> None:
    monkeypatch.setattr(check_data, "REFRESH_TIMEOUT_SECONDS", 1.5)
    base_url = run_target("tests.broken_refresh_target:app", _env(seeded_dsn))

    report = check_variant(base_url, seeded_dsn)

    assert report.problems == ["POST /refresh-views: refresh never reached the view (waited 1.5 s)"]
    assert seed_items(seeded_dsn) is False  # the check left items and the view as seeded


@pytest.mark.parametrize("variant", [VARIANTS.get("sync"), VARIANTS.get("pooled")], ids=["sync", "pooled"])
def test_concurrent_refresh_requests_coalesce(variant, seeded_dsn, run_target) -> None:
    base_url = run_target(variant.app, _env(seeded_dsn))
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: httpx.post(f"{base_url}/refresh-views").status_code, range(12)))
    assert statuses == [202] * 12

    deadline = time.monotonic() + 10
    while (stats := httpx.get(f"{base_url}/_bench/info").json()["refresh"])["running"] or stats["pending"]:
        assert time.monotonic() < deadline, stats
        time.sleep(0.02)
    assert stats["requested"] == 12 and stats["failed"] == 0
    # Every request either scheduled a refresh or joined the one waiting; none piled up.
    assert stats["started"] == stats["completed"] == 12 - stats["coalesced"]
    assert stats["coalesced"] >= 1 and len(stats["durations_ms"]) == stats["completed"]
    assert all(duration > 0 for duration in stats["durations_ms"])
