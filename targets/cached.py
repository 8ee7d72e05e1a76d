"""Raw asyncpg pool + a cache of world rows (in-process, or Redis with DBBENCH_CACHE=redis)
Hypothesis: world rows are read far more than written, so a cache (cache-aside on /db and /queries, 60 s
TTL, write-through on /updates) answers most reads with no query at all; it shows how much of the pooled
variant's time is the database round trip, and with Redis how much of that a network cache gives back.
Fewer queries are legitimate here because every served value is one the database holds: /updates reads
from the database, invalidates its ids before writing and, once its write has committed, stores exactly
what it wrote, and cache fills that race a concurrent write are dropped. /fortunes is not cached
(TechEmpower forbids it; it is the same as pooled).
On SQLite (`--db sqlite`, no asyncpg) the cache wraps async_orm's store (AsyncSession on aiosqlite, a real
pool of DBBENCH_POOL_SIZE connections): there, compare cached with async_orm to see what the cache gives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

from targets import async_orm, pooled
from targets.common.contract import (
    AsyncStore,
    AuthorBooks,
    FortuneRow,
    ItemRow,
    ReportRow,
    Settings,
    StoreInfo,
    WorldRow,
    build_async_app,
)
from targets.common.stats import Collector
from targets.common.stores import per_database
from targets.common.worldcache import CacheBackend, WorldCache, open_cache

# WorldCache is re-exported: the memory backend's unit tests import it from here.
__all__ = ["CachedStore", "WorldCache", "app", "open_store"]


class CachedStore:
    """A cache in front of another store (composition): world reads and writes go through the cache's
    rules (targets.common.worldcache), everything else straight to ``store``."""

    def __init__(self, store: AsyncStore, cache: CacheBackend) -> None:
        self.store = store
        self.cache = cache

    async def read_worlds(self, ids: Sequence[int]) -> list[WorldRow]:
        distinct = list(dict.fromkeys(ids))  # a repeated id is answered by its first lookup
        values = await self.cache.lookup(distinct)
        # Tokens are taken before the database is queried: a write beginning after this drops the fill.
        tokens = {world_id: self.cache.fill_token(world_id) for world_id in distinct if world_id not in values}
        if tokens:
            read = dict(await self.store.read_worlds(list(tokens)))
            await self.cache.fill(read, tokens)
            values.update(read)
        return [(world_id, values[world_id]) for world_id in ids]

    async def update_worlds(self, ids: Sequence[int], new_values: Mapping[int, int]) -> list[WorldRow]:
        # Reads go to the database, never the cache: an update must start from what is stored. The cache is
        # invalidated before the store takes a connection, and the write-through happens after it returned it.
        async with self.cache.writing(new_values):
            return await self.store.update_worlds(ids, new_values)

    async def read_fortunes(self) -> list[FortuneRow]:
        return await self.store.read_fortunes()

    async def read_authors_lazy(self, limit: int) -> list[AuthorBooks]:
        return await self.store.read_authors_lazy(limit)

    async def read_authors_eager(self, limit: int) -> list[AuthorBooks]:
        return await self.store.read_authors_eager(limit)

    async def search_items(self, category: int, max_price: int, limit: int) -> list[ItemRow]:
        return await self.store.search_items(category, max_price, limit)

    async def read_report(self) -> list[ReportRow]:
        return await self.store.read_report()

    async def refresh_views(self) -> None:
        await self.store.refresh_views()

    async def clear_cache(self) -> int:
        """Empty the world cache (POST /_bench/cache/clear, between two cells); the entries removed."""
        return await self.cache.clear()

    def info(self) -> StoreInfo:
        return dataclasses.replace(self.store.info(), cache=self.cache.stats())


# The raw asyncpg pool on PostgreSQL; on SQLite, which asyncpg cannot reach, async_orm's store.
_open_inner = per_database(postgres=pooled.open_store, sqlite=async_orm.open_store)


@asynccontextmanager
async def open_store(settings: Settings, collector: Collector | None) -> AsyncIterator[AsyncStore]:
    async with _open_inner(settings, collector) as store, open_cache(settings.cache, settings.pool_size) as cache:
        yield CachedStore(store, cache)


app = build_async_app("cached", open_store)
