"""The CI gate's defects a fresh-eyes reviewer found on 2026-12-01 (issue 11): each a regression test.

Golden files come from test_compare's builders (the v1 run's pooled/db cell, scaled); pure logic or the CLI
in-process, no server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_compare import bench, golden, write


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
