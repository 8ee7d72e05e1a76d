"""``bench compare`` and ``bench check`` on golden results files built from tests/data/results-v1.json.

Pure logic (no PostgreSQL, no load): each golden file is the recorded v1 run with its ``pooled`` / ``db``
cell repeated over trials whose throughput and latency are scaled by known factors, and with the
target's statement counters of a known query count, so every verdict below is decided by construction.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from junitparser import Failure, JUnitXml, Skipped
from typer.testing import CliRunner

import cli
from bench import hist
from bench.budgets import Budget, check, parse
from bench.compare import FASTER, INCONCLUSIVE, NO_CHANGE, SLOWER, compare_files, compare_labels
from bench.errors import BenchError
from bench.results import Results

V1 = Path(__file__).parent / "data" / "results-v1.json"
N_PLUS_ONE = "SELECT id, title FROM book WHERE author_id = $1"
# Trial-to-trial wobble of a quiet machine: +-2 %, the same pattern on every side (seeded by construction).
# Six trials: the fewest pairs whose signed ranks can reach p < 0.05 (bench.compare._signed_ranks_differ).
JITTER = (1.00, 1.02, 0.98, 1.01, 0.99, 1.005)


@functools.cache
def _scaled_histogram(encoded: str, factor: float) -> str:
    """The same samples with every latency multiplied by ``factor``."""
    source = hist.decode(encoded)
    scaled = hist.new()
    for item in source.get_recorded_iterator():
        scaled.record_value(max(1, int(item.value_iterated_to * factor)), item.count_added_in_this_iter_step)
    return hist.encode(scaled)


def _cell(template: dict[str, Any], trial: int, *, speed: float, queries: int, variant: str) -> dict[str, Any]:
    """``template`` as trial ``trial``: ``speed`` x the throughput, latencies / ``speed``, ``queries`` per request."""
    cell = copy.deepcopy(template)
    requests = int(template["requests"] * speed)
    histogram = _scaled_histogram(template["histogram"], 1 / speed)
    endpoint = next(iter(cell["endpoints"]))
    cell.update(
        variant=variant,
        trial=trial,
        requests=requests,
        histogram=histogram,
        bytes_received=int(template["bytes_received"] / template["requests"] * requests),
        target_cpu_s=requests * 0.0004 / speed,
        endpoints={endpoint: {"requests": requests, "errors": 0, "histogram": histogram}},
        target_stats={
            "instrumented": True,
            "endpoints": {
                endpoint: {"requests": requests, "queries": requests * queries, "request_time_s": 1.0, "db_time_s": 0.5}
            },
            "statements": [
                {
                    "fingerprint": "SELECT id, name FROM author WHERE id = $1",
                    "calls": requests,
                    "total_ms": 100.0,
                    "p50_ms": 0.1,
                    "p95_ms": 0.2,
                },
                {
                    "fingerprint": N_PLUS_ONE,
                    "calls": requests * (queries - 1),
                    "total_ms": 10.0 * queries,
                    "p50_ms": 0.1,
                    "p95_ms": 0.2,
                },
            ],
        },
    )
    return cell


def golden(
    *,
    speed: float = 1.0,
    queries: int = 2,
    jitter: tuple[float, ...] = JITTER,
    variant: str = "pooled",
    failed: bool = False,
) -> dict[str, Any]:
    """A results file: the v1 run's pooled/db cell over ``len(jitter)`` trials, at ``speed`` x its throughput."""
    data = json.loads(V1.read_text(encoding="utf-8"))
    template = next(c for c in data["cells"] if c["variant"] == "pooled" and c["scenario"] == "db")
    data["cells"] = [
        _cell(template, trial, speed=speed * wobble, queries=queries, variant=variant)
        for trial, wobble in enumerate(jitter, start=1)
    ]
    if failed:
        for cell in data["cells"]:
            cell.update(status="failed", reason="connection refused: the target exited")
    data["metadata"]["config"]["scenarios"] = {"db": "one row"}
    return data


def results(data: dict[str, Any]) -> Results:
    return Results.from_dict(data)


def verdicts(base: dict[str, Any], head: dict[str, Any]) -> dict[str, str]:
    done = compare_files(results(base), results(head), base_name="base", head_name="head", threshold=0.10)
    return {v.metric: v.verdict for v in done.verdicts}


