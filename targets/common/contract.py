"""What every variant shares, so their responses are byte-identical and only data access differs.

A variant implements an ``AsyncStore`` (or ``SyncStore`` for the threadpool variant) in its own idiom and
hands ``build_async_app`` / ``build_sync_app`` a context manager that opens and closes it; routes, query
parameter rules, JSON/HTML rendering and the /updates value rules live here, once. So do the per-id world
routes (over ``read_worlds``/``update_worlds``) and the coalescing of POST /refresh-views (targets.common.refresh).
"""

from __future__ import annotations

import asyncio
import html
import inspect
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Annotated, Any, Generic, Protocol, TypeVar

import anyio.to_thread
from fastapi import BackgroundTasks, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.types import ASGIApp

from targets import IDENTITY_HEADER
from targets.common import instrument, profiling
from targets.common.data_rules import (
    REFRESH_ACCEPTED,
    WORLD_NOT_FOUND,
    Rejected,
    items_json,
    parse_category,
    parse_max_price,
    parse_new_number,
    parse_search_limit,
    parse_world_id,
    report_json,
)
from targets.common.refresh import RefreshCoordinator

# Re-exported: variants and test targets build responses with it.
from targets.common.responses import OrjsonResponse as OrjsonResponse
from targets.common.schema import ADDED_FORTUNE, AUTHOR_ROWS, MAX_RANDOM_NUMBER, WORLD_ROWS

# Re-exported ("as" form, for mypy): variants import every row type from here.
from targets.common.schema import ItemRow as ItemRow
from targets.common.schema import ReportRow as ReportRow
from targets.common.settings import TargetSpec
from targets.common.stats import Collector

# What a variant's store is opened with (targets.common.settings): read when the app starts, not at import.
Settings = TargetSpec

MAX_QUERIES = 500
DEFAULT_AUTHORS = 20

WorldRow = tuple[int, int]  # (id, randomNumber)
FortuneRow = tuple[int, str]  # (id, message)
AuthorBooks = tuple[int, str, list[tuple[int, str]]]  # (id, name, [(book id, title), ...] sorted by id)


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

    async def read_authors_lazy(self, limit: int) -> list[AuthorBooks]:
        """The first ``limit`` authors by id, then one books query per author (the N+1 pattern)."""

    async def read_authors_eager(self, limit: int) -> list[AuthorBooks]:
        """The same result with every author's books loaded by one query for all of them."""

    async def search_items(self, category: int, max_price: int, limit: int) -> list[ItemRow]:
        """One SELECT: items of ``category`` priced at most ``max_price``, newest first (created_at DESC,
        id DESC: a total order), at most ``limit`` rows."""

    async def read_report(self) -> list[ReportRow]:
        """One SELECT of the category_report view, ordered by category."""

    async def refresh_views(self) -> None:
        """REFRESH MATERIALIZED VIEW CONCURRENTLY category_report, committed before returning."""

    def info(self) -> StoreInfo: ...


class SyncStore(Protocol):
    """``AsyncStore`` for blocking drivers; called from anyio's worker threads."""

    def read_worlds(self, ids: Sequence[int]) -> list[WorldRow]: ...

    def read_fortunes(self) -> list[FortuneRow]: ...

    def update_worlds(self, ids: Sequence[int], new_values: Mapping[int, int]) -> list[WorldRow]: ...

    def read_authors_lazy(self, limit: int) -> list[AuthorBooks]: ...

    def read_authors_eager(self, limit: int) -> list[AuthorBooks]: ...

    def search_items(self, category: int, max_price: int, limit: int) -> list[ItemRow]: ...

    def read_report(self) -> list[ReportRow]: ...

    def refresh_views(self) -> None: ...

    def info(self) -> StoreInfo: ...


def parse_queries(raw: str | None) -> int:
    """TechEmpower rule: missing, empty or non-integer → 1; clamp to 1..500."""
    try:
        n = int(raw) if raw else 1
    except ValueError:
        return 1
    return min(max(n, 1), MAX_QUERIES)


