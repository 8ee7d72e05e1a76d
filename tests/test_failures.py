"""Failed requests are never throughput: how failures are named, counted, judged and reported.

The fast tests feed the load process's bookkeeping (bench.sampling.Window) the exceptions Locust 2.47's
FastHttpUser really passes to ``events.request`` (tried against a local server, 2026-11-30):
- a non-2xx response: ``LocustBadStatusCode(code=404)``, a ``ConnectionError`` whose text is
  "URL http://host/path: code=404" (``response`` is the FastResponse);
- a refused connection: ``ConnectionRefusedError(111, 'Connection refused')``;
- a reset: ``ConnectionResetError(104, 'Connection reset by peer')``, or ``HTTPConnectionClosed('connection
  closed.')`` when the server read the request and then reset;
- ``response.failure("...")`` in the user's file: ``CatchResponseError("...")``.
The e2e tests load a real server with real Locust: every request 404 (field case all_404.py), and a
server answering 500 to nine requests in ten (tests/error_app.py, a pool exhausted under load).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from bench import failures, hist
from bench.cells import judge
from bench.results import Cell, EndpointStats, Results, VariantCheck
from bench.sampling import Window, merge_windows
from reports import advice, fmt, jsonreport, markdown, summary, terminal

ROOT = Path(__file__).resolve().parent.parent
FIELD_CASES = ROOT / "tests" / "data" / "field_cases"


class LocustBadStatusCode(ConnectionError):
    """The shape of locust.contrib.fasthttp's exception for a non-2xx status (importing locust here would
    monkey-patch the test process with gevent)."""

    def __init__(self, url: str, code: int) -> None:
        self.code = code
        super().__init__(f"URL {url}: code={code}")


class HTTPConnectionClosed(Exception):
    """geventhttpclient's exception when the server closes (or resets) after reading the request."""


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def window() -> tuple[Window, FakeClock]:
    clock = FakeClock()
    measured = Window(warmup_s=1.0, duration_s=2.0, clock=clock, cpu_clock=clock)
    return measured, clock


def measured_cell(data: dict[str, object], **extra: object) -> Cell:
    endpoints = {
        name: EndpointStats(e["requests"], e["errors"], e["histogram"])
        for name, e in data["endpoints"].items()  # type: ignore[attr-defined]
    }
    return Cell("pooled", "db", 2, 1, "ok", duration_s=2.0, requests=data["requests"], errors=data["errors"],
                histogram=data["histogram"], endpoints=endpoints, **extra)  # type: ignore[arg-type]  # fmt: skip


# -- naming: what a kind of failure reads like -------------------------------------------------------------


def test_a_status_failure_reads_as_the_status_and_the_endpoint() -> None:
    bad = LocustBadStatusCode("http://127.0.0.1:8000/v1/does-not-exist", 404)
    assert failures.error_kind("GET", "/v1/does-not-exist", bad) == "HTTP 404 GET /v1/does-not-exist"
    # HttpUser (requests): raise_for_status()'s HTTPError carries the response.
    response = requests.Response()
    response.status_code = 500
    assert failures.error_kind("GET", "/db", requests.HTTPError("500 Server Error", response=response)) == (
        "HTTP 500 GET /db"
    )
    # A name that already says its method is not prefixed twice.
    assert failures.error_kind("POST", "POST /refresh-views", LocustBadStatusCode("u", 503)) == (
        "HTTP 503 POST /refresh-views"
    )


def test_a_transport_failure_reads_as_the_exception_the_endpoint_and_its_text() -> None:
    reset = ConnectionResetError(104, "Connection reset by peer")
    assert (
        failures.error_kind("GET", "/db", reset) == "ConnectionResetError GET /db: [Errno 104] Connection reset by peer"
    )
    refused = ConnectionRefusedError(111, "Connection refused")
    assert (
        failures.error_kind("GET", "/db", refused) == "ConnectionRefusedError GET /db: [Errno 111] Connection refused"
    )
    assert failures.error_kind("GET", "/db", TimeoutError()) == "TimeoutError GET /db"
    assert failures.http_status(refused) is None  # errno is not a status
    long = failures.error_kind("GET", "/db", ValueError("x" * 500))
    assert long.startswith("ValueError GET /db: xxx") and len(long) < 160


