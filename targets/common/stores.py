"""Which store a variant opens, picked once per database kind (the DSN's scheme).

A variant that runs on both PostgreSQL and SQLite with different stores (databases: its asyncpg backend or
its aiosqlite one; cached: the raw asyncpg pool or async_orm's store) names both openers here, and the
choice is made in one place when the store is opened, not by each variant importing the other kind's
module lazily.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from targets.common.contract import AsyncStore, OpenAsyncStore, Settings
from targets.common.sqlite import is_sqlite
from targets.common.stats import Collector


def per_database(*, postgres: OpenAsyncStore, sqlite: OpenAsyncStore) -> OpenAsyncStore:
    """An opener that opens ``sqlite``'s store for a ``sqlite:`` DSN and ``postgres``'s for any other."""

    def open_store(settings: Settings, collector: Collector | None) -> AbstractAsyncContextManager[AsyncStore]:
        return (sqlite if is_sqlite(settings.dsn) else postgres)(settings, collector)

    return open_store
