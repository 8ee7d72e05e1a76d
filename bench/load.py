"""Drive one measured window with Locust, in a process of its own (see bench.locust_entry).

The load process gets its whole configuration as one ``LoadSpec`` (bench.loadspec); local Locust
workers get theirs from the master, as remote ones (``bench worker``) do.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.loadspec import ENV, GRACE_S, LoadSpec, worker_args
from bench.net import LOOPBACK, free_port
from bench.procs import Supervisor

__all__ = ["ENTRY", "LoadFailed", "LoadSpec", "entry_argv", "run_load"]

ENTRY = "bench.locust_entry"


class LoadFailed(Exception):
    """The load process died, stopped early, or the locustfile's own check failed; the cell is failed."""


def entry_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", ENTRY, *args]


def run_load(
    supervisor: Supervisor,
    spec: LoadSpec,
    workdir: Path,
    on_tick: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Run Locust for warm-up + window; return the samples it recorded (see Window.to_dict).

    Raises LoadFailed when the load process exits without a window (with the reason it gave: the
    load stopped during warm-up, and why), or when the locustfile set a non-zero exit code itself."""
    out = workdir / "load.json"
    out.unlink(missing_ok=True)
    if spec.distributed:
        spec = dataclasses.replace(spec, master_port=spec.master_port or free_port())
    spec = dataclasses.replace(spec, out=out)
    worker_env = {k: v for k, v in os.environ.items() if k != ENV}
    env = {**worker_env, **spec.to_env()}
    child = supervisor.start("locust", entry_argv(), env=env, log_path=workdir / "locust.log", role="load")
    workers = []
    if spec.distributed:
        assert spec.master_port is not None
        for index in range(spec.workers):
            # Same machine: the file itself (several workers downloading it to one temp path would race).
            argv = entry_argv(*worker_args(LOOPBACK, spec.master_port, spec.locustfile))
            log = workdir / f"locust-worker-{index}.log"
            workers.append(supervisor.start(f"locust-worker-{index}", argv, env=worker_env, log_path=log, role="load"))
    started = time.monotonic()
    deadline = started + spec.warmup_s + spec.duration_s + GRACE_S
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
    if data.get("stopped"):
        raise LoadFailed(str(data["stopped"]))
    code = data.get("locustfile_exit_code")
    if code:
        raise LoadFailed(f"the locustfile's own check failed (exit code {code})")
    return data
