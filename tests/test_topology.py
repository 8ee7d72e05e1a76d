"""The CPU split: the plan (pure), its refusals (one line, exit 2), the generator-bound rule under it, and the
real processes it is applied to (the embedded PostgreSQL's postmaster and backends, uvicorn and its workers,
Locust) on this machine's CPUs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import psycopg
import pytest
from typer.testing import CliRunner

import cli
from bench import calibration, hist, load, pg, results, topology
from bench.errors import BenchError
from bench.procs import Supervisor
from bench.resources import CpuSetMeter
from bench.results import Cell, Results
from bench.run_config import RunConfig, validate_config
from bench.target import TargetConfig, serve
from reports import markdown, summary
from scenarios import SCENARIOS
from targets import VARIANTS

e2e = pytest.mark.e2e


# --- the plan -------------------------------------------------------------------------------------------------


def test_two_cpus_split_one_and_one_by_default() -> None:
    plan = topology.plan((0, 1))
    assert plan.pinned and plan.load == (1,) and plan.server == (0,)
    assert plan.cpus("load") == {1} and plan.cpus("server") == {0} and plan.cpus(None) is None
    assert plan.describe()["chosen_by"] == "default"


def test_bigger_machines_give_the_load_one_cpu_per_process_and_at_most_half() -> None:
    assert topology.plan(range(8)).load == (7,)
    assert topology.plan(range(8), load_cpus=3) == topology.CpuPlan(tuple(range(8)), (5, 6, 7), (0, 1, 2, 3, 4))
    assert topology.plan(range(4), load_cpus=9).load == (2, 3)
    # An affinity with holes (taskset, a container's cpuset) is split as it is.
    assert topology.plan((2, 5, 9)).load == (9,) and topology.plan((2, 5, 9)).server == (2, 5)


def test_cpus_chooses_the_load_and_optionally_the_server() -> None:
    assert topology.plan((0, 1, 2, 3), cpus="3").server == (0, 1, 2)
    plan = topology.plan((0, 1, 2, 3), cpus="2-3:0")
    assert (plan.load, plan.server, plan.chosen_by) == ((2, 3), (0,), "--cpus")


def test_with_url_the_load_may_have_every_cpu() -> None:
    """dbbench starts no server to measure under --url (a review finding of 2026-12-01: ``--cpus 0-1`` was
    refused there for leaving "the server" no CPU); the calibration target it may start then runs unpinned."""
    plan = topology.plan((0, 1), cpus="0-1", starts_server=False)
    assert plan.pinned and (plan.load, plan.server) == ((0, 1), ())
    assert plan.cpus("load") == {0, 1} and plan.cpus("server") is None  # None: inherits this process's CPUs
    assert plan.describe()["server_processes"] == topology.NO_SERVER_CPUS
    assert topology.label(plan.describe()) == "load generator on CPU 0-1 (of 0-1; --cpus)"
    with pytest.raises(BenchError, match="leaves the server no CPU"):
        topology.plan((0, 1), cpus="0-1")  # dbbench's own server needs one


def test_unpinned_on_one_cpu_or_when_asked() -> None:
    assert topology.plan((0,)) == topology.CpuPlan((0,), reason="one CPU: nothing to split")
    off = topology.plan((0, 1), pin=False)
    assert not off.pinned and off.cpus("server") is None and off.describe()["reason"] == "--no-pin"


@pytest.mark.parametrize(
    ("available", "cpus", "pin", "message"),
    [
        ((0, 1), "0-9", True, "--cpus names CPU 0-9, which this process may not all use (available: 0-1)"),
        ((0, 1), "0-99999999", True, "--cpus names CPU 0-99999999"),  # refused without building the set
        ((0, 1), "0-1", True, "--cpus 0-1 leaves the server no CPU (available: 0-1)"),
        ((0, 1), "1:1", True, "share CPU 1"),
        ((0, 1), "one", True, "--cpus takes the load's CPUs"),
        ((0, 1), "3-2", True, "--cpus takes the load's CPUs"),
        ((0, 1), "", True, "--cpus takes the load's CPUs"),
        ((0, 1), "1:", True, "--cpus takes LOAD or LOAD:SERVER, e.g. 1 or 2-3 or 1:0; got '1:'"),  # not "the rest"
        ((0, 1), "0:1:1", True, "got '0:1:1'"),  # the whole value named, not its tail
        ((0,), "0", True, "--cpus needs at least 2 CPUs to split; this process may use 0 only"),
        ((0, 1), "1", False, "--cpus conflicts with --no-pin"),
    ],
)
def test_bad_cpus_are_refused_in_one_line(available: tuple[int, ...], cpus: str, pin: bool, message: str) -> None:
    with pytest.raises(BenchError) as refused:
        topology.plan(available, cpus=cpus, pin=pin)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_server_workers_are_at_least_one_and_at_most_four_per_cpu() -> None:
    assert topology.server_workers_fault(8, (0, 1)) is None
    assert topology.server_workers_fault(0, (0, 1)) == "--server-workers must be >= 1; got 0"
    fault = topology.server_workers_fault(100000, (0, 1))
    assert fault is not None and "more than 4 per CPU this process may use (8 here)" in fault


def test_format_and_label() -> None:
    assert topology.format_cpus([5, 0, 1, 2, 7, 8]) == "0-2,5,7-8"
    assert topology.label(topology.plan((0, 1)).describe()) == (
        "load generator on CPU 1, server + database on CPU 0 (of 0-1; default)"
    )
    assert topology.label(topology.plan((0, 1), pin=False).describe()).startswith("not pinned (--no-pin)")


def test_the_label_names_only_what_dbbench_pinned() -> None:
    """A review finding of 2026-12-01: a --dsn run's reports said "server + database on CPU 0" of a database
    dbbench did not start and never pinned."""
    plan = topology.plan((0, 1))
    assert topology.label(plan.describe(topology.OWN_DATABASE)) == (
        "load generator on CPU 1, server on CPU 0 (of 0-1; default); "
        "the database at --dsn runs wherever its owner put it"
    )
    assert topology.label(plan.describe(topology.EXTERNAL)) == (
        "load generator on CPU 1 (of 0-1; default); the server at --url runs wherever its owner put it"
    )
    assert topology.label(plan.describe(topology.CALIBRATION)).startswith(
        "load generator on CPU 1, calibration target on CPU 0"
    )
    assert "PostgreSQL" not in plan.describe(topology.OWN_DATABASE)["server_processes"]
    unpinned = topology.plan((0, 1), pin=False).describe(topology.OWN_DATABASE)
    assert topology.label(unpinned).endswith("; the database at --dsn runs wherever its owner put it")
    older = plan.describe()
    del older["server_role"]  # a results file from before the role was recorded: its runs embedded the database
    assert topology.label(older).startswith("load generator on CPU 1, server + database on CPU 0")


def test_a_run_config_says_what_its_server_cpus_hold() -> None:
    assert _config().server_side() == topology.EMBEDDED
    assert _config(dsn="postgresql://u@h/db").server_side() == topology.OWN_DATABASE
    assert _config(db="sqlite").server_side() == topology.SQLITE
    assert _config(url="http://127.0.0.1:8000").server_side() == topology.EXTERNAL


def _config(**overrides: object) -> RunConfig:
    fields: dict[str, object] = dict(
        variants=[VARIANTS.get("pooled")],
        scenarios=[SCENARIOS.get("db")],
        users=[8],
        duration_s=1.0,
        warmup_s=0.0,
        trials=1,
        pool_size=10,
        output=Path("/nonexistent/out.json"),
    )
    fields.update(overrides)
    return RunConfig(**fields)  # type: ignore[arg-type]


def test_run_config_plans_from_its_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topology, "available", lambda: (0, 1, 2, 3))
    assert _config().cpu_plan().load == (3,)
    assert _config(load_workers=2).cpu_plan().load == (2, 3)
    assert not _config(pin=False).cpu_plan().pinned
    with pytest.raises(BenchError, match="--cpus names CPU 4-9"):
        validate_config(_config(cpus="4-9"))
    with pytest.raises(BenchError, match="--server-workers must be >= 1"):
        validate_config(_config(server_workers=0))
    with pytest.raises(BenchError, match="with --url the server is yours"):
        validate_config(_config(server_workers=2, url="http://127.0.0.1:8000"))
    with pytest.raises(BenchError, match="leaves the server no CPU"):
        validate_config(_config(cpus="0-3"))
    validate_config(_config(cpus="0-3", url="http://127.0.0.1:8000"))
    assert _config(cpus="0-3", url="http://127.0.0.1:8000").cpu_plan().load == (0, 1, 2, 3)


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--cpus", "0-9", "-o", "/tmp/never-written.json"],
        ["serve", "pooled", "--cpus", "0-9"],
        ["calibrate", "--cpus", "0-9"],
    ],
)
def test_the_cli_refuses_bad_cpus_before_starting_anything(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    monkeypatch.setattr(topology, "available", lambda: (0, 1))
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["error: --cpus names CPU 0-9, which this process may not all use (available: 0-1)"]


# --- the generator-bound rule under the split -------------------------------------------------------------------


def test_load_cores_count_processes_but_no_more_than_the_load_cpus() -> None:
    assert calibration.load_cores(1, None) == 1
    assert calibration.load_cores(3, None) == 3
    assert calibration.load_cores(3, 1) == 1
    assert calibration.load_cores(2, 4) == 2


def test_busy_load_cpus_flag_a_cell_whatever_its_own_share() -> None:
    assert not calibration.generator_bound(1000, 0.5, None, load_cpus_busy=0.6)
    assert calibration.generator_bound(1000, 0.5, None, load_cpus_busy=0.95)


def _results(pinned: bool, **cell: object) -> Results:
    h = hist.new()
    h.record_value(1000)
    plan = topology.plan((0, 1), pin=pinned)
    meta = {
        "config": {"variants": ["pooled"], "scenarios": {"db": "x"}, "users": [8]},
        "cpus": plan.describe(),
    }
    fields: dict[str, object] = dict(duration_s=10.0, requests=10_000, histogram=hist.encode(h))
    fields.update(cell)
    return Results(metadata=meta, cells=[Cell("pooled", "db", 8, 1, "ok", **fields)])  # type: ignore[arg-type]


def test_two_workers_pinned_to_one_cpu_saturate_it_together() -> None:
    # 2 workers x 0.5 of a core: unpinned each has a core to spare; pinned to one CPU they have none.
    (free,) = summary.rows(_results(False, load_cpu_s=10.0, load_processes=2))
    (pinned,) = summary.rows(_results(True, load_cpu_s=10.0, load_processes=2))
    assert not free.generator_bound and free.load_cpu_share == pytest.approx(0.5)
    assert pinned.generator_bound and pinned.load_cpu_share == pytest.approx(1.0)


def test_the_load_cpus_busy_counts_only_under_the_split() -> None:
    (free,) = summary.rows(_results(False, load_cpu_s=3.0, load_cpus_busy=0.97))
    (pinned,) = summary.rows(_results(True, load_cpu_s=3.0, load_cpus_busy=0.97))
    (calm,) = summary.rows(_results(True, load_cpu_s=3.0, load_cpus_busy=0.40))
    assert not free.generator_bound and pinned.generator_bound and not calm.generator_bound


def test_reports_name_the_split() -> None:
    assert "CPUs: load generator on CPU 1, server + database on CPU 0" in markdown.render(_results(True))
    older = _results(True)
    del older.metadata["cpus"]
    assert "CPUs:" not in markdown.render(older)


def test_cpu_set_meter_reads_a_share() -> None:
    meter = CpuSetMeter(os.sched_getaffinity(0))
    meter.start()
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        pass
    meter.stop()
    assert meter.busy is not None and 0.0 < meter.busy <= 1.0


# --- real processes -----------------------------------------------------------------------------------------------


def _split() -> topology.CpuPlan:
    """The default split of this machine's CPUs; on one CPU both roles get it (still a real affinity call)."""
    have = topology.available()
    plan = topology.plan(have)
    return plan if plan.pinned else topology.CpuPlan(have, load=have, server=have)


