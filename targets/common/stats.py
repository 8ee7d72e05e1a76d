"""Per-process statement and request statistics since the last reset, served as GET /_bench/stats.

Latency percentiles come from an HDR histogram per statement fingerprint (microseconds, 1 µs..60 s,
2 significant digits): constant memory however long the window, ~1 % value precision at every percentile
including the tail, nothing to sort. A bounded reservoir would trade that for sampling error in exactly the
tail (p95) we report. hdrh's ``record_value`` is pure Python, though (~2 µs, measured here), so the hot path
only rounds the value to 7 significant bits (the same log-linear bucketing HDR uses, 0.8 % precision) and
counts it in a list indexed by bucket (the index read from a table below 65.5 ms); the HdrHistogram is filled
from those buckets when asked.

Hooks do as little as they can per statement: they append ``(sql, seconds, rows, params, calls)`` to the
request's ``RequestScope`` (from the event loop, or from the anyio worker thread running a sync route: each
request's list has one writer at a time). The middleware folds the request into the collector once, when it
ends (``Collector.record_request``): one walk over its statements, no lock, each looked up by its SQL string
in its endpoint's map (a dict keyed by the string the driver was given, whose hash Python caches), not
fingerprinted again, and added to that endpoint's tally for its fingerprint; totals per statement and per
endpoint are summed from the tallies when a snapshot is asked for. So a
request counts whole, its statements with it, or not at all: the statement totals and the endpoints' queries
agree in every window, and a statement still running when its request was ended (``end_request``) or outside
any request is not counted.
"""

from __future__ import annotations

import re
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
_EXACT_UP_TO = (1 << _SIGNIFICANT_BITS) - 1  # 0..127 µs: each value its own bucket

# Not application statements: transaction control (asyncpg's driver-level BEGIN/COMMIT/ROLLBACK around a
# transaction() block), the query asyncpg's pool runs on every release to reset the session, and
# asyncpg's type introspection (run once per connection, the first time a statement uses e.g. int[]).
# They are dropped, not bucketed: the TechEmpower counts (and the stats' consumers) are about the
# statements the application asked for; the pool reset is a per-request round trip of the pool itself.
_NOISE_WORDS = frozenset({"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"})
_NOISE_MARKERS = ("pg_advisory_unlock_all()", "typeinfo_tree", "set_config('jit'", "current_setting('jit')")
_NAMED = re.compile(r"%\((\w+)\)s|(?<![\w:]):([A-Za-z_]\w*)")


# Distinct SQL strings remembered per process (statement_key's cache, Collector's map): dynamic SQL must not grow
# either without bound.
_MAX_SQL_STRINGS = 4096


@lru_cache(maxsize=_MAX_SQL_STRINGS)
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
    return _bucket_of_us(int(seconds * 1e6))


def _bucket_of_us(us: int) -> int:
    if us < _LOWEST_US:
        return _LOWEST_US
    if us > _HIGHEST_US:
        us = _HIGHEST_US
    shift = us.bit_length() - _SIGNIFICANT_BITS
    return us if shift <= 0 else (us >> shift) << shift


# Every value bucket_us can return, ascending (127 exact values, then 64 per power of two up to _HIGHEST_US: ~1,300);
# a tally counts executions per index into this list.
_BUCKET_VALUES: list[int] = sorted(
    {_bucket_of_us(us) for us in range(_LOWEST_US, 1 << _SIGNIFICANT_BITS)}
    | {
        _bucket_of_us(m << shift)
        for shift in range(1, _HIGHEST_US.bit_length())
        for m in range(1 << (_SIGNIFICANT_BITS - 1), 1 << _SIGNIFICANT_BITS)
    }
)
_INDEX_OF_VALUE = {value: index for index, value in enumerate(_BUCKET_VALUES)}
# The bucket index of every whole microsecond below _TABLE_US (65.5 ms, above any statement this benchmark
# expects to be common): the fold looks a duration's index up here instead of computing bucket_us, ~1,800 CPU
# instructions fewer per statement (valgrind, 2026-12-01); one list of 65,536 shared int objects (512 KiB).
_TABLE_US = 1 << 16
_INDEX: list[int] = [0] * _TABLE_US
for _index, (_low, _high) in enumerate(zip(_BUCKET_VALUES, [*_BUCKET_VALUES[1:], _TABLE_US], strict=True)):
    if _low >= _TABLE_US:
        break
    _INDEX[_low : min(_high, _TABLE_US)] = [_index] * (min(_high, _TABLE_US) - _low)