# -- the load process: failures are counted, never timed, never throughput ---------------------------------


def test_a_server_answering_404_to_everything_yields_errors_and_no_throughput() -> None:
    measured, clock = window()
    bad = LocustBadStatusCode("http://127.0.0.1:8000/v1/does-not-exist", 404)
    measured.on_request("GET", "/v1/does-not-exist", 1.0, 22, exception=bad)  # warm-up: dropped
    clock.now = 1.0
    measured.open()
    for _ in range(4210):
        measured.on_request("GET", "/v1/does-not-exist", 1.0, 22, exception=bad)
    clock.now = 3.0
    measured.close()
    data = measured.to_dict()
    assert data["requests"] == 4210
    assert data["errors"] == {"HTTP 404 GET /v1/does-not-exist": 4210}
    assert hist.count(hist.decode(data["histogram"])) == 0 and data["bytes_received"] == 0
    cell = measured_cell(data)
    assert cell.successes == 0 and cell.rps == 0.0 and cell.error_rate == 1.0
    judge(cell, failures.DEFAULT_MAX_ERROR_RATE)
    assert cell.status == "failed"
    assert cell.reason == "error rate 100 % (4,210 of 4,210): 4,210 × HTTP 404 GET /v1/does-not-exist"


class FakeResponse:
    """FastHttpUser's response as the request event carries it: ``text`` is None without a body."""

    def __init__(self, text: str | None) -> None:
        self.text = text


def test_what_the_server_said_is_kept_once_per_kind_and_named_in_the_reason() -> None:
    measured, _ = window()
    measured.open()
    bad = LocustBadStatusCode("u", 404)
    measured.on_request("GET", "/v1/x", 1.0, 22, exception=bad, response=FakeResponse('{"detail":\n "Not Found"}'))
    measured.on_request("GET", "/v1/x", 1.0, 22, exception=bad, response=FakeResponse("a later, different body"))
    reset = ConnectionResetError(104, "Connection reset by peer")
    measured.on_request("GET", "/db", 1.0, 0, exception=reset, response=FakeResponse(None))
    data = measured.to_dict()
    assert data["error_samples"] == {"HTTP 404 GET /v1/x": '{"detail": "Not Found"}'}  # one line, the first seen
    assert failures.verdict(3, data["errors"], 0.01, data["error_samples"]) == (
        'error rate 100 % (3 of 3): 2 × HTTP 404 GET /v1/x (body: {"detail": "Not Found"}); '
        "1 × ConnectionResetError GET /db: [Errno 104] Connection reset by peer"
    )
    other = {**data, "error_samples": {"HTTP 404 GET /v1/x": "another worker's", "HTTP 500 GET /db": "oops"}}
    assert merge_windows([data, other])["error_samples"] == {
        "HTTP 404 GET /v1/x": '{"detail": "Not Found"}',
        "HTTP 500 GET /db": "oops",
    }


def test_a_body_sample_never_carries_a_password() -> None:
    page = "Traceback: connect to postgresql://app:s3cr%40t@db:5432/x failed; dsn host=db password=s3cret user=app"
    sample = failures.body_sample(FakeResponse(page))
    assert "s3cr" not in sample and "postgresql://app:***@db:5432/x" in sample and "password=***" in sample


@pytest.mark.parametrize(
    "exception",
    [
        ConnectionResetError(104, "Connection reset by peer"),
        HTTPConnectionClosed("connection closed."),
        ConnectionRefusedError(111, "Connection refused"),  # nothing listening (yet) on the port
    ],
)
def test_a_server_that_resets_or_is_not_listening_yields_errors_never_throughput(exception: Exception) -> None:
    measured, clock = window()
    measured.open()
    for step in range(50):
        clock.now = step * 0.01
        measured.on_request("GET", "/db", 0.2, 0, exception=exception)
    measured.close()
    cell = measured_cell(measured.to_dict())
    assert cell.requests == 50 and cell.successes == 0 and cell.rps == 0.0
    assert hist.count(hist.decode(cell.histogram)) == 0
    judge(cell, failures.DEFAULT_MAX_ERROR_RATE)
    assert cell.status == "failed" and type(exception).__name__ in cell.reason and "GET /db" in cell.reason


