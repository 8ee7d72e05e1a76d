"""The no-database target ``bench calibrate`` measures the load generator against.

Served exactly like a variant (uvicorn, one worker, 127.0.0.1) and answering ``/db`` with a body of
the same shape and size, so whatever limits its throughput is the load generator and the HTTP
stack, not a database. The same encoder as the variants (orjson) keeps the comparison honest.
"""

from __future__ import annotations

import random

import orjson
from fastapi import FastAPI
from fastapi.responses import Response

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


def _json(content: object) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


@app.get("/health")
async def health() -> Response:
    return _json({"status": "ok"})


@app.get("/db")
async def db() -> Response:
    return _json({"id": random.randint(1, 10_000), "randomNumber": random.randint(1, 10_000)})