@e2e
def test_the_supervisor_pins_each_child_by_role(tmp_path: Path) -> None:
    plan = _split()
    show = [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]
    with Supervisor(cpu_plan=plan) as supervisor:
        for role in ("load", "server", None):
            child = supervisor.start(f"show-{role}", show, log_path=tmp_path / f"{role}.log", role=role)
            child.popen.wait(30)
    assert (tmp_path / "load.log").read_text().strip() == str(list(plan.load))
    assert (tmp_path / "server.log").read_text().strip() == str(list(plan.server))
    assert (tmp_path / "None.log").read_text().strip() == str(sorted(os.sched_getaffinity(0)))


@e2e
def test_postgres_backends_uvicorn_workers_and_locust_run_where_the_plan_says(tmp_path: Path) -> None:
    plan = _split()
    server, load_cpus = sorted(plan.server), sorted(plan.load)
    with Supervisor(cpu_plan=plan) as supervisor, pg.embedded(supervisor) as database:
        assert database.server_pid is not None
        assert psutil.Process(database.server_pid).cpu_affinity() == server
        with psycopg.connect(database.dsn) as conn:  # a backend forked after start-up inherits it
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None and psutil.Process(int(row[0])).cpu_affinity() == server
        config = TargetConfig(dsn="", pool_size=0)
        log = tmp_path / "calibration.log"
        with serve(supervisor, "calibration", calibration.APP, config, log, workers=2) as target:
            tree = [psutil.Process(target.child.pid), *psutil.Process(target.child.pid).children(recursive=True)]
            assert len(tree) >= 3  # uvicorn's supervisor, its spawner's helper or workers
            assert {tuple(p.cpu_affinity()) for p in tree} == {tuple(server)}
            seen: list[list[int]] = []

            def tick(_: float) -> None:
                for child in supervisor.children:
                    if child.name == "locust" and child.alive() and not seen:
                        seen.append(psutil.Process(child.pid).cpu_affinity())

            spec = load.LoadSpec(SCENARIOS.get("db").path, target.url, 4, 0.5, 1.0)
            sample = load.run_load(supervisor, spec, tmp_path, on_tick=tick)
    assert seen == [load_cpus]
    assert sample["requests"] > 0 and 0.0 <= sample["load_cpus_busy"] <= 1.0


