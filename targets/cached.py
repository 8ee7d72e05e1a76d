"""Raw asyncpg pool + a cache of world rows (in-process, or Redis with DBBENCH_CACHE=redis)
Hypothesis: world rows are read far more than written, so a cache (cache-aside on /db and /queries, 60 s
TTL, write-through on /updates) answers most reads with no query at all; it shows how much of the pooled
variant's time is the database round trip, and with Redis how much of that a network cache gives back.
Fewer queries are legitimate here because every served value is one the database holds: /updates reads
from the database, invalidates its ids before writing and, once its write has committed, stores exactly
what it wrote, and cache fills that race a concurrent write are dropped. /fortunes is not cached
(TechEmpower forbids it; it is the same as pooled).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import asyncpg

from targets import pooled
from targets.contract import AsyncStore, Settings, StoreInfo, WorldRow, build_async_app
from targets.stats import Collector
from targets.worldcache import CacheBackend, CacheSettings, WorldCache, open_cache

# WorldCache is re-exported: the memory backend's unit tests import it from here.
__all__ = ["CachedStore", "WorldCache", "app", "open_store"]


class CachedStore(pooled.PoolStore):
    def __init__(self, pool: asyncpg.Pool, cache: CacheBackend) -> None:
        super().__init__(pool)
        self.cache = cache

    async def read_worlds(self, ids: Sequence[int]) -> list[WorldRow]:
        distinct = list(dict.fromkeys(ids))  # a repeated id is answered by its first lookup
        values = await self.cache.lookup(distinct)
        # Tokens are taken before the database is queried: a write beginning after this drops the fill.
        tokens = {world_id: self.cache.fill_token(world_id) for world_id in distinct if world_id not in values}
        if tokens:
            async with self.pool.acquire() as conn:
                read = dict(await pooled.read_worlds(conn, list(tokens)))
            await self.cache.fill(read, tokens)
            values.update(read)
        return [(world_id, values[world_id]) for world_id in ids]

    async def update_worlds(self, ids: Sequence[int], new_values: Mapping[int, int]) -> list[WorldRow]:
        # Reads go to the database, never the cache: an update must start from what is stored. The cache
        # is invalidated before a connection is taken, and the write-through happens after it is returned.
        async with self.cache.writing(new_values), self.pool.acquire() as conn:
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
    cache_settings = CacheSettings.from_env()  # read before connecting: a bad setting fails fast
    async with pooled.open_pool(settings, collector) as pool, open_cache(cache_settings, settings.pool_size) as cache:
        yield CachedStore(pool, cache)


# Statement timing is opt-in here (DBBENCH_INSTRUMENT=1, `bench run --instrument`): asyncpg's query
# logger costs this variant's cheap requests more than the 5 % budget in target CPU per request
# (benchmarks/overhead.py on a 2-core box: pooled +7/+17/+20 %, databases +10 % median, cached +6 %).
app = build_async_app("cached", open_store, instrument_by_default=False)