def write(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def bench(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli.app, list(args), env=env)


def test_a_clear_regression_is_slower_on_throughput_latency_and_cpu() -> None:
    found = verdicts(golden(), golden(speed=0.7))
    assert found["rps"] == SLOWER
    assert found["p50_ms"] == SLOWER
    assert found["p99_ms"] == SLOWER
    assert found["cpu_ms_per_request"] == SLOWER
    assert found["queries_per_request"] == NO_CHANGE


def test_a_few_trials_are_inconclusive_paired_or_not_six_pairs_decide() -> None:
    """3 trials a side cannot pass the rank test (smallest exact p: 0.1), nor 5 interleaved pairs the signed-rank
    test (0.0625), however large the change: an A/A bench ab of 4 pairs here once had head below base in all 4."""
    three = (1.00, 1.02, 0.98)
    assert verdicts(golden(jitter=three), golden(speed=0.7, jitter=three))["rps"] == INCONCLUSIVE
    for jitter, expected in ((JITTER[:5], INCONCLUSIVE), (JITTER, SLOWER)):
        run = golden(variant="base", jitter=jitter)
        run["cells"] += golden(speed=0.7, variant="head", jitter=jitter)["cells"]
        paired = compare_labels(results(run), base="base", head="head", threshold=0.1)
        assert next(v for v in paired.verdicts if v.metric == "rps").verdict == expected


def test_a_clear_improvement_is_faster() -> None:
    found = verdicts(golden(), golden(speed=1.4))
    assert (found["rps"], found["p50_ms"], found["p99_ms"]) == (FASTER, FASTER, FASTER)


def test_noise_alone_is_no_change() -> None:
    found = verdicts(golden(), golden(jitter=(0.99, 1.01, 1.02, 0.98, 1.00, 0.995)))
    assert found["rps"] == NO_CHANGE
    assert SLOWER not in found.values()


def test_a_file_against_itself_is_no_change_everywhere() -> None:
    assert set(verdicts(golden(), golden()).values()) == {NO_CHANGE}


def test_a_significant_change_below_the_threshold_is_not_a_regression() -> None:
    done = compare_files(results(golden()), results(golden(speed=0.95)), base_name="b", head_name="h", threshold=0.10)
    rps = next(v for v in done.verdicts if v.metric == "rps")
    assert rps.verdict != SLOWER
    assert rps.ci is not None and rps.ci[1] < 0  # significant (the interval excludes 0) but only ~5 %


def test_a_statement_split_from_its_requests_at_the_window_edges_is_no_change() -> None:
    # A fresh-eyes false alarm: the same sync /db twice, one trial each, its one statement counted 0.969 then
    # 1.03 per request (statements and requests are counted as each ends: those in flight at an edge split).
    def one_window(calls_per_request: float) -> dict[str, Any]:
        data = golden(jitter=(1.0,))
        cell = data["cells"][0]
        requests = cell["target_stats"]["endpoints"]["/db"]["requests"]
        cell["users"] = 128  # this window has ~3,500 requests: 128 users split as many as 32 do in ~900
        for statement in cell["target_stats"]["statements"]:
            if statement["fingerprint"] != N_PLUS_ONE:
                statement["calls"] = round(requests * calls_per_request)
        return data

    requests = golden(jitter=(1.0,))["cells"][0]["requests"]
    assert 2 * 128 / requests > 1.03 - 0.969  # within what the users in flight at the edges can split
    done = compare_files(results(one_window(0.969)), results(one_window(1.03)), base_name="b", head_name="h",
                         threshold=0.1)  # fmt: skip
    calls = next(v for v in done.verdicts if v.metric.startswith("calls_per_request SELECT id, name FROM author"))
    assert calls.verdict == NO_CHANGE, calls
    doubled = compare_files(results(one_window(1.0)), results(one_window(2.0)), base_name="b", head_name="h",
                            threshold=0.1)  # fmt: skip
    calls = next(v for v in doubled.verdicts if v.metric.startswith("calls_per_request SELECT id, name FROM author"))
    assert calls.verdict == SLOWER  # one more statement per request is far beyond the edges


def test_an_n_plus_one_is_a_regression_whatever_the_noise_with_the_statement_that_grew() -> None:
    done = compare_files(results(golden()), results(golden(queries=21)), base_name="b", head_name="h", threshold=0.1)
    queries = next(v for v in done.verdicts if v.metric == "queries_per_request")
    assert queries.verdict == SLOWER
    assert (queries.base, queries.head) == (2, 21)
    assert queries.method == "exact"
    assert any(
        line.startswith("/db: 2 → 21 queries per request (+19 × SELECT id, title FROM book")
        for line in queries.evidence
    ), queries.evidence
    calls = next(v for v in done.verdicts if v.metric == f"calls_per_request {N_PLUS_ONE}")
    assert (calls.verdict, calls.base, calls.head) == (SLOWER, 1, 20)
    assert next(v for v in done.verdicts if v.metric == "rps").verdict != SLOWER  # the same speed: noise only


def test_two_files_are_unpaired_one_interleaved_file_is_paired() -> None:
    two = compare_files(results(golden()), results(golden(speed=0.7)), base_name="b", head_name="h", threshold=0.1)
    assert not two.paired and {v.method for v in two.verdicts if v.metric == "rps"} == {"unpaired"}
    run = golden(variant="base")
    run["cells"] += golden(speed=0.7, variant="head")["cells"]
    one = compare_labels(results(run), base="base", head="head", threshold=0.1)
    assert one.paired
    rps = next(v for v in one.verdicts if v.metric == "rps")
    assert (rps.verdict, rps.method) == (SLOWER, "paired")


def test_a_head_cell_that_failed_is_a_regression_never_a_number() -> None:
    done = compare_files(results(golden()), results(golden(failed=True)), base_name="b", head_name="h", threshold=0.1)
    assert [(v.metric, v.verdict, v.head) for v in done.verdicts] == [("status", SLOWER, None)]
    assert "head failed: connection refused" in done.verdicts[0].evidence[0]


def test_one_trial_a_side_is_inconclusive_and_an_old_format_file_is_read() -> None:
    old = json.loads(V1.read_text(encoding="utf-8"))
    assert old["version"] == 1
    done = compare_files(results(old), results(old), base_name="b", head_name="h", threshold=0.1)
    timed = {v.verdict for v in done.verdicts if v.metric in ("rps", "p50_ms", "p99_ms")}
    assert timed == {INCONCLUSIVE}
    assert not done.regressions


def test_the_regression_says_why_plans_and_profile_frames() -> None:
    base, head = golden(), golden(speed=0.7)
    for data, node, share in ((base, "Index Scan", 0.10), (head, "Seq Scan", 0.40)):
        data["version"] = 2
        data["explains"] = [
            {
                "query": N_PLUS_ONE,
                "params": None,
                "params_source": "none",
                "plan": {"Plan": {"Node Type": node}},
                "setting": "",
            }
        ]
        data["profiles"] = [
            {
                "scenario": "db",
                "variant": "pooled",
                "requests": 10,
                "directory": "p",
                "files": {"html": "p.html"},
                "top_frames": [{"function": "render", "self_share": share}],
            }
        ]
    done = compare_files(results(base), results(head), base_name="b", head_name="h", threshold=0.1)
    rps = next(v for v in done.verdicts if v.metric == "rps")
    assert any("plan changed" in line and "Index Scan → Seq Scan" in line for line in rps.evidence), rps.evidence
    assert any("profile: render self time 10% → 40%" in line for line in rps.evidence), rps.evidence


def test_files_of_other_scenarios_or_settings_or_no_common_cell_are_refused(tmp_path: Path) -> None:
    other = golden()
    for cell in other["cells"]:
        cell["scenario"] = "fortunes"
    with pytest.raises(BenchError, match="base ran scenarios 'db', head ran 'fortunes'"):
        verdicts(golden(), other)
    swept = golden()
    for cell in swept["cells"]:
        cell["settings"] = {"pool": "5"}
    with pytest.raises(BenchError, match=r"base ran settings \(no setting\), head ran 'pool 5'"):
        verdicts(golden(), swept)
    with pytest.raises(BenchError, match="no \\(variant, scenario, load, setting\\) was measured in both"):
        verdicts(golden(), golden(variant="nopool"))
    shown = bench("compare", str(write(tmp_path, "a.json", golden())), str(write(tmp_path, "b.json", other)))
    assert shown.exit_code == 2
    assert shown.output.count("\n") == 1 and shown.output.startswith("error: cannot compare")


def test_cells_on_one_side_only_are_named_and_a_threshold_must_be_positive() -> None:
    both = golden()
    both["cells"] += golden(variant="nopool")["cells"]
    done = compare_files(results(both), results(golden()), base_name="b", head_name="h", threshold=0.1)
    assert done.warnings == ["1 cell(s) only in base, not compared: db · 8 users · nopool"]
    with pytest.raises(BenchError, match="--threshold is a share between 0 and 1"):
        compare_files(results(both), results(both), base_name="b", head_name="h", threshold=0)


def test_different_machines_are_compared_with_a_warning() -> None:
    head = golden()
    head["metadata"]["machine"]["hostname"] = "ci-runner-7"
    done = compare_files(results(golden()), results(head), base_name="b", head_name="h", threshold=0.1)
    assert done.warnings and "different machines" in done.warnings[0]


def test_compare_exit_codes_and_the_junit_file_parses(tmp_path: Path) -> None:
    base = write(tmp_path, "base.json", golden())
    slower = write(tmp_path, "slower.json", golden(speed=0.7))
    same = write(tmp_path, "same.json", golden(jitter=(0.99, 1.01, 1.02, 0.98, 1.00, 0.995)))
    assert bench("compare", str(base), str(same)).exit_code == 0
    junit = tmp_path / "out" / "compare.xml"
    shown = bench("compare", str(base), str(slower), "--junit", str(junit))
    assert shown.exit_code == 1, shown.output
    assert "FAIL db · 8 users · pooled: cpu_ms_per_request_net" in shown.output
    assert re.search(r"ok +db · 8 users · pooled: rps .*: slower \(reported, not gating\)", shown.output)
    suite = next(iter(JUnitXml.fromfile(str(junit))))
    cases = {case.name: case for case in suite}
    assert isinstance(cases["db · 8 users · pooled: cpu_ms_per_request_net"].result[0], Failure)
    assert "slower" in (cases["db · 8 users · pooled: cpu_ms_per_request_net"].result[0].message or "")
    assert not cases["db · 8 users · pooled: rps"].result  # reported, passed
    assert not cases["db · /db · 8 users · pooled: queries_per_request"].result  # passed
    assert bench("compare", str(base)).exit_code == 2  # one file needs --base/--head
    assert bench("compare", str(base), str(tmp_path / "missing.json")).exit_code == 2


def test_compare_json_and_md_formats(tmp_path: Path) -> None:
    base, head = write(tmp_path, "b.json", golden()), write(tmp_path, "h.json", golden(queries=21))
    shown = bench("compare", str(base), str(head), "--format", "json")
    document = json.loads(shown.output)
    assert document["exit_code"] == 1 and document["method"] == "unpaired" and document["regressions"] >= 1
    shown = bench("compare", str(base), str(head), "-f", "md")
    assert shown.output.startswith("### dbbench compare")
    assert "#### Why" in shown.output and "+19 × SELECT id, title FROM book" in shown.output
    assert bench("compare", str(base), str(head), "-f", "xml").exit_code == 2


def test_compare_html_is_a_page_with_the_evidence_escaped(tmp_path: Path) -> None:
    base, head = golden(), golden(queries=21)
    for cell in head["cells"]:
        for statement in cell["target_stats"]["statements"]:
            statement["fingerprint"] = statement["fingerprint"].replace("$1", "'</td><script>x</script>'")
    page = tmp_path / "out" / "compare.html"
    shown = bench(
        "compare",
        str(write(tmp_path, "b.json", base)),
        str(write(tmp_path, "h.json", head)),
        "--format",
        "html",
        "-o",
        str(page),
    )
    assert shown.exit_code == 1 and shown.output == f"wrote {page}\n"
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<h2>Why</h2>" in html
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


def test_one_file_of_bench_ab_is_compared_by_its_recorded_labels(tmp_path: Path) -> None:
    run = golden(variant="base")
    run["cells"] += golden(speed=0.7, variant="head")["cells"]
    run["metadata"]["apps"] = {"ab": {"base": "base", "head": "head"}}
    path = write(tmp_path, "ab.json", run)
    shown = bench("compare", str(path))
    assert shown.exit_code == 1 and "paired trials" in shown.output
    assert bench("compare", str(path), "--base", "base", "--head", "nope").exit_code == 2


def test_the_step_summary_is_written_only_when_the_variable_is_set(tmp_path: Path) -> None:
    base, head = write(tmp_path, "b.json", golden()), write(tmp_path, "h.json", golden())
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    assert bench("compare", str(base), str(head), env={"GITHUB_STEP_SUMMARY": ""}).exit_code == 0
    assert summary.read_text(encoding="utf-8") == "earlier step\n"
    assert bench("compare", str(base), str(head), env={"GITHUB_STEP_SUMMARY": str(summary)}).exit_code == 0
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n### dbbench compare")  # appended, not overwritten


# --- budgets -------------------------------------------------------------------------------------------------


def budgets(text: str, tmp_path: Path) -> Path:
    path = tmp_path / "budgets.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_budgets_pass_and_each_breach_names_the_measured_value(tmp_path: Path) -> None:
    run = results(golden(queries=21))
    rules = parse(
        {
            "db": {"rps": ">= 100", "queries_per_request": "<= 2", "/db": {"p99_ms": "< 10000"}},
            "*": {"error_rate": "< 0.001"},
        },
        "test",
    )
    outcomes = {(o.budget.field, o.budget.endpoint): o for o in check(run, rules)}
    assert outcomes[("rps", "")].ok
    assert outcomes[("p99_ms", "/db")].ok
    assert outcomes[("error_rate", "")].ok
    breach = outcomes[("queries_per_request", "")]
    assert not breach.ok and breach.measured == 21
    assert breach.message == "queries_per_request = 21 (breached <= 2)"


def test_a_failed_cell_or_an_unmeasured_figure_breaches_never_passes() -> None:
    failed = check(results(golden(failed=True)), [Budget("db", "", "p99_ms", "< 50", "<", 50.0)])
    assert [o.ok for o in failed] == [False] and "failed" in failed[0].message
    old = results(json.loads(V1.read_text(encoding="utf-8")))  # no statement counters in a v1 file
    unmeasured = check(old, [Budget("db", "", "queries_per_request", "<= 2", "<=", 2.0)])
    assert unmeasured and not any(o.ok for o in unmeasured)
    assert "not measured" in unmeasured[0].message


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[db]\np99 = "< 50"\n', "[db] p99: unknown field"),
        ('[checkout]\np99_ms = "< 50"\n', "scenario 'checkout', which this run did not measure"),
        (
            '[db."/nope"]\np99_ms = "< 50"\n',
            "endpoint '/nope' of 'db', which this run did not measure (its endpoints, by their locustfile names: /db)",
        ),
        ('[db."/db"]\nqueries_per_request = "< 5"\n', "unknown field"),
        ('[db]\np99_ms = "fast"\n', "write a comparison and a number"),
        ("[db\n", "is not valid TOML"),
    ],
)
def test_bad_budgets_are_one_line_and_exit_2(tmp_path: Path, toml: str, message: str) -> None:
    run = write(tmp_path, "run.json", golden())
    shown = bench("check", str(run), "--budget", str(budgets(toml, tmp_path)))
    assert shown.exit_code == 2, shown.output
    assert shown.output.count("\n") == 1 and message in shown.output


