"""bench.apps.databases' write detection and in-place restore on the embedded PostgreSQL: what a cell may write
is found and put back exactly (rows, sequences, the planner's size estimates), while another session (the
app's pool) stays connected; what cannot be put back in place is refused, so the caller clones instead."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from bench.apps import databases
from bench.apps.databases import AppDatabases

SCHEMA = """
CREATE TABLE category (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE item (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    category_id integer NOT NULL REFERENCES category(id),
    price_cents integer NOT NULL,
    price_eur numeric GENERATED ALWAYS AS (price_cents / 100.0) STORED,
    tags text[]
);
CREATE INDEX item_category_idx ON item (category_id);
CREATE SEQUENCE ticket;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO category (name) VALUES ('touched ' || NEW.id); RETURN NEW; END $$;
CREATE TRIGGER item_touch AFTER INSERT ON item FOR EACH ROW EXECUTE FUNCTION touch();
INSERT INTO category (name) SELECT 'category ' || i FROM generate_series(1, 10) AS i;
ALTER TABLE item DISABLE TRIGGER item_touch;
INSERT INTO item (category_id, price_cents, tags)
    SELECT 1 + i % 10, i * 7, ARRAY['a', 'b'] FROM generate_series(1, 500) AS i;
ALTER TABLE item ENABLE TRIGGER item_touch;
SELECT nextval('ticket');
ANALYZE;
CREATE TABLE note (id serial PRIMARY KEY, body text);  -- empty and never analyzed, like a shop's orders
"""
STATE = """
SELECT (SELECT json_agg(c ORDER BY id) FROM category c), (SELECT json_agg(i ORDER BY id) FROM item i),
       (SELECT last_value FROM category_id_seq), (SELECT last_value FROM item_id_seq),
       (SELECT last_value FROM ticket), (SELECT is_called FROM ticket),
       (SELECT json_agg(json_build_array(relname, relpages, reltuples) ORDER BY relname) FROM pg_class
        WHERE relname IN ('category', 'item', 'item_pkey', 'item_category_idx'))
"""


@pytest.fixture
def app_db(pg_dsn: str) -> Iterator[str]:
    made = AppDatabases(pg_dsn, owned_server=True)
    dsn = made.create(made.name("restore", "cell"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
    try:
        yield dsn
    finally:
        made.close()


def state(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[object, ...]:
    row = conn.execute(STATE).fetchone()
    assert row is not None
    return row


def test_reads_leave_the_marks_alone_and_writes_of_any_kind_move_them(app_db: str) -> None:
    with psycopg.connect(app_db, autocommit=True) as app:
        before = databases.marks(app_db)
        app.execute("SELECT * FROM item JOIN category ON category.id = item.category_id").fetchall()
        app.execute("DELETE FROM category WHERE name = 'nobody'")  # matched nothing: no row, no transaction id
        assert databases.marks(app_db) == before
        for write in (
            "UPDATE item SET price_cents = price_cents + 1 WHERE id = 3",
            "DELETE FROM item WHERE id = 500",
            "SELECT nextval('ticket')",  # no transaction id for 31 calls in 32: the sequence itself moved
            "BEGIN; INSERT INTO category (name) VALUES ('gone'); ROLLBACK",
        ):
            app.execute(write)
            after = databases.marks(app_db)
            assert after != before, write
            before = after
        assert databases.settle(app_db)


def test_a_cells_writes_are_put_back_in_place_while_the_app_stays_connected(app_db: str) -> None:
    snap = databases.snapshot(app_db)
    assert snap is not None
    with psycopg.connect(app_db, autocommit=True) as app:
        setup = state(app)
        app.execute("INSERT INTO item (category_id, price_cents) VALUES (2, 1)")  # the trigger adds a category
        app.execute("UPDATE item SET price_cents = 0, tags = NULL WHERE id < 100")
        app.execute("DELETE FROM item WHERE id > 400")
        app.execute("SELECT nextval('ticket'), nextval('ticket')")
        app.execute("VACUUM item")  # sets the planner's size estimates (pg_class) from the cell's rows
        assert state(app) != setup
        assert databases.reload(app_db, snap)
        assert state(app) == setup  # the same session, still connected: its next query sees the set-up's data
        # The next cell's writes continue from the set-up's sequences, and triggers are on again.
        row = app.execute("INSERT INTO item (category_id, price_cents) VALUES (2, 1) RETURNING id").fetchone()
        assert row == (501,)
        assert app.execute("SELECT count(*) FROM category WHERE name = 'touched 501'").fetchone() == (1,)


def test_what_cannot_be_put_back_in_place_is_refused(app_db: str) -> None:
    snap = databases.snapshot(app_db)
    assert snap is not None
    with psycopg.connect(app_db, autocommit=True) as app:
        app.execute("ALTER TABLE item ADD COLUMN note text")  # a cell that changed the schema
        assert not databases.reload(app_db, snap)
        app.execute("ALTER TABLE item DROP COLUMN note")  # a dropped column stays in the catalog: still refused
        assert not databases.reload(app_db, snap)
    fresh = databases.snapshot(app_db)
    assert fresh is not None
    with psycopg.connect(app_db) as app:  # a session idle in a transaction holds a lock on the table
        app.execute("SELECT count(*) FROM item").fetchone()
        assert not databases.settle(app_db, timeout_s=0.2)
        databases_lock = databases._LOCK_TIMEOUT
        try:
            databases._LOCK_TIMEOUT = "200ms"
            assert not databases.reload(app_db, fresh)
        finally:
            databases._LOCK_TIMEOUT = databases_lock
        app.rollback()
    assert databases.reload(app_db, fresh)
    with psycopg.connect(app_db, autocommit=True) as app:  # an ANALYZE (autovacuum's) in a cell: new statistics
        app.execute("INSERT INTO note (body) SELECT 'n' || i FROM generate_series(1, 100) AS i")
        app.execute("ANALYZE note")  # a table the set-up had not analyzed: its statistics are deleted
        assert databases.reload(app_db, fresh)
        assert app.execute("SELECT count(*) FROM pg_statistic WHERE starelid = 'note'::regclass").fetchone() == (0,)
        app.execute("UPDATE item SET category_id = 1")
        app.execute("ANALYZE item")  # one it had: they cannot be put back
        assert not databases.reload(app_db, fresh)
