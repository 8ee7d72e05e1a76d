"""A deliberately broken target: every fault here is one bench.check must report.

Run like a real variant: ``uvicorn tests.broken_target:app`` with DBBENCH_DSN set. Faults:
  /db           made-up randomNumber (stored value + 1: in range, so only the seed comparison sees it),
                and reads its row twice (two queries where TechEmpower allows one)
  /queries      no TechEmpower clamping: int(queries) as given, so 0 → [], 501 → 501 objects, foo → HTTP 500
  /fortunes     messages not HTML-escaped
  /updates      returns new values without storing them
  /authors/lazy   books in insertion order, not sorted by id
  /authors/eager  really lazy: one books query per author (an N+1 the check must flag)
  /_bench/info  not JSON
Instrumented like a real variant (targets.common.instrument), so the query counts above are measured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from targets import pooled
from targets.common import instrument
from targets.common.contract import (
    OrjsonResponse,
    Settings,
    assign_new_values,
    authors_json,
    parse_limit,
    parse_queries,
    random_ids,
    world_json,
)
from targets.common.schema import ADDED_FORTUNE, MAX_RANDOM_NUMBER
from targets.common.stats import Collector

collector = Collector()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    async with pooled.open_store(Settings.from_env(), collector) as store:
        yield {"store": store}


class _App(instrument.RequestTiming, FastAPI):
    pass


app = _App(lifespan=lifespan)
app.stats_collector = collector
instrument.add_stats_routes(app, collector)


@app.get("/health")
async def health() -> Response:
    return OrjsonResponse({"status": "ok"})


@app.get("/_bench/info")
async def bench_info() -> Response:
    return PlainTextResponse("variant=broken", media_type="application/json")


@app.get("/db")
async def db(request: Request) -> Response:
    [(world_id, number), _] = await request.state.store.read_worlds(random_ids(1) * 2)
    return OrjsonResponse({"id": world_id, "randomNumber": number % MAX_RANDOM_NUMBER + 1})


@app.get("/queries")
async def queries(request: Request, queries: str = "1") -> Response:
    return OrjsonResponse(world_json(await request.state.store.read_worlds(random_ids(int(queries)))))


@app.get("/fortunes")
async def fortunes(request: Request) -> Response:
    rows = sorted([*await request.state.store.read_fortunes(), ADDED_FORTUNE], key=lambda row: row[1])
    cells = "".join(f"<tr><td>{i}</td><td>{message}</td></tr>" for i, message in rows)
    return HTMLResponse(
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body>"
        f"<table><tr><th>id</th><th>message</th></tr>{cells}</table></body></html>"
    )


@app.get("/updates")
async def updates(request: Request, queries: str | None = None) -> Response:
    ids = random_ids(parse_queries(queries))
    await request.state.store.read_worlds(ids)
    new_values = assign_new_values(ids)
    return OrjsonResponse(world_json((world_id, new_values[world_id]) for world_id in ids))


@app.get("/authors/lazy")
async def authors_lazy(request: Request, limit: str | None = None) -> Response:
    authors = await request.state.store.read_authors_lazy(parse_limit(limit))
    return OrjsonResponse(authors_json((i, name, sorted(books, key=lambda b: b[1])) for i, name, books in authors))


@app.get("/authors/eager")
async def authors_eager(request: Request, limit: str | None = None) -> Response:
    return OrjsonResponse(authors_json(await request.state.store.read_authors_lazy(parse_limit(limit))))
