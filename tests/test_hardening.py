"""A new user's findings (issue 9, hardening pass): each test asserts the behaviour the user should get.

Fast tests (pure logic, or the CLI refusing input before anything starts); the e2e ones are marked by the
fixtures they use.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from test_cli import BENCH, ROOT, assert_clean_error, bench  # the same bench subprocess and one-line rule

from bench import failures, hist
from bench import results as results_io
from bench.cells import judge
from bench.check import data as check_data
from bench.check.counting import QueryCounter
from bench.check.probe import Probe
from bench.check.session import Scope, Session
from bench.errors import BenchError
from bench.pg import refuse_pool_sizes
from bench.results import Cell, Results
from bench.run_config import MAX_WINDOW_S, window_fault
from bench.sampling import Window, merge_windows
from reports import jsonreport, summary
from reports.fmt import baseline, flags
from reports.summary import Row


def _refresh_server(lag_reads: int) -> httpx.MockTransport:
    """A dbbench-like server whose view shows the refresh at once but whose ``completed`` counter moves only
    after ``lag_reads`` more reads of /_bench/info (targets/common/refresh.py counts after the call returns)."""
    state = {"posted": False, "reads_after": 0}

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/refresh-views":
            state["posted"] = True
            return httpx.Response(202, json={"status": "accepted"})
        if request.url.path == "/report":
            return httpx.Response(200, json=["refreshed"] if state["posted"] else [])
        if request.url.path == "/_bench/info":
            counts = {"requested": 0, "coalesced": 0, "started": 0, "completed": 0, "failed": 0}
            if state["posted"]:
                counts.update(requested=1, started=1)
                state["reads_after"] += 1
                if state["reads_after"] > lag_reads:
                    counts["completed"] = 1
            return httpx.Response(200, json={"refresh": {**counts, "durations_ms": [5.0]}})
        return httpx.Response(404)

    return httpx.MockTransport(handle)


def _session(transport: httpx.MockTransport) -> Session:
    probe = Probe("http://testserver")
    probe.client = httpx.Client(base_url="http://testserver", transport=transport)
    info: dict[str, Any] = {}
    return Session(probe, QueryCounter(probe, info), Scope(dsn=None, private=True), info)


def test_refresh_counters_are_awaited_when_the_view_shows_the_refresh_first() -> None:
    session = _session(_refresh_server(lag_reads=3))
    before = check_data._refresh_counts(session)
    check_data._post_and_wait(session, before, lambda report: report == ["refreshed"])
    assert session.probe.problems == []
    assert session.info["refresh"]["completed"] == 1


def test_refresh_counters_that_never_move_are_still_a_problem(monkeypatch) -> None:
    monkeypatch.setattr(check_data, "REFRESH_TIMEOUT_SECONDS", 0.2)
    session = _session(_refresh_server(lag_reads=10**9))
    before = check_data._refresh_counts(session)
    check_data._post_and_wait(session, before, lambda report: report == ["refreshed"])
    assert len(session.probe.problems) == 1
    assert "refresh counters after one POST /refresh-views" in session.probe.problems[0]
    assert json.dumps(session.probe.problems)  # one plain line each


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "--duration", "inf"], "--duration takes seconds > 0 and at most 86400"),
        (["run", "--warmup", "inf"], "--warmup takes seconds >= 0 and at most 86400"),
        (["run", "--duration", "1e308"], "got 1e+308"),
        (["run", "--duration", "nan"], "got nan"),
        (["run", "--rate", "inf"], "--rate values must be > 0 and at most 1e+06"),
        (["run", "--rate", "nan"], "--rate values must be > 0 and at most 1e+06"),
        (["run", "--url", "http://127.0.0.1:8000", "--ready-timeout", "inf"], "--ready-timeout must be > 0"),
        (["advice", "--duration", "inf"], "--duration takes seconds"),
        (["advice", "--warmup", "-1"], "--warmup takes seconds >= 0"),
        (["calibrate", "--warmup", "inf"], "--warmup takes seconds >= 0"),
        (["calibrate", "--duration", "1e9"], "--duration takes seconds > 0"),
        (["serve", "pooled", "--pool-size", "0"], "--pool-size must be >= 1"),
        (["run", "--url", "http://127.0.0.1:99999"], "--url's port must be a number from 1 to 65535"),
        (["run", "--url", "http://127.0.0.1:8000", "--profile"], "--profile needs a variant dbbench starts"),
        (["run", "--url", "http://127.0.0.1:8000", "--variants", "sync"], "--variants picks dbbench's own"),
    ],
)
def test_absurd_numbers_are_refused_in_one_line_before_anything_runs(
    args: list[str], fragment: str, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    proc = bench(*args, *(["-o", str(out)] if args[0] in ("run", "advice") else []))
    assert_clean_error(proc, fragment)
    assert not out.exists()


def test_window_fault_bounds() -> None:
    assert window_fault("--duration", 10.0, inclusive=False) is None
    assert window_fault("--warmup", 0.0) is None
    assert window_fault("--warmup", MAX_WINDOW_S) is None
    assert window_fault("--duration", 0.0, inclusive=False)
    for bad in (math.inf, -math.inf, math.nan, MAX_WINDOW_S + 1, -1.0):
        assert window_fault("--warmup", bad)


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("def broken(:\n    pass\n", "SyntaxError: invalid syntax (bad.py, line 1)"),
        ("from locust import task\nX = 1\n", "defines no User class"),
        ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
    ],
)
def test_a_bad_locustfile_is_one_line_and_overwrites_nothing(source: str, fragment: str, tmp_path: Path) -> None:
    locustfile = tmp_path / "bad.py"
    locustfile.write_text(source)
    good = tmp_path / "good.json"
    good.write_text('{"kept": true}')
    proc = bench("run", "--variants", "pooled", "--scenarios", str(locustfile), "-o", str(good), "--force")
    assert_clean_error(proc, fragment)
    assert good.read_text() == '{"kept": true}'
    assert proc.stderr.count("line 1") <= 1


def test_output_under_a_regular_file_is_one_line(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    proc = bench("run", "--variants", "pooled", "--scenarios", "db", "-o", str(afile / "sub" / "x.json"))
    assert_clean_error(proc, f"{afile} is a file, not a folder")


def test_pool_sizes_beyond_max_connections_are_refused_naming_it(pg_dsn: str) -> None:
    refuse_pool_sizes(pg_dsn, [10, 20])
    with pytest.raises(BenchError, match=r"--pool-size 100000 does not fit the server: max_connections is \d+"):
        refuse_pool_sizes(pg_dsn, [10, 100000])
    # The run keeps every variant's server up, each holding its pool: what must fit is their sum.
    refuse_pool_sizes(pg_dsn, [50], servers=3)
    with pytest.raises(BenchError, match=r"--pool-size 50 × 6 variants side by side × 2 --server-workers = 600 "):
        refuse_pool_sizes(pg_dsn, [50], servers=6, workers=2)


@pytest.mark.e2e  # provisions the embedded PostgreSQL
def test_run_with_a_pool_too_large_refuses_after_provisioning_and_keeps_the_file(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"kept": true}')
    proc = bench("run", "--variants", "pooled", "--scenarios", "db", "--pool-size", "300", "-o", str(good), "--force")
    assert_clean_error(proc, "max_connections is 200")
    assert good.read_text() == '{"kept": true}'


def _row(variant: str, rps: float, status: str = "ok") -> Row:
    fields: dict[str, Any] = {f.name: None for f in dataclasses.fields(Row)}
    return Row(**{**fields, "variant": variant, "rps": rps, "status": status})


def test_ratios_are_dashes_when_the_base_failed_never_another_variant() -> None:
    assert baseline([_row("pooled", 0.0, "failed"), _row("sync", 900.0)]) == 0.0
    assert baseline([_row("pooled", 2000.0), _row("sync", 900.0)]) == 2000.0
    assert baseline([_row("sync", 900.0), _row("nopool", 300.0)]) == 900.0  # pooled did not run: the best


def test_a_failure_message_with_newlines_is_one_line_in_kinds_and_reasons() -> None:
    kind = failures.error_kind("GET", "/x", CatchError("line one\nline two"))
    assert kind == "CatchError GET /x: line one line two"
    # A file written before kinds were folded still gives a one-line reason.
    reason = failures.describe(10, {"CatchError GET /x: a\nb": 10})
    assert "\n" not in reason and "CatchError GET /x: a b" in reason


class CatchError(Exception):
    """Stands for Locust's CatchResponseError (what ``response.failure(text)`` raises)."""


