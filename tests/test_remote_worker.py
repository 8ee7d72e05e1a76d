"""`bench worker` as its own process joins a `bench run --remote-workers 1` and is paced by the run's spec
(issue 9 §6): before, a remote worker got neither users nor rate, and `--rate 50` measured 2,642 req/s."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import results, seed
from bench.net import free_port
from bench.target import PROJECT_ROOT
from targets.common.settings import TargetSpec

RATE = 50.0


@pytest.mark.serial  # the achieved rate against the target
def test_a_remote_worker_gets_its_pacing_from_the_master(
    pg_dsn: str, run_target: Callable[[str, dict[str, str]], str], tmp_path: Path
) -> None:
    seed.apply_schema(pg_dsn)
    seed.seed(pg_dsn)
    url = run_target("targets.pooled:app", TargetSpec(pg_dsn, 4).to_env())
    master = f"127.0.0.1:{free_port()}"
    worker_log = tmp_path / "worker.log"
    with worker_log.open("w") as log:
        # No --scenario, no --rate, no --users: all of it comes from the run's master. Started as a script's
        # background job starts it (SIGINT ignored, which Python keeps): Ctrl-C / kill -INT must still end it.
        worker = subprocess.Popen(
            [sys.executable, "-m", "bench", "worker", "--master", master],
            stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )  # fmt: skip
    try:
        out = tmp_path / "remote.json"
        proc = subprocess.run(
            [sys.executable, "-m", "bench", "run", "--url", url, "--scenarios", "db", "--rate", f"{RATE:g}",
             "--users", "4", "--remote-workers", "1", "--master-bind", master, "--no-check", "--no-calibrate",
             "--warmup", "1", "--duration", "3", "-o", str(out)],
            capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + worker_log.read_text()
    finally:
        worker.send_signal(signal.SIGINT)
        code = worker.wait(timeout=30)
    assert code == 130, worker_log.read_text()
    assert "cell 1 done" in worker_log.read_text()
    (cell,) = results.load(out).cells
    assert cell.status == "ok" and cell.load_processes == 2  # the local worker and the remote one
    achieved = cell.requests / cell.duration_s
    # Paced, as the master's spec says (an unpaced worker alone sent 53x the rate).
    assert 0.6 * RATE < achieved < 1.3 * RATE, achieved


@pytest.mark.e2e
def test_worker_options_are_only_the_masters_address() -> None:
    # The workload comes from the run's master; a --scenario of the worker's own could only disagree with it.
    for args, fragment in ((["--master", "nohost"], "--master takes HOST:PORT"),
                           (["--master", "127.0.0.1:5557", "--scenario", "db"], "No such option")):  # fmt: skip
        proc = subprocess.run([sys.executable, "-m", "bench", "worker", *args], capture_output=True, text=True,
                              timeout=60, cwd=PROJECT_ROOT)  # fmt: skip
        assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
