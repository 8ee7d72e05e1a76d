"""`bench run` beyond the defaults, end to end: sweeps, resources, statements, profiles, --url, --rate."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import results, seed
from targets.common.settings import TargetSpec

pytestmark = pytest.mark.e2e  # starts real processes: the slow tier

ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=600, cwd=ROOT)


def report_rows(path: Path) -> list[dict[str, object]]:
    proc = bench("report", str(path), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, object]] = json.loads(proc.stdout)
    return rows


def test_sweep_with_resources_statements_and_profiles(tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    proc = bench("run", "--variants", "pooled,async_orm", "--scenarios", "db,queries", "--users", "2,4",
                 "--warmup", "0.5", "--duration", "1.5", "--profile", "--profile-requests", "80", "--instrument",
                 "-o", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "peak and knee" in proc.stdout and "where the time goes" in proc.stdout and "GC share" in proc.stdout
    rows = report_rows(out)
    assert {(r["variant"], r["scenario"], r["users"]) for r in rows} == {
        (v, s, u) for v in ("pooled", "async_orm") for s in ("db", "queries") for u in (2, 4)
    }
    for row in rows:
        assert row["status"] == "ok" and row["errors"] == 0, row
        assert isinstance(row["generator_bound"], bool)
        assert row["cpu_s_per_request"] and 0 < float(str(row["cpu_s_per_request"])) < 1
        assert row["rss_mb"] and float(str(row["rss_mb"])) > 10
        assert row["db_connections"] == 10  # every connection of the pool, opened at start-up
        # TechEmpower's rule, measured by the target's own hooks: one statement per row read.
        expected = 1 if row["scenario"] == "db" else 20
        assert abs(float(str(row["queries_per_request"])) - expected) < 0.1, row
        assert 0 < float(str(row["db_time_share"])) < 1
        # The garbage collector's share of the target's CPU (targets.common.gcclock), from every window.
        assert row["gc_share"] is not None and 0 <= float(str(row["gc_share"])) < 1
        assert row["top_statements"] and "world" in str(row["top_statements"][0]["fingerprint"]).lower()  # type: ignore[index]
    loaded = results.load(out)
    assert loaded.metadata["calibration"]["rps"] > 0
    assert loaded.explains and all(e["plan"] for e in loaded.explains if not e["error"])
    assert any(c.pg_statements for c in loaded.cells)
    # A 0.5 s warm-up ends on evidence (bench.load.with_evidence), and each cell records the warm-up it had.
    assert loaded.metadata["warmup_evidence"]["cap_s"] == 0.5
    assert all(0 < c.warmup_s <= 0.6 for c in loaded.cells) and len({c.warmup_s for c in loaded.cells}) > 1
    # Profiles: one per variant x scenario, saved, rendered, and summarised.
    assert {(p["variant"], p["scenario"]) for p in loaded.profiles} == {
        (v, s) for v in ("pooled", "async_orm") for s in ("db", "queries")
    }
    directory = tmp_path / "sweep.profiles"
    for entry in loaded.profiles:
        assert "error" not in entry, entry
        assert entry["top_frames"]
        html = (directory / entry["files"]["html"]).read_text()
        assert "<html" in html.lower()
        with (directory / entry["files"]["speedscope"]).open() as handle:
            assert "profiles" in json.load(handle)
        assert (directory / entry["files"]["session"]).stat().st_size > 0


@pytest.mark.serial  # the achieved rate against the target
def test_url_mode_checks_and_loads_a_server_it_did_not_start(
    pg_dsn: str, run_target: Callable[[str, dict[str, str]], str], tmp_path: Path
) -> None:
    seed.apply_schema(pg_dsn)
    seed.seed(pg_dsn)
    url = run_target("targets.pooled:app", TargetSpec(pg_dsn, 4).to_env())
    out = tmp_path / "url.json"
    proc = bench("run", "--url", url, "--label", "mine", "--scenarios", "db", "--rate", "100,200", "--users", "8",
                 "--warmup", "0.5", "--duration", "1.5", "--no-calibrate", "-o", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    loaded = results.load(out)
    assert [c.ok for c in loaded.checks] == [True]
    rows = report_rows(out)
    assert [(r["variant"], r["rate"]) for r in rows] == [("mine", 100.0), ("mine", 200.0)]
    for row in rows:
        achieved = float(str(row["achieved_share"]))
        assert 0.8 < achieved < 1.2, row
        assert row["cpu_s_per_request"] is None  # not our process: nothing measured, nothing guessed


def test_url_mode_refuses_a_server_that_breaks_the_contract(
    run_target: Callable[[str, dict[str, str]], str], tmp_path: Path
) -> None:
    url = run_target("bench.calibration_app:app", {})
    out = tmp_path / "bad.json"
    proc = bench("run", "--url", url, "--scenarios", "db", "--no-calibrate", "--duration", "1", "-o", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    loaded = results.load(out)
    assert loaded.checks and not loaded.checks[0].ok and not loaded.cells
