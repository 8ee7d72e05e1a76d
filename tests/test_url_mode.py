"""`bench run --url`: a server dbbench did not start is waited for, checked for shape and range only, never
written to unless the user allows it, asked for /_bench/* only when it says it is dbbench, and described
with only what dbbench knows. Field cases: ../shared/field-cases/README.md, `--url` rows 1 and 3."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench import results
from bench.net import LOOPBACK, free_port
from bench.procs import Supervisor
from bench.seed import world_snapshot
from bench.target import PROJECT_ROOT, uvicorn_argv

e2e = pytest.mark.e2e  # starts real processes: the slow tier (all but the first test here)

SERVING = re.compile(r"serving on (?P<url>http://\S+) \(database (?P<dsn>\S+)\)")


def bench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=timeout, cwd=PROJECT_ROOT
    )


def test_groups_keep_their_read_only_scenarios_under_url() -> None:
    from cli import _scenarios

    assert [s.name for s in _scenarios("core", read_only=True)] == ["db", "queries", "fortunes", "nplus1"]
    assert "mixed" not in [s.name for s in _scenarios("all", read_only=True)]
    assert "updates" in [s.name for s in _scenarios("core")]  # dbbench's own throwaway database: all of them


@pytest.fixture
def bench_serve() -> Iterator[tuple[str, str]]:
    """`bench serve pooled` as its own process: (its URL, its database DSN); stopped with SIGTERM after."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "serve", "pooled"],  # it picks a free port itself: no race for one
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=PROJECT_ROOT,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if match := SERVING.search(line):
                yield match["url"], match["dsn"]
                break
        else:
            pytest.fail(f"bench serve exited before serving: {''.join(seen)}")
    finally:
        # SIGTERM, not SIGINT: a test run from a background job inherits SIGINT ignored (Python keeps it so).
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@e2e
def test_url_runs_are_repeatable_and_write_nothing(bench_serve: tuple[str, str], tmp_path: Path) -> None:
    url, dsn = bench_serve
    before = world_snapshot(dsn)
    for attempt in range(3):
        out = tmp_path / f"run{attempt}.json"
        # The default scenarios (core): the one that writes (updates) is left out without --allow-writes.
        proc = bench("run", "--url", url, "--users", "2", "--warmup", "0.3", "--duration", "0.7", "--no-calibrate",
                     "-o", str(out))  # fmt: skip
        assert proc.returncode == 0, (attempt, proc.stdout[-3000:] + proc.stderr[-3000:])
        loaded = results.load(out)
        assert [(c.ok, c.problems) for c in loaded.checks] == [(True, [])], attempt
        assert loaded.checks[0].info["writes"].startswith("not checked")
        assert {c.scenario for c in loaded.cells} == {"db", "queries", "fortunes", "nplus1"}
        assert all(c.ok and c.requests > 0 for c in loaded.cells), attempt
    assert world_snapshot(dsn) == before  # nothing was written to that server's database

    # Metadata: the server said it is dbbench, so what its /_bench/info says is recorded; nothing is invented.
    meta = loaded.metadata
    assert meta["server"] == {"url": url, "started_by_dbbench": False, "dbbench_variant": "pooled"}
    assert meta["pool"]["size"] == 10 and meta["pool"]["source"] == "the server's /_bench/info"
    assert meta["cache"] == {"backend": "none"}
    assert meta["database"] == {"kind": "unknown (the --url server's own)"}
    assert meta["config"]["server"].startswith("not started by dbbench")
    assert meta["config"]["writes"].startswith("not sent")
    assert all(cell.target_window is not None for cell in loaded.cells)  # its /_bench/* was asked


