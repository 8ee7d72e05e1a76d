"""Create and fill the benchmark tables with the deterministic data from targets.schema (psycopg 3, sync).

The orchestrator calls ``seed`` before every measured cell, so it uses COPY rather than row inserts.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from targets.schema import DDL, FORTUNES, author_rows, book_rows, world_values


def apply_schema(dsn: str) -> None:
    """Create the tables if they do not exist; safe to call repeatedly."""
    with psycopg.connect(dsn) as conn:
        for statement in DDL:
            conn.execute(statement)


def seed(dsn: str) -> None:
    """Replace all rows with the seeded data, then VACUUM ANALYZE so every cell starts from the same plans."""
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
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


def world_snapshot(dsn: str, ids: Iterable[int] | None = None) -> dict[int, int]:
    """{id: randomnumber} for ``ids``, or for the whole table when ``ids`` is None."""
    with psycopg.connect(dsn) as conn:
        if ids is None:
            cur = conn.execute("SELECT id, randomnumber FROM world")
        else:
            cur = conn.execute("SELECT id, randomnumber FROM world WHERE id = ANY(%s)", [list(ids)])
        return {world_id: number for world_id, number in cur}
