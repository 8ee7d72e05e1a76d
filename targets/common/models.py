"""SQLAlchemy ORM mapping of targets.common.schema's tables, shared by the sync and async ORM variants, with the
queries both build the same way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Select, String, select
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from targets.common import connargs, sqlite
from targets.common.schema import ItemRow, ReportRow

# The ORM has no REFRESH construct: the variants send this through text() in a session transaction
# (REFRESH ... CONCURRENTLY may run inside a transaction block) and commit.
REFRESH_REPORT = "REFRESH MATERIALIZED VIEW CONCURRENTLY category_report"


class Base(AsyncAttrs, DeclarativeBase):
    # AsyncAttrs adds ``obj.awaitable_attrs.<relationship>``: the async ORM's way to lazy-load, since a
    # plain attribute access that needs a query raises MissingGreenlet under AsyncSession.
    pass


class World(Base):
    __tablename__ = "world"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    randomnumber: Mapped[int]


class Fortune(Base):
    __tablename__ = "fortune"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    message: Mapped[str] = mapped_column(String(2048))


class Author(Base):
    __tablename__ = "author"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))
    # lazy="select" (the default) is the N+1 pattern when iterated; callers opt into selectinload.
    books: Mapped[list[Book]] = relationship(order_by="Book.id", lazy="select")


class Book(Base):
    __tablename__ = "book"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
    title: Mapped[str] = mapped_column(String(200))


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    category: Mapped[int]
    price_cents: Mapped[int]
    created_at: Mapped[datetime]


class CategoryReport(Base):
    """The category_report materialized view (a plain table on SQLite), mapped read-only (the ORM never
    writes it: the refresh is SQL)."""

    __tablename__ = "category_report"

    category: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    items: Mapped[int]
    min_price_cents: Mapped[int]
    avg_price_cents: Mapped[int]
    median_price_cents: Mapped[int]
    p90_price_cents: Mapped[int]
    max_price_cents: Mapped[int]
    active_days: Mapped[int]
    newest_created_at: Mapped[datetime]


def search_query(category: int, max_price: int, limit: int) -> Select[Item]:
    return (
        select(Item)
        .where(Item.category == category, Item.price_cents <= max_price)
        .order_by(Item.created_at.desc(), Item.id.desc())
        .limit(limit)
    )


def report_query() -> Select[CategoryReport]:
    return select(CategoryReport).order_by(CategoryReport.category)


def item_row(item: Item) -> ItemRow:
    return item.id, item.category, item.price_cents, item.created_at


def report_row(row: CategoryReport) -> ReportRow:
    return (
        row.category,
        row.items,
        row.min_price_cents,
        row.avg_price_cents,
        row.median_price_cents,
        row.p90_price_cents,
        row.max_price_cents,
        row.active_days,
        row.newest_created_at,
    )


# The connection itself travels in connect_args, in the driver's own terms (targets.common.connargs): SQLAlchemy
# would pass a URL's libpq query parameters to asyncpg as keyword arguments (sslmode → TypeError).
POSTGRES_CONNECT_ARGS: dict[str, Callable[[str], dict[str, Any]]] = {
    "psycopg": connargs.psycopg_args,
    "asyncpg": connargs.asyncpg_args,
}


@dataclass(frozen=True)
class EngineChoice:
    """What an ORM variant builds its engine from, for the database DBBENCH_DSN names."""

    url: str
    driver: str  # the DBAPI driver, as /_bench/info and the statement hook name it
    refresh: tuple[str, ...]  # POST /refresh-views' statements, run in one session transaction
    connect_args: dict[str, Any] = field(default_factory=dict)


def engine_choice(dsn: str, postgres_driver: str, sqlite_driver: str) -> EngineChoice:
    """PostgreSQL through ``postgres_driver``, or a SQLite file (``sqlite:`` URL) through ``sqlite_driver``
    with targets.common.sqlite's connection settings. The pool is SQLAlchemy's QueuePool either way."""
    if sqlite.is_sqlite(dsn):
        return EngineChoice(
            sqlite.engine_url(dsn, sqlite_driver), sqlite_driver, sqlite.REFRESH_REPORT, dict(sqlite.CONNECT_ARGS)
        )
    connect_args = POSTGRES_CONNECT_ARGS[postgres_driver](dsn)
    return EngineChoice(f"postgresql+{postgres_driver}://", postgres_driver, (REFRESH_REPORT,), connect_args)
