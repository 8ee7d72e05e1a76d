"""Tables and deterministic seed data shared by every variant, the seeder and the contract check.

Pure data: no database driver is imported here, so the orchestrator can use it cheaply.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

WORLD_ROWS = 10_000
MAX_RANDOM_NUMBER = 10_000
SEED = 20_241_124

CATEGORY_REPORT = "category_report"  # the materialized view created in DDL

# The tables both dialects share, written in the SQL PostgreSQL and SQLite both accept (targets.common.sqlite
# adds its own report table and triggers after these).
TABLES_DDL: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS world (id integer PRIMARY KEY, randomnumber integer NOT NULL)",
    "CREATE TABLE IF NOT EXISTS fortune (id integer PRIMARY KEY, message varchar(2048) NOT NULL)",
    # The N+1 pair: authors and their books. The index makes each per-author query an index scan, so
    # the lazy endpoint's cost is round trips, not sequential scans.
    "CREATE TABLE IF NOT EXISTS author (id integer PRIMARY KEY, name varchar(200) NOT NULL)",
    "CREATE TABLE IF NOT EXISTS book (id integer PRIMARY KEY,"
    " author_id integer NOT NULL REFERENCES author (id), title varchar(200) NOT NULL)",
    "CREATE INDEX IF NOT EXISTS book_author_id ON book (author_id)",
    # The search pair: a table big enough that an index changes the pages a query reads, and a report over
    # it kept in a materialized view. No index here beyond the key: SEARCH_INDEX is switched on and off.
    "CREATE TABLE IF NOT EXISTS items (id integer PRIMARY KEY, category integer NOT NULL,"
    " price_cents integer NOT NULL, created_at timestamp NOT NULL)",
)

DDL: tuple[str, ...] = (
    *TABLES_DDL,
    # Heavy on purpose (two sorts per category and a distinct count over all items): a refresh costs ~60 ms
    # on an idle 2-core box, 120-230 ms under load (measured), vs ~5 ms for the 202 of POST /refresh-views
    # (CONCURRENTLY: /report readers are not blocked). avg is the integer (floor) mean, so
    # every driver returns the same int. Created WITH DATA: over an empty table it is empty, and the seeder
    # refreshes it after loading items.
    "CREATE MATERIALIZED VIEW IF NOT EXISTS category_report AS SELECT category,"
    " count(*)::int AS items, min(price_cents) AS min_price_cents,"
    " (sum(price_cents) / count(*))::int AS avg_price_cents,"
    " percentile_disc(0.5) WITHIN GROUP (ORDER BY price_cents) AS median_price_cents,"
    " percentile_disc(0.9) WITHIN GROUP (ORDER BY price_cents) AS p90_price_cents,"
    " max(price_cents) AS max_price_cents, count(DISTINCT created_at::date)::int AS active_days,"
    " max(created_at) AS newest_created_at FROM items GROUP BY category",
    # REFRESH ... CONCURRENTLY needs a unique index on the view (it diffs old and new rows by it).
    "CREATE UNIQUE INDEX IF NOT EXISTS category_report_category ON category_report (category)",
    # What the seeder loaded into items ((row count, checksum) of the generator's rows) and into which
    # items table (its oid: a dropped and recreated table is empty), deleted by any write to items: while it
    # matches, the per-cell seed skips the ~1 s reload without scanning the table.
    "CREATE TABLE IF NOT EXISTS items_seeded (items_oid oid NOT NULL, fingerprint text NOT NULL)",
    "CREATE OR REPLACE FUNCTION items_written() RETURNS trigger LANGUAGE plpgsql AS"
    " 'BEGIN DELETE FROM items_seeded; RETURN NULL; END'",
    # DROP + CREATE rather than CREATE OR REPLACE TRIGGER, which needs PostgreSQL 14.
    "DROP TRIGGER IF EXISTS items_written ON items",
    "CREATE TRIGGER items_written AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON items"
    " FOR EACH STATEMENT EXECUTE FUNCTION items_written()",
)

AUTHOR_ROWS = 100
MAX_BOOKS_PER_AUTHOR = 20
_FIRST_NAMES = ("Ada", "Chinua", "Élodie", "Grace", "Haruki", "Ingrid", "José", "Leila", "Nnedi", "Søren")
_LAST_NAMES = ("Achebe", "Borges", "Lovelace", "Murakami", "Okorafor", "Hopper", "Ørsted", "Yılmaz")
_TITLE_WORDS = ("Silent", "River", "Garden", "Machine", "Winter", "Letters", "Night", "Atlas", "Salt", "Ember")

AuthorRow = tuple[int, str]  # (id, name)
BookRow = tuple[int, int, str]  # (id, author_id, title)

# The 12 classic TechEmpower fortunes, ids 1..12 exactly: row 11 proves escaping, row 12 proves UTF-8.
FORTUNES: tuple[tuple[int, str], ...] = (
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. — Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "フレームワークのベンチマーク"),
)

# Not stored: every /fortunes response adds this row at request time (TechEmpower rule).
ADDED_FORTUNE: tuple[int, str] = (0, "Additional fortune added at request time.")


def world_values(seed: int = SEED) -> list[int]:
    """randomNumber for ids 1..WORLD_ROWS (element i belongs to id i + 1), the same on every call."""
    rng = random.Random(seed)
    return [rng.randint(1, MAX_RANDOM_NUMBER) for _ in range(WORLD_ROWS)]


def seeded_world(seed: int = SEED) -> dict[int, int]:
    """The seeded world table as {id: randomNumber}."""
    return dict(enumerate(world_values(seed), start=1))


def author_rows(seed: int = SEED) -> list[AuthorRow]:
    """Authors 1..AUTHOR_ROWS with names (some non-ASCII, to prove UTF-8 end to end)."""
    rng = random.Random(seed + 1)
    return [
        (author_id, f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)} {author_id}")
        for author_id in range(1, AUTHOR_ROWS + 1)
    ]


def book_rows(seed: int = SEED) -> list[BookRow]:
    """1..MAX_BOOKS_PER_AUTHOR books per author. Ids are a shuffled 1..M, so "sorted by id" within an
    author is not the insertion order and a variant that forgets ORDER BY is caught."""
    rng = random.Random(seed + 2)
    owners = [author_id for author_id, _ in author_rows(seed) for _ in range(rng.randint(1, MAX_BOOKS_PER_AUTHOR))]
    ids = list(range(1, len(owners) + 1))
    rng.shuffle(ids)
    return [
        (book_id, author_id, f"{rng.choice(_TITLE_WORDS)} {rng.choice(_TITLE_WORDS)} #{book_id}")
        for book_id, author_id in zip(ids, owners, strict=True)
    ]


def seeded_authors_json(limit: int, seed: int = SEED) -> list[dict[str, object]]:
    """The /authors/* response for ``limit``: first authors by id, each with its books sorted by id."""
    books: dict[int, list[tuple[int, str]]] = {}
    for book_id, author_id, title in book_rows(seed):
        books.setdefault(author_id, []).append((book_id, title))
    return [
        {"id": author_id, "name": name, "books": [{"id": i, "title": t} for i, t in sorted(books[author_id])]}
        for author_id, name in author_rows(seed)[:limit]
    ]


# --- items: the search table and its report --------------------------------------------------------

ITEM_ROWS = 200_000
ITEM_CATEGORIES = 100
MAX_PRICE_CENTS = 100_000
# The /search default and the load scenario's max_price: about half of a category's rows qualify, so
# LIMIT 20 stops after ~40 index entries with the index and sorts ~1,000 rows without it.
SEARCH_MAX_PRICE = 50_000
SEARCH_DEFAULT_LIMIT = 20
SEARCH_MAX_LIMIT = 100
# Key order = the ORDER BY, so the scan stops after LIMIT matches; price_cents is INCLUDEd so the filter
# is evaluated in the index and the plan is an index-only scan (4 pages per query, measured) once VACUUM
# has set the visibility map. Without it: a (parallel) seq scan of all ~1,300 heap pages + a top-N sort.
SEARCH_INDEX = "items_category_created_at"
SEARCH_INDEX_DDL = (
    f"CREATE INDEX IF NOT EXISTS {SEARCH_INDEX} ON items (category, created_at DESC, id DESC) INCLUDE (price_cents)"
)
# created_at is a naive timestamp meaning UTC; the API renders it as ISO 8601 with "Z".
ITEMS_EPOCH = datetime(2024, 1, 1)
ITEMS_SPAN_SECONDS = 366 * 86_400

ItemRow = tuple[int, int, int, datetime]  # (id, category, price_cents, created_at)
# (category, items, min, avg, median, p90, max price_cents, active days, newest created_at)
ReportRow = tuple[int, int, int, int, int, int, int, int, datetime]


def item_offsets(seed: int = SEED) -> Iterator[tuple[int, int, int, int]]:
    """(id, category, price_cents, seconds after ITEMS_EPOCH) for ids 1..ITEM_ROWS, the same on every call.

    Every attribute is drawn independently per row, so in id (= insertion) order a category's rows are
    spread over the whole heap and neither category nor created_at correlates with the physical order:
    without an index a search must read every page. ``random()`` scaled, not ``randint``: 4x faster.
    """
    draw = random.Random(seed + 3).random
    for item_id in range(1, ITEM_ROWS + 1):
        category = int(draw() * ITEM_CATEGORIES) + 1
        price = int(draw() * MAX_PRICE_CENTS) + 1
        yield item_id, category, price, int(draw() * ITEMS_SPAN_SECONDS)


def item_rows(seed: int = SEED) -> Iterator[ItemRow]:
    for item_id, category, price, seconds in item_offsets(seed):
        yield item_id, category, price, ITEMS_EPOCH + timedelta(seconds=seconds)


def item_row_checksum(item_id: int, category: int, price: int, seconds: int) -> int:
    """One row's share of ``items_checksum``; bench.seed.ITEMS_CHECKSUM is the same sum in SQL."""
    return ((item_id * 101 + category) * 100_003 + price) * 1_000_003 + seconds


def items_checksum(seed: int = SEED) -> tuple[int, int]:
    """(row count, checksum) of the seeded items, a fingerprint of the generator's output."""
    count = total = 0
    for row in item_offsets(seed):
        count += 1
        total += item_row_checksum(*row)
    return count, total
