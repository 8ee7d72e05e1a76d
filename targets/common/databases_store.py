"""encode/databases' store: the SQL and the calls the ``databases`` variant makes, on either backend.

The PostgreSQL store (asyncpg backend) is ``DatabasesStore``; its ``_`` methods are where SQLite differs
(``targets.common.databases_sqlite`` subclasses it). Both live under ``targets.common`` so that neither
imports the variant module, which only opens the database and picks the store per database kind
(``targets.common.stores``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from databases import Database
from databases.interfaces import Record
from sqlalchemy.sql import ClauseElement

from targets.common.contract import (
    AuthorBooks,
    FortuneRow,
    ItemRow,
    ReportRow,
    StoreInfo,
    WorldRow,
    batch_update_args,
)

SELECT_WORLD = "SELECT id, randomnumber FROM world WHERE id = :id"
SELECT_FORTUNES = "SELECT id, message FROM fortune"
# CAST(... AS int[]) rather than ::int[]: SQLAlchemy's text() would read ":ids::int" as a parameter ":id".
UPDATE_WORLDS = (
    "UPDATE world SET randomnumber = u.r FROM unnest(CAST(:ids AS int[]), CAST(:rs AS int[])) AS u(id, r)"
    " WHERE world.id = u.id"
)
SELECT_AUTHORS = "SELECT id, name FROM author ORDER BY id LIMIT :limit"
SELECT_BOOKS_OF_AUTHOR = "SELECT id, title FROM book WHERE author_id = :author_id ORDER BY id"
SELECT_BOOKS_OF_AUTHORS = "SELECT author_id, id, title FROM book WHERE author_id = ANY(CAST(:ids AS int[])) ORDER BY id"
SEARCH_ITEMS = (
    "SELECT id, category, price_cents, created_at FROM items WHERE category = :category"
    " AND price_cents <= :max_price ORDER BY created_at DESC, id DESC LIMIT :limit"
)
SELECT_REPORT = (
    "SELECT category, items, min_price_cents, avg_price_cents, median_price_cents, p90_price_cents,"
    " max_price_cents, active_days, newest_created_at FROM category_report ORDER BY category"
)
REFRESH_REPORT = "REFRESH MATERIALIZED VIEW CONCURRENTLY category_report"


class Queries(Protocol):
    """What the store calls on a connection: databases.core.Connection, or its timed stand-in on SQLite."""

    async def fetch_all(self, query: ClauseElement | str, values: dict[str, Any] | None = None) -> list[Record]: ...

    async def fetch_one(self, query: ClauseElement | str, values: dict[str, Any] | None = None) -> Record | None: ...

    async def execute(self, query: ClauseElement | str, values: dict[str, Any] | None = None) -> Any: ...


class DatabasesStore:
    """The PostgreSQL store; the ``_`` methods are where SQLite differs (targets.common.databases_sqlite)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def _connection(self) -> AbstractAsyncContextManager[Queries]:
        return self._database.connection()

    async def _write_worlds(self, conn: Queries, world_ids: list[int], numbers: list[int]) -> None:
        await conn.execute(UPDATE_WORLDS, {"ids": world_ids, "rs": numbers})

    async def _books_of_authors(self, conn: Queries, author_ids: list[int]) -> list[Record]:
        return await conn.fetch_all(SELECT_BOOKS_OF_AUTHORS, {"ids": author_ids})

    def _timestamp(self, value: Any) -> datetime:
        assert isinstance(value, datetime)  # asyncpg decodes timestamp columns itself
        return value

    async def read_worlds(self, ids: Sequence[int]) -> list[WorldRow]:
        async with self._connection() as conn:
            return await _read_worlds(conn, ids)

    async def read_fortunes(self) -> list[FortuneRow]:
        async with self._connection() as conn:
            return [(row["id"], row["message"]) for row in await conn.fetch_all(SELECT_FORTUNES)]

    async def update_worlds(self, ids: Sequence[int], new_values: Mapping[int, int]) -> list[WorldRow]:
        async with self._connection() as conn:
            rows = await _read_worlds(conn, ids)
            await self._write_worlds(conn, *batch_update_args(new_values))
        return [(world_id, new_values[world_id]) for world_id, _ in rows]

    async def read_authors_lazy(self, limit: int) -> list[AuthorBooks]:
        # One query for the authors, then one per author for its books: N+1 round trips.
        async with self._connection() as conn:
            authors = await conn.fetch_all(SELECT_AUTHORS, {"limit": limit})
            result: list[AuthorBooks] = []
            for author in authors:
                books = await conn.fetch_all(SELECT_BOOKS_OF_AUTHOR, {"author_id": author["id"]})
                result.append((author["id"], author["name"], [(b["id"], b["title"]) for b in books]))
            return result

    async def read_authors_eager(self, limit: int) -> list[AuthorBooks]:
        # One query for the authors, one (= ANY) for all their books: two round trips at any size.
        async with self._connection() as conn:
            authors = await conn.fetch_all(SELECT_AUTHORS, {"limit": limit})
            books: dict[int, list[tuple[int, str]]] = {author["id"]: [] for author in authors}
            for row in await self._books_of_authors(conn, list(books)):
                books[row["author_id"]].append((row["id"], row["title"]))  # sorted by book id
            return [(author["id"], author["name"], books[author["id"]]) for author in authors]

    async def search_items(self, category: int, max_price: int, limit: int) -> list[ItemRow]:
        values = {"category": category, "max_price": max_price, "limit": limit}
        async with self._connection() as conn:
            rows = await conn.fetch_all(SEARCH_ITEMS, values)
        return [(r["id"], r["category"], r["price_cents"], self._timestamp(r["created_at"])) for r in rows]

    async def read_report(self) -> list[ReportRow]:
        async with self._connection() as conn:
            rows = await conn.fetch_all(SELECT_REPORT)
        return [
            (
                r["category"],
                r["items"],
                r["min_price_cents"],
                r["avg_price_cents"],
                r["median_price_cents"],
                r["p90_price_cents"],
                r["max_price_cents"],
                r["active_days"],
                self._timestamp(r["newest_created_at"]),
            )
            for r in rows
        ]

    async def refresh_views(self) -> None:
        # Outside a transaction block: autocommit, so it is committed when execute returns. Borrows one of
        # the pool's connections for the whole refresh.
        async with self._connection() as conn:
            await conn.execute(REFRESH_REPORT)

    def info(self) -> StoreInfo:
        # databases does not expose its pool; read the asyncpg pool it created so the figure is the real one.
        pool = self._database._backend._pool
        return StoreInfo(driver="asyncpg", pool_size=pool.get_max_size(), max_overflow=None)


async def _read_worlds(conn: Queries, ids: Sequence[int]) -> list[WorldRow]:
    rows: list[WorldRow] = []
    for world_id in ids:
        row = await conn.fetch_one(SELECT_WORLD, {"id": world_id})
        if row is None:
            raise LookupError(f"world row {world_id} not found")
        rows.append((row["id"], row["randomnumber"]))
    return rows
