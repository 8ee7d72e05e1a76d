"""Terminal report: one Rich table, a section per (scenario, load point), variants in registry order;
a second table with each sweep's peak and knee when the run swept users or rates. Failed cells show no
throughput and no ratio, their error rate in red, and their full reason under the tables."""

from __future__ import annotations

import io
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from bench import failures
from bench.results import Results
from reports import advice, summary
from reports.base import Renderer
from reports.fmt import (
    NOISE_LEGEND,
    Noise,
    cache_label,
    cpus_label,
    database_label,
    errors_text,
    failure_lines,
    flags,
    ms,
    pool_label,
    rps_text,
    swept_pool_sizes,
    untimed,
)
from reports.summary import Row


def _clip(text: str, limit: int = 70) -> str:
    """A table cell's share of a long reason; the whole reason is printed under the table."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table(rows: list[Row], noise: Noise) -> Table:
    grid = Table(title="dbbench results", title_justify="left", header_style="bold")
    columns = [
        ("scenario", "left"),
        ("load", "right"),
        ("variant", "left"),
        ("req/s [95% CI]", "right"),
        ("× base", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("errors", "right"),
        ("CPU ms/req", "right"),
        ("RSS MB", "right"),
        ("DB conns", "right"),
        ("flags", "left"),
    ]
    for name, justify in columns:
        grid.add_column(name, justify=justify)  # type: ignore[arg-type]
    groups = summary.by_scenario(rows)
    for index, ((scenario, load), items) in enumerate(groups.items()):
        for row in items:
            if row.status != "ok":
                style = "bold red" if row.status == "failed" else "dim"
                errors = Text(errors_text(row), style=style) if row.requests else ""
                # No throughput and no ratio: whatever did succeed in a failed cell is not a result.
                grid.add_row(scenario, load, row.label, Text(row.status, style=style), "", "", "", errors,
                             "", "", "", Text(_clip(row.reason), style=style))  # fmt: skip
                continue
            errors = Text(errors_text(row), style="red") if row.errors else Text("0")
            cpu = "-" if row.cpu_s_per_request is None else f"{row.cpu_s_per_request * 1000:.2f}"
            rss = "-" if row.rss_mb is None else f"{row.rss_mb:.0f}"
            conns = "-" if row.db_connections is None else str(row.db_connections)
            grid.add_row(
                scenario,
                load,
                row.label,
                rps_text(row),
                noise.text(row, items),
                ms(row.p50_ms),
                ms(row.p99_ms),
                errors,
                cpu,
                rss,
                conns,
                Text(", ".join(flags(row)), style="yellow"),
            )
        if index < len(groups) - 1:
            grid.add_section()
    return grid


def sweep_table(rows: list[Row]) -> Table | None:
    found = summary.curves(rows)
    if not found:
        return None
    grid = Table(title="sweeps: peak and knee", title_justify="left", header_style="bold")
    for name in (
        "scenario",
        "variant",
        "points",
        "peak req/s",
        "at",
        "p99 ms at peak",
        "knee",
        "p99 ms at knee",
    ):
        grid.add_column(name)
    for curve in found:
        peak, knee = curve.peak, curve.knee
        points = " → ".join(f"{row.rps:,.0f}" for row in curve.points)
        grid.add_row(
            curve.scenario,
            curve.label,
            points,
            f"{peak.rps:,.0f}",
            peak.load,
            ms(peak.p99_ms),
            knee.load,
            ms(knee.p99_ms),
        )
    return grid


# "source": target hooks, or pg_stat_statements for a variant run without them (--no-instrument).
_TIME_COLUMNS = ("scenario", "variant", "queries/req", "source", "DB share", "GC share", "heaviest statement",
                 "mean ms", "findings")  # fmt: skip


def time_table(rows: list[Row]) -> Table | None:
    """Where the time goes: statements per request, the database's share of request time, the garbage
    collector's share of the target's CPU, the heaviest statement."""
    measured = [row for row in rows if row.status == "ok" and row.queries_per_request is not None]
    if not measured:
        return None
    grid = Table(title="where the time goes (statement timings)", title_justify="left", header_style="bold")
    for name in _TIME_COLUMNS:
        grid.add_column(name)
    seen: set[tuple[str, str]] = set()
    for row in measured:
        if (row.scenario, row.label) in seen:
            continue  # one line per variant and scenario: the first load point
        seen.add((row.scenario, row.label))
        # Without hooks the heaviest statement is pg_stat_statements' (its text under "query").
        top = (row.top_statements or row.pg_top_statements or [{}])[0]
        share = "-" if row.db_time_share is None else f"{row.db_time_share:.0%}"
        collector = "-" if row.gc_share is None else f"{row.gc_share:.0%}"
        grid.add_row(row.scenario, row.label, f"{row.queries_per_request:.1f}", row.statements_source or "-", share,
                     collector, str(top.get("fingerprint") or top.get("query") or "-")[:60], ms(top.get("mean_ms")),
                     Text("; ".join(row.findings), style="yellow"))  # fmt: skip
    return grid


def profile_table(results: Results) -> Table | None:
    if not results.profiles:
        return None
    grid = Table(title="profiles: top frames by self time", title_justify="left", header_style="bold")
    for name in ("scenario", "variant", "requests", "top frames (self time share)", "HTML"):
        grid.add_column(name)
    for entry in results.profiles:
        if "error" in entry:
            grid.add_row(entry["scenario"], entry["variant"], "-", Text(entry["error"], style="red"), "")
            continue
        frames = ", ".join(f"{f['function']} {f['self_share']:.0%}" for f in entry["top_frames"][:3])
        grid.add_row(entry["scenario"], entry["variant"], str(entry.get("requests", "-")), frames,
                     f"{entry['directory']}/{entry['files']['html']}")  # fmt: skip
    return grid


def footer(results: Results) -> Text:
    database = results.metadata.get("database", {})
    calibrated = results.metadata.get("calibration", {})
    ceiling = (
        f"load generator ceiling {calibrated['rps']:,.0f} req/s"
        if summary.ceiling_rps(results)
        else "no load generator ceiling (Locust was not the limit)"
        if calibrated.get("locust_limited") is False
        else "not calibrated"
    )
    pool = pool_label(results.metadata.get("pool", {}), swept_pool_sizes(results))
    return Text(
        f"database: {database_label(database)} · {pool}"
        f"{cache_label(results.metadata)} · {ceiling} · latencies from HDR histograms (µs resolution)"
        + (f"\nCPUs: {cpus}" if (cpus := cpus_label(results.metadata)) else ""),
        style="dim",
    )


def advice_tables(rows: list[Row]) -> list[Table]:
    out = []
    for found in advice.tables(rows):
        grid = Table(title=found.title, title_justify="left", header_style="bold")
        for name in found.headers:
            grid.add_column(name)
        for values in found.rows:
            grid.add_row(*values)
        out.append(grid)
    return out


def render(results: Results) -> RenderableType:
    rows = summary.rows(results)  # once: every table below is a view of the same rows
    parts: list[RenderableType] = [table(rows, Noise(results))]
    if any(row.trials > 1 for row in rows):
        parts.append(Text(NOISE_LEGEND, style="dim"))
    if stopped := summary.interrupted(results):
        parts.append(Text(stopped, style="bold yellow"))
    failed = failure_lines(rows, results)
    if failed:
        threshold = failures.percent(summary.max_error_rate(results))
        parts.append(Text(f"{len(failed)} failed cell(s): no throughput shown (req/s counts successful "
                          f"responses only; a cell fails above {threshold} errors or when nothing succeeded):",
                          style="bold red"))  # fmt: skip
        parts.extend(Text(f"  - {line}", style="red") for line in failed)
    for extra in (sweep_table(rows), *advice_tables(rows), time_table(rows), profile_table(results)):
        if extra is not None:
            parts.append(extra)
    for check in results.checks:
        if check.skipped:
            parts.append(Text(f"{check.variant} was not run: {check.skipped}", style="dim"))
    for variant, problems in summary.failed_checks(results):
        parts.append(Text(f"{variant} failed its contract check and was not measured:", style="bold red"))
        parts.extend(Text(f"  - {problem}", style="red") for problem in problems[:10])
    off = untimed(results)
    if off:
        parts.append(Text(
            f"statement timing was off for {', '.join(off)}: its hooks cost those variants more than 5 % "
            "of CPU per request (benchmarks/overhead.py); bench run --instrument turns it on for all",
            style="dim",
        ))  # fmt: skip
    parts.append(footer(results))
    return Group(*parts)


def console() -> Console:
    """A console that keeps the table readable when piped (Rich assumes 80 columns off a terminal)."""
    out = Console()
    if not out.is_terminal:
        out.width = 160
    return out


def print_report(results: Results, out: Console | None = None) -> None:
    (out or console()).print(render(results))


class TerminalRenderer(Renderer):
    """Rich tables: ``show`` prints with colour on a terminal; ``render`` gives the plain text (``-o``)."""

    name = "terminal"
    extension = ".txt"

    def render(self, results: Results) -> str:
        out = Console(width=160, record=True, file=io.StringIO())
        out.print(render(results))
        return out.export_text()

    def show(self, results: Results, out: TextIO | None = None) -> None:
        print_report(results, None if out is None else Console(file=out, width=160))
