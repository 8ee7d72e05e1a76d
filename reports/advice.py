"""The usual advice, measured: comparisons a run's rows support, as plain tables (title, headers, rows).

Each table appears only when the run holds both sides of its comparison: the search scenario under
``--index on,off``, a ``--pool-size`` sweep, the cache scenarios on ``cached`` and ``pooled``, the report
scenario with and without refreshes. Renderers (terminal, Markdown) only lay the strings out.
A side that failed (nothing succeeded, or errors above the run's threshold) reads "failed", never a rate,
and takes part in no ratio and no "best".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reports.summary import Row

CACHE_SCENARIOS = ("hot", "uniform", "mixed")
REPORT_READ = "/report"
REFRESH_POST = "POST /refresh-views"


@dataclass(frozen=True)
class AdviceTable:
    title: str
    headers: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _rps(row: Row) -> str:
    return f"{row.rps:,.0f}" if row.status == "ok" else row.status


def _ratio(a: Row, b: Row) -> str:
    return f"{a.rps / b.rps:.2f}×" if a.status == b.status == "ok" and b.rps else "-"


def _ok(rows: Iterable[Row]) -> list[Row]:
    return [row for row in rows if row.status == "ok"]


def _measured(rows: Iterable[Row]) -> list[Row]:
    """Ok and failed rows (a failed side is shown as failed); skipped ones were never run."""
    return [row for row in rows if row.status in ("ok", "failed")]


def _without(setting: str, name: str) -> str:
    """The setting label minus one factor, so rows differing only in that factor pair up."""
    return " · ".join(part for part in setting.split(" · ") if part and not part.startswith(f"{name} "))


def _factor(row: Row, name: str) -> str | None:
    return next((p.split(" ", 1)[1] for p in row.setting.split(" · ") if p.startswith(f"{name} ")), None)


def index_table(rows: list[Row]) -> AdviceTable | None:
    pairs: dict[tuple[str, str, str, str], dict[str, Row]] = {}
    for row in _measured(rows):
        state = _factor(row, "index")
        if state is not None:
            key = (row.scenario, row.variant, row.load, _without(row.setting, "index"))
            pairs.setdefault(key, {})[state] = row
    body = [
        (scenario, variant + (f" ({rest})" if rest else ""), load, _rps(on), _rps(off),
         _ratio(on, off), ms(on.p99_ms), ms(off.p99_ms))
        for (scenario, variant, load, rest), states in pairs.items()
        if (on := states.get("on")) is not None and (off := states.get("off")) is not None
    ]  # fmt: skip
    if not body:
        return None
    headers = ("scenario", "variant", "load", "req/s index on", "req/s off", "on/off", "p99 ms on", "p99 ms off")
    return AdviceTable("indexing: the same search with and without its index", headers, body)


def _best_sizes(points: list[tuple[int, Row]]) -> str:
    """The size with the most throughput, or every size that cannot be told from it: those whose 95 % interval
    of the median over trials reaches the best one's (a fresh-eyes run of 2026-12-01 named "best size 5" for
    a ratio of 1.02 within noise). One trial gives no interval: the highest median stands alone, unproven."""
    if not points:
        return "-"
    top_size, top = max(points, key=lambda point: point[1].rps or 0.0)
    if top.rps_ci is None:
        return str(top_size)
    tied = [size for size, row in points if row.rps_ci is not None and row.rps_ci[1] >= top.rps_ci[0]]
    return str(top_size) if len(tied) < 2 else f"{', '.join(map(str, sorted(tied)))} (within noise)"


def pool_table(rows: list[Row]) -> AdviceTable | None:
    curves: dict[tuple[str, str, str, str], list[tuple[int, Row]]] = {}
    unpooled: list[Row] = []
    for row in _measured(rows):
        size = _factor(row, "pool")
        if size is not None:
            key = (row.scenario, row.variant, row.load, _without(row.setting, "pool"))
            curves.setdefault(key, []).append((int(size), row))
        elif row.variant == "nopool":
            unpooled.append(row)
    body = []
    for (scenario, variant, load, rest), points in curves.items():
        if len(points) < 2:
            continue
        points.sort(key=lambda point: point[0])
        standing = [point for point in points if point[1].status == "ok"]
        best = _best_sizes(standing)
        curve = " → ".join(f"{size}: {_rps(row)}" for size, row in points)
        p99 = " → ".join(ms(row.p99_ms) for _, row in points)
        body.append((scenario, variant + (f" ({rest})" if rest else ""), load, curve, p99, best))
    if not body:
        return None
    # The baseline the pooling claim is about: a new connection for every request.
    swept = {(scenario, load) for scenario, _, load, _ in curves}
    body += [
        (row.scenario, row.label, row.load, f"no pool: {_rps(row)}", ms(row.p99_ms), "-")
        for row in unpooled
        if (row.scenario, row.load) in swept
    ]
    headers = ("scenario", "variant", "load", "pool size: req/s", "p99 ms", "best size")
    return AdviceTable("pooling: throughput by pool size", headers, body)


def _cached_beside_pooled(rows: list[Row]) -> list[tuple[Row, Row]]:
    """(cached row, the pooled row on the same keys, load and other settings), ok or failed."""
    pooled: dict[tuple[str, str, str], Row] = {}
    cached: list[Row] = []
    for row in _measured(rows):
        if row.scenario in CACHE_SCENARIOS and row.variant == "pooled":
            pooled[(row.scenario, row.load, _without(row.setting, "cache"))] = row
        elif row.scenario in CACHE_SCENARIOS and row.variant == "cached":
            cached.append(row)
    found = ((row, pooled.get((row.scenario, row.load, _without(row.setting, "cache")))) for row in cached)
    return [(row, base) for row, base in found if base is not None]


def cache_table(rows: list[Row]) -> AdviceTable | None:
    """Each cached row (one per cache backend the run tried) beside pooled on the same keys and load."""
    body = []
    for row, base in _cached_beside_pooled(rows):
        hit = "-" if row.cache_hit_ratio is None else f"{row.cache_hit_ratio:.0%}"
        # At the load generator's ceiling the cached figure is a floor: Locust, not the cache, was the limit.
        bound = ", ".join(f"{r.variant} generator-bound" for r in (row, base) if r.generator_bound)
        body.append((row.scenario, row.label, row.load, _rps(row), _rps(base), _ratio(row, base),
                     hit, ms(row.p99_ms), ms(base.p99_ms), bound))  # fmt: skip
    if not body:
        return None
    headers = ("scenario", "cached", "load", "cached req/s", "pooled req/s", "cached/pooled", "hit ratio",
               "p99 ms cached", "p99 ms pooled", "flags")  # fmt: skip
    return AdviceTable("caching: cached vs pooled, hot keys vs uniform keys", headers, body)


def refresh_table(rows: list[Row]) -> AdviceTable | None:
    by_key: dict[tuple[str, str, str], dict[str, Row]] = {}
    for row in _ok(rows):
        if row.scenario in ("report", "report_refresh"):
            by_key.setdefault((row.variant, row.load, row.setting), {})[row.scenario] = row
    body = []
    for (variant, load, setting), pair in by_key.items():
        quiet, busy = pair.get("report"), pair.get("report_refresh")
        if busy is None:
            continue
        post = busy.endpoints.get(REFRESH_POST, {})
        refresh = busy.refreshes or {}
        body.append((
            variant + (f" ({setting})" if setting else ""), load,
            ms(quiet.endpoints.get(REPORT_READ, {}).get("p99_ms")) if quiet else "-",
            ms(busy.endpoints.get(REPORT_READ, {}).get("p99_ms")),
            ms(post.get("p99_ms")),
            ms(refresh.get("p50_ms")), ms(refresh.get("max_ms")),
            f"{refresh.get('completed', 0)}/{refresh.get('requested', 0)}" if refresh else "-",
        ))  # fmt: skip
    if not body:
        return None
    headers = ("variant", "load", "GET /report p99 ms", "… during refreshes", "POST 202 p99 ms", "refresh p50 ms",
               "refresh max ms", "refreshes done/asked")  # fmt: skip
    return AdviceTable("background refresh: the report while its view refreshes", headers, body)


def tables(rows: list[Row]) -> list[AdviceTable]:
    found = (index_table(rows), pool_table(rows), cache_table(rows), refresh_table(rows))
    return [table for table in found if table is not None]


@dataclass(frozen=True)
class Side:
    """One side of a comparison: ``value`` is None when the side failed (drawn as failed, never as 0)."""

    pair: str  # what the sides share, e.g. "search · pooled · 32 users"
    side: str  # e.g. "index on"
    value: float | None
    status: str
    note: str = ""  # e.g. the hit ratio
    x: float | None = None  # a curve's position (pool size)


@dataclass(frozen=True)
class Paired:
    """The same comparisons as ``tables``, as numbers for charts: bars side by side, or a curve."""

    title: str
    measure: str  # the value's name and unit
    sides: tuple[str, ...]
    points: Sequence[Side]
    kind: str = "bars"  # or "curve"


def _value(row: Row) -> float | None:
    return row.rps if row.status == "ok" else None


def index_pairs(rows: list[Row]) -> Paired | None:
    points = []
    for row in _measured(rows):
        state = _factor(row, "index")
        if state in ("on", "off"):
            rest = _without(row.setting, "index")
            pair = f"{row.scenario} · {row.variant}{f' ({rest})' if rest else ''} · {row.load}"
            points.append(Side(pair, f"index {state}", _value(row), row.status, f"p99 {ms(row.p99_ms)} ms"))
    complete = [p for p in points if sum(q.pair == p.pair for q in points) == 2]
    if not complete:
        return None
    return Paired("indexing: the same search with and without its index", "successful req/s",
                  ("index on", "index off"), complete)  # fmt: skip


def pool_curves(rows: list[Row]) -> Paired | None:
    points = []
    for row in _measured(rows):
        size = _factor(row, "pool")
        if size is not None and size.isdigit():
            rest = _without(row.setting, "pool")
            pair = f"{row.scenario} · {row.variant}{f' ({rest})' if rest else ''} · {row.load}"
            points.append(Side(pair, f"pool {size}", _value(row), row.status, f"p99 {ms(row.p99_ms)} ms", int(size)))
    swept = [p for p in points if sum(q.pair == p.pair for q in points) >= 2]
    if not swept:
        return None
    sizes = tuple(dict.fromkeys(p.side for p in sorted(swept, key=lambda p: p.x or 0)))
    return Paired("pooling: throughput by pool size", "successful req/s", sizes, swept, kind="curve")


def cache_pairs(rows: list[Row]) -> Paired | None:
    points = []
    for row, base in _cached_beside_pooled(rows):
        pair = f"{row.scenario} keys · {row.label} · {row.load}"
        hit = "-" if row.cache_hit_ratio is None else f"{row.cache_hit_ratio:.0%}"
        points.append(Side(pair, "cached", _value(row), row.status, f"hit ratio {hit}"))
        points.append(Side(pair, "pooled", _value(base), base.status))
    if not points:
        return None
    return Paired("caching: cached vs pooled, hot keys vs uniform keys", "successful req/s", ("cached", "pooled"),
                  points)  # fmt: skip


def refresh_pairs(rows: list[Row]) -> Paired | None:
    by_key: dict[tuple[str, str, str], dict[str, Row]] = {}
    for row in _ok(rows):
        if row.scenario in ("report", "report_refresh"):
            by_key.setdefault((row.variant, row.load, row.setting), {})[row.scenario] = row
    points = []
    sides = ("GET /report p99, quiet", "GET /report p99, during refreshes")
    for (variant, load, setting), pair in by_key.items():
        quiet, busy = pair.get("report"), pair.get("report_refresh")
        if quiet is None or busy is None:
            continue
        name = f"{variant}{f' ({setting})' if setting else ''} · {load}"
        refresh = busy.refreshes or {}
        done = f"{refresh.get('completed', 0)}/{refresh.get('requested', 0)} refreshes done" if refresh else ""
        points.append(Side(name, sides[0], quiet.endpoints.get(REPORT_READ, {}).get("p99_ms"), quiet.status))
        points.append(Side(name, sides[1], busy.endpoints.get(REPORT_READ, {}).get("p99_ms"), busy.status, done))
    if not points:
        return None
    return Paired("background refresh: the report while its view refreshes", "p99 ms", sides, points)


def paired(rows: list[Row]) -> list[Paired]:
    found = (index_pairs(rows), pool_curves(rows), cache_pairs(rows), refresh_pairs(rows))
    return [item for item in found if item is not None]
