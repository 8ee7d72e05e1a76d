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
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.main import main as locust_main

from bench.sampling import Window


def _drive(environment: Environment, window: Window, out_path: str) -> None:
    gevent.sleep(window.warmup_s)
    window.open()
    gevent.sleep(window.duration_s)
    window.close()
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
