"""Where a report goes: never over the measurements it was rendered from (a fresh-eyes finding of 2026-12-01:
``bench report run.json -f md -o run.json`` replaced the results with their Markdown and exited 0)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli

GOLDEN = Path(__file__).parent / "data" / "results-v1.json"


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["report", "{run}", "-f", "md", "-o", "{run}"], "-o"),
        (["report", "{run}", "-f", "json", "-o", "{other}"], "-o"),  # another run's file: measurements as well
        (["compare", "{run}", "{run}", "-f", "md", "-o", "{run}"], "-o"),
        (["check", "{run}", "--budget", "{budget}", "-o", "{run}"], "-o"),
        # --junit is a file a report writes too (a review finding of 2026-12-01: it overwrote results, exit 0).
        (["compare", "{run}", "{run}", "--junit", "{other}"], "--junit"),
        (["check", "{run}", "--budget", "{budget}", "--junit", "{run}"], "--junit"),
    ],
)
def test_a_report_never_replaces_a_results_file(tmp_path: Path, command: list[str], option: str) -> None:
    run, other = tmp_path / "run.json", tmp_path / "other.json"
    shutil.copy(GOLDEN, run)
    shutil.copy(GOLDEN, other)
    budget = tmp_path / "budget.toml"
    budget.write_text('["*"]\nerror_rate = "< 0.5"\n', encoding="utf-8")
    before = run.read_bytes(), other.read_bytes()
    args = [part.format(run=run, other=other, budget=budget) for part in command]
    done = CliRunner().invoke(cli.app, args)
    assert done.exit_code == 2, done.output
    # An input named as an output is refused as such first (cli._distinct_paths); another run's file as such.
    refused = ("is a dbbench results file", "an output never replaces an input")
    assert any(why in done.output for why in refused) and f"choose another {option}" in done.output
    assert len(done.output.strip().splitlines()) == 1
    assert (run.read_bytes(), other.read_bytes()) == before


def test_a_report_may_replace_an_earlier_report(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    out.write_text("# an older report\n", encoding="utf-8")
    done = CliRunner().invoke(cli.app, ["report", str(GOLDEN), "-f", "md", "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert out.read_text(encoding="utf-8").startswith("# dbbench results")
