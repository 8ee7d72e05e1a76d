"""Drive measured windows with Locust, in a process of its own (see bench.locust_entry).

The load process gets its whole configuration as one ``LoadSpec`` (bench.loadspec); local Locust
workers get theirs from the master, as remote ones (``bench worker``) do. ``run_load`` starts a process
for one window; a ``LoadSession`` keeps one process per locustfile and hands it one cell's spec at a
time, which saves Locust's start-up (about a second of CPU on this machine) on every cell but the first.
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
from bench.procs import Child, Supervisor

__all__ = [
    "ENTRY",
    "LoadFailed",
    "LoadSession",
    "LoadSpec",
    "entry_argv",
    "run_load",
    "sessions_serve",
    "with_evidence",
]

ENTRY = "bench.locust_entry"
_TICK_S = 0.2  # how often the caller's on_tick runs while a window is measured
_POLL_S = 0.02  # how often a session looks for its cell's result while its window may still be open
_END_POLL_S = 0.005  # and once it may have closed (no window closes before its duration_s has passed)


class LoadFailed(Exception):
    """The load process died, stopped early, or the locustfile's own check failed; the cell is failed."""


# Evidence-based warm-up (bench.sampling.WarmupEvidence), for short warm-ups only: a warm-up ends once every user
# has completed EVIDENCE_RESPONSES requests and EVIDENCE_FLOOR_S has passed, at most its --warmup. Checked with
# benchmarks/warmup_probe.py against a fixed 0.5 s (see its docstring). A long warm-up (a full run's 3 s) is
# also there for what the users cannot see (the server's own warm state, its caches filling), so it is kept.
EVIDENCE_RESPONSES = 2
EVIDENCE_FLOOR_S = 0.05
EVIDENCE_MAX_WARMUP_S = 1.0
# A server that has already served a cell of the scenario (a quick run's trials 2 and 3) has its code paths, its
# pool's connections and their prepared statements warm: what is left to warm is the cell's new users, whose
# first request (its connection) is then all the warm-up has to keep out of the window. Checked with
# benchmarks/warmup_probe.py (``--warmups e0.5,e0.5/1,0.50``, every cell there on an already warm server).
EVIDENCE_WARM_SERVER_RESPONSES = 1


def with_evidence(spec: LoadSpec, *, warm_server: bool = False) -> LoadSpec:
    """``spec`` with the evidence-based warm-up when its warm-up is short (<= EVIDENCE_MAX_WARMUP_S); with
    ``warm_server`` (its target already served this scenario, and holds nothing a cell must find empty), one
    response per user is evidence enough."""
    if spec.warmup_s > EVIDENCE_MAX_WARMUP_S:
        return spec
    responses = EVIDENCE_WARM_SERVER_RESPONSES if warm_server else EVIDENCE_RESPONSES
    return dataclasses.replace(spec, warmup_responses=responses, warmup_floor_s=EVIDENCE_FLOOR_S)


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
            time.sleep(_TICK_S)
    finally:
        supervisor.stop(child)
        for worker in workers:
            supervisor.stop(worker)
    return _window(out, child)


def _window(out: Path, child: Child) -> dict[str, Any]:
    """The window the load process wrote to ``out``; LoadFailed when there is none or it says the load failed."""
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


def sessions_serve(spec: LoadSpec) -> bool:
    """Whether cells like ``spec``'s can share a load session: dbbench's own closed-model scenarios in one
    local process. A user's locustfile keeps a process per cell (its quit-time listeners and exit code
    are per cell), as do the open model (its pacing patches the user classes for one rate) and Locust's
    master/worker mode (its workers join one master per cell)."""
    return spec.own_scenario and spec.rate is None and not spec.distributed


class LoadSession:
    """One load process measuring cell after cell of one locustfile (see bench.locust_entry's ``serve``).

    Each cell still gets new users against its own target, its own warm-up and its own window; only the
    process is shared. The process is started by the first ``run`` and ended by ``close`` (or when a cell
    fails: the next ``run`` starts a new one)."""

    def __init__(self, supervisor: Supervisor, workdir: Path, name: str) -> None:
        self.supervisor = supervisor
        self.folder = workdir / f"session-{name}"
        self.child: Child | None = None
        self.cells = 0  # cells handed to the current process

    def start(self, spec: LoadSpec) -> None:
        """Start the process ahead of the session's first cell, for cells like ``spec`` (its locustfile and
        options; its host, users and times are each cell's own): with no user, it sends no request until
        ``run`` hands it a cell. A quick run switches scenario 15 times, and each switch waited ~0.4 s for a
        new process to import Locust; started while nothing is measured (the contract check), none waits."""
        if self.child is not None:
            return
        self._fresh_folder()
        standby = dataclasses.replace(spec, users=0, rate=None, session=self.folder, out=None)
        env = {**os.environ, **standby.to_env()}
        self.child = self.supervisor.start(
            "locust", entry_argv(), env=env, log_path=self.folder / "locust.log", role="load"
        )

    def _fresh_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.iterdir():
            old.unlink()
        self.cells = 0

    def run(self, spec: LoadSpec, on_tick: Callable[[float], None] | None = None) -> dict[str, Any]:
        """Measure one cell (``spec``: warm-up + window) in the session's process; the window as ``run_load``
        returns it. Raises LoadFailed as ``run_load`` does; the process is then ended."""
        if self.child is not None and not self.child.alive():
            self.close()
        if self.child is None:
            self._fresh_folder()
        self.cells += 1
        out = self.folder / f"result-{self.cells}.json"
        spec = dataclasses.replace(spec, out=out, session=self.folder)
        command = self.folder / f"cell-{self.cells}.json"
        tmp = command.with_name(command.name + ".tmp")
        tmp.write_text(spec.to_json(), encoding="utf-8")
        os.replace(tmp, command)  # the load process never reads a half-written spec
        if self.child is None:
            env = {**os.environ, **spec.to_env()}
            self.child = self.supervisor.start(
                "locust", entry_argv(), env=env, log_path=self.folder / "locust.log", role="load"
            )
        child = self.child
        started = ticked = time.monotonic()
        deadline = started + spec.warmup_s + spec.duration_s + GRACE_S
        try:
            while not out.exists() and child.alive():
                now = time.monotonic()
                if now > deadline:
                    raise LoadFailed(f"Locust did not finish within {deadline - started:.0f}s")
                # The window's end is noticed within a poll; the watchers (connection sampling, the display)
                # run at run_load's pace, so that they take no more from the measured cores than before.
                if on_tick is not None and now - ticked >= _TICK_S:
                    ticked = now
                    on_tick(now - started)
                # A result is only due after the window's own length: poll faster from then on, so that each cell
                # wastes ~3 ms instead of ~10 waiting to be noticed, without polling faster during the window.
                time.sleep(_POLL_S if now - started < spec.duration_s else _END_POLL_S)
            return _window(out, child)
        except LoadFailed:
            self.close()
            raise

    def close(self) -> None:
        """End the session's process (asked politely first: it quits on its own within a poll)."""
        if self.child is None:
            return
        (self.folder / "quit").touch()
        self.supervisor.stop(self.child)
        self.child = None
