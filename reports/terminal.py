"""Terminal report: one Rich table, a section per (scenario, users), variants in registry order."""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from bench.results import Results
from reports import summary

BASELINE = "pooled"  # ratios are shown against the raw asyncpg pool when it ran, else the best


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(results: Results) -> Table:
    grid = Table(title="dbbench results", title_justify="left", header_style="bold")
    for name, justify in [
        ("scenario", "left"),
        ("users", "right"),
        ("variant", "left"),
        ("req/s", "right"),
        ("× base", "right"),
        ("p50 ms", "right"),
        ("p90 ms", "right"),
        ("p99 ms", "right"),
        ("errors", "right"),
        ("trials", "right"),
    ]:
        grid.add_column(name, justify=justify)  # type: ignore[arg-type]
    groups = summary.by_scenario(summary.rows(results))
    for index, ((scenario, users), items) in enumerate(groups.items()):
        ok = [row for row in items if row.status == "ok"]
        base = next((r.rps for r in ok if r.variant == BASELINE), max((r.rps for r in ok), default=0.0))
        for row in items:
            if row.status != "ok":
                grid.add_row(
                    scenario,
                    str(users),
                    row.variant,
                    Text("failed", style="red"),
                    "",
                    "",
                    "",
                    "",
                    Text(row.reason[:60], style="red"),
                    "0",
                )
                continue
            ratio = f"{row.rps / base:.2f}" if base else "-"
            errors = Text(f"{row.errors} ({row.error_rate:.1%})", style="red") if row.errors else Text("0")
            grid.add_row(
                scenario,
                str(users),
                row.variant,
                f"{row.rps:,.0f}",
                ratio,
                _ms(row.p50_ms),
                _ms(row.p90_ms),
                _ms(row.p99_ms),
                errors,
                str(row.trials),
            )
        if index < len(groups) - 1:
            grid.add_section()
    return grid


def render(results: Results) -> RenderableType:
    parts: list[RenderableType] = [table(results)]
    for variant, problems in summary.failed_checks(results):
        parts.append(Text(f"{variant} failed its contract check and was not measured:", style="bold red"))
        parts.extend(Text(f"  - {problem}", style="red") for problem in problems[:10])
    database = results.metadata.get("database", {})
    pool = results.metadata.get("pool", {})
    parts.append(
        Text(
            f"database: {database.get('kind', '?')} PostgreSQL {database.get('server_version', '?')} · "
            f"pool size {pool.get('size', '?')} (max_overflow {pool.get('max_overflow', '?')}, "
            f"threadpool {pool.get('threadpool_size', '?')}) · latencies from HDR histograms (µs resolution)",
            style="dim",
        )
    )
    return Group(*parts)


def console() -> Console:
    """A console that keeps the table readable when piped (Rich assumes 80 columns off a terminal)."""
    out = Console()
    if not out.is_terminal:
        out.width = 140
    return out


def print_report(results: Results, out: Console | None = None) -> None:
    (out or console()).print(render(results))
