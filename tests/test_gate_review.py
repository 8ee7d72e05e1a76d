"""The CI gate's defects a fresh-eyes reviewer found on 2026-12-01 (issue 11): each a regression test.

Golden files come from test_compare's builders (the v1 run's pooled/db cell, scaled); pure logic or the CLI
in-process, no server.
"""

from __future__ import annotations

from pathlib import Path

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
