"""Users' own locustfiles keep their meaning (issue 9 §3): each field case in tests/data/field_cases is run
through the real ``bench run`` (real uvicorn, real Locust) and the expected behaviour from the table in
tests/data/field_cases/README.md is asserted. The pure rules are tested in tests/test_loadspec.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import results
from bench.load import LoadFailed, LoadSpec, run_load
from bench.net import LOOPBACK, free_port
from bench.procs import Supervisor
from bench.target import PROJECT_ROOT, uvicorn_argv

pytestmark = pytest.mark.e2e  # starts real processes: the slow tier

FIELD = Path(__file__).resolve().parent / "data" / "field_cases"
DATA = Path(__file__).resolve().parent / "data"
SHORT = ("--no-check", "--no-calibrate", "--warmup", "0.5", "--duration", "1")


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "bench", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)


def one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A no-database FastAPI app (the calibration target): /db answers, every other path is a 404."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "uvicorn.log"
    with Supervisor() as supervisor:
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
        argv = uvicorn_argv("bench.calibration_app:app", port, 1)
        child = supervisor.start("uvicorn", argv, env=env, log_path=log, cwd=PROJECT_ROOT)
        url = f"http://{LOOPBACK}:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert child.alive() and time.monotonic() < deadline, child.log_tail()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url


def test_stages_shape_is_refused_in_one_line_before_any_load(server: str, tmp_path: Path) -> None:
    # The shape, not --users, would set the load; a --users 1,16 sweep of it must never be drawn as a sweep.
    out = tmp_path / "shape.json"
    proc = bench("run", "--url", server, "--scenarios", str(FIELD / "stages_shape.py"), "--users", "1,16",
                 *SHORT, "-o", str(out))  # fmt: skip
    one_line_error(proc, "stages_shape.py defines a LoadTestShape (Steps)", "--users")
    assert not out.exists()


def test_taskset_think_time_is_refused_with_rate(server: str, tmp_path: Path) -> None:
    out = tmp_path / "think.json"
    proc = bench("run", "--url", server, "--scenarios", str(FIELD / "taskset_think.py"), "--rate", "20",
                 "--users", "4", *SHORT, "-o", str(out))  # fmt: skip
    one_line_error(proc, "--rate", "Browse.wait_time = between(0.5, 1)", "constant(0)")
    assert not out.exists()


@pytest.mark.serial  # the achieved rate against the target
@pytest.mark.parametrize("kind", ["FastHttpUser", "HttpUser"])
def test_a_task_of_two_requests_keeps_the_target_rate(server: str, tmp_path: Path, kind: str) -> None:
    # The open model paces requests, not tasks: two requests per task used to run at twice the rate.
    locustfile = tmp_path / "two_requests.py"
    locustfile.write_text((DATA / "two_requests.py").read_text().replace("FastHttpUser", kind))
    with Supervisor() as supervisor:
        sample = run_load(supervisor, LoadSpec(locustfile, server, 4, 0.5, 3.0, rate=40.0), tmp_path)
    achieved = sample["requests"] / sample["duration_s"]
    assert 0.75 * 40 < achieved < 1.25 * 40, achieved
    assert set(sample["endpoints"]) == {"/db first", "/db second"}


@pytest.fixture(scope="module")
def mixed_run(server: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Any]:
    """One closed-model run over several users' files at once (cells are independent; one run saves time)."""
    tmp = tmp_path_factory.mktemp("mixed")
    mine = tmp / "db.py"  # a user's file named like the built-in scenario "db"
    shutil.copyfile(FIELD / "same_stem" / "read" / "locustfile.py", mine)
    stems = FIELD / "same_stem"
    files = [FIELD / "quitting_gate.py", FIELD / "login_or_quit.py", FIELD / "taskset_think.py",
             stems / "read" / "locustfile.py", stems / "write" / "locustfile.py", mine]  # fmt: skip
    out = tmp / "mixed.json"
    proc = bench("run", "--url", server, "--scenarios", ",".join([*map(str, files), "db"]), "--users", "4",
                 *SHORT, "-o", str(out))  # fmt: skip
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, results.load(out)


def cell(loaded: Any, scenario: str) -> results.Cell:
    found = [c for c in loaded.cells if c.scenario == scenario]
    assert len(found) == 1, [c.scenario for c in loaded.cells]
    return found[0]


