"""bench.seed for a SQLite file (``--db sqlite``): the same tables, the same deterministic rows, the same rules.

bench.seed dispatches here when the DSN is a ``sqlite:`` URL, so the runner, the profiler and the contract
check call one API whatever the database. Writes go through the standard library's sqlite3 in explicit
``BEGIN IMMEDIATE`` transactions; the WAL is checkpointed after each seed so every cell starts from a file
in the same state (what VACUUM is for on PostgreSQL).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime

from targets.common import sqlite
from targets.common.schema import (
    FORTUNES,
    ITEMS_EPOCH,
    SEARCH_INDEX,
    ItemRow,
    author_rows,
    book_rows,
    item_offsets,
    item_row_checksum,
    items_checksum,
    world_values,
)

_ITEMS_ROOTPAGE = "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = 'items'"
_INDEX_EXISTS = "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?"
_EPOCH_UNIX = int(ITEMS_EPOCH.replace(tzinfo=UTC).timestamp())  # created_at = this + the row's seconds, UTC


def apply_schema(dsn: str) -> None:
    """Create the tables, the report table, the triggers and the search index; safe to call repeatedly."""
    with closing(sqlite.connect(dsn)) as conn:
        # Stored in the file: every later connection (the variants' too) works in WAL mode.
        conn.execute(f"PRAGMA journal_mode = {sqlite.JOURNAL_MODE}")
        for statement in (*sqlite.DDL, sqlite.SEARCH_INDEX_DDL):
            conn.execute(statement)


def seed(dsn: str) -> None:
    """Replace the small tables' rows (and items' if the marker is gone), ANALYZE, checkpoint the WAL."""
    with closing(sqlite.connect(dsn)) as conn:
        reload_items = not _items_seeded(conn)
        if reload_items:
            _load_items(conn)
        conn.execute("BEGIN IMMEDIATE")
        for statement in ("DELETE FROM book", "DELETE FROM author", "DELETE FROM fortune", "DELETE FROM world"):
            conn.execute(statement)
        conn.executemany("INSERT INTO world (id, randomnumber) VALUES (?, ?)", enumerate(world_values(), start=1))
        conn.executemany("INSERT INTO fortune (id, message) VALUES (?, ?)", FORTUNES)
        conn.executemany("INSERT INTO author (id, name) VALUES (?, ?)", author_rows())
        conn.executemany("INSERT INTO book (id, author_id, title) VALUES (?, ?, ?)", book_rows())
        conn.execute("COMMIT")
        for statement in ("ANALYZE world", "ANALYZE fortune", "ANALYZE author", "ANALYZE book"):
            conn.execute(statement)
        if reload_items:
            conn.execute("ANALYZE items")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def seed_items(dsn: str, *, force: bool = False) -> bool:
    """Load the seeded items and rebuild the report unless the marker says they are there; True if it did."""
    with closing(sqlite.connect(dsn)) as conn:
        if not force and _items_seeded(conn):
            return False
        _load_items(conn)
        conn.execute("ANALYZE items")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return True


@contextmanager
def probe_item(dsn: str, probe: ItemRow) -> Iterator[ItemRow]:
    """``probe`` is in items (not yet in the report) while the block runs; afterwards items, the report and
    the marker are as they were. The report's rows are saved and put back rather than rebuilt: with the
    probe gone they are exactly what a rebuild (~1 s here) would compute."""
    with closing(sqlite.connect(dsn)) as conn:
        seeded = _items_seeded(conn)
        conn.execute("BEGIN IMMEDIATE")
        report = conn.execute("SELECT * FROM category_report").fetchall()
        conn.execute("INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?)", _item_values(probe))
        conn.execute("COMMIT")
    try:
        yield probe
    finally:
        with closing(sqlite.connect(dsn)) as conn:
            # BEGIN IMMEDIATE waits (busy timeout) for a rebuild the target may still be running.
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM items WHERE id = ?", [probe[0]])
            conn.execute("DELETE FROM category_report")
            conn.executemany("INSERT INTO category_report VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", report)
            if seeded:  # the same rows as before the insert, whose trigger deleted the marker
                _mark_seeded(conn)
            conn.execute("COMMIT")


def stored_items_checksum(dsn: str) -> tuple[int, int]:
    """(row count, checksum) of the rows in items. Summed here, not in SQL: SQLite's integer sum() would
    overflow (PostgreSQL sums in numeric)."""
    count = total = 0
    with closing(sqlite.connect(dsn)) as conn:
        for item_id, category, price, created in conn.execute(
            "SELECT id, category, price_cents, created_at FROM items"
        ):
            seconds = int((datetime.fromisoformat(created) - ITEMS_EPOCH).total_seconds())
            count += 1
            total += item_row_checksum(item_id, category, price, seconds)
    return count, total


def set_search_index(dsn: str, enabled: bool) -> None:
    """Create or drop targets.common.schema.SEARCH_INDEX, then ANALYZE items; a no-op when already in that state."""
    if search_index_enabled(dsn) == enabled:
        return
    with closing(sqlite.connect(dsn)) as conn:
        # The name is a constant (targets.common.schema), not input: DDL takes no parameters.
        conn.execute(sqlite.SEARCH_INDEX_DDL if enabled else f"DROP INDEX IF EXISTS {SEARCH_INDEX}")
        conn.execute("ANALYZE items")


def search_index_enabled(dsn: str) -> bool:
    with closing(sqlite.connect(dsn)) as conn:
        return bool(conn.execute(_INDEX_EXISTS, [SEARCH_INDEX]).fetchone()[0])


def world_snapshot(dsn: str, ids: Iterable[int] | None = None) -> dict[int, int]:
    """{id: randomnumber} for ``ids``, or for the whole table when ``ids`` is None."""
    with closing(sqlite.connect(dsn)) as conn:
        if ids is None:
            rows = conn.execute("SELECT id, randomnumber FROM world")
        else:
            wanted = sorted(set(ids))
            placeholders = ", ".join("?" * len(wanted))
            rows = conn.execute(f"SELECT id, randomnumber FROM world WHERE id IN ({placeholders})", wanted)  # noqa: S608
        return {world_id: number for world_id, number in rows}


def _items_seeded(conn: sqlite3.Connection) -> bool:
    found = conn.execute(
        f"SELECT count(*) FROM items_seeded WHERE items_rootpage = ({_ITEMS_ROOTPAGE}) AND fingerprint = ?",  # noqa: S608
        [_expected_fingerprint()],
    ).fetchone()
    return found is not None and found[0] == 1


def _load_items(conn: sqlite3.Connection) -> None:
    # Without the search index while loading (then rebuilt in one pass): 0.5 s instead of 3.2 s here.
    indexed = conn.execute(_INDEX_EXISTS, [SEARCH_INDEX]).fetchone()[0] > 0
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(f"DROP INDEX IF EXISTS {SEARCH_INDEX}")
    conn.execute("DELETE FROM items")
    # SQLite renders created_at itself (datetime(..., 'unixepoch')): strftime per row in Python took 2.4 s.
    conn.executemany(
        "INSERT INTO items VALUES (?, ?, ?, datetime(? + ?, 'unixepoch'))",
        ((*row, _EPOCH_UNIX) for row in item_offsets()),
    )
    if indexed:
        conn.execute(sqlite.SEARCH_INDEX_DDL)
    for statement in sqlite.REFRESH_REPORT:
        conn.execute(statement)
    _mark_seeded(conn)  # after the load: its inserts fired the triggers that clear the marker
    conn.execute("COMMIT")


def _mark_seeded(conn: sqlite3.Connection) -> None:
    conn.execute(
        f"INSERT INTO items_seeded (items_rootpage, fingerprint) SELECT ({_ITEMS_ROOTPAGE}), ?",
        [_expected_fingerprint()],
    )


def _item_values(row: ItemRow) -> tuple[int, int, int, str]:
    item_id, category, price, created = row
    return item_id, category, price, created.strftime(sqlite.TIMESTAMP_FORMAT)


@functools.cache
def _expected_fingerprint() -> str:
    count, checksum = items_checksum()
    return f"{count} rows, checksum {checksum}"