def _failed_cell(trial: int, errors: dict[str, int]) -> Cell:
    return Cell("pooled", "db", 8, trial, "failed", reason="x", duration_s=1.0, requests=sum(errors.values()),
                errors=errors)  # fmt: skip


def test_json_of_a_failed_cell_has_null_throughput_the_trials_that_ran_and_an_other_bucket() -> None:
    errors = {f"HTTP 500 GET /k{i:02d}": 20 - i for i in range(12)}
    results = Results({"config": {}}, [], [_failed_cell(1, errors)])
    (row,) = json.loads(jsonreport.render(results))
    assert row["status"] == "failed"
    assert row["rps"] is None and row["rps_min"] is None and row["rps_max"] is None
    assert row["trials"] == 1
    assert len(row["error_kinds"]) == summary.ERROR_KINDS + 1
    assert row["error_kinds"]["other"] == 9 + 10  # the two least common kinds
    assert sum(row["error_kinds"].values()) == row["errors"] == sum(errors.values())


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "--max-error-rate", "abc"], "Invalid value for '--max-error-rate'"),
        (["run", "--xyzzy"], "No such option: --xyzzy; see '"),
        (["serve"], "Missing argument 'variant'; see '"),
        (["nosuch"], "No such command 'nosuch'"),
        (["run", "--duration"], "'--duration' requires an argument"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], fragment: str) -> None:
    proc = bench(*args)
    assert_clean_error(proc, fragment)
    assert "╭" not in proc.stderr


