"""Raw asyncpg pool + in-process cache of world rows
Hypothesis: world rows are read far more than written, so a process-local cache (cache-aside on /db and
/queries, 60 s TTL, write-through on /updates) answers most reads with no query at all; it shows how much
of the pooled variant's time is the database round trip. Fewer queries are legitimate here because every
served value is one the database holds: /updates reads from the database and, once its write has
committed, stores exactly what it wrote in the cache, and cache fills that race a concurrent write are
dropped. /fortunes is not cached (TechEmpower forbids it; it is the same as pooled).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg

from targets import pooled
from targets.contract import AsyncStore, Settings, StoreInfo, WorldRow, build_async_app
from targets.stats import Collector

# The endpoints whose reads the cache may answer without a query; the contract check accepts fewer
# queries than TechEmpower's one-per-row there, and only there (/updates always reads the database).
FEWER_QUERIES_OK = ("/db", "/queries")

TTL_SECONDS = 60.0


class WorldCache:
    """{id: randomNumber} with expiry, kept coherent with the database under concurrent requests.

    Two races would serve stale values: a read that queried before a write and fills the cache after it,
    and two writers whose cache updates land in the opposite order of their commits. So each id keeps a
    write generation and a count of writers in flight: a fill is kept only if no write to that id was in
    flight when the read looked it up nor began since, and a writer stores its value only if no other write
    to that id overlapped its own; otherwise the id stays uncached and the next read goes to the database.
    Only touched from the event loop thread, between awaits, so no lock is needed.
    """

    def __init__(self, ttl: float = TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[int, tuple[int, float]] = {}  # id -> (randomNumber, expires at)
        self._generation: dict[int, int] = {}
        self._writers: dict[int, int] = {}
        self.hits = 0
        self.misses = 0

    def get(self, world_id: int) -> int | None:
        entry = self._entries.get(world_id)
        if entry is not None and entry[1] > self._clock():
            self.hits += 1
            return entry[0]
        self.misses += 1
        return None

    def fill_token(self, world_id: int) -> int | None:
        """Take before querying the database; hand to ``fill`` with the value read.

        None while a write is in flight: the read may see the row before or after that write commits.
        """
        return None if world_id in self._writers else self._generation.get(world_id, 0)

    def fill(self, world_id: int, value: int, token: int | None) -> None:
        if token is not None and token == self._generation.get(world_id, 0):
            self._entries[world_id] = (value, self._clock() + self.ttl)

    @contextmanager
    def writing(self, new_values: Mapping[int, int]) -> Iterator[None]:
        """Wrap the database write of ``new_values``; on success the values written are cached."""
        started: dict[int, tuple[int, bool]] = {}  # id -> (our generation, no other writer in flight)
        for world_id in new_values:
            generation = self._generation.get(world_id, 0) + 1
            self._generation[world_id] = generation
            writers = self._writers.get(world_id, 0) + 1
            self._writers[world_id] = writers
            self._entries.pop(world_id, None)
            started[world_id] = (generation, writers == 1)
        committed = False
        try:
            yield
            committed = True
        finally:
            expires = self._clock() + self.ttl
            for world_id, (generation, alone) in started.items():
                self._writers[world_id] -= 1
                if not self._writers[world_id]:
                    del self._writers[world_id]
                # A later generation means another write began after ours: its commit order is unknown.
                if committed and alone and self._generation[world_id] == generation:
                    self._entries[world_id] = (new_values[world_id], expires)

    def stats(self) -> dict[str, Any]:
        return {
            "ttl_s": self.ttl,
            "entries": len(self._entries),
            "hits": self.hits,
            "misses": self.misses,
            "fewer_queries_ok": list(FEWER_QUERIES_OK),
        }


class CachedStore(pooled.PoolStore):
    def __init__(self, pool: asyncpg.Pool, cache: WorldCache) -> None:
        super().__init__(pool)
        self.cache = cache

    async def read_worlds(self, ids: Sequence[int]) -> list[WorldRow]:
        values: dict[int, int] = {}
        missing: dict[int, int | None] = {}  # id -> fill token
        for world_id in ids:
            if world_id in values or world_id in missing:
                continue  # a repeated id is answered by its first lookup
            value = self.cache.get(world_id)
            if value is None:
                missing[world_id] = self.cache.fill_token(world_id)
            else:
                values[world_id] = value
        if missing:
            async with self.pool.acquire() as conn:
                for world_id, value in await pooled.read_worlds(conn, list(missing)):
                    self.cache.fill(world_id, value, missing[world_id])
                    values[world_id] = value
        return [(world_id, values[world_id]) for world_id in ids]

    async def update_worlds(self, ids: Sequence[int], new_values: Mapping[int, int]) -> list[WorldRow]:
        # Reads go to the database, never the cache: an update must start from what is stored.
        async with self.pool.acquire() as conn:
            with self.cache.writing(new_values):
                return await pooled.update_worlds(conn, ids, new_values)

    def info(self) -> StoreInfo:
        return StoreInfo(
            driver="asyncpg",
            pool_size=self.pool.get_max_size(),
            max_overflow=None,
            cache=self.cache.stats(),
        )


@asynccontextmanager
async def open_store(settings: Settings, collector: Collector | None) -> AsyncIterator[AsyncStore]:
    async with pooled.open_pool(settings, collector) as pool:
        yield CachedStore(pool, WorldCache())


# Statement timing is opt-in here (DBBENCH_INSTRUMENT=1, `bench run --instrument`): asyncpg's query
# logger costs this variant's cheap requests more than the 5 % budget in target CPU per request
# (benchmarks/overhead.py on a 2-core box: pooled +7/+17/+20 %, databases +10 % median, cached +6 %).
app = build_async_app("cached", open_store, instrument_by_default=False)
