"""`bench run --db sqlite`, the zero-setup mode: real SQLite files, real uvicorn, real Locust, no PostgreSQL.

The end-to-end run is also the per-variant contract test: the runner checks every SQLite-capable variant
against the full contract (values against the generator, /updates read back through sqlite3, query counts,
the report rebuilt by POST /refresh-views) before measuring it, and records each check in the results.
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest

from bench import results, seed
from bench.check.expected import expected_report_row, seeded_items
from targets import VARIANTS
from targets.common import sqlite
from targets.common.data_rules import report_json
from targets.common.schema import ITEM_ROWS, ITEMS_EPOCH, SEARCH_INDEX, items_checksum, seeded_world

pytestmark = pytest.mark.e2e  # starts real processes: the slow tier

ROOT = Path(__file__).resolve().parent.parent
ON_SQLITE = ("sync", "async_orm", "databases", "cached")
SEARCH = "SELECT id FROM items WHERE category = 3 AND price_cents <= 5000 ORDER BY created_at DESC, id DESC LIMIT 20"


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_registry_says_which_variants_run_on_sqlite() -> None:
    assert [v.name for v in VARIANTS if v.runs_on_sqlite] == list(ON_SQLITE)
    for name in ("pooled", "nopool"):
        assert "asyncpg talks only to PostgreSQL" in VARIANTS.get(name).postgres_only


def test_sqlite_urls() -> None:
    dsn = sqlite.url_for("/tmp/run/bench.db")
    assert dsn == "sqlite:////tmp/run/bench.db" and sqlite.is_sqlite(dsn)
    assert sqlite.database_path(dsn) == "/tmp/run/bench.db"
    assert sqlite.engine_url(dsn, "aiosqlite") == "sqlite+aiosqlite:////tmp/run/bench.db"
    assert not sqlite.is_sqlite("postgresql://postgres@127.0.0.1:5432/dbbench")
    with pytest.raises(ValueError, match="absolute"):
        sqlite.database_path("sqlite:///relative.db")


def test_seeded_file_matches_the_generator_and_keeps_its_marker(tmp_path: Path) -> None:
    dsn = sqlite.url_for(str(tmp_path / "bench.db"))
    seed.apply_schema(dsn)
    seed.seed(dsn)
    assert seed.stored_items_checksum(dsn) == items_checksum()
    world = seeded_world()
    assert seed.world_snapshot(dsn) == world
    assert seed.world_snapshot(dsn, [1, 1, 10_000]) == {1: world[1], 10_000: world[10_000]}
    with closing(sqlite.connect(dsn)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # The report table, rebuilt by SQL, equals what PostgreSQL's percentile_disc view gives (the generator).
        rows = conn.execute("SELECT * FROM category_report ORDER BY category").fetchall()
    assert report_json([(*row[:8], datetime.fromisoformat(row[8])) for row in rows]) == seeded_items().report

    with seed.probe_item(dsn) as (item_id, category, price, created):
        assert seed.stored_items_checksum(dsn)[0] == ITEM_ROWS + 1
        with closing(sqlite.connect(dsn)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            for statement in sqlite.REFRESH_REPORT:
                conn.execute(statement)
            conn.execute("COMMIT")
            probed = conn.execute("SELECT * FROM category_report WHERE category = ?", [category]).fetchone()
        prices = [*seeded_items().prices[category], price]
        days = len(seeded_items().days[category] | {int((created - ITEMS_EPOCH).total_seconds()) // 86_400})
        want = expected_report_row(category, prices, days, created)
        assert report_json([(*probed[:8], datetime.fromisoformat(probed[8]))]) == [want]
    assert seed.seed_items(dsn) is False  # the probe put back the rows, the report and the marker
    with closing(sqlite.connect(dsn)) as conn:
        assert conn.execute("SELECT * FROM category_report ORDER BY category").fetchall() == rows
        conn.execute("UPDATE items SET price_cents = price_cents WHERE id = 1")  # any write clears the marker
    assert seed.seed_items(dsn) is True
    assert item_id == ITEM_ROWS + 1


def test_search_index_switches_the_plan(tmp_path: Path) -> None:
    dsn = sqlite.url_for(str(tmp_path / "bench.db"))
    seed.apply_schema(dsn)
    assert seed.search_index_enabled(dsn) is True

    def plan() -> str:
        with closing(sqlite.connect(dsn)) as conn:
            return " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {SEARCH}"))

    assert f"COVERING INDEX {SEARCH_INDEX}" in plan()
    seed.set_search_index(dsn, False)
    assert seed.search_index_enabled(dsn) is False
    assert "SCAN items" in plan() and SEARCH_INDEX not in plan()
    seed.set_search_index(dsn, True)
    assert f"COVERING INDEX {SEARCH_INDEX}" in plan()


def test_db_sqlite_conflicts_with_dsn_and_takes_known_names() -> None:
    for args, fragment in (
        (("--db", "sqlite", "--dsn", "postgresql://u:secret@127.0.0.1:1/x"), "--db sqlite conflicts with --dsn"),
        (("--db", "mysql"), "--db takes postgres or sqlite"),
    ):
        proc = bench("run", *args, "--no-calibrate")
        assert proc.returncode == 2, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr and "secret" not in proc.stderr


def test_run_on_sqlite_checks_and_measures_four_variants_and_skips_pooled(tmp_path: Path) -> None:
    out = tmp_path / "sqlite.json"
    proc = bench(
        "run",
        "--db",
        "sqlite",
        "--variants",
        "sync,async_orm,databases,cached,pooled",
        "--scenarios",
        "updates",  # the writes are where SQLite differs most (one write lock); /db is in the contract check
        "--users",
        "4",
        "--warmup",
        "0.3",
        "--duration",
        "1",
        "--no-calibrate",
        "-o",
        str(out),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "asyncpg talks only to PostgreSQL" in proc.stdout and "failed its contract check" not in proc.stdout
    loaded = results.load(out)

    checks = {check.variant: check for check in loaded.checks}
    assert set(checks) == {*ON_SQLITE, "pooled"}
    for name in ON_SQLITE:
        check = checks[name]
        assert check.ok and not check.problems and not check.skipped, (name, check.problems)
        assert check.info["query_counts"] == "checked"  # counted on SQLite too, so the check is as strict
        assert check.info["refresh_check"]["refresh_ms"] > 0  # the report rebuild reached /report
    assert checks["sync"].info["driver"] == "pysqlite" and checks["sync"].info["pool_size"] == 10
    assert checks["async_orm"].info["driver"] == checks["cached"].info["driver"] == "aiosqlite"
    assert checks["databases"].info["pool_size"] is None  # its SQLite backend has no pool, and says so
    pooled = checks["pooled"]
    assert not pooled.ok and "asyncpg talks only to PostgreSQL" in pooled.skipped

    cells = {(cell.variant, cell.scenario): cell for cell in loaded.cells}
    assert set(cells) == {(name, "updates") for name in ON_SQLITE}
    for cell in cells.values():
        assert cell.ok and cell.requests > 0 and not cell.errors, (cell.variant, cell.scenario, cell.reason)
        assert cell.db_connections is None and cell.db_cpu_s is None and cell.pg_statements is None

    database = loaded.metadata["database"]
    assert database["kind"] == "sqlite" and database["server_version"].startswith("SQLite 3.")
    assert database["dsn"].startswith("sqlite:////") and database["settings"]["journal_mode"] == "wal"
    assert loaded.metadata["pg_stat_statements"]["available"] is False
    assert loaded.explains == []
