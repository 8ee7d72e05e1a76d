"""A target that stalls: once per second it blocks its event loop for 200 ms (a GC pause, a lock,
a slow query on the only connection). The coordinated-omission demonstration loads it."""

from __future__ import annotations

import time

import orjson
from fastapi import FastAPI
from fastapi.responses import Response

STALL_S = 0.2
app = FastAPI()
_last_stall = [time.monotonic()]


@app.get("/health")
async def health() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@app.get("/db")
async def db() -> Response:
    now = time.monotonic()
    if now - _last_stall[0] >= 1.0:
        _last_stall[0] = now
        time.sleep(STALL_S)  # blocking on purpose: every request in flight waits behind it
    return Response(orjson.dumps({"id": 1, "randomNumber": 1}), media_type="application/json")