def test_check_exit_codes_junit_and_pyproject_budgets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = write(tmp_path, "run.json", golden())
    assert bench("check", str(run), "--budget", str(budgets('[db]\nrps = ">= 1"\n', tmp_path))).exit_code == 0
    junit = tmp_path / "budgets.xml"
    shown = bench(
        "check", str(run), "--budget", str(budgets('["*"]\np99_ms = "< 0.001"\n', tmp_path)), "--junit", str(junit)
    )
    assert shown.exit_code == 1 and re.search(r"p99_ms = [\d.]+ \(breached < 0.001\)", shown.output)
    failure = next(iter(next(iter(JUnitXml.fromfile(str(junit))))))
    assert isinstance(failure.result[0], Failure) and "breached" in (failure.result[0].message or "")
    monkeypatch.chdir(tmp_path)
    assert bench("check", str(run)).exit_code == 2  # no pyproject.toml, no --budget: nothing to check against
    (tmp_path / "pyproject.toml").write_text('[tool.dbbench.budgets.db]\nrps = ">= 1"\n', encoding="utf-8")
    shown = bench("check", str(run), "-f", "json")
    assert shown.exit_code == 0 and json.loads(shown.output)["budgets"][0]["ok"] is True


def test_inconclusive_verdicts_are_skipped_junit_cases(tmp_path: Path) -> None:
    old = write(tmp_path, "old.json", json.loads(V1.read_text(encoding="utf-8")))
    junit = tmp_path / "c.xml"
    assert bench("compare", str(old), str(old), "--junit", str(junit)).exit_code == 0
    cases = list(next(iter(JUnitXml.fromfile(str(junit)))))
    assert any(case.result and isinstance(case.result[0], Skipped) for case in cases)


