"""Markdown report: a table per (scenario, users), fit for a README or a CI step summary."""

from __future__ import annotations

from bench.results import Results
from reports import summary
from reports.terminal import BASELINE


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cell(text: str) -> str:
    # A pipe would end the table cell; a newline would end the table.
    return text.replace("|", "\\|").replace("\n", " ")


def render(results: Results) -> str:
    lines: list[str] = ["# dbbench results", ""]
    meta = results.metadata
    machine = meta.get("machine", {})
    database = meta.get("database", {})
    pool = meta.get("pool", {})
    config = meta.get("config", {})
    lines.append(
        f"{machine.get('cpu_count', '?')} CPUs ({_cell(str(machine.get('cpu_model', '?')))}), "
        f"Python {machine.get('python', '?')}, PostgreSQL {_cell(str(database.get('server_version', '?')))} "
        f"({database.get('kind', '?')}); pool size {pool.get('size', '?')} for every pooled variant; "
        f"{config.get('warmup_s', '?')} s warm-up + {config.get('duration_s', '?')} s per cell, "
        f"{config.get('trials', '?')} trial(s)."
    )
    lines.append("")
    for (scenario, users), items in summary.by_scenario(summary.rows(results)).items():
        ok = [row for row in items if row.status == "ok"]
        base = next((r.rps for r in ok if r.variant == BASELINE), max((r.rps for r in ok), default=0.0))
        lines += [f"## {_cell(scenario)} · {users} users", ""]
        lines += [
            "| variant | req/s | × base | p50 ms | p90 ms | p99 ms | errors |",
            "|---|--:|--:|--:|--:|--:|--:|",
        ]
        for row in items:
            if row.status != "ok":
                lines.append(f"| {_cell(row.variant)} | failed | | | | | {_cell(row.reason)} |")
                continue
            ratio = f"{row.rps / base:.2f}" if base else "-"
            lines.append(
                f"| {_cell(row.variant)} | {row.rps:,.0f} | {ratio} | {_ms(row.p50_ms)} | {_ms(row.p90_ms)} "
                f"| {_ms(row.p99_ms)} | {row.errors} |"
            )
        lines.append("")
    return "\n".join(lines)
