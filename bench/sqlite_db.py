"""Provision the SQLite file a ``bench run --db sqlite`` talks to: the zero-setup mode for a machine with no
PostgreSQL server binaries at all.

The file lives in the run's temp dir and goes with it. There is no server: no process to sample for CPU or
connections, no pg_stat_statements, no EXPLAIN via PREPARE; the runner skips those (``Database.server_pid``
is None, ``kind`` is "sqlite").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from bench.pg import Database
from targets.common import sqlite

KIND = "sqlite"
FILE_NAME = "bench.db"


@contextmanager
def provision(workdir: Path) -> Iterator[Database]:
    """A new, empty SQLite file in WAL mode under ``workdir`` (which the caller removes afterwards)."""
    path = (workdir / FILE_NAME).resolve()
    dsn = sqlite.url_for(str(path))
    with closing(sqlite.connect(dsn)) as conn:
        mode = conn.execute(f"PRAGMA journal_mode = {sqlite.JOURNAL_MODE}").fetchone()[0]
    settings = {
        "file": str(path),
        "journal_mode": str(mode),
        "synchronous": f"{sqlite.SYNCHRONOUS} (set on every connection)",
        "busy_timeout_ms": str(round(sqlite.BUSY_TIMEOUT_S * 1000)),
    }
    yield Database(dsn, KIND, f"SQLite {sqlite3.sqlite_version}", settings)


def is_sqlite(database: Database) -> bool:
    return database.kind == KIND