# --- a user's app: no statement hooks, queries from pg_stat_statements deltas per window ------------------------

ITEM = "select item.id, item.name, category.name as name_1 from item join category on category.id = item.category_id"
CATEGORY_NAME = "select category.name from category where category.id = $1"


def _pg_row(query: str, calls: int) -> dict[str, Any]:
    from bench.pgstats import StatementStat

    stat = StatementStat(1, query, calls, calls * 0.05, 0.05, 0.0, 0.01, 0.2, calls, calls * 3, 0)
    return stat.to_dict()


def app_run(
    *,
    nplus1_head: bool = False,
    nplus1_base: bool = False,
    head_share: float = 0.0,
    endpoints: tuple[str, ...] = ("/items/[id]", "/categories/[id]/items"),
) -> dict[str, Any]:
    """An interleaved ``bench ab`` file of an app without hooks: each window's queries are its pg_stat_statements
    delta. The window's mix of endpoints differs from trial to trial (as Locust's random tasks do); the
    category listing runs 1 query, or 1 + 20 in head when ``nplus1_head``."""
    run = golden(variant="base")
    run["cells"] += golden(variant="head")["cells"]
    for index, cell in enumerate(run["cells"]):
        cell["target_stats"] = None
        requests = cell["requests"]
        share = 0.2 + 0.01 * (index % 6) if len(endpoints) > 1 else 0.0  # the listing's share of this window
        share += head_share if cell["variant"] == "head" else 0.0
        listings = int(requests * share)
        histogram = cell["histogram"]
        cell["endpoints"] = {
            endpoints[0]: {"requests": requests - listings, "errors": 0, "histogram": histogram},
            **({endpoints[1]: {"requests": listings, "errors": 0, "histogram": histogram}} if listings else {}),
        }
        rows = [_pg_row(ITEM, requests)]
        if nplus1_head if cell["variant"] == "head" else nplus1_base:
            rows.append(_pg_row(CATEGORY_NAME, listings * 20))
        cell["pg_statements"] = rows
    return run


