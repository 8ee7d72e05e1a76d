"""The pooled variant with one fault bench.check must report: the widely copied background refresh.

POST /refresh-views answers 202 and schedules a *sync* function that calls asyncpg's ``execute`` without
awaiting it: that only creates a coroutine, so nothing is refreshed (Python warns "coroutine ... was never
awaited" when it is collected, in the server's log, where nobody looks). Everything else is the real
contract, so the refresh fault is the only problem the check may report.
"""

from __future__ import annotations

from fastapi import BackgroundTasks, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from targets import pooled
from targets.common.contract import OrjsonResponse, build_async_app

app = build_async_app("broken_refresh", pooled.open_store)
app.router.routes = [
    route for route in app.router.routes if not (isinstance(route, APIRoute) and route.path == "/refresh-views")
]


def refresh_in_background(store: pooled.PoolStore) -> None:
    store.pool.execute(pooled.REFRESH_REPORT)  # the bug: never awaited


@app.post("/refresh-views")
async def refresh_views(request: Request, background: BackgroundTasks) -> Response:
    background.add_task(refresh_in_background, request.state.store)
    return OrjsonResponse({"status": "accepted"}, status_code=202)
