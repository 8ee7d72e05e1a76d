"""Formatting shared by the text renderers (terminal, Markdown, HTML): numbers, flags, labels.

Plain strings only, no Rich: the Markdown and HTML renderers import this without the terminal module.
"""

from __future__ import annotations

import html
import math
import re
import statistics
from dataclasses import dataclass
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


def pool_label(pool: dict[str, Any], swept: list[int] | None = None) -> str:
    """ "pool size 10 (max_overflow 0, threadpool 40)" for dbbench's variants, "pool sizes 1, 5 (swept; …)"
    when the cells swept it (``swept``: see ``swept_pool_sizes``; the configured size alone would name a
    size most cells did not have); for a server or an app whose pool dbbench did not set, what the metadata
    says of it (never a default borrowed from the variants)."""
    if "size" not in pool:
        return f"pool: {pool.get('note', 'unknown')}"
    sizes = f"pool sizes {', '.join(map(str, swept))} (swept; " if swept else f"pool size {pool['size']} ("
    return f"{sizes}max_overflow {pool.get('max_overflow', '?')}, threadpool {pool.get('threadpool_size', '?')})"


def swept_pool_sizes(results: Results) -> list[int]:
    """The pool sizes the cells were measured at when they differ (a sweep), ascending; [] otherwise."""
    sizes = {int(cell.settings["pool"]) for cell in results.cells if cell.settings.get("pool", "").isdigit()}
    return sorted(sizes) if len(sizes) > 1 else []


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


# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom (any statistics table, e.g. NIST/SEMATECH
# e-Handbook 1.3.6.7.2); past 30 the last one is kept, which only makes the interval a little wider.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045,
        2.042)  # fmt: skip


# Markdown's inline metacharacters (CommonMark backslash-escapes any ASCII punctuation): code spans, emphasis,
# links and images, strikethrough (GFM), and the backslash itself. "_" only at a word's edge: GFM never reads
# an intraword underscore as emphasis (async_orm, p99_ms stay as written). "<" and "&" are HTML's (below).
_MD_SPECIAL = re.compile(r"[\\`*\[\]~|!]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md_cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell, shown as written: Markdown's metacharacters backslash-escaped
    (a name "**x**" or "`a`" would render bold or as code), HTML escaped (GitHub renders raw HTML in Markdown;
    "&amp;" is shown as typed, not as "&"), the pipe escaped (it would end the cell) and newlines folded (they
    would end the table). A scenario, endpoint or statement name is whatever a user's locustfile or app said."""
    escaped = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text.replace("\r", " ").replace("\n", " "))
    return html.escape(escaped, quote=False)


NOISE_MARK = "≈"
NOISE_LEGEND = (
    f"{NOISE_MARK}: within this run's noise, the 95 % interval of the paired trials' ratio to base includes 1 "
    "(a single trial gives no interval: its ratio is unmarked and unproven)"
)


@dataclass(frozen=True)
class Ratio:
    """A row's req/s over its table's base row's: the ratio of the medians the table shows, and the 95 % interval
    of the ratio from the trials paired by number (trial n of both ran in the same round of the interleaved
    plan, so they shared the machine's state): exp(mean ± t·sd/√n) of the paired log-ratios, Student's paired
    t-interval, as pyperf's ``compare_to`` judges significance with Student's t (pyperf/_compare.py,
    ``is_significant``). ``ci`` is None with fewer than two pairs."""

    value: float
    ci: tuple[float, float] | None

    @property
    def within_noise(self) -> bool:
        return self.ci is not None and self.ci[0] <= 1.0 <= self.ci[1]

    def text(self) -> str:
        """ "1.43", or "≈1.04" when within noise (see NOISE_LEGEND)."""
        return f"{NOISE_MARK if self.within_noise else ''}{self.value:.2f}"


def paired_ratio_ci(pairs: list[tuple[float, float]]) -> tuple[float, float] | None:
    """95 % t-interval of head/base from (base, head) rates paired by trial; None below two usable pairs."""
    logs = [math.log(head / base) for base, head in pairs if base > 0 and head > 0]
    if len(logs) < 2:
        return None
    mean, spread = statistics.fmean(logs), statistics.stdev(logs) / math.sqrt(len(logs))
    t = _T95[min(len(logs) - 1, len(_T95)) - 1]
    return math.exp(mean - t * spread), math.exp(mean + t * spread)


class Noise:
    """Ratios to base with their noise, for every table of one results file (built once per render)."""

    def __init__(self, results: Results) -> None:
        threshold = summary.max_error_rate(results)
        self._trials: dict[tuple[str, str, int, float | None, str], dict[int, float]] = {}
        for cell in results.cells:
            if summary.judged(cell, threshold).ok:
                key = (cell.variant, cell.scenario, cell.users, cell.rate, cell.setting)
                self._trials.setdefault(key, {})[cell.trial] = cell.rps

    def ratio(self, row: Row, rows: list[Row]) -> Ratio | None:
        """``row`` against its table's base (see ``baseline``); None when there is no ratio to show."""
        base_row = _base_row(rows)
        if base_row is None or not base_row.rps or row.status != "ok":
            return None
        base = base_row.rps
        if base_row is row:
            return Ratio(1.0, None)
        mine, theirs = self.trial_rates(row), self.trial_rates(base_row)
        pairs = [(theirs[trial], mine[trial]) for trial in sorted(mine.keys() & theirs.keys())]
        return Ratio(row.rps / base, paired_ratio_ci(pairs))

    def trial_rates(self, row: Row) -> dict[int, float]:
        """{trial number: req/s} of ``row``'s trials that stand."""
        return self._trials.get(_key(row), {})

    def text(self, row: Row, rows: list[Row]) -> str:
        found = self.ratio(row, rows)
        return "-" if found is None else found.text()

    def fields(self, row: Row, rows: list[Row]) -> dict[str, Any]:
        """The ratio column ("x base") as data, for the JSON report: ``base`` (the label of the row the ratio divides
        by; None when the base ran but failed), ``ratio_to_base`` (None when the table shows "-"),
        ``ratio_to_base_ci`` ([low, high], 95 %, or None below two paired trials) and ``within_noise`` (the
        table's NOISE_MARK; False without an interval, None without a ratio)."""
        found = self.ratio(row, rows)
        base_row = _base_row(rows)
        return {
            "base": None if base_row is None else base_row.label,
            "ratio_to_base": None if found is None else found.value,
            "ratio_to_base_ci": None if found is None or found.ci is None else list(found.ci),
            "within_noise": None if found is None else found.within_noise,
        }


def _base_row(rows: list[Row]) -> Row | None:
    """The row ``baseline`` takes its req/s from (None when the base ran but failed)."""
    ok = [row for row in rows if row.status == "ok"]
    if any(r.variant == BASELINE for r in rows):
        return next((r for r in ok if r.variant == BASELINE), None)
    return max(ok, key=lambda r: r.rps, default=None)


def _key(row: Row) -> tuple[str, str, int, float | None, str]:
    return (row.variant, row.scenario, row.users, row.rate, row.setting)
