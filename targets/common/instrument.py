"""Per-statement timings attributed to the request that ran them, for every variant.

Which hook sees each driver (probed 2026-11 with asyncpg 0.32, SQLAlchemy 2.1, databases 0.9):

* sync (psycopg 3) and async_orm (asyncpg via SQLAlchemy): SQLAlchemy's ``before/after_cursor_execute``
  on the (sync) engine. psycopg 3 has no hook of its own, and asyncpg's query logger is nearly blind
  under SQLAlchemy: its dialect runs statements through ``Connection.prepare()`` + ``PreparedStatement``,
  which asyncpg never logs, so the logger sees only BEGIN/ROLLBACK.
* pooled, cached, databases, nopool: asyncpg's own ``Connection.add_query_logger`` (registered through
  the pool's ``init=``, which databases forwards to asyncpg, or right after ``asyncpg.connect``). The
  blind spot above is ``PreparedStatement`` objects only: ``fetch``/``fetchrow``/``execute`` with
  arguments go through ``Connection._execute``, which times and logs every call even when the statement
  comes from the connection's prepared-statement cache. Experiment (embedded PG 16, pooled connection):
  two ``fetchrow(SELECT ... $1)``, a ``fetch``, an ``execute(UPDATE ...)`` were all logged with their
  arguments; ``(await conn.prepare(q)).fetchval(3)`` was not; the pool's reset query and asyncpg's type
  introspection (first use of ``int[]`` on a connection) were logged too. Our code paths never call
  ``prepare()``, and tests/test_instrument.py asserts every variant reports exactly the statements its
  store runs. The logger is invoked through ``loop.call_soon``, which copies the caller's context, so
  the request contextvar is still visible when it runs. It carries no row count: ``rows`` is null.

Transaction control, asyncpg's pool reset and its type introspection are dropped (see targets.common.stats).
A statement counts only inside a request (the middleware's contextvar is set): start-up queries, /health
and /_bench/* are not workload. Enabled unless DBBENCH_INSTRUMENT=0; a variant whose hooks cost more
than 5 % makes them opt-in (DBBENCH_INSTRUMENT=1) and says so in /_bench/info.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from targets.common import settings
from targets.common.responses import OrjsonResponse
from targets.common.stats import Collector, RequestScope

SKIPPED_PREFIXES = ("/_bench/", "/health")

# The request being served (its endpoint: the path without query string); None outside requests.
current_request: ContextVar[RequestScope | None] = ContextVar("dbbench_request", default=None)


def enabled(on_by_default: bool, environ: Mapping[str, str] = os.environ) -> bool:
    """DBBENCH_INSTRUMENT=0 turns hooks off, =1 on; unset means the variant's default (targets.common.settings)."""
    switch = settings.instrument_from_env(environ)
    return on_by_default if switch is None else switch


class StatsMiddleware:
    """Pure ASGI (BaseHTTPMiddleware would add a task and a queue per request): sets the endpoint
    contextvar for the hooks and times the request until its last body byte is sent.

    Not until the app returns: Starlette runs a response's background tasks (POST /refresh-views) inside
    the same ASGI call, after the body went out. Their time is not the request's, and their statements
    are not the endpoint's, so the request ends, for timing and attribution, with its final body message.
    """

    def __init__(self, app: ASGIApp, collector: Collector) -> None:
        self.app = app
        self.collector = collector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(SKIPPED_PREFIXES):
            await self.app(scope, receive, send)
            return
        request = RequestScope(path)
        token = current_request.set(request)
        started = time.perf_counter()
        recorded = False

        def finish() -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                self.collector.record_request(request, time.perf_counter() - started)

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finish()
                # Background tasks run after this in the same context: their statements are nobody's request.
                current_request.set(None)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            current_request.reset(token)
            finish()


def add_stats_routes(app: FastAPI, collector: Collector | None) -> None:
    """GET /_bench/stats and POST /_bench/stats/reset; served (as not instrumented) even with hooks off."""
    idle = Collector()

    @app.get("/_bench/stats")
    async def bench_stats() -> Response:
        if collector is None:
            return OrjsonResponse(idle.snapshot(instrumented=False))
        return OrjsonResponse(collector.snapshot())

    @app.post("/_bench/stats/reset", status_code=204)
    async def bench_stats_reset() -> Response:
        (collector or idle).reset()
        return Response(status_code=204)


# --- SQLAlchemy (sync and async_orm) ------------------------------------------------------------


def watch_engine(engine: Any, collector: Collector, driver: str) -> None:
    """Cursor events on a sync ``Engine`` (for an ``AsyncEngine`` pass ``engine.sync_engine``)."""
    from sqlalchemy import event

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if current_request.get() is not None:
            context._dbbench_started = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        request = current_request.get()
        if request is None:  # before() saw the same context, so it did not time this one either
            return
        elapsed = time.perf_counter() - context._dbbench_started
        calls = len(params) if many else 1
        # -1 (unknown, e.g. SELECT through SQLAlchemy's asyncpg adapter) makes the statement's rows null.
        collector.record_statement(request, statement, elapsed, cursor.rowcount, params, calls)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    collector.hook = f"sqlalchemy cursor events ({driver})"


# --- asyncpg (pooled, cached, databases, nopool) ------------------------------------------------


def asyncpg_logger(collector: Collector) -> Callable[[Any], None]:
    def log(record: Any) -> None:
        # Runs via loop.call_soon in a copy of the context that ran the query.
        request = current_request.get()
        if request is not None:
            collector.record_statement(request, record.query, record.elapsed, None, record.args)

    return log


def asyncpg_init(collector: Collector, how: str) -> Callable[[Any], Awaitable[None]]:
    """An ``init=`` for asyncpg.create_pool that registers the query logger on every new connection."""
    log = asyncpg_logger(collector)
    collector.hook = f"asyncpg query logger ({how})"

    async def init(conn: Any) -> None:
        conn.add_query_logger(log)

    return init