def _queries(run: dict[str, Any]) -> Any:
    done = compare_labels(results(run), base="base", head="head", threshold=0.1)
    return done, [v for v in done.verdicts if v.metric == "queries_per_request"]


def test_an_apps_n_plus_one_is_gated_from_pg_stat_statements_per_scenario() -> None:
    done, queries = _queries(app_run(nplus1_head=True))
    assert len(queries) == 1
    (q,) = queries
    # Two endpoints share each window: the server cannot tell their statements apart, so per scenario.
    assert (q.endpoint, q.verdict, q.method) == ("", SLOWER, "exact, pg_stat_statements per scenario")
    assert q.base == pytest.approx(1.0) and q.head == pytest.approx(1 + 20 * 0.225, abs=0.02)
    assert any("× select category.name from category where category.id = ? per request" in e for e in q.evidence)
    assert any(v.metric.startswith("calls_per_request select category.name") for v in done.regressions)


def test_an_apps_unchanged_queries_are_no_change_and_one_endpoint_windows_are_per_endpoint() -> None:
    _, queries = _queries(app_run())
    assert [(q.verdict, q.method) for q in queries] == [(NO_CHANGE, "exact, pg_stat_statements per scenario")]
    _, queries = _queries(app_run(endpoints=("/items/[id]",)))
    assert [(q.endpoint, q.verdict, q.method) for q in queries] == [
        ("/items/[id]", NO_CHANGE, "exact, pg_stat_statements per endpoint")
    ]


