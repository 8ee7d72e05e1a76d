"""encode/databases (asyncpg backend)
Hypothesis: raw SQL with named parameters, but each query is wrapped in SQLAlchemy text(), compiled to
asyncpg's $n form and each row wrapped in a Record on every call; that per-call layer is the gap to the
raw asyncpg pool underneath it.
On SQLite (`--db sqlite`) it runs on databases' aiosqlite backend, which has no pool (targets.common.databases_sqlite).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from databases import Database

from targets.common import connargs, databases_sqlite
from targets.common.asyncpg_timing import timed_connection_class
from targets.common.contract import AsyncStore, Settings, build_async_app
from targets.common.databases_store import DatabasesStore
from targets.common.stats import Collector
from targets.common.stores import per_database


@asynccontextmanager
async def open_postgres(settings: Settings, collector: Collector | None) -> AsyncIterator[AsyncStore]:
    """databases on its asyncpg backend, with a pool sized and kept open as the pooled variant's."""
    # Extra keyword arguments go straight to asyncpg.create_pool: the same pool setup as the pooled variant,
    # including connection_class=, whose query methods time each statement (databases has no hook).
    pool_options: dict[str, Any] = {
        "min_size": settings.pool_size,
        "max_size": settings.pool_size,
        "max_inactive_connection_lifetime": 0,
    }
    if collector is not None:
        pool_options["connection_class"] = timed_connection_class(collector, "pool via databases")
    # The URL only picks databases' asyncpg backend; the connection itself is described by asyncpg's own
    # arguments, which databases forwards to create_pool (it would misread socket hosts and libpq options).
    # databases first fills host, port, user, password and database from its URL (here all empty, and
    # database="" would win over the DSN's): None hands each back to asyncpg, which reads it from the DSN.
    unset: dict[str, Any] = dict.fromkeys(("host", "port", "user", "password", "database"))
    database = Database("postgresql://", **{**unset, **connargs.asyncpg_args(settings.dsn)}, **pool_options)
    await database.connect()
    try:
        yield DatabasesStore(database)
    finally:
        await database.disconnect()


# The store per database kind: SQLite's (no pool, its own timing) lives in targets.common.databases_sqlite.
open_store = per_database(postgres=open_postgres, sqlite=databases_sqlite.open_store)


app = build_async_app("databases", open_store)
