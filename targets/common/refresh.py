"""Coalescing and bookkeeping for POST /refresh-views, shared by every variant (the refresh itself is the
store's, in its own idiom).

At most one refresh runs and at most one waits: a request that arrives while one is already waiting joins
it (the waiting refresh starts after the request, so it will see the request's data), and the rest of the
machinery never piles up refreshes behind a slow one. Each refresh's own duration is measured from the
moment it starts (the previous one has finished) to the store's return (its commit), including the wait
for a pooled connection: that is the refresh's honest cost to the service.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# Enough for a cell's refreshes (coalesced, they run one after another: a 60 ms refresh fits ~1,000 in a
# minute) without letting a long-running target grow without bound.
KEEP_DURATIONS = 1_000

_log = logging.getLogger(__name__)


class RefreshCoordinator:
    """Counts requested / coalesced / started / completed / failed refreshes and times each one.

    The caller serialises refreshes (one asyncio or threading lock around ``running``); this object only
    decides whether a request needs a new refresh. Its state changes under a threading lock because the
    sync variant's refreshes run in anyio's worker threads; it is never held across a refresh.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._pending = False
        self._running = False
        self.requested = 0
        self.coalesced = 0
        self.started = 0
        self.completed = 0
        self.failed = 0
        self.durations_ms: list[float] = []
        self.total_ms = 0.0
        self.max_ms: float | None = None
        self.last_error: str | None = None

    def request(self) -> bool:
        """Count one POST; True if the caller must schedule a refresh, False if it joined the waiting one."""
        with self._lock:
            self.requested += 1
            if self._pending:
                self.coalesced += 1
                return False
            self._pending = True
            return True

    @contextmanager
    def running(self) -> Iterator[None]:
        """Wrap one refresh, entered once the previous one has finished. A failure is counted and logged,
        not raised: the 202 was sent long ago and nobody could receive the exception."""
        with self._lock:
            self._pending = False  # requests from now on need a new refresh: this one may not see them
            self._running = True
            self.started += 1
        started = self._clock()
        try:
            yield
        except Exception as error:
            _log.exception("refresh failed")
            with self._lock:
                self._running = False
                self.failed += 1
                self.last_error = f"{type(error).__name__}: {error}"
            return
        elapsed_ms = (self._clock() - started) * 1000
        with self._lock:
            self._running = False
            self.completed += 1
            self.total_ms += elapsed_ms
            self.max_ms = round(max(elapsed_ms, self.max_ms or 0.0), 2)
            self.durations_ms.append(round(elapsed_ms, 2))
            del self.durations_ms[:-KEEP_DURATIONS]

    def snapshot(self) -> dict[str, Any]:
        """Cumulative since the target started (the "refresh" key of /_bench/info)."""
        with self._lock:
            durations = list(self.durations_ms)
            return {
                "requested": self.requested,
                "coalesced": self.coalesced,
                "started": self.started,
                "completed": self.completed,
                "failed": self.failed,
                "running": self._running,
                "pending": self._pending,
                "total_ms": round(self.total_ms, 2),
                "last_ms": durations[-1] if durations else None,
                "max_ms": self.max_ms,
                "durations_ms": durations,
                "last_error": self.last_error,
            }