def test_a_random_mix_of_endpoints_is_not_a_query_regression() -> None:
    """Head's windows happen to hold a little more of the 21-query endpoint than base's: the per-scenario figure
    moves by more than QUERY_TOLERANCE, but within the windows' own wobble, so it is no verdict."""
    _, (q,) = _queries(app_run(nplus1_head=True, nplus1_base=True, head_share=0.004))
    assert q.head - q.base > 0.05
    assert q.verdict == NO_CHANGE


def test_an_incomplete_or_missing_snapshot_is_not_counted() -> None:
    from bench.compare import PG_SNAPSHOT_LIMIT

    run = app_run(nplus1_head=True)
    run["cells"][0]["pg_statements"] = [_pg_row(f"select {i}", 1) for i in range(PG_SNAPSHOT_LIMIT)]
    assert _queries(run)[1] == []
    run = app_run(nplus1_head=True)
    run["cells"][-1]["pg_statements"] = None
    assert _queries(run)[1] == []


def _same_cpu(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the target's CPU per request of the unscaled run: a slowdown that is not the app's CPU
    (the machine's other load took the cores), as seen on the shared machine."""
    for cell in data["cells"]:
        cell["target_cpu_s"] = cell["requests"] * 0.0004
    return data


def test_throughput_alone_is_reported_but_does_not_fail_the_gate_unless_asked(tmp_path: Path) -> None:
    before, after = _same_cpu(golden()), _same_cpu(golden(speed=0.7))
    base, head = write(tmp_path, "b.json", before), write(tmp_path, "h.json", after)
    done = compare_files(results(before), results(after), base_name="b", head_name="h", threshold=0.1)
    by_metric = {v.metric: v for v in done.verdicts}
    assert by_metric["rps"].verdict == SLOWER and not by_metric["rps"].gating
    assert by_metric["cpu_ms_per_request_net"].verdict == NO_CHANGE and by_metric["cpu_ms_per_request_net"].gating
    assert by_metric["cpu_ms_per_request"].verdict == NO_CHANGE and by_metric["cpu_ms_per_request"].gating
    assert by_metric["p99_ms"].gating is False
    assert done.regressions == [] and done.gate_on == ("cpu_ms_per_request", "cpu_ms_per_request_net")
    assert bench("compare", str(base), str(head)).exit_code == 0
    assert bench("compare", str(base), str(head), "--gate-on", "rps,p99_ms").exit_code == 1
    assert bench("compare", str(base), str(head), "--gate-on", "all").exit_code == 1
    shown = bench("compare", str(base), str(head), "--gate-on", "cpu")
    assert shown.exit_code == 2 and "--gate-on takes some of" in shown.output


def test_the_cli_default_gate_is_the_modules() -> None:
    import inspect

    from bench.compare import DEFAULT_GATE_ON

    default = inspect.signature(cli.compare).parameters["gate_on"].default
    assert tuple(default.split(",")) == DEFAULT_GATE_ON


def test_the_fixed_cpu_per_second_is_fitted_over_both_sides_and_taken_out_of_cpu_per_request() -> None:
    from bench.compare import fixed_cpu_per_s

    def cells(data: dict[str, Any], per_request_s: float) -> list[Any]:
        # Each window: 0.05 CPU s per second whatever the load, plus per_request_s per request.
        for cell in data["cells"]:
            cell["target_cpu_s"] = 0.05 * cell["duration_s"] + per_request_s * cell["requests"]
        return results(data).cells

    swings = (1.0, 0.3, 0.6, 0.45, 0.9, 0.2)  # throughput swinging as other processes come and go
    before = cells(golden(jitter=swings), 0.0010)
    after = cells(golden(jitter=swings[::-1]), 0.0011)
    assert fixed_cpu_per_s(before, after) == pytest.approx(0.05, rel=1e-6)
    base, head = copy.deepcopy(golden(jitter=swings, variant="x")), golden(jitter=swings[::-1], variant="x")
    for data, per_request in ((base, 0.0010), (head, 0.0011)):
        for cell in data["cells"]:
            cell["target_cpu_s"] = 0.05 * cell["duration_s"] + per_request * cell["requests"]
    done = compare_files(results(base), results(head), base_name="b", head_name="h", threshold=0.05)
    by_metric = {v.metric: v for v in done.verdicts}
    assert by_metric["cpu_ms_per_request_net"].change == pytest.approx(0.10, abs=1e-6)  # exactly the per-request part
    assert by_metric["cpu_ms_per_request_net"].base == pytest.approx(1.0, rel=1e-6)
    # Too few windows, or throughputs too alike to separate the fixed part: nothing taken out (net = plain).
    assert fixed_cpu_per_s(before[:2], after) == 0.0
    assert fixed_cpu_per_s(cells(golden(), 0.001), cells(golden(), 0.001)) == 0.0