del _index, _low, _high


def bucket_index(us: int) -> int:
    """The index in _BUCKET_VALUES of a duration of ``us`` whole microseconds (>= 0): bucket_us's bucket."""
    return _INDEX[us] if us < _TABLE_US else _INDEX_OF_VALUE[_bucket_of_us(us)]


@dataclass(slots=True)
class _Statement:
    """One fingerprint's totals over every endpoint, built by ``Collector.snapshot`` from the tallies."""

    calls: int = 0
    total_s: float = 0.0
    rows: int | None = 0
    endpoints: dict[str, int] = field(default_factory=dict)
    buckets: dict[int, int] = field(default_factory=dict)  # bucket_us -> count

    def histogram(self) -> HdrHistogram:
        histogram = HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)
        for value, count in self.buckets.items():
            histogram.record_value(value, count)
        return histogram


# slots: a tally is touched on every statement of every request (attribute access is cheaper without an
# instance dict).
@dataclass(slots=True)
class _Tally:
    """One fingerprint's executions within one endpoint: what the fold updates per statement. Its call count
    is the sum of its buckets (every execution is counted in exactly one), and an endpoint's queries and
    database time are the sums over its tallies, so the fold keeps none of those separately."""

    key: str  # the fingerprint
    total_s: float = 0.0
    rows: int = 0  # over the executions whose rows were known
    rows_unknown: bool = False  # some execution's rows were not known: the statement's rows are null
    # Executions per bucket, by index into _BUCKET_VALUES (a list indexed by an int is the cheapest count to bump).
    counts: list[int] = field(default_factory=lambda: [0] * len(_BUCKET_VALUES))


# One statement as a hook saw it: (SQL as given to the driver, seconds, rows or None, parameters, calls). Rows
# are None when unknown, never negative: the fold adds them without a test (a hook turns a DBAPI rowcount of -1
# into None; Collector.record_statement does it for its callers).
StatementSeen = tuple[str, float, int | None, object, int]


class RequestScope(list[StatementSeen]):
    """One request in flight: the statements it ran so far, in order (hooks append ``StatementSeen`` tuples),
    and its endpoint. They join the collector when the request ends, so a request that straddles a reset
    counts whole (its queries with it) or not at all, and queries per request stay exact however short the
    window. A list itself rather than an object holding one: the middleware makes one per request of every
    variant, and a hook appends to it per statement (one attribute look-up fewer on either path)."""

    __slots__ = ("ended", "endpoint")
    endpoint: str
    ended: float | None  # perf_counter() when ended early (targets.common.instrument.end_request)

    def __init__(self, endpoint: str) -> None:
        # No list.__init__: list.__new__ made it empty, and a super() call would cost every request.
        self.endpoint = endpoint
        self.ended = None


@dataclass(slots=True)
class _Endpoint:
    requests: int = 0
    request_time_s: float = 0.0
    tallies: dict[str, _Tally] = field(default_factory=dict)  # fingerprint -> its executions here
    # The SQL strings seen at this endpoint, each to its tally (or _NOISE): the fold's look-up, one dict get per
    # statement instead of statement_key's cache plus the tallies' dict. Bounded (see _MAX_SQL_STRINGS).
    by_sql: dict[str, _Tally] = field(default_factory=dict)


# What ``_Endpoint.by_sql`` maps a not-counted SQL string to: the fold adds to it like to any tally (cheaper than
# testing for it), and it is in no endpoint's tallies, so it is never reported.
_NOISE = _Tally("")


