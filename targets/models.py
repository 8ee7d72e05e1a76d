"""SQLAlchemy ORM mapping of targets.schema's tables, shared by the sync and async ORM variants."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


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


def engine_url(dsn: str, driver: str) -> URL:
    """A libpq URL (postgresql://...) with SQLAlchemy's driver named, e.g. ``psycopg`` or ``asyncpg``."""
    return make_url(dsn).set(drivername=f"postgresql+{driver}")
