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

from bench.net import LOOPBACK, free_port
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
    workers: int = 1  # local Locust processes; above 1, Locust's own master/worker mode
    remote_workers: int = 0  # more workers that join from other machines (``bench worker``)
    master_bind: str = LOOPBACK  # where the master listens; only non-loopback for remote workers
    master_port: int | None = None  # fixed port for remote workers to join; None picks a free one
    pg_dsn: str | None = None  # reset / snapshot pg_stat_statements at the window's edges


def worker_argv(locustfile: str, master_host: str, master_port: int) -> list[str]:
    argv = [sys.executable, "-m", "bench.locust_entry", "-f", locustfile, "--worker", "--loglevel", "WARNING"]
    return [*argv, "--master-host", master_host, "--master-port", str(master_port)]


def locust_argv(spec: LoadSpec, master_port: int | None = None) -> list[str]:
    # All users start within the first second (-r = users) so the warm-up absorbs the ramp;
    # --run-time is only a backstop: the entry point ends the run itself when the window closes.
    run_time = int(spec.warmup_s + spec.duration_s + _GRACE_S)
    argv = [sys.executable, "-m", "bench.locust_entry", "-f", str(spec.locustfile), "--headless", "--only-summary"]
    argv += ["-u", str(spec.users), "-r", str(spec.users), "--host", spec.host, "--run-time", f"{run_time}s"]
    argv += ["--stop-timeout", "0", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
    if master_port is not None:
        argv += ["--master", "--master-bind-host", spec.master_bind, "--master-bind-port", str(master_port)]
        argv += ["--expect-workers", str(spec.workers + spec.remote_workers), "--expect-workers-max-wait", "60"]
    return argv


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
        DBBENCH_USERS=str(spec.users),
        DBBENCH_WARMUP_S=str(spec.warmup_s),
        DBBENCH_DURATION_S=str(spec.duration_s),
        DBBENCH_OUT=str(out),
        DBBENCH_RATE=str(spec.rate or 0),
        DBBENCH_TARGET_PID=str(spec.target_pid or 0),
        DBBENCH_DB_PID=str(spec.db_pid or 0),
        DBBENCH_TARGET_STATS="1" if spec.target_stats else "0",
        DBBENCH_MAX_REQUESTS=str(spec.max_requests),
        DBBENCH_PG_DSN=spec.pg_dsn or "",
    )
    distributed = spec.workers > 1 or spec.remote_workers > 0
    master_port = (spec.master_port or free_port()) if distributed else None
    child = supervisor.start("locust", locust_argv(spec, master_port), env=env, log_path=workdir / "locust.log")
    workers = []
    if master_port is not None:
        for index in range(spec.workers):
            argv = worker_argv(str(spec.locustfile), LOOPBACK, master_port)
            log = workdir / f"locust-worker-{index}.log"
            workers.append(supervisor.start(f"locust-worker-{index}", argv, env=env, log_path=log))
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
        for worker in workers:
            supervisor.stop(worker)
    if not out.exists():
        tail = child.log_tail(5).replace("\n", " | ")
        raise LoadFailed(f"Locust exited with code {child.popen.returncode} before the window closed: {tail}")
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data
