"""The N+1 pair: seeded authors and books, /authors/lazy and /authors/eager in every variant, the scenario.

How many queries each endpoint runs, and which one the contract check flags, is asserted per variant in
tests/test_targets.py::test_variant_meets_the_contract (one check run per variant serves both).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import httpx
import psycopg
import pytest

from bench.seed import apply_schema, seed
from scenarios import SCENARIOS
from targets import VARIANTS, Variant
from targets.common.contract import parse_limit
from targets.common.schema import AUTHOR_ROWS, MAX_BOOKS_PER_AUTHOR, author_rows, book_rows, seeded_authors_json
from targets.common.settings import TargetSpec

RunTarget = Callable[[str, dict[str, str]], str]


def compact(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def test_seeded_authors_and_books_are_deterministic() -> None:
    assert author_rows() == author_rows() and book_rows() == book_rows()
    authors = author_rows()
    assert [a for a, _ in authors] == list(range(1, AUTHOR_ROWS + 1))
    assert any(not name.isascii() for _, name in authors)
    books = book_rows()
    assert sorted(b for b, _, _ in books) == list(range(1, len(books) + 1))
    per_author = Counter(author_id for _, author_id, _ in books)
    assert set(per_author) == {a for a, _ in authors}
    assert min(per_author.values()) >= 1 and max(per_author.values()) <= MAX_BOOKS_PER_AUTHOR
    assert len(set(per_author.values())) > 5  # sizes vary, so N+1 cost is not uniform per author
    # Ids are shuffled: insertion order is not id order, so a missing ORDER BY shows.
    first_author_books = [b for b, a, _ in books if a == 1]
    assert first_author_books != sorted(first_author_books)


def test_expected_response_is_sorted_and_limited() -> None:
    body = seeded_authors_json(3)
    assert [a["id"] for a in body] == [1, 2, 3]
    for author in body:
        ids = [b["id"] for b in author["books"]]
        assert ids == sorted(ids) and list(author) == ["id", "name", "books"]


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, 20), ("", 20), ("foo", 20), ("0", 1), ("-5", 1), ("7", 7), ("100", 100), ("101", 100)]
)
def test_parse_limit(raw: str | None, expected: int) -> None:
    assert parse_limit(raw) == expected


def test_seed_fills_authors_and_books(pg_dsn: str) -> None:
    apply_schema(pg_dsn)
    seed(pg_dsn)
    seed(pg_dsn)  # repeatable: TRUNCATE covers the new tables (and the foreign key between them)
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT id, name FROM author ORDER BY id").fetchall() == author_rows()
        stored = conn.execute("SELECT id, author_id, title FROM book ORDER BY id").fetchall()
        assert stored == sorted(book_rows())
        plan = conn.execute("EXPLAIN SELECT id FROM book WHERE author_id = 1").fetchall()
        assert "book_author_id" in str(plan)


def test_scenario_is_registered_after_updates() -> None:
    assert SCENARIOS.groups["core"][-2:] == ["updates", "nplus1"]
    scenario = SCENARIOS.get("nplus1")
    assert scenario.label.startswith("N+1 vs eager")
    source = scenario.path.read_text(encoding="utf-8")
    assert 'name="/authors/lazy"' in source and 'name="/authors/eager"' in source


@pytest.fixture
def seeded_dsn(pg_dsn: str) -> str:
    apply_schema(pg_dsn)
    seed(pg_dsn)
    return pg_dsn


@pytest.mark.parametrize("variant", list(VARIANTS), ids=VARIANTS.names)
def test_lazy_and_eager_serve_the_same_bytes(variant: Variant, seeded_dsn: str, run_target: RunTarget) -> None:
    env = {**TargetSpec(seeded_dsn, 4, instrument=True).to_env(), "PYTHONWARNINGS": "error"}
    base_url = run_target(variant.app, env)
    for query, limit in [("", 20), ("?limit=5", 5), ("?limit=100", 100)]:
        expected = compact(seeded_authors_json(limit))
        for endpoint in ("/authors/lazy", "/authors/eager"):
            response = httpx.get(f"{base_url}{endpoint}{query}", timeout=30)
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            assert response.content == expected, (endpoint, query)
