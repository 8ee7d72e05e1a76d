"""Pure shaping: results file -> flat rows, one per (variant, scenario, load point, setting), trials pooled.

Throughput is the median of the trials' rates of successful responses (robust to one disturbed trial),
with a 95 % bootstrap confidence interval over trials; latency percentiles come from the trials'
histograms (successes only) merged, never from averaging percentiles, and their intervals from
resampling whole trials. Failed requests are counted beside it (error rate, kinds). Every cell is judged
again with the file's ``--max-error-rate`` (bench.failures.verdict), so a file written before that rule
existed cannot show a server that failed every request as fast.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import calibration, failures, hist
from bench.results import Cell, Results

BOOTSTRAP_RESAMPLES = 2000
# Fixed: the same file always renders the same intervals.
BOOTSTRAP_SEED = 20261124
# A sweep's knee: the lightest load reaching this share of the peak; more load past it buys latency.
KNEE_FRACTION = 0.90
ERROR_KINDS = 10  # error kinds a row lists (the commonest); the rest are summed under OTHER_KINDS
OTHER_KINDS = "other"

Key = tuple[str, str, int, float | None, str]  # variant, scenario, users, rate, setting


@dataclass(frozen=True)
class Row:
    variant: str
    scenario: str
    users: int
    rate: float | None  # open model's target rate; None for the closed model
    setting: str  # the swept factors besides load, e.g. "pool 5 · index off"; "" when none
    trials: int
    rps: float  # successful responses per second of the window; 0 when the row failed (null in to_dict)
    rps_ci: tuple[float, float] | None  # 95 % bootstrap CI of the median over trials (>= 2 trials)
    rps_min: float
    rps_max: float
    p50_ms: float | None
    p50_ci: tuple[float, float] | None
    p90_ms: float | None
    p99_ms: float | None
    p99_ci: tuple[float, float] | None
    p999_ms: float | None
    max_ms: float | None
    service_p99_ms: float | None  # open model: send-to-response p99, without the queueing delay
    requests: int  # completed in the windows (successes + failures)
    errors: int  # failed requests among them
    error_rate: float  # errors / requests
    late: int
    # Open model: requests completed per second (successes and failures: what the load sent) / target rate;
    # below 0.95 the schedule slipped. Failures are counted apart (errors): they do not make the load slow.
    achieved_share: float | None
    generator_bound: bool
    # CPU of the load processes / (window x cores they could use: calibration.load_cores): > 0.9 means saturated
    load_cpu_share: float | None
    cpu_s_per_request: float | None  # the target's CPU seconds per request
    rss_mb: float | None  # the target's peak RSS
    db_cpu_s_per_request: float | None
    db_connections: int | None
    queries_per_request: float | None  # statements the target ran per request (its own hooks)
    db_time_share: float | None  # time inside statements / time inside requests, target side
    top_statements: list[dict[str, Any]]  # heaviest statements by total time, target side
    pg_top_statements: list[dict[str, Any]]  # the same from pg_stat_statements (server side)
    findings: list[str]  # e.g. "N+1 suspected: 21 similar statements per request"
    status: str  # "ok", or "failed" when no trial of the cell succeeded (or "skipped")
    reason: str  # why it failed; for an ok row, the trials that failed and why
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)  # per endpoint: rps, errors, p50_ms, ...
    cache_hit_ratio: float | None = None  # cache hits / lookups in the window (cached variant)
    refreshes: dict[str, Any] | None = None  # background refreshes completed in the window and their durations
    error_kinds: dict[str, int] = field(default_factory=dict)  # failed requests by kind, commonest first
    error_samples: dict[str, str] = field(default_factory=dict)  # of those kinds: the start of a response body
    user_errors: int = 0  # exceptions the locustfile's own code raised in the windows (not failed requests)
    # Where queries_per_request (and db_time_share, top_statements) came from: "target hooks", or
    # "pg_stat_statements" for a row whose target ran without hooks (--no-instrument); None: neither.
    statements_source: str | None = None
    # The target's CPU time spent in CPython's garbage collector / its CPU time, over the trials' windows
    # (targets.common.gcclock); None when a window lacks either figure.
    gc_share: float | None = None

    @property
    def load(self) -> str:
        return f"{self.rate:g} req/s" if self.rate else f"{self.users} users"

    @property
    def label(self) -> str:
        """The variant, with the setting it ran under when the run swept one: "pooled (pool 5)"."""
        return f"{self.variant} ({self.setting})" if self.setting else self.variant

    def to_dict(self) -> dict[str, Any]:
        """The row as plain data; a row that did not stand has no throughput: null, not 0. Shallow: the
        lists and dicts are the row's own (read them, don't change them); ``asdict``'s deep copy was a fifth
        of a 1,000-cell JSON report's rendering."""
        out = {name: getattr(self, name) for name in _ROW_FIELDS}
        if self.status != "ok":
            out.update(rps=None, rps_min=None, rps_max=None)
        return out


