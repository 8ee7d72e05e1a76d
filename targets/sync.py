"""Sync SQLAlchemy ORM (psycopg 3) in the threadpool
Hypothesis: the most abstraction: ORM Session per request on blocking psycopg 3, `def` routes run in
anyio's 40-thread pool, so each request pays a thread hop, ORM unit-of-work bookkeeping and
BEGIN/ROLLBACK around its queries; expected the slowest of the pooled variants.
On SQLite (`--db sqlite`) the same ORM code runs on pysqlite (the standard library's sqlite3).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from sqlalchemy import Engine, QueuePool, Select, create_engine, select, text
from sqlalchemy.orm import Session, selectinload, sessionmaker

from targets.common import instrument
from targets.common.contract import (
    AuthorBooks,
    FortuneRow,
    ItemRow,
    ReportRow,
    Settings,
    StoreInfo,
    SyncStore,
    WorldRow,
    build_sync_app,
)
from targets.common.models import (
    Author,
    Fortune,
    World,
    engine_choice,
    item_row,
    report_query,
    report_row,
    search_query,
)
from targets.common.stats import Collector


class OrmStore:
    def __init__(self, engine: Engine, driver: str, refresh: Sequence[str]) -> None:
        self._engine = engine
        self._driver = driver
        self._refresh = [text(statement) for statement in refresh]
        self._sessions = sessionmaker(engine)

    def read_worlds(self, ids: Sequence[int]) -> list[WorldRow]:
        with self._sessions() as session:
            return [_world_row(_load_world(session, world_id)) for world_id in ids]

    def read_fortunes(self) -> list[FortuneRow]:
        with self._sessions() as session:
            return [(f.id, f.message) for f in session.scalars(select(Fortune))]

    def update_worlds(self, ids: Sequence[int], new_values: Mapping[int, int]) -> list[WorldRow]:
        # The ORM idiom: load, assign, commit. The flush emits one UPDATE per changed row (executemany,
        # which psycopg 3 pipelines) in primary-key order, so concurrent requests cannot deadlock.
        with self._sessions.begin() as session:
            worlds = [_load_world(session, world_id) for world_id in ids]
            for world in worlds:
                world.randomnumber = new_values[world.id]
            return [_world_row(world) for world in worlds]

    def read_authors_lazy(self, limit: int) -> list[AuthorBooks]:
        # The classic N+1: each ``author.books`` access lazy-loads that author's books with its own query.
        with self._sessions() as session:
            return [_author_books(author) for author in session.scalars(_first_authors(limit))]

    def read_authors_eager(self, limit: int) -> list[AuthorBooks]:
        # selectinload: one more query for all the authors' books (WHERE author_id IN (...)).
        with self._sessions() as session:
            query = _first_authors(limit).options(selectinload(Author.books))
            return [_author_books(author) for author in session.scalars(query)]

    def search_items(self, category: int, max_price: int, limit: int) -> list[ItemRow]:
        with self._sessions() as session:
            return [item_row(item) for item in session.scalars(search_query(category, max_price, limit))]

    def read_report(self) -> list[ReportRow]:
        with self._sessions() as session:
            return [report_row(row) for row in session.scalars(report_query())]

    def refresh_views(self) -> None:
        # Committed by begin()'s exit. Borrows one of the engine's pooled connections for the whole refresh.
        with self._sessions.begin() as session:
            for statement in self._refresh:
                session.execute(statement)

    def info(self) -> StoreInfo:
        pool = self._engine.pool
        assert isinstance(pool, QueuePool)
        # QueuePool exposes its size but not its overflow limit publicly.
        return StoreInfo(driver=self._driver, pool_size=pool.size(), max_overflow=pool._max_overflow)


def _load_world(session: Session, world_id: int) -> World:
    # A query per row even for a repeated id; session.get() would answer from the identity map instead.
    return session.execute(select(World).where(World.id == world_id)).scalar_one()


def _world_row(world: World) -> WorldRow:
    return world.id, world.randomnumber


def _first_authors(limit: int) -> Select[Author]:
    return select(Author).order_by(Author.id).limit(limit)


def _author_books(author: Author) -> AuthorBooks:
    return author.id, author.name, [(book.id, book.title) for book in author.books]


@contextmanager
def open_store(settings: Settings, collector: Collector | None) -> Iterator[SyncStore]:
    choice = engine_choice(settings.dsn, "psycopg", "pysqlite")
    engine = create_engine(choice.url, pool_size=settings.pool_size, max_overflow=0, connect_args=choice.connect_args)
    if collector is not None:
        instrument.watch_engine(engine, collector, choice.driver)
    try:
        _fill_pool(engine, settings.pool_size)
        yield OrmStore(engine, choice.driver, choice.refresh)
    finally:
        engine.dispose()


def _fill_pool(engine: Engine, size: int) -> None:
    """Open every pooled connection now, as asyncpg's min_size does; no variant connects mid-measurement."""
    connections = [engine.connect() for _ in range(size)]
    for connection in connections:
        connection.close()


app = build_sync_app("sync", open_store)
