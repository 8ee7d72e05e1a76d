"""What every variant shares, so their responses are byte-identical and only data access differs.

A variant implements an ``AsyncStore`` (or ``SyncStore`` for the threadpool variant) in its own idiom and
hands ``build_async_app`` / ``build_sync_app`` a context manager that opens and closes it; routes, query
parameter rules, JSON/HTML rendering and the /updates value rules live here, once.
"""

from __future__ import annotations

import html
import os
import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Annotated, Any, Protocol

import anyio.to_thread
import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response

from targets.schema import ADDED_FORTUNE, MAX_RANDOM_NUMBER, WORLD_ROWS

DEFAULT_POOL_SIZE = 10
MAX_QUERIES = 500

WorldRow = tuple[int, int]  # (id, randomNumber)
FortuneRow = tuple[int, str]  # (id, message)


@dataclass(frozen=True)
class Settings:
    """The target's whole configuration; read from the environment when the app starts, not at import."""

    dsn: str
    pool_size: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        dsn = environ.get("DBBENCH_DSN")
        if not dsn:
            raise RuntimeError("DBBENCH_DSN is not set (e.g. postgresql://user@host:5432/dbname)")
        pool_size = int(environ.get("DBBENCH_POOL_SIZE", DEFAULT_POOL_SIZE))
        if pool_size < 1:
            raise RuntimeError(f"DBBENCH_POOL_SIZE must be at least 1, got {pool_size}")
        return cls(dsn=dsn, pool_size=pool_size)


@dataclass(frozen=True)
class StoreInfo:
    """The effective data-access configuration, read back from the driver's objects where they expose it."""

    driver: str
    pool_size: int | None
    max_overflow: int | None
    cache: dict[str, Any] | None = None


class AsyncStore(Protocol):
    async def read_worlds(self, ids: Sequence[int]) -> list[WorldRow]:
        """One SELECT per id, in order (repeated ids are queried again)."""

    async def read_fortunes(self) -> list[FortuneRow]:
        """All stored fortune rows."""

    async def update_worlds(self, ids: Sequence[int], new_values: Mapping[int, int]) -> list[WorldRow]:
        """Read each id with one SELECT, store ``new_values`` (one per distinct id), return rows as stored."""

    def info(self) -> StoreInfo: ...


class SyncStore(Protocol):
    """``AsyncStore`` for blocking drivers; called from anyio's worker threads."""

    def read_worlds(self, ids: Sequence[int]) -> list[WorldRow]: ...

    def read_fortunes(self) -> list[FortuneRow]: ...

    def update_worlds(self, ids: Sequence[int], new_values: Mapping[int, int]) -> list[WorldRow]: ...

    def info(self) -> StoreInfo: ...


def parse_queries(raw: str | None) -> int:
    """TechEmpower rule: missing, empty or non-integer → 1; clamp to 1..500."""
    try:
        n = int(raw) if raw else 1
    except ValueError:
        return 1
    return min(max(n, 1), MAX_QUERIES)


def random_ids(n: int) -> list[int]:
    """``n`` ids drawn uniformly from the world table; repeats allowed, as TechEmpower does."""
    return [random.randint(1, WORLD_ROWS) for _ in range(n)]


def assign_new_values(ids: Iterable[int]) -> dict[int, int]:
    """One new value per *distinct* id: a repeated id is never returned with a value not stored."""
    return {world_id: random.randint(1, MAX_RANDOM_NUMBER) for world_id in dict.fromkeys(ids)}


def batch_update_args(new_values: Mapping[int, int]) -> tuple[list[int], list[int]]:
    """(ids, values) for a single ``UPDATE ... FROM unnest(ids, values)``, sorted by id.

    Concurrent requests then lock rows in the same order, so they wait for each other instead of deadlocking.
    """
    ids = sorted(new_values)
    return ids, [new_values[world_id] for world_id in ids]


_FORTUNES_HEAD = (
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body>"
    "<table><tr><th>id</th><th>message</th></tr>"
)
_FORTUNES_TAIL = "</table></body></html>"


def render_fortunes(stored: Iterable[FortuneRow]) -> str:
    """TechEmpower fortunes page: stored rows + the one added at request time, sorted by message, escaped."""
    rows = [*stored, ADDED_FORTUNE]
    rows.sort(key=itemgetter(1))
    body = "".join(f"<tr><td>{i}</td><td>{html.escape(message)}</td></tr>" for i, message in rows)
    return _FORTUNES_HEAD + body + _FORTUNES_TAIL


