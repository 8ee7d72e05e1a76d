"""``bench advice``: the common FastAPI performance advice, one part of the plan per claim.

Each claim gets only the cells that test it (a cross product of everything would be hours of load):
- indexes matter: the search scenario with its index on and off;
- caching takes load off the database: ``cached`` (in-process and Redis) beside ``pooled``, on hot keys,
  uniform keys and a 90/10 read/write mix;
- long refreshes belong in background tasks: the report endpoint with and without refreshes running;
- pooling trims connection overhead: /db over a pool-size sweep, ``nopool`` capped at the same sizes.
"""

from __future__ import annotations

import shutil

from bench.plan import Part, Setting
from scenarios import SCENARIOS

DEFAULT_POOL_SIZES = (1, 5, 10, 20)
POOLED_VARIANTS = ("pooled", "async_orm", "databases", "sync")
# nopool runs at every size too: the size caps its simultaneous connections (targets/nopool.py), so at
# each size it is the pooled variants' match in concurrency and differs only in reusing nothing.
POOL_SWEEP = (*POOLED_VARIANTS, "nopool")
SPREAD = ("pooled", "async_orm", "sync")  # thinnest, ORM on asyncpg, ORM in threads


def redis_available(redis_url: str | None) -> bool:
    return redis_url is not None or shutil.which("redis-server") is not None


CLAIMS = ("index", "cache", "refresh", "pool")


def parts(
    pool_sizes: tuple[int, ...] = DEFAULT_POOL_SIZES,
    redis: bool = True,
    claims: tuple[str, ...] = CLAIMS,
    variants: tuple[str, ...] = (),
    scenarios: tuple[str, ...] = (),
) -> list[Part]:
    """The plan's parts for ``claims``, narrowed to ``variants`` and ``scenarios`` when given."""
    get = SCENARIOS.get
    caches = [Setting(cache="memory"), *([Setting(cache="redis")] if redis else [])]
    keys = [get("hot"), get("uniform"), get("mixed")]
    everything = [
        ("index", Part([get("search")], [Setting(index=True), Setting(index=False)], SPREAD, "indexing")),
        ("cache", Part(keys, caches, ("cached",), "caching")),
        ("cache", Part(keys, [None], ("pooled",), "caching: the uncached baseline")),
        ("refresh", Part([get("report"), get("report_refresh")], [None], SPREAD, "background refresh")),
        ("pool", Part([get("db")], [Setting(pool_size=size) for size in pool_sizes], POOL_SWEEP, "pooling")),
    ]
    chosen = []
    for claim, part in everything:
        names = tuple(v for v in part.variants if not variants or v in variants)
        kept = [s for s in part.scenarios if not scenarios or s.name in scenarios]
        if claim in claims and names and kept:
            chosen.append(Part(kept, part.settings, names, part.title))
    return chosen
