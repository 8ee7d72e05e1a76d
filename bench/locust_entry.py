"""Entry point of the load process: Locust plus dbbench's own sampling. Never import this module.

Run as ``python -m bench.locust_entry <locust args>``. Importing locust monkey-patches the whole
process with gevent, which is why the orchestrator only ever starts this as a child process.

Locust's own statistics round latencies to 1 ms buckets, so every request event is recorded here
into HDR histograms at microsecond resolution instead. Timing of the window is ours too: samples
from the warm-up are dropped, and the run stops itself once the measured window ends, so no
request that Locust kills at shutdown (and reports half-finished) can leak into the figures.
The edges of the window are also where the target's and the database's CPU are read and where
the target's own statement statistics are reset and collected, so all figures cover one window.

With Locust workers (``--master`` plus ``--worker`` processes), the master owns the clock: it tells
the workers when the window opens and closes, each worker sends back its own window, and the
master merges them (histograms merged, counts added) into the one file the orchestrator reads.

Configuration (environment):
  DBBENCH_WARMUP_S, DBBENCH_DURATION_S, DBBENCH_OUT (a JSON path)   always
  DBBENCH_RATE          open model: total arrival rate in requests/s, spread over the users
  DBBENCH_USERS         open model: all users across all workers (each paces at USERS / RATE)
  DBBENCH_TARGET_PID    uvicorn's pid: CPU seconds and peak RSS over the window
  DBBENCH_DB_PID        PostgreSQL postmaster's pid: database CPU over the window
  DBBENCH_TARGET_STATS  "1": reset /_bench/stats when the window opens, read it when it closes
  DBBENCH_PG_DSN        reset pg_stat_statements when the window opens, snapshot it when it closes
  DBBENCH_MAX_REQUESTS  close the window early after this many requests (profiling passes)
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import gevent
from locust import User, events
from locust.env import Environment
from locust.main import main as locust_main
from locust.rpc.protocol import Message
from locust.runners import MasterRunner, Runner, WorkerRunner

from bench import pgstats
from bench.resources import Meter
from bench.sampling import BEHIND_KEY, INTENDED_KEY, Pacer, Window, merge_windows

_RSS_SAMPLE_S = 0.25
_REPORT_TIMEOUT_S = 30.0
OPEN, CLOSE, REPORT = "dbbench_open", "dbbench_close", "dbbench_window"


def _target_call(host: str, method: str, path: str) -> Any:
    # Only ever our own target, on the http://127.0.0.1 host the orchestrator passed.
    request = urllib.request.Request(f"{host.rstrip('/')}{path}", method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            body = response.read()
    except (urllib.error.URLError, OSError):
        return None
    return json.loads(body) if body else None


def _pace(user_classes: list[type[User]], rate: float, users: int) -> None:
    """Turn every user class into an open-model connection sending ``rate / users`` requests/s."""
    interval = users / rate

    for cls in user_classes:
        original_on_start = cls.on_start
        original_context = cls.context

        def on_start(self: User, _original: Any = original_on_start) -> None:
            # Spread the connections' first sends over one interval instead of firing all at once.
            gevent.sleep(random.uniform(0, interval))
            self._dbbench_pacer = Pacer(interval, time.monotonic())  # type: ignore[attr-defined]
            _original(self)

        def context(self: User, _original: Any = original_context) -> dict[str, Any]:
            pacer: Pacer | None = getattr(self, "_dbbench_pacer", None)
            base: dict[str, Any] = _original(self)
            return {**base, INTENDED_KEY: pacer.intended, BEHIND_KEY: pacer.behind} if pacer else base

        def wait_time(self: User) -> float:
            pacer: Pacer | None = getattr(self, "_dbbench_pacer", None)
            return pacer.advance(time.monotonic()) if pacer else 0.0

        cls.on_start = on_start  # type: ignore[method-assign]
        cls.context = context  # type: ignore[method-assign]
        cls.wait_time = wait_time


def _drive(environment: Environment, window: Window, out_path: str, reports: list[dict[str, Any]]) -> None:
    target = Meter(int(os.environ.get("DBBENCH_TARGET_PID", "0")) or None)
    database = Meter(int(os.environ.get("DBBENCH_DB_PID", "0")) or None)
    stats = os.environ.get("DBBENCH_TARGET_STATS") == "1" and environment.host
    runner = environment.runner
    pg_dsn = os.environ.get("DBBENCH_PG_DSN", "")
    gevent.sleep(window.warmup_s)
    info_open = None
    if stats:
        _target_call(environment.host or "", "POST", "/_bench/stats/reset")
        # Cumulative counters (cache hits and misses, background refreshes) are diffed between the edges.
        info_open = _target_call(environment.host or "", "GET", "/_bench/info")
    if pg_dsn:
        pgstats.reset(pg_dsn)
    target.start()
    database.start()
    window.open()
    if isinstance(runner, MasterRunner):
        runner.send_message(OPEN)
    deadline = time.monotonic() + window.duration_s
    while time.monotonic() < deadline and not window.closed:
        gevent.sleep(min(_RSS_SAMPLE_S, max(0.0, deadline - time.monotonic())))
        target.sample()
    if not window.closed:
        window.close()
    workers = 0
    if isinstance(runner, MasterRunner):
        workers = runner.worker_count
        runner.send_message(CLOSE)
        deadline = time.monotonic() + _REPORT_TIMEOUT_S
        while len(reports) < workers and time.monotonic() < deadline:
            gevent.sleep(0.05)
    target.stop()
    database.stop()
    window.extra.update(
        target_cpu_s=target.cpu_s,
        target_rss_mb=target.peak_rss_mb,
        db_cpu_s=database.cpu_s,
        target_stats=_target_call(environment.host or "", "GET", "/_bench/stats") if stats else None,
        target_window={"open": info_open, "close": _target_call(environment.host or "", "GET", "/_bench/info")}
        if stats
        else None,
        pg_statements=[stat.to_dict() for stat in pgstats.snapshot(pg_dsn)] if pg_dsn else None,
    )
    own = window.to_dict()
    if workers:
        # The master sends no requests of its own: only the workers count as load processes.
        own["load_processes"] = 0
        own["load_cpu_s"] = 0.0
        own["workers_reported"] = len(reports)
        own["workers_expected"] = workers
    result = merge_windows([own, *reports])
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    os.replace(tmp, out_path)
    if runner is not None:
        runner.quit()


def _as_worker(runner: WorkerRunner, window: Window) -> None:
    def on_open(environment: Environment, msg: Message, **_: Any) -> None:
        window.open()

    def on_close(environment: Environment, msg: Message, **_: Any) -> None:
        window.close()
        runner.send_message(REPORT, window.to_dict())

    runner.register_message(OPEN, on_open)
    runner.register_message(CLOSE, on_close)


def _drop_locust_stats(environment: Environment) -> None:
    """Unhook Locust's own per-request statistics: dbbench never reads them (its histograms are recorded by
    Window.on_request), and on a 2-core machine every microsecond the load process burns is taken from
    the target and the database it is measuring. py-spy on the load process during `bench calibrate`:
    firing the request event took 2.9 % of its samples with Locust's listener, 1.5 % without."""
    handlers = environment.events.request._handlers
    handlers[:] = [h for h in handlers if getattr(h, "__qualname__", "") != "Runner.__init__.<locals>.on_request"]