def test_throughput_counts_successes_only_and_endpoints_keep_their_errors() -> None:
    measured, clock = window()
    measured.open()
    for n in range(100):
        failed = LocustBadStatusCode("u", 500) if n % 10 else None  # 90 failed, 10 succeeded
        measured.on_request("GET", "/db", 2.0, 30, exception=failed)
    measured.on_request("GET", "/fortunes", 2.0, 300)
    clock.now = 2.0
    measured.close()
    data = measured.to_dict()
    cell = measured_cell(data)
    assert cell.requests == 101 and cell.successes == 11 and cell.rps == 5.5  # 11 successes in 2 s
    assert data["endpoints"]["/db"] == {**data["endpoints"]["/db"], "requests": 100, "errors": 90}
    assert hist.count(hist.decode(data["histogram"])) == 11


# -- the verdict: when a cell fails, and what its reason says ----------------------------------------------


def test_verdict_threshold_and_reasons() -> None:
    assert failures.verdict(0, {}, 0.01) == failures.NO_REQUEST
    assert failures.verdict(1000, {"HTTP 500 GET /db": 10}, 0.01) is None  # exactly 1 %: stands
    assert (
        failures.verdict(1000, {"HTTP 500 GET /db": 11}, 0.01)
        == "error rate 1.1 % (11 of 1,000): 11 × HTTP 500 GET /db"
    )
    assert failures.verdict(1000, {}, 0.0) is None
    assert failures.verdict(1000, {"HTTP 500 GET /db": 1}, 0.0) is not None  # 0: any failure fails the cell
    # Nothing succeeded: failed even when the user allowed every request to fail.
    assert failures.verdict(5, {"HTTP 500 GET /db": 5}, 1.0) == "error rate 100 % (5 of 5): 5 × HTTP 500 GET /db"
    many = {"HTTP 500 GET /db": 700, "HTTP 404 GET /x": 200, "TimeoutError GET /db": 50, "HTTP 502 GET /db": 30,
            "HTTP 503 GET /db": 20}  # fmt: skip
    assert failures.verdict(2000, many, 0.01) == (
        "error rate 50 % (1,000 of 2,000): 700 × HTTP 500 GET /db; 200 × HTTP 404 GET /x; "
        "50 × TimeoutError GET /db; 50 more in 2 other kind(s)"
    )


def test_judge_keeps_an_earlier_failure_and_leaves_a_clean_cell_alone() -> None:
    died = Cell("pooled", "db", 2, 1, "failed", reason="Locust exited with code 1")
    judge(died, 0.01)
    assert died.reason == "Locust exited with code 1"
    clean = Cell("pooled", "db", 2, 1, "ok", duration_s=1.0, requests=1000, errors={"HTTP 500 GET /db": 3})
    judge(clean, 0.01)
    assert clean.ok and clean.rps == 997.0


# -- reports: a failed cell shows no throughput, no ratio, and says why ------------------------------------


def encoded(count: int) -> str:
    h = hist.new()
    for _ in range(count):
        h.record_value(1000)
    return hist.encode(h)


def results_with(cells: list[Cell], max_error_rate: float | None = 0.01) -> Results:
    config: dict[str, object] = {"variants": ["sync", "pooled"], "scenarios": {"db": "x"}, "users": [8]}
    if max_error_rate is not None:
        config["max_error_rate"] = max_error_rate
    return Results({"config": config}, [VariantCheck("sync", True), VariantCheck("pooled", True)], cells)


