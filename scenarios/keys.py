"""Not a scenario: how the cache scenarios pick world ids (imported by their locustfiles, pure random)."""

from __future__ import annotations

import random

from targets.common.schema import MAX_RANDOM_NUMBER, WORLD_ROWS

HOT_SHARE = 0.80  # of reads ...
HOT_IDS = WORLD_ROWS // 100  # ... go to 1 % of the ids (1..100): a skew a cache is built for


def uniform_id() -> int:
    return random.randint(1, WORLD_ROWS)


def hot_id() -> int:
    return random.randint(1, HOT_IDS) if random.random() < HOT_SHARE else uniform_id()


def new_value() -> int:
    return random.randint(1, MAX_RANDOM_NUMBER)
