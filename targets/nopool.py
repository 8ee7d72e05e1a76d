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
from targets.contract import AsyncStore, FortuneRow, Settings, StoreInfo, WorldRow, build_async_app


class ConnectPerRequestStore:
    def __init__(self, dsn: str, max_connections: int) -> None:
        self._dsn = dsn
        self._max_connections = max_connections
        self._slots = asyncio.Semaphore(max_connections)

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._slots:
            conn = await asyncpg.connect(self._dsn)
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

    def info(self) -> StoreInfo:
        # pool_size here is the cap on simultaneous connections; none is kept between requests.
        return StoreInfo(driver="asyncpg", pool_size=self._max_connections, max_overflow=None)


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[AsyncStore]:
    yield ConnectPerRequestStore(settings.dsn, settings.pool_size)


app = build_async_app("nopool", open_store)
