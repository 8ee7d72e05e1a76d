"""The cached variant's Redis backend against a real throwaway redis-server, and that server's lifecycle.

Uses bench.redis_server.embedded (never the machine's own Redis on 6379) and the real PostgreSQL of
``pg_dsn``; targets run under real uvicorn through ``run_target`` (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest
import redis
import redis.asyncio as aioredis

from bench import redis_server
from bench.check.variant import check_variant
from bench.errors import BenchError
from bench.net import free_port
from bench.procs import Supervisor
from bench.seed import apply_schema, seed, world_snapshot
from targets.common import settings
from targets.common.settings import CacheSpec, TargetSpec
from targets.common.worldcache import KEY_PREFIX, TTL_SECONDS, CacheSettings, RedisBackend, open_redis

POOL_SIZE = 4
RunTarget = Callable[[str, dict[str, str]], str]


@pytest.fixture(scope="module")
def server() -> Iterator[redis_server.RedisServer]:
    with Supervisor() as supervisor, redis_server.embedded(supervisor) as started:
        yield started


@pytest.fixture
def client(server: redis_server.RedisServer) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(server.url) as connection:
        yield connection


@pytest.fixture
def seeded_dsn(pg_dsn: str) -> str:
    apply_schema(pg_dsn)
    seed(pg_dsn)
    return pg_dsn


def start_redis_target(run_target: RunTarget, dsn: str, url: str) -> str:
    spec = TargetSpec(dsn, POOL_SIZE, variant="cached", instrument=True, cache=CacheSpec("redis", url))
    return run_target("targets.cached:app", {**spec.to_env(), "PYTHONWARNINGS": "error"})


def get_json(url: str) -> Any:
    response = httpx.get(url, timeout=30)
    response.raise_for_status()
    return response.json()


def get_worlds(url: str) -> dict[int, int]:
    return {item["id"]: item["randomNumber"] for item in get_json(url)}


def cache_info(base_url: str) -> dict[str, Any]:
    info: dict[str, Any] = get_json(f"{base_url}/_bench/info")["cache"]
    return info


def cached_in_redis(client: redis.Redis, ids: list[int]) -> dict[int, int]:
    values = client.mget([f"{KEY_PREFIX}{world_id}" for world_id in ids])
    return {world_id: int(value) for world_id, value in zip(ids, values, strict=True) if value is not None}


def own_keys(client: redis.Redis) -> set[int]:
    return {int(key.decode().removeprefix(KEY_PREFIX)) for key in client.scan_iter(match=f"{KEY_PREFIX}*")}


# --- the cached variant on Redis under real uvicorn ----------------------------------------------


def test_cached_on_redis_meets_the_contract(
    seeded_dsn: str, run_target: RunTarget, server: redis_server.RedisServer
) -> None:
    base_url = start_redis_target(run_target, seeded_dsn, server.url)
    report = check_variant(base_url, seeded_dsn)

    assert report.problems == []
    cache = report.info["cache"]
    assert cache["backend"] == "redis"
    assert cache["redis"] == server.address and "@" not in cache["redis"]
    assert cache["redis_pool_size"] == POOL_SIZE == report.info["pool_size"]
    assert cache["fewer_queries_ok"] == ["/db", "/queries"]
    assert cache["ttl_s"] == TTL_SECONDS
    # The check read the same ids repeatedly (/queries), so Redis answered some of them.
    counters = cache_info(base_url)
    assert counters["hits"] > 0 and counters["misses"] > 0


def test_startup_deletes_only_its_own_keys_and_reads_fill_redis_with_a_ttl(
    seeded_dsn: str, run_target: RunTarget, server: redis_server.RedisServer, client: redis.Redis
) -> None:
    # A value left by an earlier target (the database has been re-seeded since) and someone else's key.
    client.set(f"{KEY_PREFIX}1", -1)
    client.set("not-dbbench:key", "theirs")
    base_url = start_redis_target(run_target, seeded_dsn, server.url)
    assert client.get(f"{KEY_PREFIX}1") is None
    assert client.get("not-dbbench:key") == b"theirs"
    client.delete("not-dbbench:key")

    before = cache_info(base_url)
    served = get_worlds(f"{base_url}/queries?queries=500")
    after = cache_info(base_url)
    # The cache started empty: every distinct id was one miss, and each is now in Redis with the TTL.
    assert after["misses"] - before["misses"] == len(served) and after["hits"] == before["hits"]
    assert own_keys(client) == set(served)
    assert cached_in_redis(client, list(served)) == served == world_snapshot(seeded_dsn, served)
    ttl_ms = client.pttl(f"{KEY_PREFIX}{next(iter(served))}")
    assert 0 < ttl_ms <= TTL_SECONDS * 1000

    again = get_worlds(f"{base_url}/queries?queries=500")
    final = cache_info(base_url)
    looked_up = final["hits"] + final["misses"] - after["hits"] - after["misses"]
    assert looked_up == len(again)
    assert final["hits"] - after["hits"] == len(set(again) & set(served)) > 0


def test_clearing_deletes_only_its_own_keys(
    seeded_dsn: str, run_target: RunTarget, server: redis_server.RedisServer, client: redis.Redis
) -> None:
    base_url = start_redis_target(run_target, seeded_dsn, server.url)
    served = get_worlds(f"{base_url}/queries?queries=50")
    client.set("not-dbbench:key", "theirs")
    response = httpx.post(f"{base_url}/_bench/cache/clear", timeout=10)
    assert response.status_code == 200 and response.json() == {"cleared": len(served)}
    assert own_keys(client) == set()
    assert client.get("not-dbbench:key") == b"theirs"
    client.delete("not-dbbench:key")


def test_updates_invalidate_then_write_through_to_redis(
    seeded_dsn: str, run_target: RunTarget, server: redis_server.RedisServer, client: redis.Redis
) -> None:
    base_url = start_redis_target(run_target, seeded_dsn, server.url)
    for _ in range(3):  # seeded values into Redis first, so a missed invalidation would leave them there
        get_worlds(f"{base_url}/queries?queries=500")
    written = get_worlds(f"{base_url}/updates?queries=500")

    # Serial writes overlap nothing, so each committed value is now in Redis, and it is what the database holds.
    assert cached_in_redis(client, list(written)) == written == world_snapshot(seeded_dsn, written)

    # Change every row behind the target's back to a value no request could produce: a served value is then
    # visibly either the one Redis held (positive) or one read from the database (negative).
    in_redis = cached_in_redis(client, list(range(1, 10_001)))
    with psycopg.connect(seeded_dsn) as conn:
        conn.execute("UPDATE world SET randomnumber = -randomnumber")
    served = get_worlds(f"{base_url}/queries?queries=500")
    stored = world_snapshot(seeded_dsn, served)
    assert served == {world_id: in_redis.get(world_id, stored[world_id]) for world_id in served}
    assert set(served) & set(written) and set(served) - set(in_redis)


def test_put_world_then_get_world_serves_the_new_value_from_redis(
    seeded_dsn: str, run_target: RunTarget, server: redis_server.RedisServer, client: redis.Redis
) -> None:
    base_url = start_redis_target(run_target, seeded_dsn, server.url)
    old = get_json(f"{base_url}/worlds/42")["randomNumber"]  # a miss: the seeded value is now in Redis
    assert cached_in_redis(client, [42]) == {42: old}
    new = old % 10_000 + 1
    response = httpx.put(f"{base_url}/worlds/42", json={"randomNumber": new}, timeout=30)
    response.raise_for_status()
    assert response.json() == {"id": 42, "randomNumber": new}

    assert cached_in_redis(client, [42]) == {42: new} == world_snapshot(seeded_dsn, [42])
    before = cache_info(base_url)
    assert get_json(f"{base_url}/worlds/42") == {"id": 42, "randomNumber": new}
    after = cache_info(base_url)
    assert (after["hits"] - before["hits"], after["misses"] - before["misses"]) == (1, 0)


def test_concurrent_reads_and_writes_never_leave_a_stale_value_in_redis(
    seeded_dsn: str, run_target: RunTarget, server: redis_server.RedisServer, client: redis.Redis
) -> None:
    # More concurrent requests than pooled connections: overlapping 500-row writes mixed with reads that
    # race them to fill Redis, on several connections of the Redis pool at once.
    base_url = start_redis_target(run_target, seeded_dsn, server.url)
    paths = ["/updates?queries=500", "/queries?queries=500"] * 8
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda path: httpx.get(base_url + path, timeout=60).status_code, paths))
    assert statuses == [200] * len(paths)

    stored = world_snapshot(seeded_dsn)
    in_redis = cached_in_redis(client, list(stored))
    assert in_redis and in_redis == {world_id: stored[world_id] for world_id in in_redis}


# --- the coherence rules, against the real server ------------------------------------------------


class _GatedPipeline:
    """A real pipeline whose execute waits for ``gate``: a SET still on its way to Redis."""

    def __init__(self, pipeline: Any, gate: asyncio.Event) -> None:
        self._pipeline = pipeline
        self._gate = gate

    def set(self, *args: Any, **kwargs: Any) -> None:
        self._pipeline.set(*args, **kwargs)

    async def execute(self) -> list[Any]:
        await self._gate.wait()
        result: list[Any] = await self._pipeline.execute()
        return result


def test_a_write_waits_for_a_fill_already_on_its_way_to_redis(server: redis_server.RedisServer) -> None:
    async def scenario() -> tuple[bytes | None, list[str]]:
        client = aioredis.Redis.from_url(server.url)
        try:
            backend = RedisBackend(client, server.address, 2)
            gate = asyncio.Event()
            real_pipeline = client.pipeline
            gated = [_GatedPipeline(real_pipeline(transaction=False), gate)]

            def pipeline(transaction: bool = True) -> Any:
                return gated.pop() if gated else real_pipeline(transaction=transaction)

            client.pipeline = pipeline  # type: ignore[method-assign]
            events: list[str] = []

            # A read of id 7 queried the database (old value 5) before any write; its SET is delayed.
            token = backend.fill_token(7)
            fill = asyncio.create_task(backend.fill({7: 5}, {7: token}))

            async def write() -> None:
                async with backend.writing({7: 9}):
                    events.append("database write")

            writer = asyncio.create_task(write())
            await asyncio.sleep(0.05)
            events.append("fill lands")
            gate.set()
            await asyncio.gather(fill, writer)
            value: bytes | None = await client.get(f"{KEY_PREFIX}7")
            await client.delete(f"{KEY_PREFIX}7")
            return value, events
        finally:
            await client.aclose()

    value, events = asyncio.run(scenario())
    # The writer deleted after the stale fill landed, wrote the database, then stored its own value.
    assert events == ["fill lands", "database write"]
    assert value == b"9"


def test_fills_that_raced_a_write_and_overlapping_writes_stay_out_of_redis(server: redis_server.RedisServer) -> None:
    async def scenario() -> dict[int, bytes | None]:
        client = aioredis.Redis.from_url(server.url)
        try:
            backend = RedisBackend(client, server.address, 2)
            token = backend.fill_token(1)  # a read looks up id 1 and queries the database ...
            async with backend.writing({1: 7}):  # ... while a write of 7 starts and commits ...
                pass
            await backend.fill({1: 5}, {1: token})  # ... then the read's old value arrives: refused
            async with backend.writing({2: 10, 3: 30}), backend.writing({2: 11}):
                pass  # two writes of id 2 overlapped: commit order unknown, neither value cached
            with pytest.raises(RuntimeError):
                async with backend.writing({3: 31}):
                    raise RuntimeError("write failed")  # a failed write leaves its ids uncached
            keys = [f"{KEY_PREFIX}{world_id}" for world_id in (1, 2, 3)]
            values = await client.mget(keys)
            await client.delete(*keys)
            return dict(zip((1, 2, 3), values, strict=True))
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == {1: b"7", 2: None, 3: None}


def test_cache_settings_from_env() -> None:
    assert CacheSettings.from_env({}) == CacheSettings("memory", None)
    redis_url = "redis://127.0.0.1:1/0"
    assert CacheSettings.from_env(CacheSpec("redis", redis_url).to_env()).redis_url == redis_url
    # Values the spec cannot write (a missing URL, an unknown backend), under the spec's own names.
    with pytest.raises(RuntimeError, match=settings.REDIS_URL):
        CacheSettings.from_env({settings.CACHE: "redis"})
    with pytest.raises(RuntimeError, match=f"{settings.CACHE} must be one of memory, redis"):
        CacheSettings.from_env({settings.CACHE: "memcached"})


def test_target_refuses_to_start_when_redis_does_not_answer(server: redis_server.RedisServer) -> None:
    async def enter(url: str) -> None:
        async with open_redis(url, 2):
            pass

    closed = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    with pytest.raises(RuntimeError, match=r"Redis at 127\.0\.0\.1:\d+ did not answer") as excinfo:
        asyncio.run(enter(closed))
    assert "hunter2" not in str(excinfo.value)


# --- bench.redis_server --------------------------------------------------------------------------


def test_embedded_server_persists_nothing_and_leaves_nothing_behind() -> None:
    with Supervisor() as supervisor:
        with redis_server.embedded(supervisor) as started:
            process = psutil.Process(started.server_pid)
            workdir = Path(process.cwd())
            assert workdir.name.startswith("dbbench-redis-")
            with redis.Redis.from_url(started.url) as connection:
                assert connection.config_get("save") == {"save": ""}
                assert connection.config_get("appendonly") == {"appendonly": "no"}
                assert connection.config_get("bind") == {"bind": "127.0.0.1"}
            assert started.describe() == {
                "backend": "redis",
                "address": started.address,
                "version": started.version,
                "kind": "embedded",
            }
            assert started.version.count(".") == 2
        assert not process.is_running()
        assert not workdir.exists()
        assert supervisor.children == []


def test_missing_redis_server_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with (
        Supervisor() as supervisor,
        pytest.raises(BenchError, match="install redis-server") as excinfo,
        redis_server.embedded(supervisor),
    ):
        pass
    assert "--redis-url" in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_provision_external_checks_the_url_and_never_shows_its_password(server: redis_server.RedisServer) -> None:
    with Supervisor() as supervisor:
        with redis_server.provision(supervisor, server.url) as external:
            assert external.describe()["kind"] == "external" and external.version == server.version
            assert supervisor.children == []  # nothing started for the user's server
        # Nothing listens there: the one-line error names the server with its password blanked.
        with_password = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
        with (
            pytest.raises(BenchError, match=r"cannot reach --redis-url redis://:\*\*\*@127\.0\.0\.1") as excinfo,
            redis_server.provision(supervisor, with_password),
        ):
            pass
        assert "hunter2" not in str(excinfo.value)
        with (
            pytest.raises(BenchError, match="--redis-url must look like"),
            redis_server.provision(supervisor, "http://:hunter2@127.0.0.1:1"),
        ):
            pass
