"""A server whose database pool is exhausted under load: nine requests in ten get a 500 (the error text
such a pool gives), one in ten gets its row. The honest-accounting tests load it with ``--url``."""

from __future__ import annotations

import itertools

import orjson
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response

app = FastAPI()
_requests = itertools.count()


@app.get("/health")
async def health() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@app.get("/db")
async def db() -> Response:
    if next(_requests) % 10:
        return PlainTextResponse("pool exhausted: too many clients already", status_code=500)
    return Response(orjson.dumps({"id": 1, "randomNumber": 1}), media_type="application/json")