class Collector:
    """Aggregates statements by fingerprint and requests by endpoint; ``snapshot`` is the JSON payload.

    Not locked: ``record_request``, ``reset`` and ``snapshot`` run on the event loop's thread only (the
    middleware, and the async /_bench/stats routes) and never await, so none runs inside another; the hooks
    in worker threads (sync routes) only append to their request's ``RequestScope``. (A lock cost ~2,000 CPU
    instructions per request, valgrind, of ~500,000 for pooled /db in-process: benchmarks/instructions.py.)
    """

    def __init__(self, hook: str = "none", clock: Callable[[], float] = time.monotonic) -> None:
        self.hook = hook
        self._clock = clock
        self._endpoints: dict[str, _Endpoint] = {}
        self._samples: dict[str, list[Any] | None] = {}  # fingerprint -> its first execution's parameters
        self._since = clock()

    def reset(self) -> None:
        self._endpoints = {}
        self._samples = {}
        self._since = self._clock()

    @staticmethod
    def record_statement(
        request: RequestScope, sql: str, seconds: float, rows: int | None, params: object, calls: int = 1
    ) -> None:
        """One execution in ``request`` (``calls`` > 1: an executemany of that many parameter sets, timed as a
        whole; ``rows`` None or < 0: unknown), counted when the request is (``record_request``). Safe from
        any thread; a hook on a hot path may append the same tuple to ``request`` itself (rows None, not < 0)."""
        request.append((sql, seconds, None if rows is None or rows < 0 else rows, params, calls))

    # Runs once per request of every variant, its loop once per statement: every line here is CPU per request
    # (benchmarks/instructions.py counts it).
    def record_request(self, request: RequestScope, seconds: float) -> None:
        """The request ended after ``seconds``: it and the statements it ran join the totals."""
        endpoint = request.endpoint
        stats = self._endpoints.get(endpoint)
        if stats is None:
            stats = self._endpoints[endpoint] = _Endpoint()
        stats.requests += 1
        stats.request_time_s += seconds
        if not request:
            return
        by_sql = stats.by_sql
        for sql, elapsed, rows, params, calls in request:
            # A subscript rather than .get() (no method call), and noise counted into _NOISE like any tally
            # rather than tested for: each saves CPU instructions on every statement; _NOISE is never reported.
            try:
                tally = by_sql[sql]
            except KeyError:
                tally = self._tally_of(stats, sql, params, calls)
            tally.total_s += elapsed
            # rows is None when unknown, never negative (StatementSeen); an exception costs nothing until raised.
            try:
                tally.rows += rows  # type: ignore[operator]  # None raises TypeError, below
            except TypeError:
                tally.rows_unknown = True
            # bucket_index inline (a call is a third of the per-statement cost); an executemany is one timing
            # for ``calls`` executions, each recorded at the average. float.__trunc__ is int() of a float
            # without int's type call, and IndexError (a duration of 65.5 ms or more) costs nothing until
            # raised: ~650 CPU instructions fewer per statement than int() and a comparison (valgrind).
            us = ((elapsed if calls == 1 else elapsed / calls) * 1e6).__trunc__()
            try:
                index = _INDEX[us]
            except IndexError:
                index = bucket_index(us)
            tally.counts[index] += calls

    def _tally_of(self, stats: _Endpoint, sql: str, params: object, calls: int) -> _Tally:
        """The tally ``sql`` counts into at the endpoint ``stats`` (created, with ``params`` as its
        fingerprint's sample if it has none yet), or _NOISE; remembered in the endpoint's look-up."""
        key = statement_key(sql)
        if key is None:
            tally = _NOISE
        else:
            tally = stats.tallies.get(key) or stats.tallies.setdefault(key, _Tally(key))
            if self._samples.get(key) is None:
                first = params[0] if calls > 1 and isinstance(params, Sequence) and params else params
                self._samples[key] = jsonable_params(sql, first)
        if len(stats.by_sql) >= _MAX_SQL_STRINGS:
            stats.by_sql.clear()
        stats.by_sql[sql] = tally
        return tally

    def _statements(self) -> dict[str, _Statement]:
        """The tallies summed per fingerprint over every endpoint."""
        statements: dict[str, _Statement] = {}
        for path, endpoint in self._endpoints.items():
            for key, tally in endpoint.tallies.items():
                statement = statements.get(key) or statements.setdefault(key, _Statement())
                calls = sum(tally.counts)
                statement.calls += calls
                statement.total_s += tally.total_s
                if statement.rows is not None:
                    statement.rows = None if tally.rows_unknown else statement.rows + tally.rows
                statement.endpoints[path] = calls
                for index, count in enumerate(tally.counts):
                    if count:
                        value = _BUCKET_VALUES[index]
                        statement.buckets[value] = statement.buckets.get(value, 0) + count
        return statements

    def snapshot(self, instrumented: bool = True) -> dict[str, Any]:
        statements = sorted(self._statements().items(), key=lambda item: item[1].total_s, reverse=True)
        histograms = {key: s.histogram() for key, s in statements}
        return {
            "instrumented": instrumented,
            "hook": self.hook,
            "window_s": self._clock() - self._since,
            "endpoints": {
                path: {
                    "requests": e.requests,
                    "queries": sum(sum(t.counts) for t in e.tallies.values()),
                    "request_time_s": e.request_time_s,
                    "db_time_s": sum(t.total_s for t in e.tallies.values()),
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
                    "sample_params": self._samples.get(key),
                }
                for key, s in statements
            ],
        }
