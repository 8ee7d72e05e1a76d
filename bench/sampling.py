"""What the load process records: every request completed inside the measured window.

A completed request either succeeded (its latency goes into the histograms, its bytes are counted) or
failed (counted by kind, see bench.failures: "HTTP 404 GET /v1/does-not-exist", "ConnectionResetError
GET /db: ..."; never timed, never throughput). ``requests`` counts both; successes are
``requests - sum(errors)``.

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

from bench import failures, hist

INTENDED_KEY = "dbbench_intended"
BEHIND_KEY = "dbbench_behind"


@dataclass
class _Endpoint:
    requests: int = 0
    errors: int = 0
    histogram: Any = field(default_factory=hist.new)
    bytes: int = 0  # response bytes of its successful requests (Locust's response_length: the body's length)


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
        self.service = hist.new()  # open model only; in the closed model it equals the latency
        self.endpoints: dict[str, _Endpoint] = {}
        self.errors: dict[str, int] = {}  # failed requests by kind (bench.failures.error_kind)
        self.user_errors: dict[str, int] = {}  # exceptions in the locustfile's own code (user_error_kind)
        self.error_samples: dict[str, str] = {}  # HTTP failure kind -> the start of its first response body
        # (method, name, status) -> kind: a server answering 404 to everything fails every request, so
        # naming a status failure must not format a string each time (this is the load process's hot path).
        self._status_kinds: dict[tuple[str, str, int], str] = {}
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
        response: Any = None,
        **_: Any,
    ) -> None:
        now = self.clock()
        if not self.measuring(now):
            return
        self.requests += 1
        if self.max_requests and self.requests >= self.max_requests:
            self.close()  # this request still counts: it completed inside the window
        endpoint = self.endpoints.get(name)
        if endpoint is None:  # not setdefault: a new histogram allocates ~100 KB, once per endpoint
            endpoint = self.endpoints[name] = _Endpoint()
        endpoint.requests += 1
        if exception is not None:
            kind = self._error_kind(request_type, name, exception, response)
            self.errors[kind] = self.errors.get(kind, 0) + 1
            endpoint.errors += 1
            return
        # Locust reports milliseconds as a float; store whole microseconds (HDR needs integers).
        # One histogram record per request in the closed model (this runs for every request in the
        # load process, whose CPU is the generator's ceiling); the totals merge endpoints at the end.
        service_us = max(1, round(response_time * 1000))
        intended = (context or {}).get(INTENDED_KEY)
        if intended is None:
            endpoint.histogram.record_value(service_us)
        else:
            if (context or {}).get(BEHIND_KEY):
                self.late += 1
            self.service.record_value(service_us)
            endpoint.histogram.record_value(max(service_us, round((now - intended) * 1_000_000)))
        size = response_length or 0
        self.bytes += size
        endpoint.bytes += size

    def on_user_error(self, user_instance: Any, exception: BaseException, tb: Any = None, **_: Any) -> None:
        """Locust's ``events.user_error``: a task of the user's file raised (not a failed request)."""
        if not self.measuring(self.clock()):
            return
        # A task written on the User itself runs in Locust's DefaultTaskSet: name the User the file defines.
        owner = getattr(user_instance, "user", None) if type(user_instance).__name__ == "DefaultTaskSet" else None
        kind = failures.user_error_kind(type(owner or user_instance).__name__, exception)
        self.user_errors[kind] = self.user_errors.get(kind, 0) + 1

    def _error_kind(self, request_type: str, name: str, exception: BaseException, response: Any) -> str:
        status = failures.http_status(exception)
        if status is None:  # a transport fault: its text says which (refused, reset, timed out)
            return failures.error_kind(request_type, name, exception)
        key = (request_type, name, status)
        kind = self._status_kinds.get(key)
        if kind is None:
            kind = self._status_kinds[key] = failures.status_kind(request_type, name, status)
            # Once per kind, not per request: what the server said (FastAPI's {"detail": ...}, a proxy's page).
            self.error_samples[kind] = failures.body_sample(response)
        return kind

    @property
    def closed(self) -> bool:
        return self.end is not None

    def to_dict(self) -> dict[str, Any]:
        measured = (self.end or self.clock()) - (self.start or self.clock())
        total = hist.new()
        for endpoint in self.endpoints.values():
            total.add(endpoint.histogram)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "user_errors": self.user_errors,
            "error_samples": {kind: text for kind, text in self.error_samples.items() if text},
            "histogram": hist.encode(total),
            "service_histogram": hist.encode(self.service if hist.count(self.service) else total),
            "late": self.late,
            "endpoints": {
                name: {
                    "requests": e.requests,
                    "errors": e.errors,
                    "histogram": hist.encode(e.histogram),
                    "bytes_received": e.bytes,
                }
                for name, e in self.endpoints.items()
            },
            "duration_s": measured,
            "bytes_received": self.bytes,
            "load_cpu_s": self.cpu_end - self.cpu_start,
            "load_processes": 1,
            **self.extra,
        }


class WarmupEvidence:
    """When a cell's warm-up has done its job: every user has completed ``responses`` requests (so its new
    HTTP connection and its first requests are behind it) and ``floor_s`` has passed since ``begin``.

    A fixed short warm-up let the last users' first requests land in the window (benchmarks/warmup_probe.py: a
    fixed 0.1 s gave 0.64-0.92x the throughput of 0.5 s, p99 up to 1.49x); waiting for this evidence instead
    ends the warm-up of a fast cell in tens of milliseconds and keeps a slow cell's to its cap (the caller's).

    Users are told apart by ``who()`` (in the load process: the current greenlet, one per Locust user, in which
    Locust fires the request event). A failed request counts as a response: the cell judges its errors."""

    def __init__(
        self,
        users: int,
        responses: int,
        floor_s: float,
        who: Callable[[], object],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = users
        self.responses = responses
        self.floor_s = floor_s
        self.who = who
        self.clock = clock
        self.started = clock()
        self.counts: dict[object, int] = {}
        self.ready = 0  # users with ``responses`` completed requests

    def on_request(self, **_: Any) -> None:
        key = self.who()
        count = self.counts.get(key, 0) + 1
        self.counts[key] = count
        if count == self.responses:
            self.ready += 1

    def done(self) -> bool:
        return self.ready >= self.users and self.clock() - self.started >= self.floor_s


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


def merge_windows(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One window from several load processes (Locust workers): counts add up and histograms merge;
    percentiles are computed from the merged histogram later, never averaged across workers."""
    if len(parts) == 1:
        return parts[0]
    merged: dict[str, Any] = dict(parts[0])
    for key in ("requests", "late", "bytes_received"):
        merged[key] = sum(int(p.get(key, 0)) for p in parts)
    merged["load_cpu_s"] = sum(float(p.get("load_cpu_s", 0.0)) for p in parts)
    errors: dict[str, int] = {}
    for part in parts:
        for kind, count in part.get("errors", {}).items():
            errors[kind] = errors.get(kind, 0) + int(count)
    merged["errors"] = errors
    user_errors: dict[str, int] = {}
    for part in parts:
        for kind, count in part.get("user_errors", {}).items():
            user_errors[kind] = user_errors.get(kind, 0) + int(count)
    merged["user_errors"] = user_errors
    samples: dict[str, str] = {}
    for part in parts:
        for kind, text in part.get("error_samples", {}).items():
            samples.setdefault(kind, str(text))
    merged["error_samples"] = samples
    for key in ("histogram", "service_histogram"):
        merged[key] = hist.encode(hist.merge(str(p.get(key, "")) for p in parts))
    endpoints: dict[str, dict[str, Any]] = {}
    for part in parts:
        for name, e in part.get("endpoints", {}).items():
            slot = endpoints.setdefault(name, {"requests": 0, "errors": 0, "histograms": [], "bytes_received": 0})
            slot["requests"] += int(e["requests"])
            slot["errors"] += int(e["errors"])
            slot["histograms"].append(str(e["histogram"]))
            # A worker of an older dbbench (`bench worker` elsewhere) counts no bytes: the endpoint's figure is
            # then unknown (None), never a sum that silently lacks that worker's share.
            if slot["bytes_received"] is not None and e.get("bytes_received") is not None:
                slot["bytes_received"] += int(e["bytes_received"])
            else:
                slot["bytes_received"] = None
    merged["endpoints"] = {
        name: {
            "requests": e["requests"],
            "errors": e["errors"],
            "histogram": hist.encode(hist.merge(e["histograms"])),
            "bytes_received": e["bytes_received"],
        }
        for name, e in endpoints.items()
    }
    merged["load_processes"] = sum(int(p.get("load_processes", 1)) for p in parts)
    merged["per_process_requests"] = [int(p["requests"]) for p in parts if int(p.get("load_processes", 1))]
    return merged