class OrjsonResponse(Response):
    """One JSON encoder for every variant, so bodies are byte-identical and encoding costs the same."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def world_json(rows: Iterable[WorldRow]) -> list[dict[str, int]]:
    return [{"id": world_id, "randomNumber": number} for world_id, number in rows]


QueriesParam = Annotated[str | None, Query()]

OpenAsyncStore = Callable[[Settings], AbstractAsyncContextManager[AsyncStore]]
OpenSyncStore = Callable[[Settings], AbstractContextManager[SyncStore]]


async def _async_store(request: Request) -> AsyncStore:
    store: AsyncStore = request.state.store
    return store


# ``async def`` on purpose: FastAPI would run a plain ``def`` dependency in the threadpool, an extra hop.
async def _sync_store(request: Request) -> SyncStore:
    store: SyncStore = request.state.store
    return store


# Module level, not inside the builders: with postponed annotations FastAPI resolves route annotations
# in this module's globals, and a local alias would silently turn ``store`` into a query parameter.
AsyncStoreDep = Annotated[AsyncStore, Depends(_async_store)]
SyncStoreDep = Annotated[SyncStore, Depends(_sync_store)]


def build_async_app(variant: str, open_store: OpenAsyncStore) -> FastAPI:
    """The contract's routes as ``async def`` over ``open_store``'s store, opened for the app's lifetime."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_store(Settings.from_env()) as store:
            yield {"store": store}

    app = _new_app(lifespan)

    @app.get("/db")
    async def db(store: AsyncStoreDep) -> Response:
        return OrjsonResponse(world_json(await store.read_worlds(random_ids(1)))[0])

    @app.get("/queries")
    async def queries(store: AsyncStoreDep, queries: QueriesParam = None) -> Response:
        return OrjsonResponse(world_json(await store.read_worlds(random_ids(parse_queries(queries)))))

    @app.get("/fortunes")
    async def fortunes(store: AsyncStoreDep) -> Response:
        return HTMLResponse(render_fortunes(await store.read_fortunes()))

    @app.get("/updates")
    async def updates(store: AsyncStoreDep, queries: QueriesParam = None) -> Response:
        ids = random_ids(parse_queries(queries))
        return OrjsonResponse(world_json(await store.update_worlds(ids, assign_new_values(ids))))

    @app.get("/_bench/info")
    async def bench_info(store: AsyncStoreDep) -> Response:
        return OrjsonResponse(_info_payload(variant, store.info(), threadpool_size=None))

    return app


def build_sync_app(variant: str, open_store: OpenSyncStore) -> FastAPI:
    """The contract's routes as plain ``def``: Starlette runs each request in anyio's worker threads."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        with open_store(Settings.from_env()) as store:
            yield {"store": store}

    app = _new_app(lifespan)

    @app.get("/db")
    def db(store: SyncStoreDep) -> Response:
        return OrjsonResponse(world_json(store.read_worlds(random_ids(1)))[0])

    @app.get("/queries")
    def queries(store: SyncStoreDep, queries: QueriesParam = None) -> Response:
        return OrjsonResponse(world_json(store.read_worlds(random_ids(parse_queries(queries)))))

    @app.get("/fortunes")
    def fortunes(store: SyncStoreDep) -> Response:
        return HTMLResponse(render_fortunes(store.read_fortunes()))

    @app.get("/updates")
    def updates(store: SyncStoreDep, queries: QueriesParam = None) -> Response:
        ids = random_ids(parse_queries(queries))
        return OrjsonResponse(world_json(store.update_worlds(ids, assign_new_values(ids))))

    @app.get("/_bench/info")
    async def bench_info(store: SyncStoreDep) -> Response:
        # The limiter's size is what actually bounds concurrent `def` routes (anyio default: 40 threads).
        threads = int(anyio.to_thread.current_default_thread_limiter().total_tokens)
        return OrjsonResponse(_info_payload(variant, store.info(), threadpool_size=threads))

    return app


def _new_app(lifespan: Callable[[FastAPI], AbstractAsyncContextManager[dict[str, Any]]]) -> FastAPI:
    # No /docs or /openapi.json: the server exposes the contract and nothing else.
    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    async def health() -> Response:
        # uvicorn accepts connections only after lifespan startup, i.e. once the store (pool) is open.
        return OrjsonResponse({"status": "ok"})

    return app


def _info_payload(variant: str, info: StoreInfo, threadpool_size: int | None) -> dict[str, Any]:
    return {
        "variant": variant,
        "driver": info.driver,
        "pool_size": info.pool_size,
        "max_overflow": info.max_overflow,
        "threadpool_size": threadpool_size,
        "cache": info.cache,
    }
