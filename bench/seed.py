"""Create and fill the benchmark tables with the deterministic data from targets.common.schema (psycopg 3, sync).

The orchestrator calls ``seed`` before every measured cell, so it uses COPY rather than row inserts, and
the 200,000 ``items`` rows (read-only for every endpoint) are loaded only when the table does not hold
exactly the seeded rows (a marker row says so; any write to items deletes it).

Every public function takes a DSN; a ``sqlite:`` URL (``bench run --db sqlite``) is handed to
bench.seed_sqlite, which keeps the same rules for a SQLite file, so callers never ask which database it is.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from bench import seed_sqlite
from targets.common.schema import (
    CATEGORY_REPORT,
    DDL,
    FORTUNES,
    ITEM_ROWS,
    ITEMS_EPOCH,
    ITEMS_SPAN_SECONDS,
    SEARCH_INDEX,
    SEARCH_INDEX_DDL,
    ItemRow,
    author_rows,
    book_rows,
    item_rows,
    items_checksum,
    world_values,
)
from targets.common.sqlite import is_sqlite

# The same sum as targets.common.schema.item_row_checksum, over the stored rows (numeric: no overflow).
ITEMS_CHECKSUM = (
    "SELECT count(*), coalesce(sum(((id::bigint * 101 + category) * 100003 + price_cents) * 1000003"
    " + extract(epoch FROM created_at - %s)::bigint), 0) FROM items"
)


# An item the contract check adds for a moment to see POST /refresh-views reach the view: category 1's new
# cheapest (1 cent) and newest (a day after every seeded item) row, so its report row visibly changes.
PROBE_ITEM: ItemRow = (ITEM_ROWS + 1, 1, 1, ITEMS_EPOCH + timedelta(seconds=ITEMS_SPAN_SECONDS + 86_400))


def apply_schema(dsn: str) -> None:
    """Create the tables, the view and the search index if they do not exist; safe to call repeatedly."""
    if is_sqlite(dsn):
        seed_sqlite.apply_schema(dsn)
        return
    with psycopg.connect(dsn) as conn:
        for statement in (*DDL, SEARCH_INDEX_DDL):
            conn.execute(statement)


def seed(dsn: str) -> None:
    """Replace all rows with the seeded data, then VACUUM ANALYZE so every cell starts from the same plans."""
    if is_sqlite(dsn):
        seed_sqlite.seed(dsn)
        return
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        reload_items = not _items_seeded(cur)
        if reload_items:
            _load_items(cur)
        cur.execute("TRUNCATE world, fortune, author, book")
        with cur.copy("COPY world (id, randomnumber) FROM STDIN") as copy:
            for world in enumerate(world_values(), start=1):
                copy.write_row(world)
        with cur.copy("COPY fortune (id, message) FROM STDIN") as copy:
            for fortune in FORTUNES:
                copy.write_row(fortune)
        with cur.copy("COPY author (id, name) FROM STDIN") as copy:
            for author in author_rows():
                copy.write_row(author)
        with cur.copy("COPY book (id, author_id, title) FROM STDIN") as copy:
            for book in book_rows():
                copy.write_row(book)
    # VACUUM cannot run inside a transaction block, hence a separate autocommit connection.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE world, fortune, author, book")
        if reload_items:
            _vacuum_items(conn)


def seed_items(dsn: str, *, force: bool = False) -> bool:
    """Load the seeded items (and refresh the report view) unless they are known to be there already.

    Returns True if it reloaded (~1 s, measured: 0.2 s to generate, 0.7 s binary COPY, then VACUUM
    ANALYZE). "Known" is the items_seeded marker: written after a load, deleted by a trigger on any
    write to items, so the per-cell check is one tiny SELECT rather than a scan of 200,000 rows.
    """
    if is_sqlite(dsn):
        return seed_sqlite.seed_items(dsn, force=force)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        if not force and _items_seeded(cur):
            return False
        _load_items(cur)
    with psycopg.connect(dsn, autocommit=True) as conn:
        _vacuum_items(conn)
    return True


@contextmanager
def probe_item(dsn: str) -> Iterator[ItemRow]:
    """PROBE_ITEM is in items (not yet in the view) while the block runs; afterwards items, the view and the
    seeded marker are as they were, and VACUUM leaves the visibility map as seed_items did, so the next
    cell's seed neither reloads nor sees a different plan."""
    if is_sqlite(dsn):
        with seed_sqlite.probe_item(dsn, PROBE_ITEM) as item:
            yield item
        return
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        seeded = _items_seeded(cur)
        cur.execute("INSERT INTO items VALUES (%s, %s, %s, %s) ON CONFLICT (id) DO NOTHING", PROBE_ITEM)
    try:
        yield PROBE_ITEM
    finally:
        with psycopg.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM items WHERE id = %s", [PROBE_ITEM[0]])
            # Plain, not CONCURRENTLY: fast, and it waits for a refresh the target may still be running.
            cur.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.Identifier(CATEGORY_REPORT)))
            if seeded:  # the same rows as before the insert, whose trigger deleted the marker
                cur.execute("INSERT INTO items_seeded VALUES ('items'::regclass, %s)", [_expected_fingerprint()])
        with psycopg.connect(dsn, autocommit=True) as conn:
            # INDEX_CLEANUP ON: PostgreSQL would skip the index pass for one dead row, leaving the probe's
            # index entries and its page off the visibility map (a heap fetch in every category-1 search).
            conn.execute(sql.SQL("VACUUM (INDEX_CLEANUP ON) items, {}").format(sql.Identifier(CATEGORY_REPORT)))


