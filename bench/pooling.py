"""Is --dsn behind a pooler that hands a session's server connection to other clients between transactions
(PgBouncer in transaction or statement pool mode)?

Every variant's driver prepares statements per connection (asyncpg's statement cache, SQLAlchemy's asyncpg
dialect, psycopg after 5 executions), and such a pooler moves the next transaction to a server that never saw
them: "prepared statement ... does not exist" / "already exists", HTTP 500 on a random share of requests
(53-61 % in the field, with low-concurrency checks passing). So the run asks first, and gets the same answer
every time, without writing anything:

1. A pooler answers the startup itself: the backend pid the client is told (BackendKeyData, psycopg's
   ``info.backend_pid``) is not the server's ``pg_backend_pid()``. Equal: nothing in between, done.
2. One session prepares a statement and reads its server's pid inside one transaction (which any pooler
   keeps on one server).
3. Up to ``HOLDERS`` other sessions each open a transaction and read their server's pid. In session mode
   none of them can get the first session's server; a transaction pooler hands it over (PgBouncer reuses the
   most recently released server first, so the first holder gets it when the pooler is otherwise idle).
4. Then the first session runs its statement: on another server now, and the server's own error is the
   evidence quoted. The holder on the old server deallocates the statement, so the pool is left as found.
"""

from __future__ import annotations

import contextlib
import secrets

import psycopg
from psycopg import sql

HOLDERS = 4
CONNECT_TIMEOUT_S = 5


def transaction_pooling(dsn: str) -> str | None:
    """The server's error when ``dsn`` goes through a transaction-mode pooler (step 4 above), or the pooler's
    refusal of a transaction block (statement mode), else None.

    Connection errors propagate (psycopg.Error); the caller has connected with ``dsn`` already.
    """
    with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as first:
        if first.info.backend_pid == _server_pid(first):
            return None
        name = sql.Identifier(f"dbbench_probe_{secrets.token_hex(4)}")
        try:
            with first.transaction():
                first.execute(sql.SQL("PREPARE {} AS SELECT 1").format(name))
                server = _server_pid(first)
        except psycopg.Error as exc:
            # PgBouncer in statement mode refuses transaction blocks outright ("... statement pooling mode").
            if "statement pool" in str(exc):
                return _first_line(exc)
            raise
        with contextlib.ExitStack() as holders:
            for _ in range(HOLDERS):
                holder = holders.enter_context(psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S))
                holder.execute("BEGIN")
                if _server_pid(holder) != server:
                    continue
                try:
                    first.execute(sql.SQL("EXECUTE {}").format(name))
                    return None  # cannot happen with the server held elsewhere; say nothing we did not see
                except psycopg.Error as exc:
                    return _first_line(exc)
                finally:
                    holder.execute(sql.SQL("DEALLOCATE {}").format(name))
                    holder.execute("COMMIT")
        with contextlib.suppress(psycopg.Error):
            first.execute(sql.SQL("DEALLOCATE {}").format(name))
    return None


def _first_line(exc: psycopg.Error) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _server_pid(conn: psycopg.Connection[tuple[int, ...]]) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    return int(row[0]) if row else 0