@e2e
def test_a_run_with_server_workers_records_its_split_and_no_per_worker_statistics(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--variants", "pooled,databases", "--scenarios", "db", "--users", "4",
         "--duration", "1", "--warmup", "0", "--no-calibrate", "--server-workers", "2", "--no-html", "-o", str(out)],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    loaded = results.load(out)
    assert loaded.metadata["cpus"] == topology.plan(topology.available()).describe()
    assert loaded.metadata["config"]["server"].startswith("uvicorn, 2 worker(s)")
    assert len(loaded.cells) == 2
    for cell in loaded.cells:
        assert cell.ok and cell.requests > 0
        assert cell.target["server_workers"] == 2 and cell.target_stats is None  # one worker's share is no figure
        assert cell.target_cpu_s and cell.target_cpu_s > 0  # the whole uvicorn tree
        # The measured server's two workers hold a pool of 10 each; the idle server's workers' are not counted.
        assert cell.db_connections is not None and cell.db_connections <= 20
    assert "CPUs:" in proc.stdout


@e2e
def test_a_url_run_may_give_the_load_every_cpu(
    run_target: Callable[[str, dict[str, str]], str], tmp_path: Path
) -> None:
    """``bench run --url --cpus ALL``: accepted, and the calibration target (role "server", no CPUs of its own)
    starts unpinned beside the load instead of failing its affinity call; the cells are measured."""
    url = run_target(calibration.APP, {})
    out = tmp_path / "url.json"
    every = topology.format_cpus(topology.available())
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--url", url, "--scenarios", "db", "--no-check", "--users", "2",
         "--duration", "0.5", "--warmup", "0", "--cpus", every, "--no-html", "-o", str(out)],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    loaded = results.load(out)
    cpus = loaded.metadata["cpus"]
    assert (cpus["load"], cpus["server"], cpus["chosen_by"]) == (every, "", "--cpus")
    assert loaded.metadata["calibration"]["rps"] > 0  # the calibration target ran (unpinned)
    assert [c.ok and c.requests > 0 for c in loaded.cells] == [True]


