"""Statement timing for raw asyncpg (pooled, cached, databases, nopool): a ``Connection`` subclass.

asyncpg's own hook, ``Connection.add_query_logger``, cost these variants 6-20 % of their target CPU per
request (benchmarks/overhead.py, 2026-11): for every query it builds a ``LoggedQuery`` record, reads the
clock in asyncpg's own code and schedules each logger with ``loop.call_soon`` (a handle plus a copy of the
context). Timing at the connection's query methods instead does the work inline.

How it is installed: ``connection_class=`` of ``asyncpg.create_pool`` / ``asyncpg.connect`` (databases
forwards it to its pool). A pool hands out ``PoolConnectionProxy`` objects whose methods call the method of
``type(connection)`` (asyncpg 0.32 pool.py), so the overrides below see every call our code and databases
make: ``fetch``, ``fetchrow``, ``fetchval``, ``execute``, ``executemany``, ``fetchmany``. Like the query
logger, it does not see ``PreparedStatement`` objects (none of our code paths uses ``prepare()``). asyncpg's
pool reset and transaction control are timed but dropped when the request is folded into the collector
(``targets.common.stats.statement_key``); type introspection runs on internal methods and is not seen at all.

Why the four hot methods are re-stated rather than wrapped: a wrapper ``async def`` awaiting asyncpg's method
is one more coroutine per statement, created, and passed through on every resume: 0.5-0.9 µs per statement
(timeit, best of 7, of a wrapper around a coroutine that suspends once; loaded 2-vCPU EPYC, 2026-12), more
than the timing itself. So ``fetch``, ``fetchrow``, ``fetchval`` and ``execute`` do what asyncpg 0.32's own
bodies do (check the connection is open, one ``Connection._execute``, or for ``execute`` without arguments one
``_protocol.query``) with the clock read around that await: no coroutine is added. tests/test_instrument.py
checks their signatures and answers against asyncpg's. The rare paths (``executemany``, ``fetchmany``) wrap
asyncpg's methods.

Per statement the hook reads the clock twice and appends one tuple to the request's list (``RequestScope``);
fingerprints, buckets and totals are done once per request when the middleware folds it into the collector.

Rows: ``fetch``/``fetchmany`` give their length, ``fetchrow`` 0 or 1, ``execute`` the count in its status
("UPDATE 20"); ``fetchval`` (databases runs its ``execute`` of an UPDATE through it) and ``executemany`` give
nothing to count, so those statements' rows are null.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter
from typing import Any

import asyncpg

from targets.common.instrument import request_now
from targets.common.stats import Collector

HOOK = "asyncpg connection methods"


class TimedConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped
    """An asyncpg connection timing its query methods for the request being served (see the module)."""

    # The hot path: asyncpg's own body with the clock read around its one await (see the module).
    async def fetch(self, query: str, *args: Any, timeout: float | None = None, record_class: Any = None) -> Any:
        self._check_open()
        request = request_now()
        started = perf_counter()
        rows = await self._execute(query, args, 0, timeout, record_class=record_class)
        if request is not None:
            request.append((query, perf_counter() - started, len(rows), args, 1))
        return rows

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None, record_class: Any = None) -> Any:
        self._check_open()
        request = request_now()
        started = perf_counter()
        data = await self._execute(query, args, 1, timeout, record_class=record_class)
        if request is not None:
            request.append((query, perf_counter() - started, len(data), args, 1))
        return data[0] if data else None

    async def fetchval(self, query: str, *args: Any, column: int = 0, timeout: float | None = None) -> Any:
        self._check_open()
        request = request_now()
        started = perf_counter()
        data = await self._execute(query, args, 1, timeout)
        if request is not None:
            request.append((query, perf_counter() - started, None, args, 1))
        return data[0][column] if data else None

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        self._check_open()
        request = request_now()
        started = perf_counter()
        if not args:
            # The simple query protocol (REFRESH ..., asyncpg's BEGIN/COMMIT, and the pool's reset query on every
            # release of a pool left at asyncpg's default reset, as databases' is): asyncpg's own body too, with
            # no query logger of anyone else's to honour (then its own method, wrapped).
            if self._query_loggers:
                result: str = await super().execute(query, timeout=timeout)
            else:
                result = await self._protocol.query(query, timeout)
            if request is not None:
                request.append((query, perf_counter() - started, status_rows(result), args, 1))
            return result
        _, status, _ = await self._execute(query, args, 0, timeout, return_status=True)
        text: str = status.decode()
        if request is not None:
            request.append((query, perf_counter() - started, status_rows(text), args, 1))
        return text

    async def executemany(self, command: str, args: Any, *, timeout: float | None = None) -> None:
        request = request_now()
        if request is None:
            await super().executemany(command, args, timeout=timeout)
            return
        if not isinstance(args, Sequence):
            args = list(args)  # an iterator: counted and passed on as a list
        started = perf_counter()
        await super().executemany(command, args, timeout=timeout)
        request.append((command, perf_counter() - started, None, args, max(len(args), 1)))

    async def fetchmany(
        self, query: str, args: Any, *, timeout: float | None = None, record_class: Any = None
    ) -> list[Any]:
        request = request_now()
        if request is None:
            return await super().fetchmany(query, args, timeout=timeout, record_class=record_class)  # type: ignore[no-any-return]
        if not isinstance(args, Sequence):
            args = list(args)
        started = perf_counter()
        rows: list[Any] = await super().fetchmany(query, args, timeout=timeout, record_class=record_class)
        request.append((query, perf_counter() - started, len(rows), args, max(len(args), 1)))
        return rows


def timed_connection_class(collector: Collector, how: str) -> type[asyncpg.Connection]:
    """The ``TimedConnection`` class, for ``connection_class=``; sets the collector's hook label to say so
    (``how``: where it was installed, e.g. "pool"). The statements go to the request being served, which the
    collector's middleware folds into ``collector`` when the request ends."""
    collector.hook = f"{HOOK} ({how})"
    return TimedConnection


def status_rows(status: str) -> int | None:
    """The row count in a command status: "UPDATE 20" → 20, "INSERT 0 1" → 1; None when it has none
    ("REFRESH MATERIALIZED VIEW", "BEGIN")."""
    count = status.rpartition(" ")[2]
    return int(count) if count.isdigit() else None