def install() -> None:
    warmup = float(os.environ.get("DBBENCH_WARMUP_S", "0"))
    # A worker on another machine gets its window from the master, so it may have none of these.
    duration = float(os.environ.get("DBBENCH_DURATION_S", "0"))
    out_path = os.environ.get("DBBENCH_OUT", "")
    rate = float(os.environ.get("DBBENCH_RATE", "0"))
    users = int(os.environ.get("DBBENCH_USERS", "1"))
    window = Window(warmup, duration, max_requests=int(os.environ.get("DBBENCH_MAX_REQUESTS", "0")))
    events.request.add_listener(window.on_request)
    reports: list[dict[str, Any]] = []

    @events.init.add_listener
    def _init(environment: Environment, runner: Runner | None = None, **_: Any) -> None:
        _drop_locust_stats(environment)
        if rate > 0:
            _pace(environment.user_classes, rate, max(1, users))
        if isinstance(runner, WorkerRunner):
            _as_worker(runner, window)
        elif isinstance(runner, MasterRunner):
            runner.register_message(REPORT, lambda environment, msg, **_: reports.append(msg.data))

    @events.test_start.add_listener
    def _start(environment: Environment, **_: Any) -> None:
        if not isinstance(environment.runner, WorkerRunner):
            gevent.spawn(_drive, environment, window, out_path, reports)


if __name__ == "__main__":
    install()
    sys.argv[0] = "locust"
    sys.exit(locust_main())