def parse_limit(raw: str | None) -> int:
    """/authors/*?limit=N: missing, empty or non-integer → 20; clamp to 1..100 (the whole table)."""
    try:
        n = int(raw) if raw else DEFAULT_AUTHORS
    except ValueError:
        return DEFAULT_AUTHORS
    return min(max(n, 1), AUTHOR_ROWS)


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
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>"
)
_FORTUNES_TAIL = "</table></body></html>"


def render_fortunes(stored: Iterable[FortuneRow]) -> str:
    """TechEmpower fortunes page: stored rows + the one added at request time, sorted by message, escaped."""
    rows = [*stored, ADDED_FORTUNE]
    rows.sort(key=itemgetter(1))
    body = "".join(f"<tr><td>{i}</td><td>{html.escape(message)}</td></tr>" for i, message in rows)
    return _FORTUNES_HEAD + body + _FORTUNES_TAIL


def world_json(rows: Iterable[WorldRow]) -> list[dict[str, int]]:
    return [{"id": world_id, "randomNumber": number} for world_id, number in rows]


def authors_json(authors: Iterable[AuthorBooks]) -> list[dict[str, Any]]:
    return [
        {"id": author_id, "name": name, "books": [{"id": i, "title": title} for i, title in books]}
        for author_id, name, books in authors
    ]


QueriesParam = Annotated[str | None, Query()]
LimitParam = Annotated[str | None, Query()]
IntParam = Annotated[str | None, Query()]  # parsed by the route's own rule, so a bad value is never a 422

# The collector is None when instrumentation is off: the store then installs no hooks at all.
OpenAsyncStore = Callable[[Settings, Collector | None], AbstractAsyncContextManager[AsyncStore]]
OpenSyncStore = Callable[[Settings, Collector | None], AbstractContextManager[SyncStore]]


StoreT = TypeVar("StoreT")


class _Opened(Generic[StoreT]):
    """The store the app's lifespan opened, read by the routes from here.

    Not a FastAPI dependency: solving one per request cost ~11 µs of the ~60 µs the app spends on a /db
    request (49 vs 38 µs in a no-database probe, benchmarks/techempower.py's investigation, 2026-12-01), the
    same for every variant; TechEmpower's FastAPI app reads its pool from a global for the same reason.
    """

    __slots__ = ("store",)
    store: StoreT


async def _new_number(request: Request) -> int | Rejected:
    # An async dependency: the sync variant's ``def`` route cannot await the body itself.
    return parse_new_number(await request.body())


def _count_as(endpoint: str) -> None:
    """Attribute this request's statements and time to ``endpoint`` (a route template) instead of its path:
    /worlds/1 .. /worlds/10000 would otherwise be 10,000 endpoints in /_bench/stats."""
    request = instrument.current_request.get()
    if request is not None:
        request.endpoint = endpoint


# Module level, not inside the builders: with postponed annotations FastAPI resolves route annotations
# in this module's globals, and a local alias would silently turn ``number`` into a query parameter.
NewNumberDep = Annotated[int | Rejected, Depends(_new_number)]


