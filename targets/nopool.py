"""asyncpg, new connection per request
Hypothesis: the same SQL as the pooled variant but asyncpg.connect() per request, closed after; the gap to
pooled is the cost of connecting (TCP, startup, auth, backend fork) plus re-preparing every statement on
each new connection. At most DBBENCH_POOL_SIZE connections are open at once, like the pooled variants,
so connection reuse is the only difference and the server's max_connections is never exceeded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import asyncpg

from targets import pooled
from targets.common import connargs
from targets.common.asyncpg_timing import timed_connection_class
from targets.common.contract import (
    AsyncStore,
    AuthorBooks,
    FortuneRow,
    ItemRow,
    ReportRow,
    Settings,
    StoreInfo,
    WorldRow,
    build_async_app,
)
from targets.common.stats import Collector


class ConnectPerRequestStore:
    def __init__(self, dsn: str, max_connections: int, collector: Collector | None) -> None:
        self._connect_args = connargs.asyncpg_args(dsn)
        self._max_connections = max_connections
        self._slots = asyncio.Semaphore(max_connections)
        # The same timed connection class as the pooled variant's, handed to every asyncpg.connect().
        self._connection_class = (
            asyncpg.Connection if collector is None else timed_connection_class(collector, "per connection")
        )

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._slots:
            conn = await asyncpg.connect(**self._connect_args, connection_class=self._connection_class)
            try:
                yield conn
            finally:
                await conn.close()

    async def read_worlds(self, ids: Sequence[int]) -> list[WorldRow]:
        async with self._connect() as conn:
            return await pooled.read_worlds(conn, ids)

    async def read_fortunes(self) -> list[FortuneRow]:
        async with self._connect() as conn:
            return await pooled.read_fortunes(conn)

    async def update_worlds(self, ids: Sequence[int], new_values: Mapping[int, int]) -> list[WorldRow]:
        async with self._connect() as conn:
            return await pooled.update_worlds(conn, ids, new_values)

    async def read_authors_lazy(self, limit: int) -> list[AuthorBooks]:
        async with self._connect() as conn:
            return await pooled.read_authors_lazy(conn, limit)

    async def read_authors_eager(self, limit: int) -> list[AuthorBooks]:
        async with self._connect() as conn:
            return await pooled.read_authors_eager(conn, limit)

    async def search_items(self, category: int, max_price: int, limit: int) -> list[ItemRow]:
        async with self._connect() as conn:
            return await pooled.search_items(conn, category, max_price, limit)

    async def read_report(self) -> list[ReportRow]:
        async with self._connect() as conn:
            return await pooled.read_report(conn)

    async def refresh_views(self) -> None:
        # Its own new connection, like a request; it takes one of the slots while it runs.
        async with self._connect() as conn:
            await pooled.refresh_views(conn)

    def info(self) -> StoreInfo:
        # pool_size here is the cap on simultaneous connections; none is kept between requests.
        return StoreInfo(driver="asyncpg", pool_size=self._max_connections, max_overflow=None)


@asynccontextmanager
async def open_store(settings: Settings, collector: Collector | None) -> AsyncIterator[AsyncStore]:
    yield ConnectPerRequestStore(settings.dsn, settings.pool_size, collector)


app = build_async_app("nopool", open_store)
