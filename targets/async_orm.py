"""Async SQLAlchemy ORM (asyncpg)
Hypothesis: AsyncSession on asyncpg removes the thread hop but keeps the ORM's per-row object building and
unit-of-work plus SQLAlchemy's greenlet bridge to the driver; expected between sync ORM and raw asyncpg.
On SQLite (`--db sqlite`) the same ORM code runs on aiosqlite (one worker thread per pooled connection).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import QueuePool, Select, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import selectinload

from targets.common import instrument
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
from targets.common.models import (
    Author,
    Book,
    Fortune,
    World,
    engine_choice,
    item_row,
    report_query,
    report_row,
    search_query,
)
from targets.common.stats import Collector


class AsyncOrmStore:
    def __init__(self, engine: AsyncEngine, driver: str, refresh: Sequence[str]) -> None:
        self._engine = engine
        self._driver = driver
        self._refresh = [text(statement) for statement in refresh]
        # Rows are turned into tuples before commit, so expiring them afterwards would only cost time.
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def read_worlds(self, ids: Sequence[int]) -> list[WorldRow]:
        async with self._sessions() as session:
            return [_world_row(await _load_world(session, world_id)) for world_id in ids]

    async def read_fortunes(self) -> list[FortuneRow]:
        async with self._sessions() as session:
            return [(f.id, f.message) for f in await session.scalars(select(Fortune))]

    async def update_worlds(self, ids: Sequence[int], new_values: Mapping[int, int]) -> list[WorldRow]:
        # Load, assign, commit: the flush sends one UPDATE per changed row through asyncpg's executemany,
        # ordered by primary key so concurrent requests cannot deadlock.
        async with self._sessions.begin() as session:
            worlds = [await _load_world(session, world_id) for world_id in ids]
            for world in worlds:
                world.randomnumber = new_values[world.id]
            return [_world_row(world) for world in worlds]

    async def read_authors_lazy(self, limit: int) -> list[AuthorBooks]:
        # Async lazy loading: a plain ``author.books`` would raise MissingGreenlet, so each author's books
        # are awaited through AsyncAttrs, one query per author, as the sync ORM's lazy load does.
        async with self._sessions() as session:
            authors = (await session.scalars(_first_authors(limit))).all()
            return [(a.id, a.name, _books(await a.awaitable_attrs.books)) for a in authors]

    async def read_authors_eager(self, limit: int) -> list[AuthorBooks]:
        # selectinload: one more query for all the authors' books (WHERE author_id IN (...)).
        async with self._sessions() as session:
            query = _first_authors(limit).options(selectinload(Author.books))
            return [(a.id, a.name, _books(a.books)) for a in await session.scalars(query)]

    async def search_items(self, category: int, max_price: int, limit: int) -> list[ItemRow]:
        async with self._sessions() as session:
            return [item_row(item) for item in await session.scalars(search_query(category, max_price, limit))]

    async def read_report(self) -> list[ReportRow]:
        async with self._sessions() as session:
            return [report_row(row) for row in await session.scalars(report_query())]

    async def refresh_views(self) -> None:
        # Awaited, then committed by begin()'s exit. Borrows one of the engine's pooled connections.
        async with self._sessions.begin() as session:
            for statement in self._refresh:
                await session.execute(statement)

    def info(self) -> StoreInfo:
        pool = self._engine.pool
        assert isinstance(pool, QueuePool)
        # QueuePool exposes its size but not its overflow limit publicly.
        return StoreInfo(driver=self._driver, pool_size=pool.size(), max_overflow=pool._max_overflow)


async def _load_world(session: AsyncSession, world_id: int) -> World:
    # A query per row even for a repeated id; session.get() would answer from the identity map instead.
    return (await session.execute(select(World).where(World.id == world_id))).scalar_one()


def _world_row(world: World) -> WorldRow:
    return world.id, world.randomnumber


def _first_authors(limit: int) -> Select[Author]:
    return select(Author).order_by(Author.id).limit(limit)


def _books(books: list[Book]) -> list[tuple[int, str]]:
    return [(book.id, book.title) for book in books]


@asynccontextmanager
async def open_store(settings: Settings, collector: Collector | None) -> AsyncIterator[AsyncStore]:
    """Also what the cached variant wraps on SQLite (targets.cached)."""
    choice = engine_choice(settings.dsn, "asyncpg", "aiosqlite")
    engine = create_async_engine(
        choice.url, pool_size=settings.pool_size, max_overflow=0, connect_args=choice.connect_args
    )
    if collector is not None:
        # The sync engine's dialect execute methods: asyncpg's own logger is blind under SQLAlchemy (see instrument).
        instrument.watch_engine(engine.sync_engine, collector, f"{choice.driver} via sqlalchemy")
    try:
        await _fill_pool(engine, settings.pool_size)
        yield AsyncOrmStore(engine, choice.driver, choice.refresh)
    finally:
        await engine.dispose()


async def _fill_pool(engine: AsyncEngine, size: int) -> None:
    """Open every pooled connection now, as asyncpg's min_size does; no variant connects mid-measurement."""
    connections = await asyncio.gather(*(engine.connect() for _ in range(size)))
    for connection in connections:
        await connection.close()


app = build_async_app("async_orm", open_store)