def all_404(status: str = "failed", trial: int = 1) -> Cell:
    kind = "HTTP 404 GET /v1/does-not-exist"
    reason = failures.describe(4210, {kind: 4210}) if status == "failed" else ""
    return Cell("pooled", "db", 8, trial, status, reason=reason, duration_s=1.0, requests=4210, errors={kind: 4210},
                endpoints={"/v1/does-not-exist": EndpointStats(4210, 4210, encoded(0))})  # fmt: skip


def good(variant: str = "sync", trial: int = 1, requests: int = 1000, errors: int = 0) -> Cell:
    return Cell(variant, "db", 8, trial, "ok", duration_s=1.0, requests=requests,
                errors={"HTTP 500 GET /db": errors} if errors else {}, histogram=encoded(requests - errors),
                endpoints={"/db": EndpointStats(requests, errors, encoded(requests - errors))})  # fmt: skip


def test_a_failed_cell_has_no_rate_no_ratio_and_is_never_the_base() -> None:
    results = results_with([good("sync", requests=1000), all_404()])
    rows = {row.variant: row for row in summary.rows(results)}
    failed = rows["pooled"]
    assert failed.status == "failed" and failed.rps == 0.0 and failed.p99_ms is None
    assert (failed.requests, failed.errors, failed.error_rate) == (4210, 4210, 1.0)
    assert failed.error_kinds == {"HTTP 404 GET /v1/does-not-exist": 4210}
    assert failed.endpoints["/v1/does-not-exist"] == {"requests": 4210, "errors": 4210, "error_rate": 1.0}
    # pooled, the base of the README's ratios, failed: no ratio at all rather than another variant's as the base.
    assert fmt.baseline(list(rows.values())) == 0.0

    text = render_terminal(results)
    failed_line = next(line for line in text.splitlines() if "pooled" in line and "db" in line)
    assert "failed" in failed_line and "4,210 (100 %)" in failed_line
    assert "1.00" not in failed_line and "4,210 req" not in failed_line
    assert "1 failed cell(s)" in text and "4,210 × HTTP 404 GET /v1/does-not-exist" in text

    md = markdown.render(results)
    assert "**1 failed cell(s)**" in md
    assert "| pooled | **failed** | | | | | 4,210 (100 %) | error rate 100 % (4,210 of 4,210)" in md
    row = next(r for r in json.loads(jsonreport.render(results)) if r["variant"] == "pooled")
    assert row["status"] == "failed" and row["rps"] is None and row["error_rate"] == 1.0
    assert row["error_kinds"] == {"HTTP 404 GET /v1/does-not-exist": 4210}


def render_terminal(results: Results) -> str:
    console = terminal.console()
    with console.capture() as captured:
        terminal.print_report(results, console)
    return captured.get()


def test_a_file_written_before_the_rule_is_judged_by_it() -> None:
    # An old file: the all-404 cell was stored as "ok" and there is no threshold in the metadata.
    results = results_with([all_404(status="ok")], max_error_rate=None)
    (row,) = [r for r in summary.rows(results) if r.variant == "pooled"]
    assert row.status == "failed" and row.rps == 0.0 and "HTTP 404" in row.reason
    # A run that allowed more errors is read with its own threshold.
    lenient = results_with([good("pooled", errors=50)], max_error_rate=0.1)
    assert [r.status for r in summary.rows(lenient) if r.variant == "pooled"] == ["ok"]
    strict = results_with([good("pooled", errors=50)], max_error_rate=0.01)
    assert [r.status for r in summary.rows(strict) if r.variant == "pooled"] == ["failed"]


def test_an_ok_row_counts_successes_and_names_its_failed_trials() -> None:
    results = results_with([good("pooled", 1, 1000, errors=5), good("pooled", 2, 1200), all_404(trial=3)])
    (row,) = [r for r in summary.rows(results) if r.variant == "pooled"]
    assert row.status == "ok" and row.trials == 2
    assert row.rps == statistics.median([995.0, 1200.0])
    assert row.errors == 5 and row.error_rate == 5 / 2200 and row.error_kinds == {"HTTP 500 GET /db": 5}
    assert row.endpoints["/db"]["rps"] == 2195 / 2.0  # successes over both windows
    assert row.reason.startswith("1 of 3 trials failed: error rate 100 %")
    assert row.reason in terminal.flags(row)


