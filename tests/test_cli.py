"""The real ``bench`` command end to end: real PostgreSQL, real uvicorn, real Locust."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from processes import survivors

import cli
from bench import results
from scenarios import CORE, SCENARIOS
from targets import VARIANTS

pytestmark = pytest.mark.e2e  # starts real processes: the slow tier

BENCH = [sys.executable, "-m", "bench"]
ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BENCH, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def assert_clean_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]


def test_default_scenarios_are_the_core_group() -> None:
    # `bench run` with no --scenarios runs "core"; the advice scenarios have their own command and tests.
    import inspect

    from cli import _scenarios, run

    assert inspect.signature(run).parameters["scenarios"].default == "core"
    assert [s.name for s in _scenarios("core")] == CORE
    assert [s.name for s in _scenarios("all")] == SCENARIOS.names()


def test_help_and_list() -> None:
    proc = bench("--help")
    assert proc.returncode == 0 and "run" in proc.stdout and "report" in proc.stdout
    listing = bench("list")
    assert listing.returncode == 0
    for name in [v.name for v in VARIANTS] + SCENARIOS.names():
        assert name in listing.stdout


def test_quick_run_measures_every_variant(tmp_path: Path) -> None:
    # Every variant under load on three of the core scenarios (one read, one page, two endpoints mixed); the
    # other two load elsewhere (queries: tests/test_run_modes.py, updates: tests/test_sqlite.py and the
    # concurrent-update tests), and the contract check before any load covers every endpoint of every variant.
    out = tmp_path / "run.json"
    scenarios = ["db", "fortunes", "nplus1"]
    proc = bench("run", "--quick", "--scenarios", ",".join(scenarios), "--users", "4", "-o", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "req/s" in proc.stdout
    loaded = results.load(out)
    assert all(check.ok for check in loaded.checks), [c.problems for c in loaded.checks]
    assert loaded.metadata["pool"]["size"] == 10
    assert loaded.metadata["completed"] is True and loaded.metadata["cells_planned"] == len(loaded.cells)
    assert loaded.metadata["database"]["dsn"].startswith("postgresql://postgres@127.0.0.1:")
    # Checked as each server came up, kept in the variants' order.
    assert [check.variant for check in loaded.checks] == [v.name for v in VARIANTS]
    assert loaded.metadata["warmup_evidence"]["responses_per_user_warm_server"] == 1
    # Where the run's time went (bench.timeline): every cell's parts, which add up to the time between the cells.
    timeline = loaded.metadata["timeline"]
    assert len(timeline["cells"]["s"]) == len(loaded.cells)
    spent = sum(map(sum, timeline["cells"]["s"]))
    assert spent == pytest.approx(timeline["last_cell_end_s"] - timeline["first_cell_s"], abs=0.01)
    windows = timeline["cells"]["parts"].index("window")
    measured = [c.duration_s for c in loaded.cells]
    assert [part[windows] for part in timeline["cells"]["s"]] == pytest.approx(measured, abs=1e-4)
    steps = [step["step"] for step in timeline["steps"]]
    assert "provisioning PostgreSQL" in steps and "checking the contract: pooled" in steps
    report = bench("report", str(out), "--format", "json")
    assert report.returncode == 0, report.stderr
    rows = json.loads(report.stdout)
    seen = {(row["variant"], row["scenario"]) for row in rows}
    assert seen == {(v.name, s) for v in VARIANTS for s in scenarios}
    for row in rows:
        assert row["requests"] > 0 and row["errors"] == 0 and row["error_rate"] == 0, row
        assert row["rps"] > 0 and 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"], row
    # Every variant reported the pool it actually built, aligned with what the run asked for.
    for cell in loaded.cells:
        if cell.variant != "nopool":
            assert cell.target.get("pool_size") == 10, (cell.variant, cell.target)
    markdown = bench("report", str(out), "--format", "md")
    assert markdown.returncode == 0 and "| pooled |" in markdown.stdout
    # Each window saw its own scenario's requests only: no load process kept loading a server between its cells.
    for cell in loaded.cells:
        if cell.scenario in ("db", "fortunes"):
            assert set(cell.target_stats["endpoints"]) == {f"/{cell.scenario}"}, (cell.variant, cell.scenario)
    # --quick: short interleaved trials, so every ratio comes with its noise (the legend says how it is judged).
    assert {row["trials"] for row in rows} == {cli.QUICK_TRIALS}
    assert "within this run's noise" in markdown.stdout


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    assert_clean_error(bench("run", "--variants", "pooled,nope"), "unknown variant 'nope'")
    assert_clean_error(bench("run", "--scenarios", "nope"), "unknown scenario 'nope'")
    assert_clean_error(bench("run", "--users", "x"), "--users")
    existing = tmp_path / "exists.json"
    existing.write_text("keep me")
    assert_clean_error(bench("run", "-o", str(existing)), "already exists")
    assert existing.read_text() == "keep me"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    proc = bench("run", "--dsn", f"postgresql://u:hunter2@127.0.0.1:{closed_port}/x", "-o", str(tmp_path / "n.json"))
    assert_clean_error(proc, "cannot connect to --dsn")
    assert "hunter2" not in proc.stderr
    assert_clean_error(bench("report", str(tmp_path / "missing.json")), "does not exist")
    assert_clean_error(bench("report", str(existing)), "not valid JSON")


def test_serve_refuses_a_taken_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        proc = bench("serve", "pooled", "--port", str(sock.getsockname()[1]), timeout=120)
    assert_clean_error(proc, "already in use")


def _tree(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return set()


@pytest.fixture
def private_tmp() -> Iterator[Path]:
    """A TMPDIR for one bench process, so other runs on the machine cannot pass for its leftovers.

    World-writable like /tmp: the embedded PostgreSQL's data directory is created there by the postgres user.
    """
    path = Path(tempfile.mkdtemp(prefix="interrupted-bench-"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _ignore_sigint() -> None:
    # What a non-interactive shell does to a background job (`bench run ... &` in a script).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("sig", "sigint_ignored_by_parent"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGINT", "SIGTERM", "SIGINT-ignored-by-parent"],
)
def test_interrupt_keeps_measured_cells_and_leaves_no_process(
    tmp_path: Path, private_tmp: Path, sig: int, sigint_ignored_by_parent: bool
) -> None:
    out = tmp_path / "interrupted.json"
    proc = subprocess.Popen(
        [
            *BENCH,
            "run",
            "--variants",
            "pooled,nopool",
            "--scenarios",
            "db",
            "--users",
            "2",
            "--warmup",
            "0",
            "--duration",
            "2",
            "--trials",
            "20",
            "--no-calibrate",  # the interrupt comes between cells; a calibration first only adds wall time
            "-o",
            str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if sigint_ignored_by_parent else None,
        env={**os.environ, "TMPDIR": str(private_tmp)},
    )
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    try:
        # Wait until at least one cell is on disk and the load generator of the next one is running.
        while time.monotonic() < deadline:
            seen |= _tree(proc.pid)
            if (
                out.exists()
                and results.load(out).cells
                and any("bench.locust_entry" in " ".join(_cmdline(pid)) for pid in _tree(proc.pid))
            ):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the run never reached its second cell")
        seen |= _tree(proc.pid)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stdout
    kept = results.load(out)
    assert kept.cells and all(cell.ok for cell in kept.cells)
    # The file says it is unfinished, and its report says how far it got.
    assert kept.metadata["completed"] is False and kept.metadata["cells_planned"] == 40
    assert f"interrupted: {len(kept.cells)} of 40 cells measured" in bench("report", str(out)).stdout
    alive = survivors(seen)
    assert not alive, [_cmdline(pid) for pid in alive]
    assert sorted(path.name for path in private_tmp.iterdir()) == []


def test_serve_stops_on_sigint_when_started_with_sigint_ignored(private_tmp: Path) -> None:
    proc = subprocess.Popen(
        [*BENCH, "serve", "pooled"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint,  # a script's `bench serve pooled &`
        env={**os.environ, "TMPDIR": str(private_tmp)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "pooled serving on http://127.0.0.1:PORT (...)" once it serves
        assert "serving on" in line, line + proc.stderr.read() if proc.stderr else line
        family = _tree(proc.pid)
        assert family  # the database and uvicorn
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr  # interrupted, as run
    assert "Traceback" not in stderr
    alive = survivors(family)
    assert not alive, [_cmdline(pid) for pid in alive]
    assert sorted(path.name for path in private_tmp.iterdir()) == []


def _cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []
