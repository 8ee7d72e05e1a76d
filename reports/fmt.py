"""Formatting shared by the text renderers (terminal, Markdown, HTML): numbers, flags, labels.

Plain strings only, no Rich: the Markdown and HTML renderers import this without the terminal module.
"""

from __future__ import annotations

from typing import Any

from bench import failures, topology
from bench.results import Results
from reports import summary
from reports.summary import Row

ACHIEVED_MIN = 0.95  # open model: below this share of the target rate the schedule slipped
ACHIEVED_MAX = 1.05  # open model: above it the load ran over the schedule (e.g. an unpaced worker)
BASELINE = "pooled"  # ratios are shown against the raw asyncpg pool when it ran, else the best


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def rps_text(row: Row) -> str:
    if row.rps_ci is None:
        return f"{row.rps:,.0f}"
    low, high = row.rps_ci
    return f"{row.rps:,.0f} [{low:,.0f}–{high:,.0f}]"


def errors_text(row: Row) -> str:
    """ "0", or "4,210 (100 %)": failed requests and the error rate."""
    return f"{row.errors:,} ({failures.percent(row.error_rate)})" if row.errors else "0"


def baseline(rows: list[Row]) -> float:
    """The req/s ratios divide by; 0 (ratios shown as "-") when the base ran but failed: the README's tables
    are ratios to pooled, so a failed pooled never silently hands the base to another variant."""
    ok = [row for row in rows if row.status == "ok"]
    if any(r.variant == BASELINE for r in rows):
        return next((r.rps for r in ok if r.variant == BASELINE), 0.0)
    return max((r.rps for r in ok), default=0.0)


def flags(row: Row) -> list[str]:
    out = []
    if row.generator_bound:
        out.append("generator-bound")
    if row.achieved_share is not None and not ACHIEVED_MIN <= row.achieved_share <= ACHIEVED_MAX:
        out.append(f"achieved {row.achieved_share:.0%} of target rate")
    if row.late:
        out.append(f"{row.late} late")
    if row.user_errors:  # under --max-error-rate (above it the cell failed): the file's own code raised
        out.append(f"{row.user_errors:,} user-code error(s)")
    if row.status == "ok" and row.reason:
        out.append(row.reason)  # some trials failed: the figures stand on the others only
    return out


def failure_lines(rows: list[Row], results: Results) -> list[str]:
    """One line per failed row that was measured (a failed contract check is listed on its own)."""
    unchecked = {variant for variant, _ in summary.failed_checks(results)}
    return [
        f"{row.scenario} · {row.load} · {row.label}: {row.reason}"
        for row in rows
        if row.status == "failed" and row.variant not in unchecked
    ]


def database_label(database: dict[str, Any]) -> str:
    """ "PostgreSQL 15.20 (embedded)" or "SQLite 3.40.1 (sqlite)": the version string says which it is."""
    if "server_version" not in database:  # a --url server's own database: dbbench knows nothing of it
        return str(database.get("kind", "?"))
    version = str(database["server_version"])
    product = "" if version.startswith("SQLite") else "PostgreSQL "
    return f"{product}{version} ({database.get('kind', '?')})"


def pool_label(pool: dict[str, Any]) -> str:
    """ "pool size 10 (max_overflow 0, threadpool 40)" for dbbench's variants; for a server or an app whose pool
    dbbench did not set, what the metadata says of it (never a default borrowed from the variants)."""
    if "size" not in pool:
        return f"pool: {pool.get('note', 'unknown')}"
    return (
        f"pool size {pool['size']} (max_overflow {pool.get('max_overflow', '?')}, "
        f"threadpool {pool.get('threadpool_size', '?')})"
    )


def cpus_label(metadata: dict[str, Any]) -> str:
    """Where the load generator and the server ran (bench.topology's plan, as the results recorded it); ""
    for a file from before runs recorded it."""
    return topology.label(metadata["cpus"]) if isinstance(metadata.get("cpus"), dict) else ""


def cache_label(metadata: dict[str, Any]) -> str:
    """The cached variant's backend, only when the run had one (an app's or a --url server's cache is its own)."""
    cache = metadata.get("cache")
    if not isinstance(cache, dict) or "backend" not in cache:
        return ""
    where = f" at {cache.get('address', '?')}" if cache.get("backend") == "redis" else ""
    return f" · cache {cache['backend']}{where}"


def untimed(results: Results) -> list[str]:
    """Variants whose timed cells ran without statement timing (opt-in where the hooks cost > 5 %)."""
    names = {cell.variant for cell in results.cells if cell.ok and cell.target.get("instrumented") is False}
    order = results.metadata.get("config", {}).get("variants", [])
    return sorted(names, key=lambda name: order.index(name) if name in order else len(order))