def test_advice_tables_show_a_failed_side_as_failed() -> None:
    cells = []
    for size, cell in (("1", good("pooled", requests=800)), ("5", all_404()), ("10", good("pooled", requests=900))):
        cell.settings = {"pool": size}
        cells.append(cell)
    (table,) = [t for t in advice.tables(summary.rows(results_with(cells))) if t.title.startswith("pooling")]
    (body,) = table.rows
    assert body[3] == "1: 800 → 5: failed → 10: 900" and body[5] == "10"


# -- end to end: real servers, real Locust -----------------------------------------------------------------


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.mark.parametrize("command", [["run", "--variants", "pooled"], ["advice", "--claims", "pool"]])
def test_run_and_advice_pass_the_threshold_to_the_run(command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import cli

    seen: list[float] = []
    monkeypatch.setattr(cli, "_execute", lambda config, html=True: seen.append(config.max_error_rate))
    assert CliRunner().invoke(cli.app, command).exit_code == 0
    assert CliRunner().invoke(cli.app, [*command, "--max-error-rate", "0.05"]).exit_code == 0
    assert seen == [failures.DEFAULT_MAX_ERROR_RATE, 0.05]


def test_max_error_rate_out_of_range_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = bench("run", "--max-error-rate", "5", "--variants", "pooled", "-o", str(tmp_path / "r.json"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: --max-error-rate is a fraction of requests from 0 to 1 (0.05 = 5 %); got 5"
    ]
    assert not (tmp_path / "r.json").exists()


@pytest.mark.e2e
def test_field_case_all_404_is_a_failed_cell_with_no_throughput(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = bench("run", "--variants", "pooled", "--scenarios", str(FIELD_CASES / "all_404.py"), "--users", "2",
                 "--warmup", "0.5", "--duration", "1", "--no-calibrate", "-o", str(out))  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert_failed_by(out, "HTTP 404 GET /v1/does-not-exist", share=1.0, body="Not Found")
    assert "1 failed cell(s)" in proc.stdout and "× base" in proc.stdout
    table_line = next(line for line in proc.stdout.splitlines() if "pooled" in line and "(100 %)" in line)
    assert "failed" in table_line and "1.00" not in table_line


@pytest.mark.e2e
def test_a_server_answering_500_to_most_requests_fails_its_cell(
    run_target: Callable[[str, dict[str, str]], str], tmp_path: Path
) -> None:
    url = run_target("tests.error_app:app", {})
    out = tmp_path / "r.json"
    proc = bench("run", "--url", url, "--no-check", "--scenarios", "db", "--users", "2", "--warmup", "0.5",
                 "--duration", "1", "--no-calibrate", "-o", str(out))  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert_failed_by(out, "HTTP 500 GET /db", share=0.9, body="pool exhausted: too many clients already")


def assert_failed_by(out: Path, kind: str, share: float, body: str) -> None:
    """The cell is failed for ``kind``; its req/s counts successes only; the report shows no rate for it."""
    from bench import results

    loaded = results.load(out)
    assert loaded.metadata["config"]["max_error_rate"] == failures.DEFAULT_MAX_ERROR_RATE
    (cell,) = loaded.cells
    assert cell.status == "failed" and kind in cell.reason and body in cell.reason, cell.reason
    assert cell.requests > 0 and max(cell.errors, key=cell.errors.__getitem__) == kind
    assert cell.error_rate == pytest.approx(share, abs=0.05)
    assert cell.rps == cell.successes / cell.duration_s  # the 200s only (none for the 404s)
    assert hist.count(hist.decode(cell.histogram)) == cell.successes  # latencies of successes only
    proc = bench("report", str(out), "--format", "json")
    (row,) = json.loads(proc.stdout)
    assert row["status"] == "failed" and row["rps"] is None and kind in row["error_kinds"]
    assert body in row["error_samples"][kind]
