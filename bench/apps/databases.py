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
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql

from bench import dsn as dsnlib
from bench.errors import BenchError
from bench.pgstats import MONITOR_APP
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


# --- in-place restore -------------------------------------------------------------------------------------
# A cell that wrote used to cost a fresh clone *and* a restarted app (the app's pool points at the database, so
# a dropped database means a restarted app: ~2-4 s of start-up per cell on this machine under load). Instead the
# app's own database is put back in place while the app stays up: every table truncated and refilled with the
# set-up's rows (read once, right after the first clone), sequences set back, the planner's size estimates
# (pg_class) set back, the tables' activity counters zeroed as on a fresh clone. Anything this cannot put back
# (a changed schema, a busy lock, a database too big to hold in memory, a role that may not do it) makes the
# caller fall back to the clone and a restarted app.

SNAPSHOT_MAX_BYTES = 64 * 1024 * 1024  # the set-up's tables, held in memory as COPY data; larger ones are cloned
SETTLE_TIMEOUT_S = 2.0  # how long the app's sessions may take to finish what a cell's last requests started
_LOCK_TIMEOUT = "2s"  # an app session holding a lock (idle in transaction) makes the reload give up, not wait
# The user's relations: not PostgreSQL's own schemas, not another session's temporary ones.
_USER_NS = sql.SQL(
    "SELECT oid FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND nspname NOT LIKE 'pg\\_toast%%' AND nspname NOT LIKE 'pg\\_temp\\_%%'"
)
# What a cell's DDL would change: relations, columns, constraints, triggers, functions, types (md5 of them all),
# and extended statistics an ANALYZE filled. TRUNCATE keeps the planner's statistics, so an ANALYZE in a cell
# (autovacuum's, after the cell's writes) must be undone too: statistics of a relation the set-up had not
# analyzed are deleted (it had none); new statistics of one it had cannot be put back (_STATS moved): a clone.
_SCHEMA = sql.SQL("""
SELECT md5(coalesce(string_agg(x, ';' ORDER BY x), '')) FROM (
  SELECT concat_ws('|', 'c', oid, relname, relkind, relnatts, relpersistence, relacl) AS x
    FROM pg_class WHERE relnamespace IN ({ns})
  UNION ALL SELECT concat_ws('|', 'a', attrelid, attnum, attname, atttypid, attisdropped, attnotnull, atthasdef,
    attgenerated) FROM pg_attribute
    WHERE attnum > 0 AND attrelid IN (SELECT oid FROM pg_class WHERE relnamespace IN ({ns}))
  UNION ALL SELECT concat_ws('|', 'k', oid, conname, contype) FROM pg_constraint WHERE connamespace IN ({ns})
  UNION ALL SELECT concat_ws('|', 't', oid, tgname, tgenabled) FROM pg_trigger
    WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace IN ({ns}))
  UNION ALL SELECT concat_ws('|', 'f', oid, proname, md5(prosrc)) FROM pg_proc WHERE pronamespace IN ({ns})
  UNION ALL SELECT concat_ws('|', 'y', oid, typname) FROM pg_type WHERE typnamespace IN ({ns})
  UNION ALL SELECT concat_ws('|', 'n', oid, nspname) FROM pg_namespace WHERE oid IN ({ns})
  UNION ALL SELECT 'e' || d::text FROM pg_statistic_ext_data d
    WHERE stxoid IN (SELECT oid FROM pg_statistic_ext WHERE stxnamespace IN ({ns}))
) AS parts
""").format(ns=_USER_NS)
_STATS = sql.SQL(
    "SELECT md5(coalesce(string_agg('s' || s::text, ';' ORDER BY starelid, staattnum, stainherit), '')) "
    "FROM pg_statistic s WHERE starelid = ANY(%s)"
)
_ANALYZED = sql.SQL(
    "SELECT DISTINCT starelid FROM pg_statistic WHERE starelid IN "
    "(SELECT oid FROM pg_class WHERE relnamespace IN ({ns})) ORDER BY 1"
).format(ns=_USER_NS)
_UNANALYZE = sql.SQL(
    "DELETE FROM pg_statistic WHERE starelid IN (SELECT oid FROM pg_class WHERE relnamespace IN ({ns})) "
    "AND starelid <> ALL(%s)"
).format(ns=_USER_NS)
_RELATIONS = sql.SQL(
    "SELECT c.oid, n.nspname, c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = %s AND c.relnamespace IN ({ns}) "
    "ORDER BY c.oid"
).format(ns=_USER_NS)
_COLUMNS = (
    "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped "
    "AND attgenerated = '' ORDER BY attnum"
)
_RESET_COUNTERS = sql.SQL(
    "SELECT pg_stat_reset_single_table_counters(oid) FROM pg_class "
    "WHERE relnamespace IN ({ns}) AND relkind IN ('r', 'i', 'S', 'm', 'p')"
).format(ns=_USER_NS)
# Writes always take a transaction id (an INSERT, UPDATE, DELETE, DDL, SELECT ... FOR UPDATE; a rolled-back
# write too), so an unmoved counter proves nothing wrote. It is the server's, not the database's: a write to
# another database on a shared --dsn server counts as well, which costs a needless restore, never a missed one.
_NEXT_XID = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text"
_BUSY = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "AND backend_type = 'client backend' AND state IS DISTINCT FROM 'idle'"
)