def test_quitting_gate_sees_locusts_statistics_and_its_exit_code_fails_the_cell(mixed_run: Any) -> None:
    proc, loaded = mixed_run
    # The gate fails the process only when it saw requests (half of them 404s): with Locust's statistics
    # emptied, as before, it saw 0 requests and a 0.0 fail ratio and could never fail.
    gated = cell(loaded, "quitting_gate.py")
    assert gated.status == "failed" and gated.reason == "the locustfile's own check failed (exit code 1)"
    assert proc.returncode == 1


def test_login_or_quit_says_the_load_stopped_during_warm_up_and_why(mixed_run: Any) -> None:
    _, loaded = mixed_run
    stopped = cell(loaded, "login_or_quit.py")
    assert stopped.status == "failed"
    pattern = r"the load stopped during warm-up: \d+ × HTTP 404 POST /v1/login \(login refused: HTTP 404\), then the locustfile stopped the runner"  # noqa: E501
    assert re.fullmatch(pattern, stopped.reason), stopped.reason


def test_same_stem_files_and_a_file_named_db_never_merge(mixed_run: Any) -> None:
    _, loaded = mixed_run
    names = {c.scenario for c in loaded.cells}
    assert {"locustfile.py (read)", "locustfile.py (write)", "db.py", "db"} <= names
    files = loaded.metadata["config"]["locustfiles"]
    assert files["locustfile.py (read)"]["path"].endswith("same_stem/read/locustfile.py")
    assert files["locustfile.py (write)"]["path"].endswith("same_stem/write/locustfile.py")
    assert files["db"]["path"] != files["db.py"]["path"]
    assert files["db.py"]["sha256"] != files["locustfile.py (write)"]["sha256"]
    assert files["db.py"]["locust_statistics"] == "kept" and files["db"]["locust_statistics"].startswith("off")
    # Each file's own workload reached its own row: the read file only read, the write file only wrote.
    assert set(cell(loaded, "locustfile.py (read)").endpoints) == {"/db"}
    assert set(cell(loaded, "locustfile.py (write)").endpoints) == {"/updates?queries=5"}


def test_metadata_describes_each_file_as_it_is(mixed_run: Any) -> None:
    _, loaded = mixed_run
    config = loaded.metadata["config"]
    assert "FastHttpUser" not in config["load_generator"]  # no claim about users' files
    think = config["locustfiles"]["taskset_think.py"]
    assert think["summary"] == "Visitor (FastHttpUser, wait constant(0); TaskSet Browse, wait between(0.5, 1))"
    assert think["shape"] is None
    assert [u["name"] for u in config["locustfiles"]["quitting_gate.py"]["users"]] == ["Reader"]


@pytest.mark.parametrize(
    ("locustfile", "why"),
    [
        ("users_stop.py", r"\d+ × HTTP 404 GET /v1/profile \(no profile: HTTP 404\)"),
        ("users_raise.py", r"\d+ × RuntimeError in Member \(no credentials in the environment\)"),
    ],
)
def test_every_user_stopping_during_warm_up_is_the_reason(
    server: str, tmp_path: Path, locustfile: str, why: str
) -> None:
    # The other way a load ends early: no runner.quit(), every user stopped (StopUser, or an exception).
    with Supervisor() as supervisor, pytest.raises(LoadFailed) as failed:
        run_load(supervisor, LoadSpec(DATA / locustfile, server, 4, 1.0, 1.0), tmp_path)
    pattern = f"the load stopped during warm-up: {why}, then every user stopped"
    assert re.fullmatch(pattern, str(failed.value)), failed.value


def test_exceptions_in_task_code_are_counted_and_fail_the_cell(server: str, tmp_path: Path) -> None:
    # Every request succeeds (200), but every task raises after it: not a measurement of the workload.
    out = tmp_path / "raises.json"
    proc = bench("run", "--url", server, "--scenarios", str(DATA / "task_code_raises.py"), "--users", "2",
                 *SHORT, "-o", str(out))  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    (cell,) = results.load(out).cells
    assert cell.errors == {} and cell.requests > 0
    assert list(cell.user_errors) == ["KeyError in Visitor: 'missing_key'"]
    assert cell.status == "failed"
    assert re.search(
        r"user code raised [\d,]+ times \(.+ of [\d,]+ requests\): [\d,]+ × KeyError in Visitor", cell.reason
    )
    assert "user code raised" in proc.stdout
