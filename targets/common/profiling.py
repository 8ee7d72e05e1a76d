"""pyinstrument profiles of every request, combined into one session written at shutdown.

On only when DBBENCH_PROFILE_DIR is set (decided when the app is built, so without it no profiler code is
on the request path); the profile pass is separate from timed cells because the profiler changes the
timings it watches. Async routes: a middleware starts ``Profiler(async_mode="enabled")`` per request,
which pyinstrument keeps apart from the other requests interleaved on the loop. Sync routes run in anyio's
worker threads, where a middleware profiler on the loop sees only the loop waiting (pyinstrument #257), so
``in_thread`` starts and stops a profiler inside the worker thread around the route body instead.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from starlette.types import ASGIApp, Receive, Scope, Send

from targets.common import settings

FILENAME = "profile.pyisession"
# pyinstrument's default 1 ms interval would miss most of a ~0.3 ms /db request entirely; 0.2 ms gives
# every request a few samples without the sampler dominating the request.
INTERVAL_S = 0.0002
SKIPPED_PREFIXES = ("/_bench/", "/health")

P = ParamSpec("P")
R = TypeVar("R")


class SessionSink:
    """Collects one pyinstrument Session per request; ``save`` combines them into one file."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILENAME
        self._sessions: list[Any] = []
        self._lock = threading.Lock()  # sessions arrive from worker threads in the sync variant

    def add(self, session: Any) -> None:
        if session is not None:
            with self._lock:
                self._sessions.append(session)

    def save(self) -> Path | None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        if not sessions:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        aggregate(sessions).save(str(self.path))
        return self.path


def aggregate(sessions: list[Any]) -> Any:
    """Many requests' pyinstrument sessions as one, each distinct call stack once with its summed time.

    Concatenating samples (``Session.combine``) keeps one record per 0.2 ms sample, each holding its whole
    stack as strings: 400 requests of /queries made a 414 MB file, and because pyinstrument builds its
    tree merging a stack only into the *previous* sibling, interleaved requests fragmented it into
    thousands of tiny nodes that the speedscope renderer's 1 % threshold then dropped, leaving an empty
    profile. Summed and sorted by stack, equal paths are adjacent and merge: the call tree, self times and
    totals are the same, the file holds one record per distinct stack, and no timeline order is claimed
    (there is none across concurrent requests anyway).
    """
    from pyinstrument.session import Session

    totals: dict[tuple[str, ...], float] = {}
    for session in sessions:
        for stack, time in session.frame_records:
            key = tuple(stack)
            totals[key] = totals.get(key, 0.0) + time
    first = min(sessions, key=lambda session: session.start_time)
    return Session(
        frame_records=[(list(stack), totals[stack]) for stack in sorted(totals)],
        start_time=first.start_time,
        min_interval=min(session.min_interval for session in sessions),
        max_interval=max(session.max_interval for session in sessions),
        duration=sum(session.duration for session in sessions),
        sample_count=sum(session.sample_count for session in sessions),
        start_call_stack=first.start_call_stack,
        target_description=first.target_description,
        cpu_time=sum(session.cpu_time for session in sessions),
        sys_path=list(dict.fromkeys(path for session in sessions for path in session.sys_path)),
        sys_prefixes=sorted({prefix for session in sessions for prefix in session.sys_prefixes}),
    )


def sink_from_env(environ: Mapping[str, str] = os.environ) -> SessionSink | None:
    directory = settings.profile_dir_from_env(environ)
    return SessionSink(Path(directory)) if directory else None


class ProfileMiddleware:
    """One async-mode profiler per request (pure ASGI, so the profiler runs in the request's own task)."""

    def __init__(self, app: ASGIApp, sink: SessionSink) -> None:
        self.app = app
        self.sink = sink

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(SKIPPED_PREFIXES):
            await self.app(scope, receive, send)
            return
        from pyinstrument import Profiler

        profiler = Profiler(interval=INTERVAL_S, async_mode="enabled")
        profiler.start()
        try:
            await self.app(scope, receive, send)
        finally:
            self.sink.add(profiler.stop())


def in_thread(sink: SessionSink | None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator for ``def`` routes: profile the body inside the worker thread that runs it.

    Identity when profiling is off. ``functools.wraps`` keeps the signature (FastAPI reads it through
    ``__wrapped__``) and the wrapper stays a plain function, so FastAPI still runs it in the threadpool.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        if sink is None:
            return func
        from pyinstrument import Profiler

        @functools.wraps(func)
        def profiled(*args: P.args, **kwargs: P.kwargs) -> R:
            profiler = Profiler(interval=INTERVAL_S, async_mode="disabled")
            profiler.start()
            try:
                return func(*args, **kwargs)
            finally:
                sink.add(profiler.stop())

        return profiled

    return decorate
