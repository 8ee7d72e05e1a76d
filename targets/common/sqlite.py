"""SQLite's side of the contract (`bench run --db sqlite`): the URL, the schema, the report's rebuild, and how
every variant opens a connection to the file.

Pure data and the standard library's sqlite3 only: the orchestrator (seeding, the contract check) imports
it cheaply, and every SQLite-capable variant (sync, async_orm, databases, cached) builds its connections
from ``CONNECT_ARGS`` so all of them run with the same settings.

What differs from PostgreSQL, and why the responses stay byte-identical:

* ``items.created_at`` is stored as text ``YYYY-MM-DD HH:MM:SS`` (naive UTC, as in PostgreSQL): fixed width,
  so text order is time order; SQLAlchemy's DateTime reads it back as a datetime, the raw drivers parse it.
* ``category_report`` is a plain table, not a materialized view: POST /refresh-views rebuilds it with
  ``REFRESH_REPORT`` (DELETE + INSERT ... SELECT) inside one transaction. In WAL mode readers keep seeing
  the old rows until the commit, which is what REFRESH ... CONCURRENTLY gives /report on PostgreSQL.
  percentile_disc is spelled with window functions (SQLite >= 3.25) and integer ceilings.
* The items marker is cleared by row triggers (SQLite has no statement triggers and no TRUNCATE), and
  names the table by its root page instead of its oid: a dropped and recreated table gets a new one.
* There is no ``UPDATE ... FROM unnest``; variants write /updates as an executemany of ``UPDATE_WORLD``.
"""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import unquote, urlsplit

from targets.common.schema import SEARCH_INDEX, TABLES_DDL

SCHEME = "sqlite"
# Seconds a connection waits for another's write lock before SQLITE_BUSY: concurrent /updates queue here
# instead of failing. Long, because under load a writer may wait behind many others.
BUSY_TIMEOUT_S = 30.0
# What the SQLite file runs with, recorded in the results ("file mode"). WAL: readers never block the
# writer and see a consistent snapshot; synchronous OFF is the embedded PostgreSQL's fsync=off: a throwaway
# benchmark file gains nothing from durability.
JOURNAL_MODE = "wal"
SYNCHRONOUS = "off"
# Where SQLite keeps the created_at text; strftime for SQL, the same layout for Python.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

DDL: tuple[str, ...] = (
    *TABLES_DDL,
    "CREATE TABLE IF NOT EXISTS category_report (category integer PRIMARY KEY, items integer NOT NULL,"
    " min_price_cents integer NOT NULL, avg_price_cents integer NOT NULL, median_price_cents integer NOT NULL,"
    " p90_price_cents integer NOT NULL, max_price_cents integer NOT NULL, active_days integer NOT NULL,"
    " newest_created_at timestamp NOT NULL)",
    "CREATE TABLE IF NOT EXISTS items_seeded (items_rootpage integer NOT NULL, fingerprint text NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS items_written_insert AFTER INSERT ON items BEGIN DELETE FROM items_seeded; END",
    "CREATE TRIGGER IF NOT EXISTS items_written_update AFTER UPDATE ON items BEGIN DELETE FROM items_seeded; END",
    "CREATE TRIGGER IF NOT EXISTS items_written_delete AFTER DELETE ON items BEGIN DELETE FROM items_seeded; END",
)

# No INCLUDE in SQLite: price_cents is the last key column instead, so the index still covers the search
# (filter and output read from the index alone) and its key order is still the ORDER BY.
SEARCH_INDEX_DDL = (
    f"CREATE INDEX IF NOT EXISTS {SEARCH_INDEX} ON items (category, created_at DESC, id DESC, price_cents)"
)

# The view's definition (targets.common.schema.DDL) in SQLite: percentile_disc(f) is the price at 1-based position
# ceil(f * n) in the category's price order, i.e. (n + 1) / 2 and (9n + 9) / 10 in integer arithmetic; the
# smallest price at or past that position is exactly that one. Integer sum / count is the floor mean.
REFRESH_REPORT: tuple[str, ...] = (
    "DELETE FROM category_report",
    "INSERT INTO category_report (category, items, min_price_cents, avg_price_cents, median_price_cents,"
    " p90_price_cents, max_price_cents, active_days, newest_created_at)"
    " SELECT category, count(*), min(price_cents), sum(price_cents) / count(*),"
    " min(CASE WHEN pos >= (n + 1) / 2 THEN price_cents END),"
    " min(CASE WHEN pos >= (9 * n + 9) / 10 THEN price_cents END),"
    " max(price_cents), count(DISTINCT substr(created_at, 1, 10)), max(created_at)"
    " FROM (SELECT category, price_cents, created_at,"
    " row_number() OVER (PARTITION BY category ORDER BY price_cents) AS pos,"
    " count(*) OVER (PARTITION BY category) AS n FROM items)"
    " GROUP BY category",
)

# /updates and PUT /worlds/{id}: one parameter set per distinct id, sorted by id (contract.batch_update_args).
UPDATE_WORLD = "UPDATE world SET randomnumber = :r WHERE id = :id"


class TunedConnection(sqlite3.Connection):
    """Every sqlite3 connection a variant or the seeder opens (``factory=``): the same per-connection
    settings whichever library opened it, applied before the library runs its first statement."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per connection, not stored in the file (journal_mode is: the provisioner sets it once).
        self.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")


# sqlite3.connect's keyword arguments, passed through SQLAlchemy's connect_args, aiosqlite and encode/databases
# alike. ``timeout`` is sqlite3's busy timeout.
CONNECT_ARGS: dict[str, Any] = {"timeout": BUSY_TIMEOUT_S, "factory": TunedConnection}


def is_sqlite(dsn: str) -> bool:
    return urlsplit(dsn).scheme.split("+", 1)[0] == SCHEME


def database_path(dsn: str) -> str:
    """The file of ``sqlite:////abs/path/bench.db`` (SQLAlchemy's spelling: three slashes, then the path)."""
    parts = urlsplit(dsn)
    if not is_sqlite(dsn) or parts.netloc or not parts.path.startswith("//"):
        raise ValueError(f"expected sqlite:////absolute/path/to/file.db, got {dsn!r}")
    return unquote(parts.path[1:])


def url_for(path: str) -> str:
    """The URL the run hands its targets (DBBENCH_DSN) for the database file at absolute ``path``."""
    if not path.startswith("/"):
        raise ValueError(f"expected an absolute path, got {path!r}")
    return f"{SCHEME}:///{path}"


def engine_url(dsn: str, driver: str) -> str:
    """The same file as a SQLAlchemy URL with ``driver`` named: ``pysqlite`` or ``aiosqlite``."""
    return f"{SCHEME}+{driver}:///{database_path(dsn)}"


def connect(dsn: str) -> sqlite3.Connection:
    """A sqlite3 connection for the harness (seeding, the contract check), with the variants' settings.

    ``isolation_level=None``: no implicit transactions; callers write BEGIN / COMMIT where they mean them.
    """
    conn: sqlite3.Connection = sqlite3.connect(database_path(dsn), isolation_level=None, **CONNECT_ARGS)
    return conn
