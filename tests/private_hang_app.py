"""A server that is not dbbench and never answers its /_bench/* (as a user's own service may route any
unknown path to a slow handler). /health answers, every other path 404, at once. Each /_bench/* request is recorded
in the file named by BENCH_HITS_FILE, so a test can tell whether dbbench asked."""

from __future__ import annotations

import asyncio
import os

from fastapi import FastAPI
from fastapi.responses import Response

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/health")
async def health() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")  # no X-Dbbench-Variant: not dbbench


@app.api_route("/_bench/{rest:path}", methods=["GET", "POST"])
async def private(rest: str) -> Response:
    with open(os.environ["BENCH_HITS_FILE"], "a", encoding="utf-8") as hits:
        hits.write(f"/_bench/{rest}\n")
    await asyncio.sleep(3600)
    return Response(status_code=204)
