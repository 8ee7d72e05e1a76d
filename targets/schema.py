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
)

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
