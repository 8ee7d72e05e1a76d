"""Per-process statement and request statistics since the last reset, served as GET /_bench/stats.

Latency percentiles come from an HDR histogram per statement fingerprint (microseconds, 1 µs..60 s,
2 significant digits): constant memory however long the window, ~1 % value precision at every percentile
including the tail, nothing to sort. A bounded reservoir would trade that for sampling error in exactly the
tail (p95) we report. hdrh's ``record_value`` is pure Python, though (~2 µs, measured here), and several
calls per request cost up to ~5 % of the raw pool's /db request, the overhead budget. So the hot path
only rounds the value to 7 significant bits (the same log-linear bucketing HDR uses, 0.8 % precision) and
counts it in a dict (~0.2 µs); the HdrHistogram is filled from those few hundred buckets when asked.

Hooks call ``record_statement`` from the event loop (asyncpg, async ORM) or from anyio's worker threads
(sync ORM), so every update happens under one lock; uncontended it costs ~0.1 µs.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from hdrh.histogram import HdrHistogram

from targets.common.fingerprint import fingerprint

_LOWEST_US = 1
_HIGHEST_US = 60_000_000
_DIGITS = 2
_SIGNIFICANT_BITS = 7  # 1/128 relative bucket width, finer than the histogram's 2 decimal digits

# Not application statements: transaction control (asyncpg's driver-level BEGIN/COMMIT/ROLLBACK around a
# transaction() block), the query asyncpg's pool runs on every release to reset the session, and
# asyncpg's type introspection (run once per connection, the first time a statement uses e.g. int[]).
# They are dropped, not bucketed: the TechEmpower counts (and the stats' consumers) are about the
# statements the application asked for; the pool reset is a per-request round trip of the pool itself.
_NOISE_WORDS = frozenset({"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"})
_NOISE_MARKERS = ("pg_advisory_unlock_all()", "typeinfo_tree", "set_config('jit'", "current_setting('jit')")
_NAMED = re.compile(r"%\((\w+)\)s|(?<![\w:]):([A-Za-z_]\w*)")


@lru_cache(maxsize=4096)
def statement_key(sql: str) -> str | None:
    """The statement's fingerprint, or None for driver and transaction noise that is not counted."""
    head = sql.lstrip().split(None, 1)
    if not head or head[0].rstrip(";").upper() in _NOISE_WORDS:
        return None
    if any(marker in sql for marker in _NOISE_MARKERS):
        return None
    return fingerprint(sql)


def jsonable_params(sql: str, params: object) -> list[Any] | None:
    """One call's parameters as a positional JSON list, in the order their placeholders appear."""
    if params is None:
        return None
    if isinstance(params, Mapping):
        names = [a or b for a, b in _NAMED.findall(sql)]
        ordered = [params[name] for name in dict.fromkeys(names) if name in params]
        return [_jsonable(value) for value in (ordered if ordered else params.values())]
    if isinstance(params, Sequence) and not isinstance(params, str | bytes):
        return [_jsonable(value) for value in params]
    return [_jsonable(params)]


def _jsonable(value: object) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        return [_jsonable(item) for item in value]
    return str(value)


def bucket_us(seconds: float) -> int:
    """``seconds`` in whole microseconds, rounded down to its top 7 significant bits (HDR-style buckets)."""
    us = int(seconds * 1e6)
    if us < _LOWEST_US:
        return _LOWEST_US
    if us > _HIGHEST_US:
        us = _HIGHEST_US
    shift = us.bit_length() - _SIGNIFICANT_BITS
    return us if shift <= 0 else (us >> shift) << shift


# slots: these are touched on every statement and every request (attribute access and creation are
# cheaper without an instance dict).
@dataclass(slots=True)
class _Statement:
    calls: int = 0
    total_s: float = 0.0
    rows: int | None = 0
    endpoints: dict[str, int] = field(default_factory=dict)
    sample_params: list[Any] | None = None
    buckets: dict[int, int] = field(default_factory=dict)  # bucket_us -> count

    def histogram(self) -> HdrHistogram:
        histogram = HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)
        for value, count in self.buckets.items():
            histogram.record_value(value, count)
        return histogram


