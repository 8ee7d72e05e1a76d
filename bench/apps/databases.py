"""Each app's own data: a set-up database built once by its ``--setup`` commands and kept as a template, and
before every cell a fresh clone of it (PostgreSQL's ``CREATE DATABASE ... TEMPLATE``: a file-level copy, fast
for the small databases a benchmark uses), so one cell's writes never reach the next.

PostgreSQL refuses to copy a template anyone is connected to, so nothing connects to the set-up database after
its set-up: clones are made from a connection to the run's own database, and a set-up that left a connection
behind is ended first (``pg_terminate_backend``) on a server dbbench owns.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql

from bench import dsn as dsnlib
from bench.errors import BenchError
from targets.common import connargs

# How the URL an app gets is spelled, per driver: SQLAlchemy picks its dialect from the "+driver" part.
SCHEMES = {"libpq": "postgresql", "asyncpg": "postgresql+asyncpg", "psycopg": "postgresql+psycopg"}
# The libpq keywords a URL carries in its authority and path; anything else goes in its query.
_AUTHORITY = ("user", "password", "host", "port", "dbname")
_TEMPLATE_BUSY_RETRIES = 20  # a set-up's last connection may take a moment to close after its process exits
_RETRY_PAUSE_S = 0.1


def app_url(dsn: str, style: str) -> str:
    """``dsn`` (any form bench.dsn accepts) as a URL of ``style`` (see SCHEMES).

    SQLAlchemy's asyncpg dialect turns query parameters into keyword arguments asyncpg does not take (e.g.
    ``sslmode``), so for ``asyncpg`` any parameter beyond the connection's address is refused (BenchError).
    """
    params = connargs.parse(dsn)
    extra = {k: v for k, v in params.items() if k not in _AUTHORITY}
    if style == "asyncpg" and extra:
        raise BenchError(
            f"--db-url-style asyncpg: the parameter {sorted(extra)[0]!r} has no place in a postgresql+asyncpg URL "
            "(SQLAlchemy would pass it to asyncpg as an argument); drop it from --dsn or use --db-url-style libpq"
        )
    user = quote(params.get("user", ""), safe="")
    password = params.get("password")
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = params.get("host", "")
    port = params.get("port", "")
    if host.startswith("/"):  # a Unix socket's directory: libpq and SQLAlchemy both read ?host=
        extra = {"host": host, **extra}
        netloc = auth + (f":{port}" if port else "")
    else:
        netloc = auth + host + (f":{port}" if port else "")
    query = f"?{urlencode(extra)}" if extra else ""
    return f"{SCHEMES[style]}://{netloc}/{quote(params.get('dbname', ''), safe='')}{query}"


@dataclass
class AppDatabases:
    """The databases made for a run's apps on the run's server, all dropped by ``close()``.

    ``admin_dsn`` is the run's own database (bench.pg): every CREATE and DROP is sent from it.
    """

    admin_dsn: str
    owned_server: bool  # the embedded server: set-up connections left open may be ended
    created: list[str] = field(default_factory=list)

    def name(self, label: str, purpose: str) -> str:
        """``<run database>_<label>_<purpose>``: unique on a shared server, since the run's database is."""
        base = dsnlib.database_of(self.admin_dsn)
        return f"{base}_{label}_{purpose}".lower().replace("-", "_")[:63]

    def dsn(self, database: str) -> str:
        return dsnlib.with_database(self.admin_dsn, database)

    def create(self, database: str) -> str:
        """An empty database (dropped first if a previous cell left it); returns its libpq DSN."""
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        self._own(database)
        return self.dsn(database)

    def restore(self, template: str, database: str) -> tuple[str, float]:
        """``database`` as a fresh copy of ``template``: (its DSN, seconds the drop and copy took)."""
        started = time.perf_counter()
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            for attempt in range(_TEMPLATE_BUSY_RETRIES):
                try:
                    conn.execute(
                        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                            sql.Identifier(database), sql.Identifier(template)
                        )
                    )
                    break
                except psycopg.errors.ObjectInUse:
                    if attempt == _TEMPLATE_BUSY_RETRIES - 1:
                        raise BenchError(
                            f"cannot copy the set-up database {template}: something stays connected to it "
                            "(a --setup command that left a process running?)"
                        ) from None
                    self._disconnect(conn, template)
                    time.sleep(_RETRY_PAUSE_S)
        self._own(database)
        return self.dsn(database), time.perf_counter() - started

    def _disconnect(self, conn: psycopg.Connection[tuple[object, ...]], database: str) -> None:
        if self.owned_server:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )

    def _own(self, database: str) -> None:
        if database not in self.created:
            self.created.append(database)

    @contextmanager
    def _admin(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=5) as conn:
            yield conn

    def close(self) -> None:
        """Drop every database this object made (connections to them are ended: the run is over)."""
        if not self.created:
            return
        with self._admin() as conn:
            for database in reversed(self.created):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        self.created.clear()