@dataclass(frozen=True)
class Marks:
    """What moves when anything writes: the server's next transaction id and every sequence's position (a
    ``nextval`` takes a transaction id only once in 32 calls, so sequences are read themselves)."""

    next_xid: int
    sequences: tuple[tuple[str, str, int, bool], ...]  # (schema, name, last_value, is_called)


@dataclass
class Snapshot:
    """The set-up's data of one app's database, enough to put it back in place (``reload``)."""

    schema: str  # md5 of the schema's catalog rows (_SCHEMA): a reload is refused when it changed
    tables: list[tuple[sql.Identifier, list[str], bytes]]  # (schema.table, columns, binary COPY data)
    sequences: tuple[tuple[str, str, int, bool], ...]
    relstats: list[tuple[int, int, float, int]]  # (oid, relpages, reltuples, relallvisible): tables, indexes
    analyzed: list[int]  # the relations with planner statistics (pg_statistic)
    stats: str  # md5 of their statistics


def _connect(dsn: str, autocommit: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=5, application_name=MONITOR_APP)


def _sequences(conn: psycopg.Connection[tuple[Any, ...]]) -> tuple[tuple[str, str, int, bool], ...]:
    names = [(str(r[1]), str(r[2])) for r in conn.execute(_RELATIONS, ("S",))]
    if not names:
        return ()
    query = sql.SQL(" UNION ALL ").join(  # one statement for all of them
        sql.SQL("SELECT {}, last_value, is_called FROM {}").format(i, sql.Identifier(*name))
        for i, name in enumerate(names)
    )
    rows = sorted(conn.execute(query).fetchall())
    return tuple((*names[int(i)], int(value), bool(called)) for i, value, called in rows)


def _copy(table: sql.Identifier, columns: list[str], direction: str) -> sql.Composed:
    return sql.SQL("COPY {} ({}) {} (FORMAT binary)").format(
        table, sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(direction)
    )


def marks(dsn: str) -> Marks:
    """The database's write marks now (see Marks); two equal readings mean nothing wrote in between."""
    with _connect(dsn) as conn:
        row = conn.execute(_NEXT_XID).fetchone()
        assert row is not None
        return Marks(int(row[0]), _sequences(conn))


