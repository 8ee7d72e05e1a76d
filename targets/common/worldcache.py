"""The cached variant's world-row caches: in-process (memory) or Redis, kept coherent by the same rules.

Which values may enter a cache is decided in this process by a ``WriteFence`` for both backends: the target
runs one uvicorn worker, so every write this app makes to the database passes through it. Redis adds one
problem the dict does not have: a SET decided on one connection can reach the server after a DEL sent on
another, so a writer first waits for the SETs already on their way for its ids, then deletes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any, Protocol
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from targets.common.settings import REDIS_URL, CacheSpec

# The endpoints whose reads the cache may answer without a query; the contract check accepts fewer
# queries than TechEmpower's one-per-row there, and only there (/updates always reads the database).
FEWER_QUERIES_OK = ("/db", "/queries")

TTL_SECONDS = 60.0
# Every key this app writes starts with this; startup and shutdown delete these keys and no others.
KEY_PREFIX = "dbbench:world:"
_SCAN_BATCH = 1000
# Seconds: a Redis that stops answering fails the request instead of hanging it.
_REDIS_TIMEOUT = 10.0


# Which cache backs the variant: declared with the rest of a target's settings (targets.common.settings).
CacheSettings = CacheSpec


def redis_address(url: str) -> str:
    """host:port of a Redis URL: what is shown, never the password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port or 6379}"


def world_key(world_id: int) -> str:
    return f"{KEY_PREFIX}{world_id}"


class WriteFence:
    """Per id: a write generation and the number of writers in flight; decides which values may be cached.

    Two races would serve stale values: a read that queried before a write and fills the cache after it,
    and two writers whose cache updates land in the opposite order of their commits. So a fill is kept only
    if no write to that id was in flight when the read looked it up nor began since, and a writer stores
    its value only if no other write to that id overlapped its own; otherwise the id stays uncached and the
    next read goes to the database. Only touched from the event loop thread, between awaits: no lock.
    """

    def __init__(self) -> None:
        self._generation: dict[int, int] = {}
        self._writers: dict[int, int] = {}

    def token(self, world_id: int) -> int | None:
        """Take before querying the database; None while a write is in flight (the read may see the row
        before or after that write commits)."""
        return None if world_id in self._writers else self._generation.get(world_id, 0)

    def still_current(self, world_id: int, token: int | None) -> bool:
        return token is not None and token == self._generation.get(world_id, 0)

    def begin(self, ids: Iterable[int]) -> dict[int, tuple[int, bool]]:
        """Register a write; returns id -> (its generation, no other writer in flight)."""
        started: dict[int, tuple[int, bool]] = {}
        for world_id in ids:
            generation = self._generation.get(world_id, 0) + 1
            self._generation[world_id] = generation
            writers = self._writers.get(world_id, 0) + 1
            self._writers[world_id] = writers
            started[world_id] = (generation, writers == 1)
        return started

    def end(self, started: Mapping[int, tuple[int, bool]]) -> list[int]:
        """Unregister a write; returns the ids no other write overlapped (their value may be cached)."""
        alone_ids = []
        for world_id, (generation, alone) in started.items():
            self._writers[world_id] -= 1
            if not self._writers[world_id]:
                del self._writers[world_id]
            # A later generation means another write began after ours: its commit order is unknown.
            if alone and self._generation[world_id] == generation:
                alone_ids.append(world_id)
        return alone_ids


