"""A budget on a row whose trials did not all stand is a breach (pure): the row's figures come from the trials
that stood, so a budget judged on them alone would pass over the one that failed (a fresh-eyes finding of
2026-12-01: `bench check` passed `error_rate < 0.001` on a --quick run in which a trial completed nothing)."""

from __future__ import annotations

from bench.budgets import check, parse
from bench.results import Cell, Results


def run(failed_trial: bool) -> Results:
    out = Results()
    out.metadata = {"config": {"variants": ["pooled"], "scenarios": {"db": {}}, "trials": 3}}
    out.cells = [
        Cell("pooled", "db", 32, trial, status="ok", duration_s=1.0, requests=1000, errors={}) for trial in (1, 2, 3)
    ]
    if failed_trial:
        out.cells[1] = Cell("pooled", "db", 32, 2, status="failed", reason="no request completed", requests=0)
    return out


def test_a_failed_trial_breaches_every_budget_of_its_row() -> None:
    rules = parse({"*": {"error_rate": "< 0.001", "rps": ">= 1"}}, "test")
    assert all(outcome.ok for outcome in check(run(False), rules))
    outcomes = check(run(True), rules)
    assert outcomes and not any(outcome.ok for outcome in outcomes)
    assert all("1 of 3 trials failed: no request completed" in outcome.message for outcome in outcomes)
