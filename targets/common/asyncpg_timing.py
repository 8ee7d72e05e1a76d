"""Statement timing for raw asyncpg (pooled, cached, databases, nopool): a ``Connection`` subclass.

asyncpg's own hook, ``Connection.add_query_logger``, cost these variants 6-20 % of their target CPU per
request (benchmarks/overhead.py, 2026-11): for every query it builds a ``LoggedQuery`` record, reads the
clock in asyncpg's own code and schedules each logger with ``loop.call_soon`` (a handle plus a copy of the
context). Timing at the connection's public query methods instead does the work inline: two
``perf_counter_ns`` reads, one contextvar read and the collector's bucketing, whose fingerprint is looked
up once per distinct SQL string (``targets.common.stats.statement_key`` is cached).

How it is installed: ``connection_class=`` of ``asyncpg.create_pool`` / ``asyncpg.connect`` (databases
forwards it to its pool). A pool hands out ``PoolConnectionProxy`` objects whose methods call the method of
``type(connection)`` (asyncpg 0.32 pool.py), so the overrides below see every call our code and databases
make: ``fetch``, ``fetchrow``, ``fetchval``, ``execute``, ``executemany``, ``fetchmany``. Like the query
logger, it does not see ``PreparedStatement`` objects (none of our code paths uses ``prepare()``), and it
sees asyncpg's pool reset, which ``statement_key`` classes as noise and is then not even timed. Type
introspection runs on internal methods and is not seen at all.

Rows: ``fetch``/``fetchmany`` give their length, ``fetchrow`` 0 or 1, ``execute`` the count in its status
("UPDATE 20"); ``fetchval`` and ``executemany`` give nothing to count, so those statements' rows are null.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from targets.common.instrument import current_request
from targets.common.stats import Collector, statement_key

HOOK = "asyncpg connection methods"


class TimedConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped
    """An asyncpg connection timing its query methods for the request being served (see the module)."""

    # Set on the subclass ``timed_connection_class`` makes: asyncpg instantiates the class itself.
    _collector: Collector

    async def fetch(self, query: str, *args: Any, **kwargs: Any) -> list[Any]:
        request = current_request.get()
        if request is None or (key := statement_key(query)) is None:
            return await super().fetch(query, *args, **kwargs)  # type: ignore[no-any-return]
        started = time.perf_counter_ns()
        rows: list[Any] = await super().fetch(query, *args, **kwargs)
        elapsed = (time.perf_counter_ns() - started) / 1e9
        self._collector.record_statement(request, query, elapsed, len(rows), args, 1, key)
        return rows

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        request = current_request.get()
        if request is None or (key := statement_key(query)) is None:
            return await super().fetchrow(query, *args, **kwargs)
        started = time.perf_counter_ns()
        row = await super().fetchrow(query, *args, **kwargs)
        elapsed = (time.perf_counter_ns() - started) / 1e9
        self._collector.record_statement(request, query, elapsed, 0 if row is None else 1, args, 1, key)
        return row

    async def fetchval(self, query: str, *args: Any, **kwargs: Any) -> Any:
        request = current_request.get()
        if request is None or (key := statement_key(query)) is None:
            return await super().fetchval(query, *args, **kwargs)
        started = time.perf_counter_ns()
        value = await super().fetchval(query, *args, **kwargs)
        self._collector.record_statement(request, query, (time.perf_counter_ns() - started) / 1e9, None, args, 1, key)
        return value

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> str:
        request = current_request.get()
        if request is None or (key := statement_key(query)) is None:
            return await super().execute(query, *args, **kwargs)  # type: ignore[no-any-return]
        started = time.perf_counter_ns()
        status: str = await super().execute(query, *args, **kwargs)
        elapsed = (time.perf_counter_ns() - started) / 1e9
        self._collector.record_statement(request, query, elapsed, status_rows(status), args, 1, key)
        return status

    async def executemany(self, command: str, args: Any, **kwargs: Any) -> None:
        request = current_request.get()
        if request is None or (key := statement_key(command)) is None:
            await super().executemany(command, args, **kwargs)
            return
        if not isinstance(args, Sequence):
            args = list(args)  # an iterator: counted and passed on as a list
        started = time.perf_counter_ns()
        await super().executemany(command, args, **kwargs)
        elapsed = (time.perf_counter_ns() - started) / 1e9
        self._collector.record_statement(request, command, elapsed, None, args, max(len(args), 1), key)

    async def fetchmany(self, query: str, args: Any, **kwargs: Any) -> list[Any]:
        request = current_request.get()
        if request is None or (key := statement_key(query)) is None:
            return await super().fetchmany(query, args, **kwargs)  # type: ignore[no-any-return]
        if not isinstance(args, Sequence):
            args = list(args)
        started = time.perf_counter_ns()
        rows: list[Any] = await super().fetchmany(query, args, **kwargs)
        elapsed = (time.perf_counter_ns() - started) / 1e9
        self._collector.record_statement(request, query, elapsed, len(rows), args, max(len(args), 1), key)
        return rows


def timed_connection_class(collector: Collector, how: str) -> type[asyncpg.Connection]:
    """A ``TimedConnection`` subclass recording into ``collector``, for ``connection_class=``; sets the
    collector's hook label to say so (``how``: where it was installed, e.g. "pool connection_class=")."""
    collector.hook = f"{HOOK} ({how})"
    return type("TimedConnection", (TimedConnection,), {"_collector": collector})


def status_rows(status: str) -> int | None:
    """The row count in a command status: "UPDATE 20" → 20, "INSERT 0 1" → 1; None when it has none
    ("REFRESH MATERIALIZED VIEW", "BEGIN")."""
    count = status.rpartition(" ")[2]
    return int(count) if count.isdigit() else None