class WorldCache:
    """{id: randomNumber} with expiry in this process, coherent with the database through a ``WriteFence``."""

    def __init__(self, ttl: float = TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[int, tuple[int, float]] = {}  # id -> (randomNumber, expires at)
        self._fence = WriteFence()
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
        """Take before querying the database; hand to ``fill`` with the value read."""
        return self._fence.token(world_id)

    def fill(self, world_id: int, value: int, token: int | None) -> None:
        if self._fence.still_current(world_id, token):
            self._entries[world_id] = (value, self._clock() + self.ttl)

    @contextmanager
    def writing(self, new_values: Mapping[int, int]) -> Iterator[None]:
        """Wrap the database write of ``new_values``; on success the values written are cached."""
        started = self._fence.begin(new_values)
        for world_id in new_values:
            self._entries.pop(world_id, None)
        committed = False
        try:
            yield
            committed = True
        finally:
            alone = self._fence.end(started)
            if committed:
                expires = self._clock() + self.ttl
                for world_id in alone:
                    self._entries[world_id] = (new_values[world_id], expires)

    def clear(self) -> int:
        """Forget every entry (the counters stay: they are cumulative, diffed between a window's edges);
        returns how many there were."""
        count = len(self._entries)
        self._entries.clear()
        return count

    def stats(self) -> dict[str, Any]:
        return {
            "backend": "memory",
            "ttl_s": self.ttl,
            "entries": len(self._entries),
            "hits": self.hits,
            "misses": self.misses,
            "fewer_queries_ok": list(FEWER_QUERIES_OK),
            "redis": None,
        }


class CacheBackend(Protocol):
    """What the cached store needs from a cache; hits and misses are counted per distinct id looked up."""

    async def lookup(self, ids: Collection[int]) -> dict[int, int]:
        """The cached values among distinct ``ids`` (absent: a miss)."""

    def fill_token(self, world_id: int) -> int | None: ...

    async def fill(self, values: Mapping[int, int], tokens: Mapping[int, int | None]) -> None:
        """Cache values read from the database, each only if its token (taken before the read) still holds."""

    def writing(self, new_values: Mapping[int, int]) -> AbstractAsyncContextManager[None]:
        """Wrap the database write of ``new_values``: invalidate first, cache the committed values after."""

    async def clear(self) -> int:
        """Empty the cache (this app's entries only); the number of entries removed."""

    def stats(self) -> dict[str, Any]: ...


class MemoryBackend:
    """``WorldCache`` behind the async interface; nothing here suspends, so no await changes its logic."""

    def __init__(self, cache: WorldCache) -> None:
        self.cache = cache

    async def lookup(self, ids: Collection[int]) -> dict[int, int]:
        found = {}
        for world_id in ids:
            value = self.cache.get(world_id)
            if value is not None:
                found[world_id] = value
        return found

    def fill_token(self, world_id: int) -> int | None:
        return self.cache.fill_token(world_id)

    async def fill(self, values: Mapping[int, int], tokens: Mapping[int, int | None]) -> None:
        for world_id, value in values.items():
            self.cache.fill(world_id, value, tokens[world_id])

    @asynccontextmanager
    async def writing(self, new_values: Mapping[int, int]) -> AsyncIterator[None]:
        with self.cache.writing(new_values):
            yield

    async def clear(self) -> int:
        return self.cache.clear()

    def stats(self) -> dict[str, Any]:
        return self.cache.stats()


class RedisBackend:
    """World values in Redis (``dbbench:world:{id}``, SET ... PX), one MGET per request's lookup.

    Every SET this process sends is registered as landing until Redis has answered it; a writer waits for
    the SETs landing on its ids, then DELs them, then writes the database. Fills and write-throughs decided
    after the writer began are refused by the fence, so once the DEL has answered no older value can reach
    Redis for those ids, and the database write comes after it.
    """

    def __init__(self, client: aioredis.Redis, address: str, pool_size: int, ttl: float = TTL_SECONDS) -> None:
        self._client = client
        self.address = address
        self.pool_size = pool_size
        self.ttl = ttl
        self._ttl_ms = round(ttl * 1000)
        self._fence = WriteFence()
        self._landing: dict[int, set[asyncio.Future[None]]] = {}
        self.hits = 0
        self.misses = 0

    async def lookup(self, ids: Collection[int]) -> dict[int, int]:
        if not ids:
            return {}
        raw: list[bytes | str | None] = await self._client.mget([world_key(world_id) for world_id in ids])
        found = {}
        for world_id, value in zip(ids, raw, strict=True):
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
                found[world_id] = int(value)
        return found

    def fill_token(self, world_id: int) -> int | None:
        return self._fence.token(world_id)

    async def fill(self, values: Mapping[int, int], tokens: Mapping[int, int | None]) -> None:
        kept = {
            world_id: value
            for world_id, value in values.items()
            if self._fence.still_current(world_id, tokens[world_id])
        }
        if kept:
            await self._store(kept)

    @asynccontextmanager
    async def writing(self, new_values: Mapping[int, int]) -> AsyncIterator[None]:
        started = self._fence.begin(new_values)
        committed = False
        try:
            landing = {future for world_id in new_values for future in self._landing.get(world_id, ())}
            if landing:
                await asyncio.wait(landing)
            await self._client.delete(*(world_key(world_id) for world_id in new_values))
            yield
            committed = True
        finally:
            alone = self._fence.end(started)
        if committed and alone:
            await self._store({world_id: new_values[world_id] for world_id in alone})

    async def clear(self) -> int:
        # The same deletion as at startup: this app's KEY_PREFIX keys and no others on the server.
        return await delete_own_keys(self._client)

    async def _store(self, values: Mapping[int, int]) -> None:
        """SET each value with the TTL in one round trip; registered as landing before the first await."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for world_id in values:
            self._landing.setdefault(world_id, set()).add(done)
        try:
            pipe = self._client.pipeline(transaction=False)
            for world_id, value in values.items():
                pipe.set(world_key(world_id), value, px=self._ttl_ms)
            await pipe.execute()
        finally:
            done.set_result(None)
            for world_id in values:
                futures = self._landing[world_id]
                futures.discard(done)
                if not futures:
                    del self._landing[world_id]

    def stats(self) -> dict[str, Any]:
        return {
            "backend": "redis",
            "ttl_s": self.ttl,
            "entries": None,  # counting our keys is a SCAN of the keyspace, too dear for an info call
            "hits": self.hits,
            "misses": self.misses,
            "fewer_queries_ok": list(FEWER_QUERIES_OK),
            "redis": self.address,
            # One redis.asyncio client whose blocking pool is sized like the database pool.
            "redis_pool_size": self.pool_size,
            "key_prefix": KEY_PREFIX,
        }


async def delete_own_keys(client: aioredis.Redis) -> int:
    """UNLINK every ``KEY_PREFIX`` key, nothing else: the server may hold someone else's data."""
    deleted = 0
    batch: list[bytes] = []
    async for key in client.scan_iter(match=f"{KEY_PREFIX}*", count=_SCAN_BATCH):
        batch.append(key)
        if len(batch) >= _SCAN_BATCH:
            deleted += await client.unlink(*batch)
            batch = []
    if batch:
        deleted += await client.unlink(*batch)
    return deleted


@asynccontextmanager
async def open_redis(url: str, pool_size: int) -> AsyncIterator[RedisBackend]:
    """A ``RedisBackend`` on one client with ``pool_size`` connections, all opened at startup."""
    address = redis_address(url)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=pool_size, socket_timeout=_REDIS_TIMEOUT, socket_connect_timeout=_REDIS_TIMEOUT
    )
    client = aioredis.Redis.from_pool(pool)
    try:
        try:
            await client.ping()
            # Open every connection now (like the database pool's min_size = max_size), not inside a measurement.
            connections = [await pool.get_connection() for _ in range(pool_size)]  # type: ignore[no-untyped-call]
            for connection in connections:
                await pool.release(connection)
            # Values left by an earlier target may predate the database's re-seeding.
            await delete_own_keys(client)
        except RedisError as exc:
            raise RuntimeError(f"{REDIS_URL}: Redis at {address} did not answer: {exc}") from None
        yield RedisBackend(client, address, pool_size)
        with contextlib.suppress(RedisError):  # best effort: the keys expire after TTL_SECONDS anyway
            await delete_own_keys(client)
    finally:
        await client.aclose()


@asynccontextmanager
async def open_cache(settings: CacheSettings, pool_size: int) -> AsyncIterator[CacheBackend]:
    if settings.backend == "redis" and settings.redis_url is not None:
        async with open_redis(settings.redis_url, pool_size) as backend:
            yield backend
    else:
        yield MemoryBackend(WorldCache())
