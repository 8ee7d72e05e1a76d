"""The engine and session factory, from ``DATABASE_URL`` (a SQLAlchemy URL: ``postgresql+asyncpg://...``)."""

from __future__ import annotations

import os

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("DATABASE_URL is not set (e.g. postgresql+asyncpg://user@localhost/shop)")
    return url


def make_engine() -> AsyncEngine:
    return create_async_engine(database_url(), pool_size=10, max_overflow=0)


def make_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
