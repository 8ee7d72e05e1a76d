"""Raw asyncpg pool
Hypothesis: the thinnest async path (hand-written SQL, statements prepared once per connection, asyncpg's
binary protocol, no ORM); the ceiling for DB-backed throughput.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import asyncpg

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
    batch_update_args,
    build_async_app,
)
from targets.common.stats import Collector

# asyncpg prepares each statement on first use and caches it per connection, so these are prepared
# statements after the first request on each connection.
SELECT_WORLD = "SELECT id, randomnumber FROM world WHERE id = $1"
SELECT_FORTUNES = "SELECT id, message FROM fortune"
UPDATE_WORLDS = (
    "UPDATE world SET randomnumber = u.r FROM unnest($1::int[], $2::int[]) AS u(id, r) WHERE world.id = u.id"
)
SELECT_AUTHORS = "SELECT id, name FROM author ORDER BY id LIMIT $1"
SELECT_BOOKS_OF_AUTHOR = "SELECT id, title FROM book WHERE author_id = $1 ORDER BY id"
SELECT_BOOKS_OF_AUTHORS = "SELECT author_id, id, title FROM book WHERE author_id = ANY($1::int[]) ORDER BY id"
SEARCH_ITEMS = (
    "SELECT id, category, price_cents, created_at FROM items WHERE category = $1 AND price_cents <= $2"
    " ORDER BY created_at DESC, id DESC LIMIT $3"
)
SELECT_REPORT = (
    "SELECT category, items, min_price_cents, avg_price_cents, median_price_cents, p90_price_cents,"
    " max_price_cents, active_days, newest_created_at FROM category_report ORDER BY category"
)
# No arguments: asyncpg sends it with the simple query protocol, in autocommit (committed on return).
REFRESH_REPORT = "REFRESH MATERIALIZED VIEW CONCURRENTLY category_report"


async def read_worlds(conn: asyncpg.Connection, ids: Sequence[int]) -> list[WorldRow]:
    # A plain loop, not an async comprehension: on Python 3.11 that is one more coroutine frame, which every
    # resume after a round trip passes through (measurable in /db's CPU per request).
    worlds = []
    for world_id in ids:
        row = await conn.fetchrow(SELECT_WORLD, world_id)
        worlds.append((row[0], row[1]))
    return worlds


async def read_fortunes(conn: asyncpg.Connection) -> list[FortuneRow]:
    return [(row[0], row[1]) for row in await conn.fetch(SELECT_FORTUNES)]


async def update_worlds(conn: asyncpg.Connection, ids: Sequence[int], new_values: Mapping[int, int]) -> list[WorldRow]:
    """Read each row, then write all new values in one statement (ids sorted: no deadlocks)."""
    rows = await read_worlds(conn, ids)
    await write_worlds(conn, new_values)
    return [(world_id, new_values[world_id]) for world_id, _ in rows]


async def write_worlds(conn: asyncpg.Connection, new_values: Mapping[int, int]) -> None:
    await conn.execute(UPDATE_WORLDS, *batch_update_args(new_values))


async def read_authors_lazy(conn: asyncpg.Connection, limit: int) -> list[AuthorBooks]:
    """One query for the authors, then one per author for its books: N+1 round trips."""
    authors = await conn.fetch(SELECT_AUTHORS, limit)
    return [
        (author_id, name, [(row[0], row[1]) for row in await conn.fetch(SELECT_BOOKS_OF_AUTHOR, author_id)])
        for author_id, name in authors
    ]


async def read_authors_eager(conn: asyncpg.Connection, limit: int) -> list[AuthorBooks]:
    """One query for the authors, one (= ANY) for all their books: two round trips at any size."""
    authors = await conn.fetch(SELECT_AUTHORS, limit)
    books: dict[int, list[tuple[int, str]]] = {author_id: [] for author_id, _ in authors}
    for author_id, book_id, title in await conn.fetch(SELECT_BOOKS_OF_AUTHORS, list(books)):
        books[author_id].append((book_id, title))  # rows arrive sorted by book id
    return [(author_id, name, books[author_id]) for author_id, name in authors]


async def search_items(conn: asyncpg.Connection, category: int, max_price: int, limit: int) -> list[ItemRow]:
    return [(row[0], row[1], row[2], row[3]) for row in await conn.fetch(SEARCH_ITEMS, category, max_price, limit)]


async def read_report(conn: asyncpg.Connection) -> list[ReportRow]:
    return [(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]) for r in await conn.fetch(SELECT_REPORT)]


async def refresh_views(conn: asyncpg.Connection) -> None:
    await conn.execute(REFRESH_REPORT)


class PoolStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def read_worlds(self, ids: Sequence[int]) -> list[WorldRow]:
        # read_worlds(conn, ids) written out here rather than awaited: /db's every request comes through this
        # method, and one coroutine fewer is ~1,500 CPU instructions fewer per request (benchmarks/instructions.py).
        # Same statement, same loop.
        async with self.pool.acquire() as conn:
            worlds = []
            for world_id in ids:
                row = await conn.fetchrow(SELECT_WORLD, world_id)
                worlds.append((row[0], row[1]))
            return worlds

    async def read_fortunes(self) -> list[FortuneRow]:
        async with self.pool.acquire() as conn:
            return await read_fortunes(conn)

    async def update_worlds(self, ids: Sequence[int], new_values: Mapping[int, int]) -> list[WorldRow]:
        async with self.pool.acquire() as conn:
            return await update_worlds(conn, ids, new_values)

    async def read_authors_lazy(self, limit: int) -> list[AuthorBooks]:
        async with self.pool.acquire() as conn:
            return await read_authors_lazy(conn, limit)

    async def read_authors_eager(self, limit: int) -> list[AuthorBooks]:
        async with self.pool.acquire() as conn:
            return await read_authors_eager(conn, limit)

    async def search_items(self, category: int, max_price: int, limit: int) -> list[ItemRow]:
        async with self.pool.acquire() as conn:
            return await search_items(conn, category, max_price, limit)

    async def read_report(self) -> list[ReportRow]:
        async with self.pool.acquire() as conn:
            return await read_report(conn)

    async def refresh_views(self) -> None:
        # Borrows one of the pool's connections for the whole refresh: requests then share one fewer.
        async with self.pool.acquire() as conn:
            await refresh_views(conn)

    def info(self) -> StoreInfo:
        # asyncpg pools have no overflow: max_size is the hard limit.
        return StoreInfo(driver="asyncpg", pool_size=self.pool.get_max_size(), max_overflow=None)


async def keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release, for a store whose statements leave no session state behind.

    asyncpg's default reset sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;`` on
    every release: one more round trip and four statements for PostgreSQL per request, as costly as /db's
    own query (py-spy, benchmarks/techempower.py). This store takes no advisory locks, opens no cursors
    outside a fetch, never LISTENs and never SETs, so there is nothing for it to undo. What still matters
    asyncpg does before calling this, whatever ``reset`` is: an open transaction is rolled back and listeners
    are dropped (``Connection._reset``).

    Measured both ways (wrk, 32 connections, /db, 2-vCPU AMD EPYC, 2026-12-01, /tmp probes with the targets'
    gc counts): with the server and PostgreSQL sharing one CPU, bench's default split on 2 CPUs, this reset
    served 5,580-5,780 req/s against 4,000-4,690 with asyncpg's default (one round trip fewer per request on
    the one CPU); with every process on every CPU the default reset served 7,210-7,400 against 6,260-6,530:
    the app's process then spent 4.7 µs per request in the garbage collector instead of 41 (9 young
    collections per 1,000 requests instead of 89, nothing collected either way). How often CPython 3.11's
    young generation fills depends on how the requests' allocations and frees interleave, which the
    scheduling changes; the reset's round trip happened to spread them. This reset is kept because bench
    measures on the split by default; benchmarks/techempower.py shows both topologies.
    """


@asynccontextmanager
async def open_pool(settings: Settings, collector: Collector | None) -> AsyncIterator[asyncpg.Pool]:
    """min_size = max_size: every connection is opened at startup and none are opened or closed later."""
    pool = await asyncpg.create_pool(
        **connargs.asyncpg_args(settings.dsn),
        min_size=settings.pool_size,
        max_size=settings.pool_size,
        # The default (300 s) closes idle connections, which would then reconnect inside a measurement.
        max_inactive_connection_lifetime=0,
        # Statement timing at the connection's query methods (targets.common.asyncpg_timing).
        connection_class=asyncpg.Connection if collector is None else timed_connection_class(collector, "pool"),
        reset=keep_session,
    )
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def open_store(settings: Settings, collector: Collector | None) -> AsyncIterator[AsyncStore]:
    async with open_pool(settings, collector) as pool:
        yield PoolStore(pool)


app = build_async_app("pooled", open_store)
