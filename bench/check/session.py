"""One check in progress, and what it may assume and do (its scope): shared by every part of the check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.check.counting import QueryCounter
from bench.check.probe import Probe


@dataclass(frozen=True)
class Scope:
    """What the check may assume and do.

    ``dsn``: the database dbbench seeded for this server (values compared with the seed and read back);
    None: shape and range only. ``writes``: requests that change data may be sent. ``private``: the server
    is dbbench, so /_bench/* may be asked. ``server_log``: the server's log, for the exception behind a 500.
    """

    dsn: str | None = None
    writes: bool = True
    private: bool = True
    server_log: Path | None = None


@dataclass
class Session:
    """One check in progress: the requests (with their problems), the query counter, the scope, the findings."""

    probe: Probe
    counter: QueryCounter
    scope: Scope
    info: dict[str, Any]

    def get_counted(self, path: str, content_type: str, endpoint: str, queries: int) -> httpx.Response | None:
        """GET ``path`` and expect ``queries`` queries for it (when counting); None after reporting why not 200."""
        self.counter.reset()
        response = self.probe.get(path, content_type)
        if response is not None:
            self.counter.expect(path, endpoint, queries)
        return response
