"""TechEmpower's FastAPI app, re-created (not copied) to be measured beside ``pooled`` on the same database.

What it matches of FrameworkBenchmarks' frameworks/Python/fastapi/app_orjson.py (read 2026-12, written anew
here): plain ``async def`` routes with no dependency injection, the asyncpg pool kept on ``app.state``, one
``acquire()`` per request; /db ``fetchval`` of ``SELECT "randomnumber", "id" FROM "world" WHERE id = $1`` with
the id it asked for echoed back; /queries and /updates ``connection.prepare`` of that statement once per
request, then one ``fetchval`` per id (distinct ids from ``random.sample``, sorted); /updates writes with
``executemany`` of ``UPDATE "world" SET "randomnumber"=$2 WHERE id=$1``; /fortunes ``SELECT * FROM Fortune``,
the added row appended, sorted by message, rendered by a Jinja2 template with autoescape (its page, newlines
and all); JSON bodies by orjson. The query-count rule (1..500, non-numbers → 1) is theirs.

Where it differs, and why: the pool is ``min_size = max_size =`` the pool size every variant gets, idle ones kept
(theirs sizes it from the CPU count: 160 on 2 cores), so both apps hold the same number of connections; the
DSN comes from ``targets.common.settings`` like every variant's; a ``lifespan`` instead of the deprecated
``on_event``; the template is inline instead of a file and rendered by Jinja2 directly (theirs goes through
``Jinja2Templates.TemplateResponse``); the added fortune is a named tuple (theirs, a list, renders with an
empty id); ``/health`` exists so dbbench's supervisor can tell when it is up (never measured).

Run by benchmarks/techempower.py as ``uvicorn benchmarks.techempower_app:app``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from operator import itemgetter
from random import randint, sample
from typing import Any, NamedTuple

import asyncpg
import jinja2
import orjson
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response

from targets.common import connargs
from targets.common.settings import TargetSpec

READ_ROW = 'SELECT "randomnumber", "id" FROM "world" WHERE id = $1'
WRITE_ROW = 'UPDATE "world" SET "randomnumber"=$2 WHERE id=$1'


class Fortune(NamedTuple):
    id: int
    message: str


# Theirs is a plain list, which their template's ``fortune.id`` renders as an empty id (the contract's check
# refuses that page); a named tuple sorts the same way and has the attributes.
ADDED_FORTUNE = Fortune(0, "Additional fortune added at request time.")
by_message = itemgetter(1)

# Their fortune.jinja, as a string: ``fortune.id`` on an asyncpg Record is no attribute, so Jinja falls back
# to item lookup for each field of each row, as it does there.
FORTUNES_TEMPLATE = jinja2.Environment(autoescape=True).from_string(
    "<!DOCTYPE html>\n<html>\n<head><title>Fortunes</title></head>\n<body>\n<table>\n"
    "<tr><th>id</th><th>message</th></tr>\n"
    "{% for fortune in fortunes %}<tr><td>{{ fortune.id }}</td><td>{{ fortune.message|e }}</td></tr>\n"
    "{% endfor %}</table>\n</body>\n</html>\n"
)


class OrjsonResponse(Response):
    """What FastAPI's (now deprecated) ORJSONResponse did: orjson.dumps of the content."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def query_count(raw: str | None) -> int:
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return min(max(n, 1), 500)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    spec = TargetSpec.from_env()
    app.state.pool = await asyncpg.create_pool(
        **connargs.asyncpg_args(spec.dsn),
        min_size=spec.pool_size,
        max_size=spec.pool_size,
        max_inactive_connection_lifetime=0,
    )
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/health")
async def health() -> Response:
    return OrjsonResponse({"status": "ok"})


@app.get("/db")
async def single_query() -> Response:
    row_id = randint(1, 10000)
    async with app.state.pool.acquire() as connection:
        number = await connection.fetchval(READ_ROW, row_id)
    return OrjsonResponse({"id": row_id, "randomNumber": number})


@app.get("/queries")
async def multiple_queries(queries: str | None = None) -> Response:
    row_ids = sorted(sample(range(1, 10000), query_count(queries)))
    data = []
    async with app.state.pool.acquire() as connection:
        statement = await connection.prepare(READ_ROW)
        for row_id in row_ids:
            number = await statement.fetchval(row_id)
            data.append({"id": row_id, "randomNumber": number})
    return OrjsonResponse(data)


@app.get("/fortunes")
async def fortunes() -> Response:
    async with app.state.pool.acquire() as connection:
        rows = await connection.fetch("SELECT * FROM Fortune")
    rows.append(ADDED_FORTUNE)
    rows.sort(key=by_message)
    return HTMLResponse(FORTUNES_TEMPLATE.render(fortunes=rows))


@app.get("/updates")
async def updates(queries: str | None = None) -> Response:
    n = query_count(queries)
    pairs = list(zip(sorted(sample(range(1, 10001), n)), sample(range(1, 10000), n), strict=True))
    async with app.state.pool.acquire() as connection:
        statement = await connection.prepare(READ_ROW)
        for row_id, _ in pairs:
            await statement.fetchval(row_id)
        await connection.executemany(WRITE_ROW, pairs)
    return OrjsonResponse([{"id": row_id, "randomNumber": number} for row_id, number in pairs])