def build_async_app(variant: str, open_store: OpenAsyncStore, *, instrument_by_default: bool = True) -> FastAPI:
    """The contract's routes as ``async def`` over ``open_store``'s store, opened for the app's lifetime."""
    collector, sink = _switches(instrument_by_default)
    refresher = RefreshCoordinator()
    opened: _Opened[AsyncStore] = _Opened()
    refresh_lock = asyncio.Lock()  # one refresh at a time; the waiting one queues here

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        try:
            async with open_store(Settings.from_env(), collector) as store:
                opened.store = store
                yield {"store": store}
        finally:
            if sink is not None:
                sink.save()

    app = _new_app(variant, lifespan, collector)
    if sink is not None:
        app.add_middleware(profiling.ProfileMiddleware, sink=sink)
    _time_requests(app, collector)

    @app.get("/db")
    async def db() -> Response:
        # The busiest route of all: one row, unpacked as is, no list of dicts to index into.
        ((world_id, number),) = await opened.store.read_worlds([random.randint(1, WORLD_ROWS)])
        return OrjsonResponse({"id": world_id, "randomNumber": number})

    @app.get("/queries")
    async def queries(queries: QueriesParam = None) -> Response:
        return OrjsonResponse(world_json(await opened.store.read_worlds(random_ids(parse_queries(queries)))))

    @app.get("/fortunes")
    async def fortunes() -> Response:
        return HTMLResponse(render_fortunes(await opened.store.read_fortunes()))

    @app.get("/updates")
    async def updates(queries: QueriesParam = None) -> Response:
        ids = random_ids(parse_queries(queries))
        return OrjsonResponse(world_json(await opened.store.update_worlds(ids, assign_new_values(ids))))

    @app.get("/authors/lazy")
    async def authors_lazy(limit: LimitParam = None) -> Response:
        return OrjsonResponse(authors_json(await opened.store.read_authors_lazy(parse_limit(limit))))

    @app.get("/authors/eager")
    async def authors_eager(limit: LimitParam = None) -> Response:
        return OrjsonResponse(authors_json(await opened.store.read_authors_eager(parse_limit(limit))))

    @app.get("/search")
    async def search(category: IntParam = None, max_price: IntParam = None, limit: IntParam = None) -> Response:
        query = parse_category(category), parse_max_price(max_price), parse_search_limit(limit)
        return OrjsonResponse(items_json(await opened.store.search_items(*query)))

    @app.get("/report")
    async def report() -> Response:
        return OrjsonResponse(report_json(await opened.store.read_report()))

    async def refresh_in_background(store: AsyncStore) -> None:
        # async def, and the refresh awaited: a sync function calling the async execute without awaiting
        # it would only create a coroutine and refresh nothing.
        instrument.end_request()  # the 202 went out: the refresh is no part of the request
        async with refresh_lock:
            with refresher.running():
                await store.refresh_views()

    @app.post("/refresh-views")
    async def refresh_views(background: BackgroundTasks) -> Response:
        if refresher.request():
            background.add_task(refresh_in_background, opened.store)
        return OrjsonResponse(REFRESH_ACCEPTED, status_code=202)

    @app.get("/worlds/{world_id}")
    async def get_world(world_id: str) -> Response:
        _count_as("/worlds/{id}")
        if (parsed := parse_world_id(world_id)) is None:
            return OrjsonResponse(WORLD_NOT_FOUND, status_code=404)
        return OrjsonResponse(world_json(await opened.store.read_worlds([parsed]))[0])

    @app.put("/worlds/{world_id}")
    async def put_world(world_id: str, number: NewNumberDep) -> Response:
        _count_as("/worlds/{id}")
        if (parsed := parse_world_id(world_id)) is None:
            return OrjsonResponse(WORLD_NOT_FOUND, status_code=404)
        if isinstance(number, Rejected):
            return OrjsonResponse(number.body, status_code=number.status)
        return OrjsonResponse(world_json(await opened.store.update_worlds([parsed], {parsed: number}))[0])

    @app.get("/_bench/info")
    async def bench_info() -> Response:
        payload = _info_payload(variant, opened.store.info(), None, collector, instrument_by_default, refresher)
        return OrjsonResponse(payload)

    @app.post("/_bench/cache/clear")
    async def bench_cache_clear() -> Response:
        # Lets the runner give each cell an empty cache without restarting the server (bench.target_pool);
        # only a store with a cache (targets.cached) has something to empty.
        clear = getattr(opened.store, "clear_cache", None)
        if clear is None:
            return OrjsonResponse({"detail": "this variant has no cache"}, status_code=404)
        return OrjsonResponse({"cleared": await clear()})

    _contract_first(app)
    return app