@dataclass(slots=True)
class RequestScope:
    """One request in flight: its statements accumulate here and join the endpoint's totals when the
    request ends, so a request that straddles a reset counts whole (its queries with it) or not at
    all, and queries per request stay exact however short the window."""

    endpoint: str
    queries: int = 0
    db_time_s: float = 0.0
    ended: float | None = None  # perf_counter() when ended early (targets.common.instrument.end_request)


@dataclass(slots=True)
class _Endpoint:
    requests: int = 0
    queries: int = 0
    request_time_s: float = 0.0
    db_time_s: float = 0.0


class Collector:
    """Aggregates statements by fingerprint and requests by endpoint; ``snapshot`` is the JSON payload."""

    def __init__(self, hook: str = "none", clock: Callable[[], float] = time.monotonic) -> None:
        self.hook = hook
        self._clock = clock
        self._lock = threading.Lock()
        self._statements: dict[str, _Statement] = {}
        self._endpoints: dict[str, _Endpoint] = {}
        self._since = clock()

    def reset(self) -> None:
        with self._lock:
            self._statements = {}
            self._endpoints = {}
            self._since = self._clock()

    def record_request(self, request: RequestScope, seconds: float) -> None:
        with self._lock:
            stats = self._endpoints.get(request.endpoint)
            if stats is None:
                stats = self._endpoints[request.endpoint] = _Endpoint()
            stats.requests += 1
            stats.request_time_s += seconds
            stats.queries += request.queries
            stats.db_time_s += request.db_time_s

    def record_statement(
        self,
        request: RequestScope,
        sql: str,
        seconds: float,
        rows: int | None,
        params: object,
        calls: int = 1,
        key: str | None = None,
    ) -> None:
        """One execution (``calls`` > 1: an executemany of that many parameter sets, timed as a whole).
        ``key``: ``statement_key(sql)`` when the caller already has it (a hook that skipped noise with it)."""
        if key is None:
            key = statement_key(sql)
            if key is None:
                return
        endpoint = request.endpoint
        # An executemany is one timing for ``calls`` executions: each is recorded at the average.
        bucket = bucket_us(seconds / calls if calls > 1 else seconds)
        with self._lock:
            statement = self._statements.get(key)
            if statement is None:
                statement = self._statements[key] = _Statement()
            if statement.sample_params is None:
                first = params[0] if calls > 1 and isinstance(params, Sequence) and params else params
                statement.sample_params = jsonable_params(sql, first)
            statement.calls += calls
            statement.total_s += seconds
            if statement.rows is not None:
                statement.rows = None if rows is None or rows < 0 else statement.rows + rows
            endpoints = statement.endpoints
            endpoints[endpoint] = endpoints.get(endpoint, 0) + calls
            buckets = statement.buckets
            buckets[bucket] = buckets.get(bucket, 0) + calls
            request.queries += calls
            request.db_time_s += seconds

    def snapshot(self, instrumented: bool = True) -> dict[str, Any]:
        with self._lock:
            statements = sorted(self._statements.items(), key=lambda item: item[1].total_s, reverse=True)
            histograms = {key: s.histogram() for key, s in statements}
            return {
                "instrumented": instrumented,
                "hook": self.hook,
                "window_s": self._clock() - self._since,
                "endpoints": {
                    path: {
                        "requests": e.requests,
                        "queries": e.queries,
                        "request_time_s": e.request_time_s,
                        "db_time_s": e.db_time_s,
                    }
                    for path, e in self._endpoints.items()
                },
                "statements": [
                    {
                        "fingerprint": key,
                        "calls": s.calls,
                        "total_ms": s.total_s * 1e3,
                        "p50_ms": histograms[key].get_value_at_percentile(50) / 1e3,
                        "p95_ms": histograms[key].get_value_at_percentile(95) / 1e3,
                        "rows": s.rows,
                        "endpoints": dict(s.endpoints),
                        "sample_params": s.sample_params,
                    }
                    for key, s in statements
                ],
            }
