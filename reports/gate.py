"""What ``bench compare`` and ``bench check`` print and write for a CI job: terminal text, Markdown (also
appended to ``$GITHUB_STEP_SUMMARY`` when GitHub Actions sets it), JSON, and JUnit XML (``junitparser``, so
any CI that reads test reports shows each verdict or budget as a test case, its evidence in the failure).

Both commands reduce to ``Case`` s: one per verdict or per budget on a row, failing (a regression, a
breach), passing, or skipped (inconclusive: not enough trials to say, shown but never failing the job).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.budgets import Outcome
from bench.compare import INCONCLUSIVE, SLOWER, Comparison, Verdict
from bench.errors import BenchError
from reports.fmt import md_cell

FAIL, PASS, SKIP = "fail", "pass", "skip"
STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


@dataclass(frozen=True)
class Case:
    suite: str  # "compare" or "check"
    name: str  # "db · 8 users · pooled: p99_ms"
    status: str  # fail / pass / skip
    summary: str  # one line: the figures and the verdict
    evidence: list[str] = field(default_factory=list)


def exit_code(cases: Iterable[Case]) -> int:
    """0 pass, 1 a regression or a breach (2, bad input, is raised before any case exists)."""
    return 1 if any(case.status == FAIL for case in cases) else 0


def _figure(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric == "error_rate":
        return f"{value:.2%}"
    if metric == "bytes_per_request":  # whole bytes, as the evidence line under it says them
        return f"{value:,.0f}"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _percent(share: float | None) -> str:
    return "" if share is None else f"{share:+.1%}"


def verdict_cases(comparison: Comparison) -> list[Case]:
    cases = []
    for v in comparison.verdicts:
        status = FAIL if v.verdict == SLOWER and v.gating else SKIP if v.verdict == INCONCLUSIVE else PASS
        summary = _verdict_line(v) + ("" if v.gating or v.verdict != SLOWER else " (reported, not gating)")
        cases.append(Case("compare", f"{v.where}: {v.metric}", status, summary, v.evidence))
    return cases


def _verdict_line(v: Verdict) -> str:
    if v.method == "failed":
        return f"{v.verdict}: " + "; ".join(v.evidence)
    change = _percent(v.change)
    if v.ci is not None and v.ci[0] is not None and v.ci[1] is not None:
        change += f" [{_percent(v.ci[0])}, {_percent(v.ci[1])}]"
    line = f"{_figure(v.metric, v.base)} → {_figure(v.metric, v.head)} {change} ({v.method}): {v.verdict}"
    return (line + (f" ({v.reason})" if v.reason else "")).replace("  ", " ")


def budget_cases(outcomes: Iterable[Outcome]) -> list[Case]:
    return [
        Case("check", f"{o.where}: {o.budget.field} {o.budget.rule}", PASS if o.ok else FAIL, o.message)
        for o in outcomes
    ]


def terminal(cases: list[Case], header: list[str]) -> str:
    marks = {FAIL: "FAIL", PASS: "ok  ", SKIP: "??  "}
    lines = [*header]
    for case in cases:
        lines.append(f"{marks[case.status]} {case.name}  {case.summary}")
        lines.extend(f"       {line}" for line in case.evidence if case.status == FAIL)
    lines.append(tally(cases))
    return "\n".join(lines) + "\n"


def tally(cases: list[Case]) -> str:
    counts = {status: sum(1 for c in cases if c.status == status) for status in (FAIL, PASS, SKIP)}
    unsure = f", {counts[SKIP]} inconclusive" if counts[SKIP] else ""
    return f"{counts[FAIL]} failed, {counts[PASS]} passed{unsure}"


def markdown(cases: list[Case], title: str, header: list[str]) -> str:
    icons = {FAIL: "❌", PASS: "✅", SKIP: "❔"}
    lines = [
        f"### {title}",
        "",
        *(f"> {_cell(line)}" for line in header),
        "",
        "| | case | result |",
        "|---|---|---|",
    ]
    lines.extend(f"| {icons[c.status]} | {_cell(c.name)} | {_cell(c.summary)} |" for c in cases)
    failing = [c for c in cases if c.status == FAIL and c.evidence]
    if failing:
        lines += ["", "#### Why"]
        for case in failing:
            lines.append(f"- **{_cell(case.name)}**")
            lines.extend(f"  - {_cell(line)}" for line in case.evidence)
    lines += ["", f"_{tally(cases)}_", ""]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return md_cell(text)


def as_json(cases: list[Case], document: dict[str, Any]) -> str:
    return json.dumps({**document, "exit_code": exit_code(cases)}, indent=1, ensure_ascii=False) + "\n"


def append_step_summary(text: str) -> Path | None:
    """Append ``text`` to the file GitHub Actions names in ``$GITHUB_STEP_SUMMARY``; nothing when it is unset."""
    target = os.environ.get(STEP_SUMMARY)
    if not target:
        return None
    try:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise BenchError(f"cannot append to ${STEP_SUMMARY} ({target}): {exc.strerror}") from None
    return Path(target)


def write_junit(cases: list[Case], path: Path, suite_name: str) -> Path:
    """One test suite, one test case per verdict or budget; a failure carries its summary and evidence.
    Raises ``BenchError`` when ``path`` holds a results file (as -o does) or cannot be written."""
    from junitparser import Failure, JUnitXml, Skipped, TestCase, TestSuite

    from reports.base import refuse_results

    refuse_results(path, "--junit")

    suite = TestSuite(suite_name)
    seen: dict[str, int] = {}
    for case in cases:
        # Names must be unique for a CI to show each case: two statements whose first 60 characters agree
        # give the same "calls_per_request SELECT …" name, and a CI keeps one of them.
        seen[case.name] = seen.get(case.name, 0) + 1
        name = case.name if seen[case.name] == 1 else f"{case.name} ({seen[case.name]})"
        test = TestCase(name, classname=f"dbbench.{case.suite}")
        if case.status == FAIL:
            failure = Failure(case.summary)
            failure.text = "\n".join([case.summary, *case.evidence])
            test.result = [failure]
        elif case.status == SKIP:
            test.result = [Skipped(case.summary)]
        test.system_out = case.summary
        suite.add_testcase(test)
    document = JUnitXml()
    document.add_testsuite(suite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        document.write(str(path), pretty=True)
    except OSError as exc:
        raise BenchError(f"cannot write {path}: {exc.strerror}; choose another --junit") from None
    return path


FORMATS = ("terminal", "md", "json", "html")


def emit(
    cases: list[Case], *, title: str, header: list[str], document: dict[str, Any], format: str, junit: Path | None
) -> tuple[str, int]:
    """The document in ``format`` (to print), after writing the JUnit file and the step summary; and the exit
    code. Raises ``BenchError`` for an unknown format or a file that cannot be written."""
    if format not in FORMATS:
        raise BenchError(f"unknown --format {format!r}; use one of {', '.join(FORMATS)}")
    md = markdown(cases, title, header)
    if junit is not None:
        write_junit(cases, junit, title)
    append_step_summary(md)
    text = {
        "terminal": lambda: terminal(cases, [title, *header]),
        "md": lambda: md,
        "json": lambda: as_json(cases, document),
        "html": lambda: _html(cases, title, header),
    }[format]()
    return text, exit_code(cases)


def _html(cases: list[Case], title: str, header: list[str]) -> str:
    from reports import gate_html  # jinja2 only when HTML is asked for

    return gate_html.render(cases, title, header)


def write(text: str, path: Path) -> str:
    """Write the document to ``path`` (``reports.base.write_text``: atomically); the line to print instead."""
    from reports.base import write_text

    return f"wrote {write_text(text, path)}\n"


def compared(done: Comparison, *, format: str, junit: Path | None) -> tuple[str, int]:
    """``bench compare``'s output in ``format`` and its exit code (see ``emit``)."""
    method = "paired trials (interleaved)" if done.paired else "unpaired trials (two runs)"
    header = [
        f"base {done.base_name} → head {done.head_name}: {method}, threshold {done.threshold:.0%}, "
        f"gating on {', '.join(done.gate_on)} and the counters",
        "timed figures: each side's geometric mean over its trials of each trial's own figure (p99: of that "
        "trial's requests); a change: "
        + (
            "the geometric mean of the paired trials' head/base ratios"
            if done.paired
            else "the ratio of the two geometric means"
        )
        + " (bench run's table shows medians over trials, p99 over all trials' requests, × base as a ratio "
        "of medians: other statistics of the same trials)",
        *(f"warning: {w}" for w in done.warnings),
    ]
    return emit(
        verdict_cases(done), title="dbbench compare", header=header, document=done.to_dict(), format=format, junit=junit
    )


def checked(file: Path, outcomes: list[Outcome], *, format: str, junit: Path | None) -> tuple[str, int]:
    """``bench check``'s output in ``format`` and its exit code (see ``emit``)."""
    document = {"file": str(file), "budgets": [o.to_dict() for o in outcomes]}
    return emit(
        budget_cases(outcomes), title="dbbench check", header=[str(file)], document=document, format=format, junit=junit
    )
