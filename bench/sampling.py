"""What the load process records: every request completed inside the measured window.

Pure bookkeeping (no locust, no gevent) so it can be tested with a fake clock; bench.locust_entry
wires it to Locust's ``events.request``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench import hist

_ERROR_TEXT_LIMIT = 120


class Window:
    """Samples completed inside [start, end) of the measured window, recorded as they arrive."""

    def __init__(
        self,
        warmup_s: float,
        duration_s: float,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self.clock = clock
        self.cpu_clock = cpu_clock
        self.warmup_s = warmup_s
        self.duration_s = duration_s
        self.start: float | None = None
        self.end: float | None = None
        self.cpu_start = 0.0
        self.cpu_end = 0.0
        self.total = hist.new()
        self.endpoints: dict[str, Any] = {}
        self.errors: dict[str, int] = {}
        self.requests = 0
        self.bytes = 0

    def open(self) -> None:
        self.cpu_start = self.cpu_clock()
        self.start = self.clock()

    def close(self) -> None:
        self.end = self.clock()
        self.cpu_end = self.cpu_clock()

    def measuring(self, now: float) -> bool:
        return self.start is not None and now >= self.start and (self.end is None or now < self.end)

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        exception: BaseException | None = None,
        **_: Any,
    ) -> None:
        if not self.measuring(self.clock()):
            return
        self.requests += 1
        endpoint = self.endpoints.setdefault(name, {"requests": 0, "errors": 0, "histogram": hist.new()})
        endpoint["requests"] += 1
        if exception is not None:
            kind = f"{type(exception).__name__}: {exception}"[:_ERROR_TEXT_LIMIT]
            self.errors[kind] = self.errors.get(kind, 0) + 1
            endpoint["errors"] += 1
            return
        # Locust reports milliseconds as a float; store whole microseconds (HDR needs integers).
        micros = max(1, round(response_time * 1000))
        self.total.record_value(micros)
        endpoint["histogram"].record_value(micros)
        self.bytes += response_length or 0

    def to_dict(self) -> dict[str, Any]:
        measured = (self.end or self.clock()) - (self.start or self.clock())
        return {
            "requests": self.requests,
            "errors": self.errors,
            "histogram": hist.encode(self.total),
            "endpoints": {
                name: {
                    "requests": e["requests"],
                    "errors": e["errors"],
                    "histogram": hist.encode(e["histogram"]),
                }
                for name, e in self.endpoints.items()
            },
            "duration_s": measured,
            "bytes_received": self.bytes,
            "load_cpu_s": self.cpu_end - self.cpu_start,
        }