@e2e
def test_a_dsn_run_says_it_pinned_the_server_and_not_the_database(pg_dsn: str, tmp_path: Path) -> None:
    """``bench run --dsn``: the database is the user's; the results and every report say only the server was
    placed (the session's embedded PostgreSQL stands in for the user's server)."""
    out = tmp_path / "dsn.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--dsn", pg_dsn, "--variants", "pooled", "--scenarios", "db",
         "--users", "2", "--duration", "0.5", "--warmup", "0", "--no-calibrate", "--no-html", "-o", str(out)],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    loaded = results.load(out)
    assert loaded.metadata["cpus"] == topology.plan(topology.available()).describe(topology.OWN_DATABASE)
    expected = topology.label(loaded.metadata["cpus"])
    assert "server + database" not in expected and "the database at --dsn runs wherever" in expected
    assert f"CPUs: {expected}" in " ".join(proc.stdout.split())  # the terminal report (Rich may wrap it)
    assert f"CPUs: {expected}" in markdown.render(loaded)


def test_cpus_help_says_which_cpus_go_to_the_load_and_which_to_the_server_and_database() -> None:
    # The help read "the server + database's": LOAD comes first, then ':' and the server's and database's set.
    for command in ("run", "ab", "advice", "calibrate", "serve"):
        shown = CliRunner().invoke(cli.app, [command, "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"})
        assert shown.exit_code == 0, shown.output
        text = " ".join(shown.output.replace("│", " ").split())
        assert "CPUs for the load generator (Locust), then optionally ':' and the CPUs for the server and" in text
        assert "database's" not in text
    plan = topology.plan(range(4), cpus="2-3:0-1")  # the help's example, read as the help says
    assert (plan.load, plan.server) == ((2, 3), (0, 1))
    assert topology.plan(range(4)).load == (3,)  # the default: the last CPU, one per Locust process
