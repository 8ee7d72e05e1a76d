"""Per-statement timings attributed to the request that ran them, for every variant.

Which hook sees each driver (probed 2026-11 with asyncpg 0.32, SQLAlchemy 2.1, databases 0.9):

* sync (psycopg 3) and async_orm (asyncpg via SQLAlchemy): the (sync) engine's dialect's ``do_execute``
  methods, which see what SQLAlchemy's ``before/after_cursor_execute`` events see at a fraction of their
  cost (``watch_engine``). psycopg 3 has no hook of its own, and asyncpg's query logger is nearly blind
  under SQLAlchemy: its dialect runs statements through ``Connection.prepare()`` + ``PreparedStatement``,
  which asyncpg never logs, so the logger sees only BEGIN/ROLLBACK.
* pooled, cached, databases, nopool: a ``Connection`` subclass timing asyncpg's query methods, installed
  with ``connection_class=`` (targets.common.asyncpg_timing). asyncpg's own ``add_query_logger`` sees the
  same calls (``fetch``/``fetchrow``/``execute`` with arguments go through ``Connection._execute`` even from
  the prepared-statement cache; tests/test_instrument.py keeps that probe) but costs 6-20 % of these
  variants' target CPU per request; the subclass does the same work inline for a fraction of that
  (benchmarks/overhead.py). A contextvar set by the middleware is visible inside the awaited method.

Transaction control, asyncpg's pool reset and its type introspection are dropped (see targets.common.stats).
A statement counts only inside a request (the middleware's contextvar is set): start-up queries, /health
and /_bench/* are not workload. Enabled in every variant unless DBBENCH_INSTRUMENT=0 (the budget: 5 % of
target CPU per request, benchmarks/overhead.py); ``instrument_by_default=False`` remains for a variant
whose hooks would cost more, and /_bench/info says which.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from time import perf_counter
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from targets.common import settings
from targets.common.gcclock import CLOCK
from targets.common.responses import OrjsonResponse
from targets.common.stats import Collector, RequestScope

SKIPPED_PREFIXES = ("/_bench/", "/health")
# The hooks' budget: at most this share of a target's CPU per request (benchmarks/overhead.py measures it in CPU
# time, benchmarks/instructions.py in instructions).
HOOK_BUDGET = 0.05
_new_list = list.__new__

# The request being served (its endpoint: the path without query string); None outside requests.
current_request: ContextVar[RequestScope | None] = ContextVar("dbbench_request", default=None)
# The statement hooks' read of it, once per statement: a bound method held here is one global load and a
# call, where ``current_request.get()`` adds a method look-up on the ContextVar type per statement (~450 of
# ~7,000 CPU instructions per statement in the asyncpg hook, valgrind, 2026-12-01).
request_now = current_request.get


def enabled(on_by_default: bool, environ: Mapping[str, str] = os.environ) -> bool:
    """DBBENCH_INSTRUMENT=0 turns hooks off, =1 on; unset means the variant's default (targets.common.settings)."""
    switch = settings.instrument_from_env(environ)
    return on_by_default if switch is None else switch


class RequestTiming:
    """Mixin for a FastAPI app class (``class App(RequestTiming, FastAPI)``): times each request and sets the
    request contextvar for the statement hooks, inside the app's own ``__call__`` when ``stats_collector`` is
    set. The statistics then cost no coroutine layer of their own: a middleware (pure ASGI, as this was) is one
    more coroutine that every resume of a request passes through, ~350 CPU instructions per suspension
    (valgrind micro-benchmark of asyncio, 2026-12-01), the hooks' whole budget on a 20-statement request.

    For an HTTP request, once the middleware stack is built (at lifespan start-up, before the first request)
    and with no ``root_path``, this ``__call__`` does what FastAPI's and Starlette's do for it with FastAPI's
    native telemetry off (set ``scope["app"]``, await the middleware stack) in one coroutine instead of two;
    anything else goes through ``super().__call__``. tests/test_instrument.py checks that both paths hand the
    stack the same scope.

    The request is timed from its call until the app returns. Starlette runs a response's background tasks
    (POST /refresh-views) inside the same ASGI call, after the body went out. Their time is not the request's
    and their statements are not the endpoint's: such a task calls ``end_request()`` first, which ends the
    request there for timing and attribution. (Ending every request at its final body message instead, by
    wrapping ``send``, cost every request of every variant ~2 µs of CPU for the one route that has a
    background task: wrk on a route that answers without the database, benchmarks/overhead.py's cached
    variant.)
    """

    stats_collector: Collector | None = None
    middleware_stack: ASGIApp | None
    root_path: str

    # Every line here runs on every request of every variant: no closure, one RequestScope (a list), the
    # clock read twice (CPU per request: benchmarks/techempower.py, benchmarks/overhead.py).
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        http = scope["type"] == "http"
        stack = self.middleware_stack
        if http and stack is not None and not self.root_path:
            scope["app"] = self
            app: ASGIApp = stack
        else:
            app = super().__call__  # type: ignore[misc]  # FastAPI's, next in the MRO
        collector = self.stats_collector
        if collector is None or not http or scope["path"].startswith(SKIPPED_PREFIXES):
            await app(scope, receive, send)
            return
        # RequestScope(path) without calling its Python __init__ (list.__new__ makes it empty): ~500 CPU
        # instructions fewer per request (valgrind, 2026-12-01); the two attributes are the ones __init__ sets.
        request = _new_list(RequestScope)
        request.endpoint = scope["path"]
        request.ended = None
        token = current_request.set(request)
        started = perf_counter()
        try:
            await app(scope, receive, send)
        finally:
            current_request.reset(token)
            ended = request.ended
            collector.record_request(request, (perf_counter() if ended is None else ended) - started)


