"""Tables and deterministic seed data shared by every variant, the seeder and the contract check.

Pure data: no database driver is imported here, so the orchestrator can use it cheaply.
"""

from __future__ import annotations

import random

WORLD_ROWS = 10_000
MAX_RANDOM_NUMBER = 10_000
SEED = 20_241_124

DDL: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS world (id integer PRIMARY KEY, randomnumber integer NOT NULL)",
    "CREATE TABLE IF NOT EXISTS fortune (id integer PRIMARY KEY, message varchar(2048) NOT NULL)",
    # The N+1 pair: authors and their books. The index makes each per-author query an index scan, so
    # the lazy endpoint's cost is round trips, not sequential scans.
    "CREATE TABLE IF NOT EXISTS author (id integer PRIMARY KEY, name varchar(200) NOT NULL)",
    "CREATE TABLE IF NOT EXISTS book (id integer PRIMARY KEY,"
    " author_id integer NOT NULL REFERENCES author (id), title varchar(200) NOT NULL)",
    "CREATE INDEX IF NOT EXISTS book_author_id ON book (author_id)",
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
