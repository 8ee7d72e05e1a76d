"""Markdown report: a table per (scenario, users), fit for a README or a CI step summary.

Failed cells show no throughput and no ratio; a warning above the tables counts them and says why."""

from __future__ import annotations

from bench import failures
from bench.results import Results
from reports import advice, summary
from reports.base import Renderer
from reports.fmt import (
    NOISE_LEGEND,
    Noise,
    cpus_label,
    database_label,
    errors_text,
    failure_lines,
    flags,
    md_cell,
    ms,
    pool_label,
    rps_text,
    swept_pool_sizes,
)


def render(results: Results) -> str:
    lines: list[str] = ["# dbbench results", ""]
    meta = results.metadata
    machine = meta.get("machine", {})
    database = meta.get("database", {})
    pool = meta.get("pool", {})
    config = meta.get("config", {})
    lines.append(
        f"{machine.get('cpu_count', '?')} CPUs ({md_cell(str(machine.get('cpu_model', '?')))}), "
        f"Python {machine.get('python', '?')}, {md_cell(database_label(database))}; "
        f"{pool_label(pool, swept_pool_sizes(results))}; "
        f"{config.get('warmup_s', '?')} s warm-up + {config.get('duration_s', '?')} s per cell, "
        f"{config.get('trials', '?')} trial(s)."
    )
    if cpus := cpus_label(meta):
        lines += ["", f"CPUs: {md_cell(cpus)}."]
    lines.append("")
    if stopped := summary.interrupted(results):
        lines += [f"> **{stopped}**", ""]
    rows = summary.rows(results)
    failed = failure_lines(rows, results)
    if failed:
        threshold = failures.percent(summary.max_error_rate(results))
        lines += [
            f"> **{len(failed)} failed cell(s)**: no throughput shown (req/s counts successful responses only; "
            f"a cell fails above {threshold} errors or when nothing succeeded).",
            "",
        ]
    noise = Noise(results)
    if any(row.trials > 1 for row in rows):
        lines += [f"{NOISE_LEGEND}.", ""]
    for (scenario, load), items in summary.by_scenario(rows).items():
        lines += [f"## {md_cell(scenario)} · {load}", ""]
        lines += [
            "| variant | req/s [95% CI] | × base | p50 ms | p90 ms | p99 ms | errors | flags |",
            "|---|--:|--:|--:|--:|--:|--:|---|",
        ]
        for row in items:
            if row.status != "ok":
                errors = errors_text(row) if row.requests else ""
                status = f"**{row.status}**" if row.status == "failed" else row.status
                lines.append(f"| {md_cell(row.label)} | {status} | | | | | {errors} | {md_cell(row.reason)} |")
                continue
            ratio = noise.text(row, items)
            lines.append(
                f"| {md_cell(row.label)} | {rps_text(row)} | {ratio} | {ms(row.p50_ms)} | {ms(row.p90_ms)} "
                f"| {ms(row.p99_ms)} | {errors_text(row)} | {md_cell(', '.join(flags(row)))} |"
            )
        lines.append("")
    for found in advice.tables(rows):
        lines += [f"## {md_cell(found.title)}", ""]
        lines.append("| " + " | ".join(md_cell(h) for h in found.headers) + " |")
        lines.append("|" + "---|" * len(found.headers))
        lines += ["| " + " | ".join(md_cell(v) for v in values) + " |" for values in found.rows]
        lines.append("")
    return "\n".join(lines)


class MarkdownRenderer(Renderer):
    name = "md"
    extension = ".md"

    def render(self, results: Results) -> str:
        return render(results)