def settle(dsn: str, timeout_s: float = SETTLE_TIMEOUT_S) -> bool:
    """Wait until no other session of the database is running a statement or sits in a transaction (a request
    the load had sent before it stopped may still be writing); False when that did not happen in time."""
    deadline = time.monotonic() + timeout_s
    with _connect(dsn) as conn:
        while True:
            row = conn.execute(_BUSY).fetchone()
            if row is not None and int(row[0]) == 0:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def snapshot(dsn: str) -> Snapshot | None:
    """The set-up's data as it is in the database ``dsn`` now (call it on a fresh clone, before the app runs);
    None when it cannot be put back in place: a role that is not a superuser (the reload turns foreign keys
    and triggers off and sets the planner's estimates) or tables above SNAPSHOT_MAX_BYTES."""
    with _connect(dsn) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if row is None or not row[0]:
            return None
        found = conn.execute(_RELATIONS, ("r",)).fetchall()
        if sum(int(row[3]) for row in found) > SNAPSHOT_MAX_BYTES:
            return None
        tables = []
        for oid, schema_name, table, _ in found:
            name = sql.Identifier(str(schema_name), str(table))
            columns = [str(c[0]) for c in conn.execute(_COLUMNS, (oid,))]
            data = bytearray()
            with conn.cursor().copy(_copy(name, columns, "TO STDOUT")) as copy:
                for chunk in copy:
                    data += chunk
            tables.append((name, columns, bytes(data)))
        oids = [int(row[0]) for row in found]
        relstats = conn.execute(
            "SELECT oid, relpages, reltuples, relallvisible FROM pg_class WHERE oid = ANY(%s) "
            "OR oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = ANY(%s)) ORDER BY oid",
            (oids, oids),
        ).fetchall()
        schema = conn.execute(_SCHEMA).fetchone()
        assert schema is not None
        analyzed = [int(r[0]) for r in conn.execute(_ANALYZED)]
        stats = conn.execute(_STATS, (analyzed,)).fetchone()
        assert stats is not None
        return Snapshot(
            str(schema[0]),
            tables,
            _sequences(conn),
            [(int(o), int(p), float(t), int(v)) for o, p, t, v in relstats],
            analyzed,
            str(stats[0]),
        )


def reload(dsn: str, snap: Snapshot) -> bool:
    """Put ``snap`` back into the database ``dsn`` in one transaction, while the app stays connected; False
    (nothing changed) when the schema is no longer the snapshot's or a lock is not granted within _LOCK_TIMEOUT."""
    try:
        with _connect(dsn, autocommit=False) as conn:
            row = conn.execute(_SCHEMA).fetchone()
            stats = conn.execute(_STATS, (snap.analyzed,)).fetchone()
            if row is None or row[0] != snap.schema or stats is None or stats[0] != snap.stats:
                conn.rollback()
                return False
            conn.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
            # The rows are the set-up's own, consistent as a whole: no foreign-key check or user trigger runs
            # while they go back (triggers would also fire on rows the set-up had already processed).
            conn.execute("SET LOCAL session_replication_role = replica")
            if snap.tables:
                conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(name for name, _, _ in snap.tables)))
            for name, columns, data in snap.tables:
                with conn.cursor().copy(_copy(name, columns, "FROM STDIN")) as copy:
                    copy.write(data)
            for schema_name, seq, value, called in snap.sequences:
                conn.execute(
                    "SELECT setval(format('%%I.%%I', %s::text, %s::text)::regclass, %s, %s)",
                    (schema_name, seq, value, called),
                )
            # TRUNCATE forgets the planner's size estimates (relpages 0, reltuples -1): the clone had the set-up's.
            for oid, pages, tuples, visible in snap.relstats:
                conn.execute(
                    "UPDATE pg_class SET relpages = %s, reltuples = %s, relallvisible = %s WHERE oid = %s",
                    (pages, tuples, visible, oid),
                )
            conn.execute(_UNANALYZE, (snap.analyzed,))
            conn.execute("SELECT pg_stat_force_next_flush()")  # this session's counts land before the reset
            conn.commit()
            # A fresh clone's tables have no activity counts (so autovacuum leaves them alone); nor do these now.
            conn.execute(_RESET_COUNTERS)
            conn.commit()
    except psycopg.Error:  # e.g. LockNotAvailable: whatever went wrong was rolled back; a clone is always right
        return False
    return True