def stored_items_checksum(dsn: str) -> tuple[int, int]:
    """(row count, checksum) of the rows in items, comparable with targets.common.schema.items_checksum()."""
    if is_sqlite(dsn):
        return seed_sqlite.stored_items_checksum(dsn)
    with psycopg.connect(dsn) as conn:
        row = conn.execute(ITEMS_CHECKSUM, [ITEMS_EPOCH]).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def set_search_index(dsn: str, enabled: bool) -> None:
    """Create or drop targets.common.schema.SEARCH_INDEX, then ANALYZE items so the planner sees the change.

    A no-op when the index is already in that state: the orchestrator calls this before every cell, and
    re-analyzing would only cost time (~0.1-0.3 s) and resample the statistics.
    """
    if is_sqlite(dsn):
        seed_sqlite.set_search_index(dsn, enabled)
        return
    if search_index_enabled(dsn) == enabled:
        return
    with psycopg.connect(dsn, autocommit=True) as conn:
        if enabled:
            conn.execute(SEARCH_INDEX_DDL)
            # VACUUM too: the index-only scan skips heap pages only once the visibility map is set.
            conn.execute("VACUUM ANALYZE items")
        else:
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(SEARCH_INDEX)))
            conn.execute("ANALYZE items")


def search_index_enabled(dsn: str) -> bool:
    """Whether targets.common.schema.SEARCH_INDEX exists (apply_schema creates it)."""
    if is_sqlite(dsn):
        return seed_sqlite.search_index_enabled(dsn)
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [SEARCH_INDEX]).fetchone()
    return bool(row and row[0])


def world_snapshot(dsn: str, ids: Iterable[int] | None = None) -> dict[int, int]:
    """{id: randomnumber} for ``ids``, or for the whole table when ``ids`` is None."""
    if is_sqlite(dsn):
        return seed_sqlite.world_snapshot(dsn, ids)
    with psycopg.connect(dsn) as conn:
        if ids is None:
            cur = conn.execute("SELECT id, randomnumber FROM world")
        else:
            cur = conn.execute("SELECT id, randomnumber FROM world WHERE id = ANY(%s)", [list(ids)])
        return {world_id: number for world_id, number in cur}


def _items_seeded(cur: psycopg.Cursor[Any]) -> bool:
    found = cur.execute(
        "SELECT count(*) FROM items_seeded WHERE items_oid = 'items'::regclass AND fingerprint = %s",
        [_expected_fingerprint()],
    ).fetchone()
    return found is not None and found[0] == 1


def _load_items(cur: psycopg.Cursor[Any]) -> None:
    cur.execute("TRUNCATE items")
    with cur.copy("COPY items (id, category, price_cents, created_at) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "int4", "int4", "timestamp"])
        for item in item_rows():
            copy.write_row(item)
    # Not CONCURRENTLY: nobody reads the view while seeding, and a plain refresh also works on a view that
    # was never populated.
    cur.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.Identifier(CATEGORY_REPORT)))
    # After the load: its TRUNCATE and COPY fired the trigger that clears the marker.
    cur.execute("INSERT INTO items_seeded VALUES ('items'::regclass, %s)", [_expected_fingerprint()])


def _vacuum_items(conn: psycopg.Connection[Any]) -> None:
    # VACUUM sets the visibility map, without which the search's index-only scan would fetch heap pages.
    conn.execute(sql.SQL("VACUUM ANALYZE items, {}").format(sql.Identifier(CATEGORY_REPORT)))


@functools.cache
def _expected_fingerprint() -> str:
    # Generating 200,000 rows costs ~0.2 s: once per process, not once per cell.
    count, checksum = items_checksum()
    return f"{count} rows, checksum {checksum}"