_ROW_FIELDS = tuple(f.name for f in dataclasses.fields(Row))


def interrupted(results: Results) -> str | None:
    """ "interrupted: 3 of 12 cells measured" for a file whose run did not end normally (metadata
    ``completed`` false); None when it did, or when the file does not say (written before the field)."""
    meta = results.metadata
    if meta.get("completed") is not False:
        return None
    planned = meta.get("cells_planned")
    of = f" of {planned}" if isinstance(planned, int) else ""
    return f"interrupted: {len(results.cells)}{of} cells measured (the run did not finish; figures stand as measured)"


def bootstrap_ci(
    samples: Sequence[Any], statistic: Callable[[Sequence[Any]], float], level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of ``statistic`` over ``samples`` (None below two samples).

    ``statistic`` must not depend on the order of its samples (a median, a percentile of merged
    histograms): each distinct resample is then computed once. With a few trials there are only a few
    distinct resamples (10 for 3 trials) among the 2,000 drawn, and a merged-histogram percentile
    decodes every histogram it merges, so this is the difference between milliseconds and minutes.
    The draws depend only on the number of samples (the seed is fixed), so they are made once per size.
    """
    if len(samples) < 2:
        return None
    drawn = _resamples(len(samples))
    return _interval([statistic([samples[i] for i in picks]) for picks, _ in drawn], drawn, level)


def merged_percentile_ci(trials: hist.Trials, percentile: float, level: float = 0.95) -> tuple[float, float] | None:
    """``bootstrap_ci`` of ``percentile`` (0-100) of the trials' merged histograms, resampling whole trials
    (None below two trials; a resample without samples counts as 0 ms). The same interval as
    ``bootstrap_ci(range(trials.size), <that percentile of the picked trials>)``, every resample's merge
    computed at once (``hist.Trials.resampled``)."""
    if trials.size < 2:
        return None
    drawn = _resamples(trials.size)
    values = trials.resampled([picks for picks, _ in drawn], percentile)
    return _interval([value or 0.0 for value in values], drawn, level)


def _interval(
    estimates: list[float], drawn: tuple[tuple[tuple[int, ...], int], ...], level: float
) -> tuple[float, float]:
    """The percentile interval of the estimates of ``drawn``'s resamples, each weighted by its draws."""
    weighted = sorted(zip(estimates, (weight for _, weight in drawn), strict=True))
    low_rank = int((1 - level) / 2 * (BOOTSTRAP_RESAMPLES - 1))
    high_rank = int((1 + level) / 2 * (BOOTSTRAP_RESAMPLES - 1))
    return (_ranked(weighted, low_rank), _ranked(weighted, high_rank))


@functools.cache
def _resamples(size: int) -> tuple[tuple[tuple[int, ...], int], ...]:
    """The bootstrap's resamples of ``size`` samples: each distinct multiset of indices and how often drawn."""
    rng = random.Random(BOOTSTRAP_SEED)
    drawn: dict[tuple[int, ...], int] = {}
    for _ in range(BOOTSTRAP_RESAMPLES):
        picks = tuple(sorted(rng.randrange(size) for _ in range(size)))
        drawn[picks] = drawn.get(picks, 0) + 1
    return tuple(drawn.items())


def _ranked(weighted: list[tuple[float, int]], rank: int) -> float:
    """The ``rank``-th (from 0) of the estimates in order, each repeated as often as it was drawn."""
    seen = 0
    for value, weight in weighted:
        seen += weight
        if seen > rank:
            return value
    return weighted[-1][0]


def _per_request(total: Iterable[float | None], requests: int) -> float | None:
    values = list(total)
    if not values or any(v is None for v in values) or not requests:
        return None
    return sum(v for v in values if v is not None) / requests


def _error_kinds(cells: list[Cell]) -> tuple[dict[str, int], dict[str, str]]:
    """The commonest error kinds over the trials with their counts, and a body sample of each where kept."""
    counts: dict[str, int] = {}
    for cell in cells:
        for kind, count in cell.errors.items():
            counts[kind] = counts.get(kind, 0) + count
    kinds = dict(failures.top_kinds(counts, ERROR_KINDS))
    if rest := sum(counts.values()) - sum(kinds.values()):
        kinds[OTHER_KINDS] = rest  # the listed counts always add up to the row's errors
    samples = {kind: text for cell in reversed(cells) for kind, text in cell.error_samples.items() if kind in kinds}
    return kinds, samples


def _failed_row(key: Key, cells: list[Cell], status: str = "failed") -> Row:
    """A row no trial of which stands: no throughput, no latency; what failed is counted all the same."""
    requests = sum(c.requests for c in cells)
    errors = sum(c.error_count for c in cells)
    kinds, samples = _error_kinds(cells)
    return Row(
        *key,
        trials=sum(c.status != "skipped" for c in cells),  # trials that ran, though none stands
        rps=0.0,
        rps_ci=None,
        rps_min=0.0,
        rps_max=0.0,
        p50_ms=None,
        p50_ci=None,
        p90_ms=None,
        p99_ms=None,
        p99_ci=None,
        p999_ms=None,
        max_ms=None,
        service_p99_ms=None,
        requests=requests,
        errors=errors,
        error_rate=errors / requests if requests else 0.0,
        late=0,
        achieved_share=None,
        generator_bound=False,
        load_cpu_share=None,
        cpu_s_per_request=None,
        rss_mb=None,
        db_cpu_s_per_request=None,
        db_connections=None,
        queries_per_request=None,
        db_time_share=None,
        top_statements=[],
        pg_top_statements=[],
        findings=[],
        status=status,
        reason="; ".join(sorted({failures.one_line(c.reason) for c in cells})),  # older files kept newlines
        endpoints=_endpoint_figures(cells, timed=False),
        error_kinds=kinds,
        error_samples=samples,
        user_errors=sum(sum(c.user_errors.values()) for c in cells),
    )


TOP_STATEMENTS = 5


def _statement_figures(cells: list[Cell]) -> dict[str, Any]:
    """Target-side statement statistics pooled over trials: counts add up; per-statement p50/p95
    are the median over trials (percentiles of separate windows cannot be merged exactly)."""
    stats = [c.target_stats for c in cells if c.target_stats and c.target_stats.get("instrumented")]
    if not stats:
        return _pg_statement_figures(cells)
    requests = queries = 0
    request_time = db_time = 0.0
    for window in stats:
        for endpoint in window.get("endpoints", {}).values():
            requests += int(endpoint["requests"])
            queries += int(endpoint["queries"])
            request_time += float(endpoint["request_time_s"])
            db_time += float(endpoint["db_time_s"])
    pooled: dict[str, dict[str, Any]] = {}
    for window in stats:
        for statement in window.get("statements", []):
            slot = pooled.setdefault(statement["fingerprint"], {"calls": 0, "total_ms": 0.0, "p50": [], "p95": []})
            slot["calls"] += int(statement["calls"])
            slot["total_ms"] += float(statement["total_ms"])
            slot["p50"].append(float(statement["p50_ms"]))
            slot["p95"].append(float(statement["p95_ms"]))
    heaviest = sorted(pooled.items(), key=lambda item: item[1]["total_ms"], reverse=True)[:TOP_STATEMENTS]
    return {
        "statements_source": "target hooks",
        "queries_per_request": queries / requests if requests else None,
        "db_time_share": db_time / request_time if request_time else None,
        "top_statements": [
            {
                "fingerprint": text,
                "calls": slot["calls"],
                "calls_per_request": slot["calls"] / requests if requests else None,
                "total_ms": slot["total_ms"],
                "mean_ms": slot["total_ms"] / slot["calls"] if slot["calls"] else None,
                "p50_ms": statistics.median(slot["p50"]),
                "p95_ms": statistics.median(slot["p95"]),
            }
            for text, slot in heaviest
        ],
    }


def _gc_share(cells: list[Cell]) -> float | None:
    """The share of the target's CPU time its garbage collections took over the cells' windows: the
    collections' CPU seconds (``target_stats.gc``, reset at each window's start and read at its end) over the
    target's CPU seconds in the same windows. None when any window lacks either: files written before the
    counts, a server at --url that is not dbbench's, several uvicorn workers (no target statistics)."""
    gc_s = cpu_s = 0.0
    for cell in cells:
        counts = (cell.target_stats or {}).get("gc")
        if counts is None or cell.target_cpu_s is None:
            return None
        gc_s += sum(counts.get("seconds", ()))
        cpu_s += cell.target_cpu_s
    return gc_s / cpu_s if cpu_s > 0 else None


_PG_SUMMED = ("calls", "total_ms", "rows", "shared_blks_hit", "shared_blks_read")


def _pg_statement_figures(cells: list[Cell]) -> dict[str, Any]:
    """Queries per request from pg_stat_statements, for cells whose target ran without hooks: the calls
    the server executed in the windows (reset at each window's start, read at its end; dbbench's own and
    transaction-control statements left out, bench.pgstats) over the requests completed in them. Each
    window keeps its 20 heaviest statements, which for dbbench's scenarios is all of them. No DB share
    (the server's execution time is not the time a request waited) and no target-side top statements:
    the pg_stat_statements table (pg_top_statements) stands for them."""
    windows = [c for c in cells if c.pg_statements is not None]
    requests = sum(c.requests for c in windows)
    if not windows or not requests:
        return {"statements_source": None, "queries_per_request": None, "db_time_share": None, "top_statements": []}
    calls = sum(int(raw["calls"]) for c in windows for raw in c.pg_statements or [])
    return {
        "statements_source": "pg_stat_statements",
        "queries_per_request": calls / requests,
        "db_time_share": None,
        "top_statements": [],
    }


def _pg_top(cells: list[Cell]) -> list[dict[str, Any]]:
    pooled: dict[str, dict[str, Any]] = {}
    for cell in cells:
        for raw in cell.pg_statements or []:
            key = raw.get("fingerprint") or raw["query"]
            slot = pooled.setdefault(key, {"query": raw["query"], **dict.fromkeys(_PG_SUMMED, 0)})
            for name in _PG_SUMMED:
                slot[name] += raw[name]
    heaviest = sorted(pooled.values(), key=lambda slot: slot["total_ms"], reverse=True)[:TOP_STATEMENTS]
    for slot in heaviest:
        slot["mean_ms"] = slot["total_ms"] / slot["calls"] if slot["calls"] else None
    return heaviest


def _findings(cells: list[Cell], check_info: dict[str, Any]) -> list[str]:
    endpoints = {name for cell in cells for name in cell.endpoints}
    return [
        f"{suspect['endpoint']}: {suspect['message']}"
        for suspect in check_info.get("nplus1_suspects", [])
        if suspect.get("endpoint") in endpoints
    ]


def _endpoint_figures(cells: list[Cell], timed: bool = True) -> dict[str, dict[str, Any]]:
    """Per endpoint over the trials: a scenario that mixes endpoints (reads and writes, a report and its
    refresh) is only readable endpoint by endpoint. Untimed (a failed row): the counts only, no rate."""
    names = sorted({name for cell in cells for name in cell.endpoints})
    window = sum(c.duration_s for c in cells)
    figures: dict[str, dict[str, Any]] = {}
    for name in names:
        parts = [c.endpoints[name] for c in cells if name in c.endpoints]
        requests = sum(p.requests for p in parts)
        errors = sum(p.errors for p in parts)
        figures[name] = {"requests": requests, "errors": errors, "error_rate": errors / requests if requests else 0.0}
        if timed:
            merged = hist.trials_of(tuple(p.histogram for p in parts))
            p50, p99 = merged.percentiles(range(len(parts)), (50.0, 99.0))
            sizes = [p.bytes_received for p in parts]
            figures[name].update(
                rps=(requests - errors) / window if window else 0.0,  # successful responses only
                p50_ms=p50,
                p99_ms=p99,
                # Response bytes per successful request; None in files that did not record them per endpoint.
                bytes_per_request=(
                    sum(size for size in sizes if size is not None) / (requests - errors)
                    if requests > errors and None not in sizes
                    else None
                ),
            )
    return figures


def _window_delta(cell: Cell, section: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The target's cumulative ``section`` of /_bench/info at the window's open and close edges."""
    edges = cell.target_window or {}
    opened, closed = (edges.get(edge) or {} for edge in ("open", "close"))
    first, last = opened.get(section), closed.get(section)
    return (first, last) if isinstance(first, dict) and isinstance(last, dict) else None


def _cache_hit_ratio(cells: list[Cell]) -> float | None:
    hits = lookups = 0
    for cell in cells:
        edges = _window_delta(cell, "cache")
        if edges is None:
            continue
        first, last = edges
        window_hits = int(last.get("hits", 0)) - int(first.get("hits", 0))
        hits += window_hits
        lookups += window_hits + int(last.get("misses", 0)) - int(first.get("misses", 0))
    return hits / lookups if lookups else None


def _refreshes(cells: list[Cell]) -> dict[str, Any] | None:
    durations: list[float] = []
    counts = dict.fromkeys(("requested", "coalesced", "completed", "failed"), 0)
    seen = False
    for cell in cells:
        edges = _window_delta(cell, "refresh")
        if edges is None:
            continue
        first, last = edges
        seen = True
        for name in counts:
            counts[name] += int(last.get(name, 0)) - int(first.get(name, 0))
        done = int(last.get("completed", 0)) - int(first.get("completed", 0))
        durations.extend(float(d) for d in (last.get("durations_ms") or [])[-done:] if done)
    if not seen or not counts["requested"]:
        return None
    return {
        **counts,
        "p50_ms": statistics.median(durations) if durations else None,
        "max_ms": max(durations) if durations else None,
    }


def _row(
    key: Key,
    cells: list[Cell],
    ceiling: float | None,
    check_info: dict[str, Any] | None = None,
    load_cpus: int | None = None,
) -> Row:
    ok = [c for c in cells if c.ok]
    if not ok:
        return _failed_row(key, cells, "skipped" if all(c.status == "skipped" for c in cells) else "failed")
    trials = hist.trials_of(tuple(c.histogram for c in ok))
    every = list(range(len(ok)))
    p50, p90, p99, p999 = trials.percentiles(every, (50.0, 90.0, 99.0, 99.9))
    rates = [c.rps for c in ok]
    requests = sum(c.requests for c in ok)
    errors = sum(c.error_count for c in ok)
    # Per core the load could use: a worker near a full core is saturated however many workers there are, and
    # under a CPU split (load_cpus) workers sharing the load's CPUs saturate them together.
    process_window = sum(c.duration_s * calibration.load_cores(c.load_processes, load_cpus) for c in ok)
    load_cpu_share = sum(c.load_cpu_s for c in ok) / process_window if process_window else None
    # Under a split, how busy the load's own CPUs were (anyone's work), averaged over the trials' windows.
    busy = [(c.load_cpus_busy, c.duration_s) for c in ok if c.load_cpus_busy is not None] if load_cpus else []
    busy_window = sum(d for _, d in busy)
    load_cpus_busy = sum(b * d for b, d in busy) / busy_window if busy_window else None
    rps = statistics.median(rates)
    # Open model only: send-to-response latency, without the queueing delay.
    service = hist.trials_of(tuple(c.service_histogram for c in ok)) if key[3] else None
    rss = [c.target_rss_mb for c in ok if c.target_rss_mb is not None]
    connections = [c.db_connections for c in ok if c.db_connections is not None]
    kinds, samples = _error_kinds(ok)
    return Row(
        *key,
        trials=len(ok),
        rps=rps,
        rps_ci=bootstrap_ci(rates, statistics.median),
        rps_min=min(rates),
        rps_max=max(rates),
        p50_ms=p50,
        p50_ci=merged_percentile_ci(trials, 50.0),
        p90_ms=p90,
        p99_ms=p99,
        p99_ci=merged_percentile_ci(trials, 99.0),
        p999_ms=p999,
        max_ms=trials.max_ms(),
        service_p99_ms=service.percentiles(every, [99.0])[0] if service else None,
        requests=requests,
        errors=errors,
        error_rate=errors / requests if requests else 0.0,
        late=sum(c.late for c in ok),
        achieved_share=statistics.median(c.requests / c.duration_s for c in ok) / key[3]
        if key[3] and all(c.duration_s > 0 for c in ok)
        else None,
        generator_bound=calibration.generator_bound(rps, load_cpu_share or 0.0, ceiling, load_cpus_busy),
        load_cpu_share=load_cpu_share,
        cpu_s_per_request=_per_request((c.target_cpu_s for c in ok), requests),
        rss_mb=max(rss) if rss else None,
        db_cpu_s_per_request=_per_request((c.db_cpu_s for c in ok), requests),
        db_connections=max(connections) if connections else None,
        **_statement_figures(ok),
        gc_share=_gc_share(ok),
        pg_top_statements=_pg_top(ok),
        findings=_findings(ok, check_info or {}),
        status="ok",
        reason=_partial_failure(cells, ok),
        endpoints=_endpoint_figures(ok),
        cache_hit_ratio=_cache_hit_ratio(ok),
        refreshes=_refreshes(ok),
        error_kinds=kinds,
        error_samples=samples,
        user_errors=sum(sum(c.user_errors.values()) for c in ok),
    )


def _partial_failure(cells: list[Cell], ok: list[Cell]) -> str:
    """ "1 of 3 trials failed: <why>": the figures stand on the other trials only."""
    failed = [c for c in cells if not c.ok]
    if not failed:
        return ""
    reasons = "; ".join(sorted({c.reason for c in failed}))
    return f"{len(failed)} of {len(cells)} trials failed: {reasons}"


def max_error_rate(results: Results) -> float:
    """The threshold the run recorded (files from before it existed: the default)."""
    value = results.metadata.get("config", {}).get("max_error_rate")
    return float(value) if isinstance(value, (int, float)) else failures.DEFAULT_MAX_ERROR_RATE


def judged(cell: Cell, threshold: float) -> Cell:
    """The cell as the rule reads it today: an "ok" cell whose failures are above ``threshold`` is failed."""
    if not cell.ok:
        return cell
    reason = failures.verdict(cell.requests, cell.errors, threshold, cell.error_samples, cell.user_errors)
    return cell if reason is None else dataclasses.replace(cell, status="failed", reason=reason)


def ceiling_rps(results: Results) -> float | None:
    return calibration.ceiling(results.metadata.get("calibration", {}))


def rows(results: Results) -> list[Row]:
    """Every (variant, scenario, load point) the run asked for, including variants that failed
    their contract check (status "failed", the check's first problem as the reason)."""
    groups: dict[Key, list[Cell]] = {}
    threshold = max_error_rate(results)
    for cell in (judged(c, threshold) for c in results.cells):
        groups.setdefault((cell.variant, cell.scenario, cell.users, cell.rate, cell.setting), []).append(cell)
    config = results.metadata.get("config", {})
    rates = config.get("rates") or []
    users = config.get("users") or []
    points = [(users[0], float(r)) for r in rates] if rates and users else [(u, None) for u in users]
    for check in results.checks:
        if check.ok:
            continue
        reason = "contract check failed: " + (check.problems[0] if check.problems else "unknown")
        status = "skipped" if check.skipped else "failed"
        if check.skipped:
            reason = f"not run: {check.skipped}"
        for scenario in config.get("scenarios", {}):
            for count, rate in points:
                groups[(check.variant, scenario, count, rate, "")] = [
                    Cell(check.variant, scenario, count, 0, status=status, reason=reason, rate=rate)
                ]
    variants = {name: i for i, name in enumerate(config.get("variants", []))}
    scenarios = {name: i for i, name in enumerate(config.get("scenarios", {}))}

    settings = {cell.setting: i for i, cell in reversed(list(enumerate(results.cells)))}

    def order(key: Key) -> tuple[Any, ...]:
        variant, scenario, count, rate, setting = key
        return (
            scenarios.get(scenario, len(scenarios)),
            scenario,
            variants.get(variant, len(variants)),
            variant,
            settings.get(setting, 0),
            rate or 0.0,
            count,
        )

    ceiling = ceiling_rps(results)
    infos = {check.variant: check.info for check in results.checks}
    load_cpus = calibration.load_cpu_count(results.metadata)
    return [_row(key, groups[key], ceiling, infos.get(key[0]), load_cpus) for key in sorted(groups, key=order)]


def failed_checks(results: Results) -> list[tuple[str, list[str]]]:
    return [(check.variant, check.problems) for check in results.checks if not check.ok and not check.skipped]


def by_scenario(items: Iterable[Row]) -> dict[tuple[str, str], list[Row]]:
    """Rows grouped per (scenario, load point), for side-by-side tables of the variants."""
    grouped: dict[tuple[str, str], list[Row]] = {}
    for row in items:
        grouped.setdefault((row.scenario, row.load), []).append(row)
    return grouped


@dataclass(frozen=True)
class Curve:
    """One variant's sweep over load points in one scenario (under one setting)."""

    variant: str
    scenario: str
    points: list[Row]
    setting: str = ""

    @property
    def label(self) -> str:
        return f"{self.variant} ({self.setting})" if self.setting else self.variant

    @property
    def peak(self) -> Row:
        return max(self.points, key=lambda row: row.rps)

    @property
    def knee(self) -> Row:
        """The lightest load reaching 90 % of the peak's throughput."""
        target = KNEE_FRACTION * self.peak.rps
        return next(row for row in self.points if row.rps >= target)


def curves(items: Iterable[Row]) -> list[Curve]:
    """Per (variant, scenario) with at least two successful load points, in load order."""
    grouped: dict[tuple[str, str, str], list[Row]] = {}
    for row in items:
        if row.status == "ok":
            grouped.setdefault((row.variant, row.scenario, row.setting), []).append(row)
    return [
        Curve(variant, scenario, sorted(points, key=lambda r: (r.rate or 0.0, r.users)), setting)
        for (variant, scenario, setting), points in grouped.items()
        if len(points) >= 2
    ]
