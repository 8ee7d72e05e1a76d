"""encode/databases on a SQLite file (its aiosqlite backend): the SQL SQLite needs, and the timing hook it lacks.

Two things differ from the PostgreSQL variant beyond the SQL:

* No pool. databases' SQLite backend opens a new aiosqlite connection (a new thread and a new sqlite3 handle)
  for every ``Database.connection()`` block and closes it at the end, so on SQLite this variant connects per
  request, without a cap; /_bench/info says so (pool_size null, the driver line spells it out).
* No hook. On PostgreSQL asyncpg's query logger times statements (registered through the pool's ``init=``);
  the aiosqlite backend has neither, so ``TimedConnection`` times each call the store makes at databases' API
  and attributes it to the request, as the logger would. It includes the hop to aiosqlite's thread, which is
  part of what a statement costs this variant.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any

from databases import Database
from databases.core import Connection, Transaction
from databases.interfaces import Record
from sqlalchemy import bindparam, text
from sqlalchemy.sql import ClauseElement

from targets.common import instrument, sqlite
from targets.common.contract import AsyncStore, Settings, StoreInfo
from targets.common.databases_store import DatabasesStore, Queries
from targets.common.stats import Collector

# SQLite has no arrays: the IN list is expanded to one placeholder per author when the query is compiled.
SELECT_BOOKS_OF_AUTHORS = "SELECT author_id, id, title FROM book WHERE author_id IN :ids ORDER BY id"
DRIVER = "aiosqlite (databases' SQLite backend: no pool, one new connection per request)"
HOOK = "databases calls timed by the store (its SQLite backend has no hook)"


class TimedConnection:
    """A databases ``Connection`` whose statements are timed and counted for the request being served
    (with ``collector`` None, instrumentation is off: calls pass straight through)."""

    def __init__(self, conn: Connection, collector: Collector | None) -> None:
        self._conn = conn
        self._collector = collector

    async def fetch_all(self, query: ClauseElement | str, values: dict[str, Any] | None = None) -> list[Record]:
        if self._collector is None:
            return await self._conn.fetch_all(query, values)
        started = time.perf_counter()
        rows = await self._conn.fetch_all(query, values)
        self._record(query, started, values)
        return rows

    async def fetch_one(self, query: ClauseElement | str, values: dict[str, Any] | None = None) -> Record | None:
        started = time.perf_counter()
        row = await self._conn.fetch_one(query, values)
        self._record(query, started, values)
        return row

    async def execute(self, query: ClauseElement | str, values: dict[str, Any] | None = None) -> Any:
        started = time.perf_counter()
        result = await self._conn.execute(query, values)
        self._record(query, started, values)
        return result

    async def execute_many(self, query: str, values: list[dict[str, Any]]) -> None:
        started = time.perf_counter()
        await self._conn.execute_many(query, values)
        self._record(query, started, values, calls=len(values))

    def transaction(self) -> Transaction:
        return self._conn.transaction()

    def _record(self, query: ClauseElement | str, started: float, values: object, calls: int = 1) -> None:
        request = instrument.current_request.get()
        if request is not None and self._collector is not None:
            sql = query if isinstance(query, str) else str(query)
            self._collector.record_statement(request, sql, time.perf_counter() - started, None, values, calls)


class SqliteDatabasesStore(DatabasesStore):
    def __init__(self, database: Database, collector: Collector | None) -> None:
        super().__init__(database)
        self._collector = collector

    def _connection(self) -> AbstractAsyncContextManager[TimedConnection]:
        return self._timed_connection()

    @asynccontextmanager
    async def _timed_connection(self) -> AsyncIterator[TimedConnection]:
        async with self._database.connection() as conn:
            yield TimedConnection(conn, self._collector)

    async def _write_worlds(self, conn: Queries, world_ids: list[int], numbers: list[int]) -> None:
        # No UPDATE ... FROM unnest: one UPDATE per distinct id (sorted), in one transaction, whose first
        # statement is a write, so a busy database makes it wait (busy timeout) rather than fail.
        assert isinstance(conn, TimedConnection)  # what _connection hands out
        async with conn.transaction():
            rows = [{"id": world_id, "r": number} for world_id, number in zip(world_ids, numbers, strict=True)]
            await conn.execute_many(sqlite.UPDATE_WORLD, rows)

    async def _books_of_authors(self, conn: Queries, author_ids: list[int]) -> list[Record]:
        query = text(SELECT_BOOKS_OF_AUTHORS).bindparams(bindparam("ids", value=author_ids, expanding=True))
        return await conn.fetch_all(query)

    def _timestamp(self, value: Any) -> datetime:
        # Stored as text (targets.common.sqlite); the raw backend returns it as it is stored.
        return datetime.fromisoformat(value)

    async def refresh_views(self) -> None:
        # The report is a table rebuilt in one transaction (targets.common.sqlite.REFRESH_REPORT); readers see the old
        # rows until the commit. Its own connection, like any request.
        async with self._connection() as conn:
            assert isinstance(conn, TimedConnection)  # what _connection hands out
            async with conn.transaction():
                for statement in sqlite.REFRESH_REPORT:
                    await conn.execute(statement)

    def info(self) -> StoreInfo:
        return StoreInfo(driver=DRIVER, pool_size=None, max_overflow=None)


@asynccontextmanager
async def open_store(settings: Settings, collector: Collector | None) -> AsyncIterator[AsyncStore]:
    # DBBENCH_POOL_SIZE has nothing to size here: the backend takes no pool options.
    database = Database(f"sqlite:///{sqlite.database_path(settings.dsn)}", **sqlite.CONNECT_ARGS)
    if collector is not None:
        collector.hook = HOOK
    await database.connect()
    try:
        yield SqliteDatabasesStore(database, collector)
    finally:
        await database.disconnect()