def test_plain_bench_still_shows_the_help() -> None:
    proc = bench()
    assert "run" in proc.stdout and "report" in proc.stdout and "Traceback" not in proc.stderr


def test_a_variant_named_twice_is_checked_and_measured_once() -> None:
    from cli import _variants

    assert [v.name for v in _variants("pooled,sync,pooled")] == ["pooled", "sync"]


@pytest.mark.e2e  # provisions PostgreSQL and starts uvicorn
def test_serve_says_how_its_server_ended_when_it_is_killed() -> None:
    proc = subprocess.Popen(
        [*BENCH, "serve", "pooled"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert "serving on" in proc.stdout.readline()
        (uvicorn,) = [
            c for c in psutil.Process(proc.pid).children(recursive=True) if "uvicorn" in " ".join(c.cmdline())
        ]
        uvicorn.kill()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("error: pooled exited (killed by SIGKILL): "), err


def test_an_interrupted_file_says_so_and_how_far_it_got(tmp_path: Path) -> None:
    from reports import html, markdown, terminal

    cells = [_failed_cell(1, {"HTTP 500 GET /db": 1})]
    interrupted = Results({"config": {}, "completed": False, "cells_planned": 12}, [], cells)
    path = tmp_path / "r.json"
    results_io.dump(interrupted, path, force=True)
    loaded = results_io.load(path)
    assert summary.interrupted(loaded) == (
        "interrupted: 1 of 12 cells measured (the run did not finish; figures stand as measured)"
    )
    console = terminal.console()
    with console.capture() as captured:
        terminal.print_report(loaded, console)
    assert "interrupted: 1 of 12 cells measured" in captured.get()
    assert "interrupted: 1 of 12 cells measured" in markdown.render(loaded)
    assert "interrupted: 1 of 12 cells measured" in html.HTMLRenderer().render(loaded)
    # Finished, or written before the field existed (unknown): nothing said.
    assert summary.interrupted(Results({"completed": True, "cells_planned": 1}, [], cells)) is None
    assert summary.interrupted(Results({"config": {}}, [], cells)) is None


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Visitor:
    """Stands for a User class of a locustfile."""


class DefaultTaskSet:
    """Stands for Locust's DefaultTaskSet, which runs the tasks written on a User."""

    def __init__(self, user: object) -> None:
        self.user = user


def test_user_code_errors_are_counted_in_the_window_only_and_merge_across_workers() -> None:
    clock = _Clock()
    window = Window(1.0, 2.0, clock=clock, cpu_clock=clock)
    window.on_user_error(Visitor(), KeyError("missing_key"))  # before the window: not counted
    window.open()
    for _ in range(3):
        window.on_request("GET", "/db", 1.0, 10)
        window.on_user_error(DefaultTaskSet(Visitor()), KeyError("missing_key"))
    window.close()
    sample = window.to_dict()
    assert sample["user_errors"] == {"KeyError in Visitor: 'missing_key'": 3}
    assert sample["errors"] == {} and sample["requests"] == 3
    merged = merge_windows([sample, sample])
    assert merged["user_errors"] == {"KeyError in Visitor: 'missing_key'": 6}


def test_user_code_errors_above_the_threshold_fail_the_cell_naming_the_exception() -> None:
    kinds = {"KeyError in Visitor: 'missing_key'": 535}
    reason = failures.verdict(535, {}, 0.01, user_errors=kinds)
    assert reason == "user code raised 535 times (100 % of 535 requests): 535 × KeyError in Visitor: 'missing_key'"
    assert failures.verdict(1000, {}, 0.01, user_errors={"KeyError in Visitor": 5}) is None  # 0.5 %: stands
    cell = Cell("pooled", "db", 2, 1, "ok", duration_s=1.0, requests=535, user_errors=kinds)
    judge(cell, 0.01)
    assert cell.status == "failed" and "535 × KeyError in Visitor" in cell.reason


def test_user_code_errors_under_the_threshold_are_flagged() -> None:
    row = dataclasses.replace(_row("pooled", 100.0), late=0, generator_bound=False, user_errors=3)
    assert "3 user-code error(s)" in flags(row)


def test_the_achieved_rate_counts_requests_sent_and_errors_apart() -> None:
    # Open model at 100 req/s: every request was sent on time, half of them failed (under a 60 % threshold).
    half_failed = Cell("pooled", "db", 4, 1, "ok", rate=100.0, duration_s=10.0, requests=1000,
                       errors={"HTTP 500 GET /db": 500}, histogram=_encoded([1000] * 500))  # fmt: skip
    results = Results({"config": {"max_error_rate": 0.6}}, [], [half_failed])
    (row,) = summary.rows(results)
    assert row.rps == 50.0 and row.errors == 500
    assert row.achieved_share == 1.0
    assert not any("achieved" in flag for flag in flags(row))


def _encoded(values: list[int]) -> str:
    h = hist.new()
    for value in values:
        h.record_value(value)
    return hist.encode(h)
