"""Entry point of the load process: Locust plus dbbench's own sampling. Never import this module.

Run as ``python -m bench.locust_entry <locust args>``. Importing locust monkey-patches the whole
process with gevent, which is why the orchestrator only ever starts this as a child process.

Locust's own statistics round latencies to 1 ms buckets, so every request event is recorded here
into HDR histograms at microsecond resolution instead. Timing of the window is ours too: samples
from the warm-up are dropped, and the run stops itself once the measured window ends, so no
request that Locust kills at shutdown (and reports half-finished) can leak into the figures.

Configuration (environment): DBBENCH_WARMUP_S, DBBENCH_DURATION_S, DBBENCH_OUT (a JSON path).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.main import main as locust_main

from bench import hist

_ERROR_TEXT_LIMIT = 120


class Window:
    """Samples completed inside [start, end) of the measured window, recorded as they arrive."""

    def __init__(self, warmup_s: float, duration_s: float) -> None:
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
        if not self.measuring(time.monotonic()):
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
        measured = (self.end or time.monotonic()) - (self.start or time.monotonic())
        return {
            "requests": self.requests,
            "errors": self.errors,
            "histogram": hist.encode(self.total),
            "endpoints": {
                name: {"requests": e["requests"], "errors": e["errors"], "histogram": hist.encode(e["histogram"])}
                for name, e in self.endpoints.items()
            },
            "duration_s": measured,
            "bytes_received": self.bytes,
            "load_cpu_s": self.cpu_end - self.cpu_start,
        }


def _drive(environment: Environment, window: Window, out_path: str) -> None:
    gevent.sleep(window.warmup_s)
    window.cpu_start = time.process_time()
    window.start = time.monotonic()
    gevent.sleep(window.duration_s)
    window.end = time.monotonic()
    window.cpu_end = time.process_time()
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(window.to_dict(), handle)
    os.replace(tmp, out_path)
    if environment.runner is not None:
        environment.runner.quit()


def install() -> None:
    warmup = float(os.environ.get("DBBENCH_WARMUP_S", "0"))
    duration = float(os.environ["DBBENCH_DURATION_S"])
    out_path = os.environ["DBBENCH_OUT"]
    window = Window(warmup, duration)
    events.request.add_listener(window.on_request)

    @events.test_start.add_listener
    def _start(environment: Environment, **_: Any) -> None:
        gevent.spawn(_drive, environment, window, out_path)


if __name__ == "__main__":
    install()
    sys.argv[0] = "locust"
    sys.exit(locust_main())