def end_request() -> None:
    """End the request being served now: what runs after this in its context (a background task after the
    response went out) is neither its time nor its statements. No-op outside a request, or when called again."""
    request = current_request.get()
    if request is not None and request.ended is None:
        request.ended = perf_counter()
        current_request.set(None)


def add_stats_routes(app: FastAPI, collector: Collector | None) -> None:
    """GET /_bench/stats and POST /_bench/stats/reset; served (as not instrumented) even with hooks off.
    Beside the collector's payload, ``gc``: the process's garbage collections since the reset
    (targets.common.gcclock, counted whether the hooks are on or off), and ``pid``: which process answered.
    Every figure is that one process's: under uvicorn --workers N each worker keeps its own and a request
    reaches one of them (bench run asks for them only with one worker)."""
    idle = Collector()
    CLOCK.install()

    @app.get("/_bench/stats")
    async def bench_stats() -> Response:
        payload = idle.snapshot(instrumented=False) if collector is None else collector.snapshot()
        payload["gc"] = CLOCK.snapshot()
        payload["pid"] = os.getpid()
        return OrjsonResponse(payload)

    @app.post("/_bench/stats/reset", status_code=204)
    async def bench_stats_reset() -> Response:
        (collector or idle).reset()
        CLOCK.reset()
        return Response(status_code=204)


# --- SQLAlchemy (sync and async_orm) ------------------------------------------------------------


def watch_engine(engine: Any, collector: Collector, driver: str) -> None:
    """Time the statements of a sync ``Engine`` (for an ``AsyncEngine`` pass ``engine.sync_engine``) at its
    dialect's ``do_execute`` / ``do_execute_no_params`` / ``do_executemany``, the three methods through
    which SQLAlchemy 2.x hands every statement to the DBAPI cursor (engine/base.py: the same statements and
    parameters its ``before/after_cursor_execute`` events see).

    Why not those events, as before: any listener on an engine sets its ``_has_events``, and from then on
    every connection joins the engine's dispatchers (``_JoinedListener`` objects created per connection use)
    and runs the event path at each begin, commit, rollback and statement: ~120 Python calls and 150-190k
    CPU instructions per /db request, 11-12 % of the sync and async_orm apps' own (benchmarks/instructions.py,
    2026-12-01) for what is two clock reads and one append. These are instance attributes on this engine's
    dialect (each ``create_engine`` makes its own), so no other engine is touched.
    """
    dialect = engine.dialect
    do_execute = dialect.do_execute
    do_execute_no_params = dialect.do_execute_no_params
    do_executemany = dialect.do_executemany

    def timed_execute(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        request = request_now()
        if request is None:
            do_execute(cursor, statement, parameters, context)
            return
        started = perf_counter()
        do_execute(cursor, statement, parameters, context)
        # rowcount -1 (unknown, e.g. SELECT through SQLAlchemy's asyncpg adapter) makes the statement's rows null.
        rows = cursor.rowcount
        request.append((statement, perf_counter() - started, rows if rows >= 0 else None, parameters, 1))

    def timed_execute_no_params(cursor: Any, statement: str, context: Any = None) -> None:
        request = request_now()
        if request is None:
            do_execute_no_params(cursor, statement, context)
            return
        started = perf_counter()
        do_execute_no_params(cursor, statement, context)
        rows = cursor.rowcount
        request.append((statement, perf_counter() - started, rows if rows >= 0 else None, (), 1))

    def timed_executemany(cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        request = request_now()
        if request is None:
            do_executemany(cursor, statement, parameters, context)
            return
        started = perf_counter()
        do_executemany(cursor, statement, parameters, context)
        calls = max(len(parameters), 1)
        collector.record_statement(request, statement, perf_counter() - started, cursor.rowcount, parameters, calls)

    dialect.do_execute = timed_execute
    dialect.do_execute_no_params = timed_execute_no_params
    dialect.do_executemany = timed_executemany
    collector.hook = f"sqlalchemy dialect execute ({driver})"
