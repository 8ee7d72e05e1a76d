"""SQLAlchemy ORM mapping of targets.schema's tables, shared by the sync and async ORM variants."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class World(Base):
    __tablename__ = "world"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    randomnumber: Mapped[int]


class Fortune(Base):
    __tablename__ = "fortune"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    message: Mapped[str] = mapped_column(String(2048))


def engine_url(dsn: str, driver: str) -> URL:
    """A libpq URL (postgresql://...) with SQLAlchemy's driver named, e.g. ``psycopg`` or ``asyncpg``."""
    return make_url(dsn).set(drivername=f"postgresql+{driver}")
