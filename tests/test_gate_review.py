"""The CI gate's defects a fresh-eyes reviewer found on 2026-12-01 (issue 11): each a regression test.

Golden files come from test_compare's builders (the v1 run's pooled/db cell, scaled); pure logic or the CLI
in-process, no server.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from test_compare import bench, golden, results, write

from bench.apps import ab as ab_table
from bench.compare import INCONCLUSIVE, MIX_METHOD, NO_CHANGE, SLOWER, compare_files, compare_labels
from reports import gate


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "{run}", "--base", "pooled", "--head", "pooled", "--junit", "{run}"], "--junit"),
        (["compare", "{run}", "{run2}", "-o", "{run2}"], "is also the head file"),
        (["check", "{run}", "--budget", "{budget}", "-o", "{budget}"], "-o {budget} is also the budget file"),
        (["check", "{run}", "--budget", "{budget}", "--junit", "./{budget}"], "is also the budget file"),
        (["check", "{run}", "--budget", "{budget}", "--junit", "x.xml", "-o", "x.xml"], "-o x.xml is also --junit"),
    ],
)
def test_an_output_that_names_an_input_or_another_output_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "run.json", golden())
    write(tmp_path, "run2.json", golden())
    (tmp_path / "b.toml").write_text('[db]\nrps = ">= 1"\n', encoding="utf-8")
    names = {"run": "run.json", "run2": "run2.json", "budget": "b.toml"}
    before = {name: (tmp_path / name).read_bytes() for name in names.values()}
    shown = bench(*(arg.format(**names) for arg in args))
    assert shown.exit_code == 2, shown.output
    assert shown.output.count("\n") == 1 and message.format(**names) in shown.output
    assert {name: (tmp_path / name).read_bytes() for name in names.values()} == before
    assert not (tmp_path / "x.xml").exists()


def _interrupted(data: dict[str, Any], measured: int) -> dict[str, Any]:
    data["metadata"].update(completed=False, cells_planned=len(data["cells"]))
    data["cells"] = data["cells"][:measured]
    return data


def test_an_interrupted_run_is_refused_by_both_gates(tmp_path: Path) -> None:
    run = write(tmp_path, "int.json", _interrupted(golden(), 4))
    whole = write(tmp_path, "whole.json", golden())
    rules = tmp_path / "b.toml"
    rules.write_text('[db]\nrps = ">= 1"\n', encoding="utf-8")
    for args in (["check", str(run), "--budget", str(rules)], ["compare", str(whole), str(run)]):
        shown = bench(*args)
        assert shown.exit_code == 2, shown.output
        assert shown.output.count("\n") == 1 and "interrupted run (4 of 6 cells measured)" in shown.output
    assert bench("check", str(whole), "--budget", str(rules)).exit_code == 0


def test_a_run_without_cells_and_a_budget_table_without_budgets_are_refused(tmp_path: Path) -> None:
    empty = golden()
    empty["cells"] = []
    run, whole = write(tmp_path, "empty.json", empty), write(tmp_path, "whole.json", golden())
    rules = tmp_path / "b.toml"
    rules.write_text('["*"]\nerror_rate = "< 0.01"\n', encoding="utf-8")
    shown = bench("check", str(run), "--budget", str(rules))
    assert shown.exit_code == 2 and "holds no measured cell" in shown.output
    for toml, message in (("[db]\n", "[db] holds no budget"), ('[db."/db"]\n', "holds no budget")):
        rules.write_text(toml, encoding="utf-8")
        shown = bench("check", str(whole), "--budget", str(rules))
        assert shown.exit_code == 2 and message in shown.output, shown.output


def _mixed(data: dict[str, Any], shares: tuple[float, ...], sizes: tuple[int, int]) -> dict[str, Any]:
    """Each trial's requests split between /small and /big (trial k: shares[k] of them to /big), its response
    bytes what those sizes give: the same responses, a different random mix per window."""
    for cell, share in zip(data["cells"], shares, strict=True):
        template = next(iter(cell["endpoints"].values()))
        big = int(cell["requests"] * share)
        small = cell["requests"] - big
        cell["endpoints"] = {"/small": {**template, "requests": small}, "/big": {**template, "requests": big}}
        cell["bytes_received"] = small * sizes[0] + big * sizes[1]
        cell["target_stats"] = None
    return data


def test_response_bytes_of_a_mixed_scenario_move_with_the_mix_not_as_a_regression() -> None:
    # The reviewer's fix of an N+1 (same responses) failed `bytes_per_request 420 -> 475 +13.2 % (exact)`.
    base = _mixed(golden(), (0.10, 0.30, 0.15, 0.25, 0.12, 0.20), (400, 2000))
    head = _mixed(golden(), (0.30, 0.18, 0.28, 0.22, 0.35, 0.25), (400, 2000))
    done = compare_files(results(base), results(head), base_name="b", head_name="h", threshold=0.10)
    shown = next(v for v in done.verdicts if v.metric == "bytes_per_request")
    assert shown.change is not None and shown.change > 0.10
    assert shown.verdict == NO_CHANGE and shown.method == MIX_METHOD
    bigger = _mixed(golden(), (0.10, 0.30, 0.15, 0.25, 0.12, 0.20), (800, 4000))  # every response twice the size
    done = compare_files(results(base), results(bigger), base_name="b", head_name="h", threshold=0.10)
    assert next(v for v in done.verdicts if v.metric == "bytes_per_request").verdict == SLOWER


def test_response_bytes_of_one_endpoint_stay_exact() -> None:
    base, head = golden(), golden()
    for cell in head["cells"]:
        cell["bytes_received"] = int(cell["bytes_received"] * 1.2)
    done = compare_files(results(base), results(head), base_name="b", head_name="h", threshold=0.10)
    shown = next(v for v in done.verdicts if v.metric == "bytes_per_request")
    assert (shown.verdict, shown.method) == (SLOWER, "exact")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[tool.dbbench]\nbudgets = "x"\n', "tool.dbbench.budgets must be a table"),
        ('[tool]\ndbbench = "x"\n', "tool.dbbench must be a table"),
        ('tool = "x"\n', "tool must be a table"),
        ('[project]\nname = "x"\n', "e.g. [tool.dbbench.budgets.db]"),
    ],
)
def test_a_pyproject_without_a_budgets_table_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    run = write(tmp_path, "run.json", golden())
    (tmp_path / "pyproject.toml").write_text(toml, encoding="utf-8")
    for extra in ([], ["--budget", "pyproject.toml"]):
        shown = bench("check", str(run), *extra)
        assert shown.exit_code == 2, shown.output
        assert shown.output.count("\n") == 1 and message in shown.output and "Traceback" not in shown.output


def test_an_explicit_pyproject_is_read_for_its_tool_dbbench_budgets(tmp_path: Path) -> None:
    run = write(tmp_path, "run.json", golden())
    pyproject = tmp_path / "sub" / "pyproject.toml"
    pyproject.parent.mkdir()
    pyproject.write_text('[project]\nname = "x"\n[tool.dbbench.budgets.db]\nrps = ">= 1"\n', encoding="utf-8")
    shown = bench("check", str(run), "--budget", str(pyproject))
    assert shown.exit_code == 0, shown.output
    assert "rps >= 1" in shown.output


def test_a_head_that_failed_to_start_is_a_regression_not_bad_input(tmp_path: Path) -> None:
    data = golden(variant="base")
    data["metadata"]["apps"] = {"ab": {"base": "base", "head": "head"}}
    data["checks"] = [
        {"variant": "base", "ok": True, "problems": []},
        {"variant": "head", "ok": False, "problems": ["db: head exited during start-up: RuntimeError: boom"]},
    ]
    run = write(tmp_path, "ab.json", data)
    shown = bench("compare", str(run))
    assert shown.exit_code == 1, shown.output
    assert "FAIL db · 8 users: status" in shown.output and "RuntimeError: boom" in shown.output
    swapped = bench("compare", str(run), "--base", "head", "--head", "base")  # base failed: not a regression
    assert swapped.exit_code == 0 and "faster" in swapped.output
    assert bench("compare", str(run), "--base", "base", "--head", "nope").exit_code == 2  # no such label


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("apps", "server_workers"), 4, "apps.server_workers differs (1 vs 4)"),
        (("config", "server"), "uvicorn, 4 workers, 127.0.0.1", "config.server differs"),
        (("pool", "size"), 20, "pool.size differs (10 vs 20)"),
        (("config", "locustfiles", "db", "sha256"), "0" * 64, "the locustfile db differs (sha256 aaaaaaaaaaaa…"),
    ],
)
def test_runs_under_other_settings_are_refused(tmp_path: Path, path: tuple[str, ...], value: Any, message: str) -> None:
    base, head = golden(), golden()
    for data in (base, head):
        data["metadata"]["apps"] = {"server_workers": 1}
        data["metadata"]["config"]["locustfiles"] = {"db": {"sha256": "a" * 64}}
    target = head["metadata"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    shown = bench("compare", str(write(tmp_path, "b.json", base)), str(write(tmp_path, "h.json", head)))
    assert shown.exit_code == 2, shown.output
    assert shown.output.count("\n") == 1 and message in shown.output


def test_runs_of_other_durations_warm_ups_or_trials_are_compared_with_a_warning() -> None:
    base, head = golden(), golden()
    head["metadata"]["config"].update(duration_s=1.0, warmup_s=0.5)
    done = compare_files(results(base), results(head), base_name="b", head_name="h", threshold=0.10)
    assert any("config.duration_s differs (3.0 vs 1.0)" in w for w in done.warnings)
    assert any("config.warmup_s differs (1.0 vs 0.5)" in w for w in done.warnings)
    assert not compare_files(results(base), results(golden()), base_name="b", head_name="h", threshold=0.1).warnings


def test_markdown_escapes_every_user_supplied_name(tmp_path: Path) -> None:
    name = "/cat | `a` ]]></x> &amp; <b> **x** _y_ [l](u)"
    base, head = golden(), golden(queries=21)
    for data in (base, head):
        for cell in data["cells"]:
            cell["endpoints"] = {name: cell["endpoints"].pop(next(iter(cell["endpoints"])))}
            cell["endpoints"][name + "2"] = dict(cell["endpoints"][name])
            cell["target_stats"]["endpoints"] = {name: next(iter(cell["target_stats"]["endpoints"].values()))}
    shown = bench("compare", str(write(tmp_path, "b.json", base)), str(write(tmp_path, "h.json", head)), "-f", "md")
    assert shown.exit_code == 1, shown.output
    text = shown.output
    assert "/cat \\| \\`a\\` \\]\\]&gt;&lt;/x&gt; &amp;amp; &lt;b&gt; \\*\\*x\\*\\* \\_y\\_ \\[l\\](u)" in text
    for raw in ("<b>", "**x**", "`a`", " &amp; ", "[l]"):
        assert raw not in text.replace("- **", "").replace("**\n", "\n")


def test_an_inconclusive_verdict_says_why() -> None:
    few = golden(jitter=(1.00, 1.02, 0.98))
    head = golden(speed=0.7, jitter=(1.00, 1.02, 0.98))
    for data in (few, head):
        data["metadata"]["apps"] = {"ab": {"base": "base", "head": "head"}}
    run = copy.deepcopy(few)
    for cell in run["cells"]:
        cell["variant"] = "base"
    for cell in head["cells"]:
        cell["variant"] = "head"
    run["cells"] += head["cells"]
    paired = compare_labels(results(run), base="base", head="head", threshold=0.10)
    shown = [v for v in paired.verdicts if v.verdict == INCONCLUSIVE]
    assert shown and all(v.reason.startswith("3 pairs: the paired signed-rank test needs 6") for v in shown)
    unpaired = compare_files(results(few), results(golden(speed=0.7, jitter=(1.00, 1.02, 0.98))), base_name="b",
                             head_name="h", threshold=0.10)  # fmt: skip
    shown = [v for v in unpaired.verdicts if v.verdict == INCONCLUSIVE]
    assert shown and all("3 and 3 trials: two runs' rank test needs 4 a side" in v.reason for v in shown)
    assert "inconclusive (3 and 3 trials" in gate.verdict_cases(unpaired)[0].summary


def test_bench_abs_table_prints_the_figures_bench_compare_judges() -> None:
    base, head = golden(variant="base"), golden(speed=0.8, variant="head", jitter=(1.0, 0.9, 1.1, 1.05, 0.97, 1.2))
    base["cells"] += head["cells"]
    run = results(base)
    table = ab_table.rows(run, "base", "head")[0]
    done = compare_labels(run, base="base", head="head", threshold=0.10)
    judged = {v.metric: v for v in done.verdicts if v.endpoint == ""}
    assert table.ratio == pytest.approx(1 + (judged["rps"].change or 0))
    assert (table.base_rps, table.head_rps) == (pytest.approx(judged["rps"].base), pytest.approx(judged["rps"].head))
    assert (table.base_p99_ms, table.head_p99_ms) == (
        pytest.approx(judged["p99_ms"].base),
        pytest.approx(judged["p99_ms"].head),
    )
    header = gate.compared(done, format="terminal", junit=None)[0]
    assert "the geometric mean of the paired trials' head/base ratios" in header


def test_check_help_shows_the_pyproject_table_it_reads() -> None:
    shown = bench("check", "--help", env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "[tool.dbbench.budgets] in ./pyproject.toml" in shown.output


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('p99_ms = "<5"\n', "p99_ms = '<5' is outside a scenario's table; put it under one, e.g. [db] p99_ms"),
        ('"*" = "x"\n', '"*" = ... must be a table of budgets, e.g. ["*"] p99_ms'),
        ('[db."/db"]\nqueries_per_request = "< 5"\n', '[db."/db"] queries_per_request: unknown field'),
        ('[tool.dbbench.budgets.db]\np99_ms = "< 5"\n', "name the file pyproject.toml"),
    ],
)
def test_budget_hints_are_valid_toml_for_what_was_written(tmp_path: Path, toml: str, message: str) -> None:
    run = write(tmp_path, "run.json", golden())
    (tmp_path / "b.toml").write_text(toml, encoding="utf-8")
    shown = bench("check", str(run), "--budget", str(tmp_path / "b.toml"))
    assert shown.exit_code == 2 and shown.output.count("\n") == 1
    assert message in shown.output, shown.output


@pytest.mark.e2e
def test_an_interrupt_before_any_cell_says_no_file_was_written(tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    import psutil
    from test_cli import BENCH, ROOT

    out = tmp_path / "int3.json"
    proc = subprocess.Popen(
        [*BENCH, "run", "--variants", "pooled", "--scenarios", "db", "--no-calibrate", "-o", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not psutil.Process(proc.pid).children() and time.monotonic() < deadline:  # set-up has begun
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert not out.exists()
    assert f"interrupted before any cell was measured: {out} was not written" in " ".join(stdout.split())


def test_a_non_finite_figure_in_a_results_file_is_refused(tmp_path: Path) -> None:
    data = golden()
    data["cells"][2]["target_cpu_s"] = float("nan")
    run, other = write(tmp_path, "nan.json", data), write(tmp_path, "ok.json", golden())  # json writes NaN
    rules = tmp_path / "b.toml"
    rules.write_text('[db]\nrps = ">= 1"\n', encoding="utf-8")
    for args in (["compare", str(other), str(run)], ["check", str(run), "--budget", str(rules)]):
        shown = bench(*args)
        assert shown.exit_code == 2, shown.output
        assert "holds target_cpu_s = nan" in shown.output and "nan%" not in shown.output


@pytest.mark.parametrize("rule", ["< 1e400", "> -1e999", "< inf"])
def test_a_budget_limit_beyond_a_float_is_refused(tmp_path: Path, rule: str) -> None:
    run = write(tmp_path, "run.json", golden())
    (tmp_path / "b.toml").write_text(f'[db]\np99_ms = "{rule}"\n', encoding="utf-8")
    shown = bench("check", str(run), "--budget", str(tmp_path / "b.toml"))
    assert shown.exit_code == 2 and shown.output.count("\n") == 1, shown.output


@pytest.mark.parametrize("threshold", ["5", "1", "0", "-0.1", "nan"])
def test_a_threshold_outside_0_to_1_is_refused(tmp_path: Path, threshold: str) -> None:
    run = write(tmp_path, "run.json", golden())
    shown = bench("compare", str(run), str(run), "--threshold", threshold)
    assert shown.exit_code == 2 and "--threshold is a share between 0 and 1" in shown.output, shown.output


def test_junit_case_names_are_unique_when_truncated_statements_collide(tmp_path: Path) -> None:
    from junitparser import JUnitXml

    cases = [gate.Case("compare", "db: calls_per_request SELECT …", gate.PASS, "x") for _ in range(3)]
    path = gate.write_junit(cases, tmp_path / "j.xml", "dbbench compare")
    names = [case.name for case in next(iter(JUnitXml.fromfile(str(path))))]
    assert len(set(names)) == 3 and names[0] == "db: calls_per_request SELECT …"