@e2e
def test_url_refuses_a_writing_scenario_without_allow_writes(tmp_path: Path) -> None:
    proc = bench("run", "--url", "http://127.0.0.1:9", "--scenarios", "db,updates", "-o", str(tmp_path / "x.json"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: scenario updates writes to the --url server's data; pass --allow-writes to run it anyway"
    ]


@e2e
def test_a_server_that_never_answers_fails_quickly_in_one_line(tmp_path: Path) -> None:
    """Field case (--url row 3): it accepts connections (the kernel's backlog) and never answers.

    It once took 46 s for one 4 s cell (four 10 s probes of /_bench/* after the wait). Timed from bench's first
    connection, not from its start: the interpreter's start-up on a loaded machine is no part of the claim."""
    out = tmp_path / "silent.json"
    with socket.socket() as listening:
        listening.bind((LOOPBACK, 0))
        listening.listen(16)  # never accept()ed: connections complete, no byte ever comes back
        url = f"http://{LOOPBACK}:{listening.getsockname()[1]}"
        argv = ["run", "--url", url, "--scenarios", "db", "--duration", "4", "--ready-timeout", "3", "-o", str(out)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=PROJECT_ROOT,
        )  # fmt: skip
        try:
            # Readable: a connection is waiting in the backlog, i.e. bench has started waiting for an answer.
            connected, _, _ = select.select([listening], [], [], 300)
            assert connected, "bench never connected"
            first = time.monotonic()
            stdout, stderr = proc.communicate(timeout=300)
            since_first = time.monotonic() - first
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        listening.setblocking(False)
        connections = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                listening.accept()[0].close()
                connections += 1
    assert proc.returncode == 2, stdout + stderr
    assert stderr.strip().splitlines() == [
        f"error: {url} accepts connections but sent no HTTP response within 3 s; is it the right port? "
        "(--ready-timeout waits longer)"
    ]
    # The wait for a first answer (one connection, a second if the first timed out just short of the deadline);
    # no probe of /_bench/* after it, and no cell.
    assert 1 <= connections <= 2, connections
    assert since_first < 3 + 12, since_first  # the 3 s wait and an exit; the old probes alone took 40 s
    assert not out.exists()  # nothing was measured, nothing to keep


@e2e
def test_nothing_listening_fails_after_the_ready_timeout(tmp_path: Path) -> None:
    url = f"http://{LOOPBACK}:{free_port()}"
    proc = bench("run", "--url", url, "--scenarios", "db", "--ready-timeout", "1.5", "-o", str(tmp_path / "x.json"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: nothing answered at {url} within 1.5 s (ConnectError: "), line
    assert line.endswith("start the server first, or wait longer with --ready-timeout")


@e2e
def test_url_waits_for_a_server_that_is_still_starting(tmp_path: Path) -> None:
    """The server starts listening ~2 s after `bench run --url`: the run waits, then checks it (the no-database
    calibration app fails the contract: exit 1 with its check recorded, not exit 2 "nothing answered")."""
    port = free_port()
    out = tmp_path / "late.json"
    argv = ["sh", "-c", f"sleep 2 && exec {' '.join(uvicorn_argv('bench.calibration_app:app', port, 1))}"]
    with Supervisor() as supervisor:
        supervisor.start("late-uvicorn", argv, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                         log_path=tmp_path / "late.log", cwd=PROJECT_ROOT)  # fmt: skip
        proc = bench("run", "--url", f"http://{LOOPBACK}:{port}", "--scenarios", "db", "--no-calibrate",
                     "--duration", "1", "-o", str(out))  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    loaded = results.load(out)
    assert loaded.checks and not loaded.checks[0].ok and not loaded.cells
    # Not dbbench: nothing but its URL is claimed.
    assert loaded.metadata["server"]["dbbench_variant"] == "no (it does not say it is dbbench)"
    assert loaded.metadata["pool"] == {
        "size": "unknown",
        "max_overflow": "unknown",
        "threadpool_size": "unknown",
        "source": "not known to dbbench",
    }
    assert loaded.metadata["cache"] == {"backend": "unknown"}
    assert loaded.checks[0].info["query_counts"].startswith("not checked: not a dbbench server")


@e2e
def test_private_endpoints_are_never_asked_of_a_server_that_is_not_dbbench(
    run_target: Callable[[str, dict[str, str]], str], tmp_path: Path
) -> None:
    """Field case (--url row 3): its /_bench/* never answers; dbbench must not wait on it."""
    hits = tmp_path / "hits.txt"
    hits.touch()
    url = run_target("tests.private_hang_app:app", {"BENCH_HITS_FILE": str(hits)})
    started = time.monotonic()
    proc = bench("run", "--url", url, "--scenarios", "db", "--no-calibrate", "--duration", "1",
                 "-o", str(tmp_path / "x.json"))  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr  # it answers 404 to the contract: check failed
    assert "/db: HTTP 404, expected 200" in proc.stdout
    assert time.monotonic() - started < 30
    assert hits.read_text() == ""