def build_sync_app(variant: str, open_store: OpenSyncStore, *, instrument_by_default: bool = True) -> FastAPI:
    """The contract's routes as plain ``def``: Starlette runs each request in anyio's worker threads."""
    collector, sink = _switches(instrument_by_default)
    # A middleware profiler cannot see into the worker threads: each route profiles its own body there.
    profiled = profiling.in_thread(sink)
    refresher = RefreshCoordinator()
    opened: _Opened[SyncStore] = _Opened()
    # One refresh at a time; the waiting one blocks one worker thread here (never more: coalesced).
    refresh_lock = threading.Lock()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        try:
            with open_store(Settings.from_env(), collector) as store:
                opened.store = store
                yield {"store": store}
        finally:
            if sink is not None:
                sink.save()

    app = _new_app(variant, lifespan, collector)
    _time_requests(app, collector)

    @app.get("/db")
    @profiled
    def db() -> Response:
        ((world_id, number),) = opened.store.read_worlds([random.randint(1, WORLD_ROWS)])
        return OrjsonResponse({"id": world_id, "randomNumber": number})

    @app.get("/queries")
    @profiled
    def queries(queries: QueriesParam = None) -> Response:
        return OrjsonResponse(world_json(opened.store.read_worlds(random_ids(parse_queries(queries)))))

    @app.get("/fortunes")
    @profiled
    def fortunes() -> Response:
        return HTMLResponse(render_fortunes(opened.store.read_fortunes()))

    @app.get("/updates")
    @profiled
    def updates(queries: QueriesParam = None) -> Response:
        ids = random_ids(parse_queries(queries))
        return OrjsonResponse(world_json(opened.store.update_worlds(ids, assign_new_values(ids))))

    @app.get("/authors/lazy")
    @profiled
    def authors_lazy(limit: LimitParam = None) -> Response:
        return OrjsonResponse(authors_json(opened.store.read_authors_lazy(parse_limit(limit))))

    @app.get("/authors/eager")
    @profiled
    def authors_eager(limit: LimitParam = None) -> Response:
        return OrjsonResponse(authors_json(opened.store.read_authors_eager(parse_limit(limit))))

    @app.get("/search")
    @profiled
    def search(category: IntParam = None, max_price: IntParam = None, limit: IntParam = None) -> Response:
        query = parse_category(category), parse_max_price(max_price), parse_search_limit(limit)
        return OrjsonResponse(items_json(opened.store.search_items(*query)))

    @app.get("/report")
    @profiled
    def report() -> Response:
        return OrjsonResponse(report_json(opened.store.read_report()))

    def refresh_in_background(store: SyncStore) -> None:
        # A plain def: Starlette runs it in the threadpool after the 202 has been sent, in a copy of the
        # request's context, so ending the request here also detaches this thread's statements from it.
        instrument.end_request()
        with refresh_lock, refresher.running():
            store.refresh_views()

    @app.post("/refresh-views")
    @profiled
    def refresh_views(background: BackgroundTasks) -> Response:
        if refresher.request():
            background.add_task(refresh_in_background, opened.store)
        return OrjsonResponse(REFRESH_ACCEPTED, status_code=202)

    @app.get("/worlds/{world_id}")
    @profiled
    def get_world(world_id: str) -> Response:
        _count_as("/worlds/{id}")
        if (parsed := parse_world_id(world_id)) is None:
            return OrjsonResponse(WORLD_NOT_FOUND, status_code=404)
        return OrjsonResponse(world_json(opened.store.read_worlds([parsed]))[0])

    @app.put("/worlds/{world_id}")
    @profiled
    def put_world(world_id: str, number: NewNumberDep) -> Response:
        _count_as("/worlds/{id}")
        if (parsed := parse_world_id(world_id)) is None:
            return OrjsonResponse(WORLD_NOT_FOUND, status_code=404)
        if isinstance(number, Rejected):
            return OrjsonResponse(number.body, status_code=number.status)
        return OrjsonResponse(world_json(opened.store.update_worlds([parsed], {parsed: number}))[0])

    @app.get("/_bench/info")
    async def bench_info() -> Response:
        # The limiter's size is what actually bounds concurrent `def` routes (anyio default: 40 threads).
        threads = int(anyio.to_thread.current_default_thread_limiter().total_tokens)
        payload = _info_payload(variant, opened.store.info(), threads, collector, instrument_by_default, refresher)
        return OrjsonResponse(payload)

    _contract_first(app)
    return app


