"""A deliberately broken target: every fault here is one bench.contract_check must report.

Run like a real variant: ``uvicorn tests.broken_target:app`` with DBBENCH_DSN set. Faults:
  /db           made-up randomNumber (stored value + 1: in range, so only the seed comparison sees it)
  /queries      no TechEmpower clamping: int(queries) as given, so 0 → [], 501 → 501 objects, foo → HTTP 500
  /fortunes     messages not HTML-escaped
  /updates      returns new values without storing them
  /_bench/info  not JSON
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from targets import pooled
from targets.contract import (
    OrjsonResponse,
    Settings,
    assign_new_values,
    parse_queries,
    random_ids,
    world_json,
)
from targets.schema import ADDED_FORTUNE, MAX_RANDOM_NUMBER


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    async with pooled.open_store(Settings.from_env()) as store:
        yield {"store": store}


app = FastAPI(lifespan=lifespan)


@app.get("/health")
async def health() -> Response:
    return OrjsonResponse({"status": "ok"})


@app.get("/_bench/info")
async def bench_info() -> Response:
    return PlainTextResponse("variant=broken", media_type="application/json")


@app.get("/db")
async def db(request: Request) -> Response:
    [(world_id, number)] = await request.state.store.read_worlds(random_ids(1))
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
