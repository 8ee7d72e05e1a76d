"""The usual advice, measured: planning (pure) and `bench advice` end to end (real PostgreSQL, Redis,
uvicorn and Locust), down to the comparison tables the reports print."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench import advice, results
from bench.plan import Part, Setting, plan_parts
from scenarios import SCENARIOS
from targets import VARIANTS

pytestmark = pytest.mark.e2e  # starts real processes: the slow tier

ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_parts_only_cross_their_own_variants_and_settings() -> None:
    variants = list(VARIANTS)
    parts = [
        Part([SCENARIOS.get("search")], [Setting(index=True), Setting(index=False)], ("pooled", "sync")),
        Part([SCENARIOS.get("db")], [Setting(pool_size=1), Setting(pool_size=5)], ("pooled",)),
    ]
    keys = plan_parts(variants, parts, [(8, None)], trials=2)
    assert len(keys) == (2 * 2 + 2) * 2
    assert Counter((k.variant.name, k.scenario.name, tuple(k.setting.labels().items())) for k in keys if k.setting) == {
        ("pooled", "search", (("index", "on"),)): 2,
        ("pooled", "search", (("index", "off"),)): 2,
        ("sync", "search", (("index", "on"),)): 2,
        ("sync", "search", (("index", "off"),)): 2,
        ("pooled", "db", (("pool", "1"),)): 2,
        ("pooled", "db", (("pool", "5"),)): 2,
    }
    # Variants rotate between trials inside each part.
    assert [k.variant.name for k in keys if k.trial == 1][:2] == ["sync", "pooled"]
    assert [k.variant.name for k in keys if k.trial == 2][:2] == ["pooled", "sync"]


def test_advice_parts_narrow_to_claims_variants_and_scenarios() -> None:
    everything = advice.parts()
    assert {p.title for p in everything} >= {"indexing", "caching", "background refresh", "pooling"}
    narrowed = advice.parts((1, 4), redis=False, claims=("cache", "pool"), variants=("cached", "pooled"))
    assert [(p.title, tuple(p.variants)) for p in narrowed] == [
        ("caching", ("cached",)),
        ("caching: the uncached baseline", ("pooled",)),
        ("pooling", ("pooled",)),
    ]
    assert [s.labels() for s in narrowed[0].settings if s] == [{"cache": "memory"}]  # no Redis: memory only
    assert [s.labels() for s in narrowed[2].settings if s] == [{"pool": "1"}, {"pool": "4"}]


@pytest.mark.serial  # index on vs off by throughput, POST vs refresh by latency
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server (Debian: redis-server)")
def test_advice_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "advice.json"
    proc = bench("advice", "--variants", "pooled,cached", "--scenarios", "search,hot,report,report_refresh,db",
                 "--pool-size", "1,4", "--users", "4", "--warmup", "0.5", "--duration", "1.5", "--no-calibrate",
                 "-o", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for title in ("indexing:", "pooling:", "caching:", "background refresh:"):
        assert title in proc.stdout, title
    loaded = results.load(out)
    assert all(check.ok for check in loaded.checks), [c.problems for c in loaded.checks]
    assert loaded.metadata["cache"]["backend"] == "redis" and loaded.metadata["cache"]["kind"] == "embedded"
    rows = json.loads(bench("report", str(out), "--format", "json").stdout)
    by = {(r["variant"], r["scenario"], r["setting"]): r for r in rows}
    for row in rows:
        assert row["status"] == "ok" and row["errors"] == 0, row

    # Indexing: the same search, index on vs off, and the two plans side by side.
    on, off = by[("pooled", "search", "index on")], by[("pooled", "search", "index off")]
    assert on["rps"] > 1.5 * off["rps"], (on["rps"], off["rps"])
    plans = {e["setting"]: json.dumps(e["plan"]) for e in loaded.explains if "items" in e["query"]}
    assert "Index" in plans["index on"] and "Seq Scan" in plans["index off"], plans.keys()

    # Pooling: each cell held exactly the pool it was given.
    assert by[("pooled", "db", "pool 1")]["db_connections"] == 1
    assert by[("pooled", "db", "pool 4")]["db_connections"] == 4

    # Caching: both backends measured on hot keys; most reads hit (80 % of them go to 1 % of the ids).
    for backend in ("memory", "redis"):
        hot = by[("cached", "hot", f"cache {backend}")]
        assert hot["cache_hit_ratio"] is not None and hot["cache_hit_ratio"] > 0.5, hot["cache_hit_ratio"]
    assert by[("pooled", "hot", "")]["cache_hit_ratio"] is None

    # Background refresh: POST answers long before the refresh it starts has finished.
    busy = by[("pooled", "report_refresh", "")]
    refreshes = busy["refreshes"]
    assert refreshes["completed"] >= 1 and refreshes["failed"] == 0, refreshes
    post = busy["endpoints"]["POST /refresh-views"]
    assert post["requests"] >= 1 and post["p50_ms"] < refreshes["p50_ms"], (post, refreshes)
    assert by[("pooled", "report", "")]["refreshes"] is None

    markdown = bench("report", str(out), "--format", "md").stdout
    assert "## indexing: the same search with and without its index" in markdown
    assert "| pooled (index off) |" in markdown


def test_advice_runs_its_variants_with_server_workers(tmp_path: Path) -> None:
    """`bench advice --server-workers 2` (a review finding of 2026-12-01: run/serve/ab took it, advice did not):
    the pooling claim's cells run two uvicorn workers, each holding its own pool of the swept size."""
    out = tmp_path / "advice.json"
    proc = bench("advice", "--claims", "pool", "--variants", "pooled", "--pool-size", "1,2", "--server-workers", "2",
                 "--users", "4", "--warmup", "0", "--duration", "0.5", "--no-calibrate", "--no-html",
                 "-o", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "each uvicorn worker keeps its own" in proc.stderr
    loaded = results.load(out)
    assert loaded.metadata["config"]["server"].startswith("uvicorn, 2 worker(s) in the timed cells")
    sized = [c for c in loaded.cells if c.settings.get("pool")]
    assert {c.settings["pool"] for c in sized} == {"1", "2"}
    for cell in sized:
        assert cell.ok and cell.target["server_workers"] == 2
        # Two workers x the pool size at most: more would be a pool per worker that was not the swept one.
        assert cell.db_connections is not None and cell.db_connections <= 2 * int(cell.settings["pool"])
    assert "pooling:" in proc.stdout


def test_advice_refuses_a_bad_server_workers_in_one_line(tmp_path: Path) -> None:
    proc = bench("advice", "--server-workers", "0", "-o", str(tmp_path / "never.json"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == "error: --server-workers must be >= 1; got 0"
