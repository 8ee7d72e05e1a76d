"""What the load process records: every request completed inside the measured window.

Pure bookkeeping (no locust, no gevent) so it can be tested with a fake clock; bench.locust_entry
wires it to Locust's ``events.request``.

Two latencies are kept per request. ``service`` is what the client saw from send to response.
``histogram`` is what a user would have seen: in the open model (a fixed arrival rate) it is
measured from the request's *intended* send time, so when the server stalls, the requests that
queued up behind the stall carry the wait (wrk2's coordinated-omission correction). In the closed
model there is no schedule and the two are the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import hist

_ERROR_TEXT_LIMIT = 120
INTENDED_KEY = "dbbench_intended"
BEHIND_KEY = "dbbench_behind"


@dataclass
class _Endpoint:
    requests: int = 0
    errors: int = 0
    histogram: Any = field(default_factory=hist.new)


class Window:
    """Samples completed inside [start, end) of the measured window, recorded as they arrive."""

    def __init__(
        self,
        warmup_s: float,
        duration_s: float,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.process_time,
        max_requests: int = 0,
    ) -> None:
        self.max_requests = max_requests  # close as soon as this many requests completed (0: never)
        self.clock = clock
        self.cpu_clock = cpu_clock
        self.warmup_s = warmup_s
        self.duration_s = duration_s
        self.start: float | None = None
        self.end: float | None = None
        self.cpu_start = 0.0
        self.cpu_end = 0.0
        self.total = hist.new()
        self.service = hist.new()
        self.endpoints: dict[str, _Endpoint] = {}
        self.errors: dict[str, int] = {}
        self.requests = 0
        self.late = 0
        self.bytes = 0
        self.extra: dict[str, Any] = {}  # resource figures and target stats, filled by the load process

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
        context: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        now = self.clock()
        if not self.measuring(now):
            return
        self.requests += 1
        if self.max_requests and self.requests >= self.max_requests:
            self.close()  # this request still counts: it completed inside the window
        endpoint = self.endpoints.setdefault(name, _Endpoint())
        endpoint.requests += 1
        if exception is not None:
            kind = f"{type(exception).__name__}: {exception}"[:_ERROR_TEXT_LIMIT]
            self.errors[kind] = self.errors.get(kind, 0) + 1
            endpoint.errors += 1
            return
        # Locust reports milliseconds as a float; store whole microseconds (HDR needs integers).
        service_us = max(1, round(response_time * 1000))
        latency_us = service_us
        intended = (context or {}).get(INTENDED_KEY)
        if intended is not None:
            if (context or {}).get(BEHIND_KEY):
                self.late += 1
            latency_us = max(service_us, round((now - intended) * 1_000_000))
        self.service.record_value(service_us)
        self.total.record_value(latency_us)
        endpoint.histogram.record_value(latency_us)
        self.bytes += response_length or 0

    @property
    def closed(self) -> bool:
        return self.end is not None

    def to_dict(self) -> dict[str, Any]:
        measured = (self.end or self.clock()) - (self.start or self.clock())
        return {
            "requests": self.requests,
            "errors": self.errors,
            "histogram": hist.encode(self.total),
            "service_histogram": hist.encode(self.service),
            "late": self.late,
            "endpoints": {
                name: {"requests": e.requests, "errors": e.errors, "histogram": hist.encode(e.histogram)}
                for name, e in self.endpoints.items()
            },
            "duration_s": measured,
            "bytes_received": self.bytes,
            "load_cpu_s": self.cpu_end - self.cpu_start,
            **self.extra,
        }


class Pacer:
    """Open-model schedule for one simulated connection: sends at ``start + k * interval``.

    As in wrk2, a connection that falls behind sends its next request at once (never skipping a
    slot), and that request's latency still counts from the slot it was meant for.
    """

    def __init__(self, interval_s: float, first_s: float) -> None:
        self.interval_s = interval_s
        self.intended = first_s
        # True when the previous response arrived after this slot began: the request is late
        # because the server held the connection, not because of timer jitter.
        self.behind = False

    def advance(self, now: float) -> float:
        """Move to the next slot; return how long to sleep before sending it (0 when behind)."""
        self.intended += self.interval_s
        self.behind = now > self.intended
        return max(0.0, self.intended - now)
