"""Drive one measured window with Locust, in a process of its own (see bench.locust_entry)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import Supervisor

# Headroom past the window for Locust's start-up and shutdown before we call it hung.
_GRACE_S = 60.0


class LoadFailed(Exception):
    """The load process died or never wrote its samples; the cell is recorded as failed."""


@dataclass(frozen=True)
class LoadSpec:
    locustfile: Path
    host: str
    users: int  # closed model: concurrent users; open model: connections sharing the rate
    warmup_s: float
    duration_s: float
    rate: float | None = None  # open model: total arrival rate (requests/s); None = closed model
    target_pid: int | None = None  # measured for CPU and RSS over the window
    db_pid: int | None = None  # PostgreSQL postmaster, for database CPU over the window
    target_stats: bool = False  # reset and collect the target's /_bench/stats at the window's edges
    max_requests: int = 0  # close the window early after this many requests (0: no limit)


def locust_argv(spec: LoadSpec) -> list[str]:
    # All users start within the first second (-r = users) so the warm-up absorbs the ramp;
    # --run-time is only a backstop: the entry point ends the run itself when the window closes.
    run_time = int(spec.warmup_s + spec.duration_s + _GRACE_S)
    return [
        sys.executable,
        "-m",
        "bench.locust_entry",
        "-f",
        str(spec.locustfile),
        "--headless",
        "--only-summary",
        "-u",
        str(spec.users),
        "-r",
        str(spec.users),
        "--host",
        spec.host,
        "--run-time",
        f"{run_time}s",
        "--stop-timeout",
        "0",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
    ]


def run_load(
    supervisor: Supervisor,
    spec: LoadSpec,
    workdir: Path,
    on_tick: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Run Locust for warm-up + window; return the samples it recorded (see Window.to_dict)."""
    out = workdir / "load.json"
    out.unlink(missing_ok=True)
    env = dict(os.environ)
    env.update(
        DBBENCH_WARMUP_S=str(spec.warmup_s),
        DBBENCH_DURATION_S=str(spec.duration_s),
        DBBENCH_OUT=str(out),
        DBBENCH_RATE=str(spec.rate or 0),
        DBBENCH_TARGET_PID=str(spec.target_pid or 0),
        DBBENCH_DB_PID=str(spec.db_pid or 0),
        DBBENCH_TARGET_STATS="1" if spec.target_stats else "0",
        DBBENCH_MAX_REQUESTS=str(spec.max_requests),
    )
    child = supervisor.start("locust", locust_argv(spec), env=env, log_path=workdir / "locust.log")
    started = time.monotonic()
    deadline = started + spec.warmup_s + spec.duration_s + _GRACE_S
    try:
        while child.alive():
            if time.monotonic() > deadline:
                raise LoadFailed(f"Locust did not finish within {deadline - started:.0f}s")
            if on_tick is not None:
                on_tick(time.monotonic() - started)
            time.sleep(0.2)
    finally:
        supervisor.stop(child)
    if not out.exists():
        tail = child.log_tail(5).replace("\n", " | ")
        raise LoadFailed(f"Locust exited with code {child.popen.returncode} before the window closed: {tail}")
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data