def _switches(instrument_by_default: bool) -> tuple[Collector | None, profiling.SessionSink | None]:
    """The collector and the profile sink, each None when switched off.

    Read when the app is built (at import), not in the lifespan like ``Settings``: Starlette fixes the
    middleware stack before lifespan startup runs, and a switch that is off must leave nothing of itself
    on the request path.
    """
    collector = Collector() if instrument.enabled(instrument_by_default) else None
    return collector, profiling.sink_from_env()


# FastAPI >= 0.16x checks, on every request, whether an OpenTelemetry tracer, meter or logger provider has
# been configured (three os.environ look-ups raising KeyError inside opentelemetry): ~7 µs per request in
# a no-database probe here (of ~40 µs the app spends on /db), for providers no target ever configures.
# Switched off where FastAPI has the option; older FastAPI has no such check.
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


_ExceptionTelemetry: type[Any] | None
try:  # FastAPI >= 0.16x (the releases with the telemetry option); a private class, so looked up defensively
    from fastapi.telemetry._asgi import ExceptionTelemetryMiddleware

    _ExceptionTelemetry = ExceptionTelemetryMiddleware
except ImportError:  # pragma: no cover - older FastAPI has no such layer
    _ExceptionTelemetry = None


class _ContractApp(instrument.RequestTiming, FastAPI):
    """FastAPI without the exception-telemetry layer it wraps around every request even when telemetry is off,
    timing requests in its own ``__call__`` (instrument.RequestTiming) when the hooks are on.

    That layer (``ExceptionTelemetryMiddleware``) only passes an exception to the request's telemetry
    record, which FastAPI creates only when telemetry is on (``scope["fastapi.telemetry"]``); with
    ``_NO_TELEMETRY`` it never is, and the layer is one more coroutine per request for nothing: ~2,000
    CPU instructions of the ~440,000 pooled's /db costs in-process (benchmarks/instructions.py,
    2026-12-01). Every variant is built on this class, so they all lose it alike.
    """

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if _ExceptionTelemetry is None or not _NO_TELEMETRY:
            return stack
        layer: Any = stack
        while (inner := getattr(layer, "app", None)) is not None:
            if isinstance(inner, _ExceptionTelemetry):
                layer.app = inner.app
                break
            layer = inner
        return stack


def _contract_first(app: FastAPI) -> None:
    """Move /health and /_bench/* behind the contract's routes: Starlette tries routes in order, and every
    route tried before the one that matches costs each request a regex match (none of these paths overlap,
    so the order changes no answer)."""
    app.router.routes.sort(key=lambda route: getattr(route, "path", "").startswith(("/health", "/_bench/")))


def _new_app(
    variant: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[dict[str, Any]]],
    collector: Collector | None,
) -> FastAPI:
    # No /docs or /openapi.json: the server exposes the contract and nothing else. No native telemetry either.
    app = _ContractApp(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None, **_NO_TELEMETRY)

    @app.get("/health")
    async def health() -> Response:
        # uvicorn accepts connections only after lifespan startup, i.e. once the store (pool) is open.
        return OrjsonResponse({"status": "ok"}, headers={IDENTITY_HEADER: variant})

    instrument.add_stats_routes(app, collector)
    return app


def _time_requests(app: FastAPI, collector: Collector | None) -> None:
    # Not a middleware: the app's own __call__ times the request (instrument.RequestTiming).
    assert isinstance(app, _ContractApp)
    app.stats_collector = collector


def _info_payload(
    variant: str,
    info: StoreInfo,
    threadpool_size: int | None,
    collector: Collector | None,
    instrument_by_default: bool,
    refresher: RefreshCoordinator,
) -> dict[str, Any]:
    return {
        "variant": variant,
        "driver": info.driver,
        "pool_size": info.pool_size,
        "max_overflow": info.max_overflow,
        "threadpool_size": threadpool_size,
        "cache": info.cache,
        "instrumented": collector is not None,
        "hook": collector.hook if collector is not None else "none",
        # False: this variant's hooks cost more than benchmarks/overhead.py's 5 % budget, so they run only
        # with DBBENCH_INSTRUMENT=1.
        "instrumented_by_default": instrument_by_default,
        # Cumulative POST /refresh-views bookkeeping (targets.common.refresh): counts and each refresh's duration.
        "refresh": refresher.snapshot(),
    }
