"""Supervised child processes: every process a run starts is ended when the run ends.

Each child gets its own process group, so ending it also ends whatever it forked (PostgreSQL's
backends, uvicorn's workers, Locust's workers). On Linux each child also asks the kernel to signal
it when the orchestrator dies, so even a SIGKILL of ``bench`` leaves nothing behind.

A supervisor given a CPU plan (bench.topology) also holds each child it starts to its role's CPUs, set in
the child before its program runs, so everything the child forks later inherits it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from bench.topology import CpuPlan, Role

_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int) -> None:
    # Runs in the child between fork and exec: keep it to one syscall.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)


def _prepare_child(sig: int, cpus: frozenset[int] | None) -> None:
    # Between fork and exec: set here, the affinity holds from the program's first instruction, and the
    # processes it forks inherit it (PostgreSQL's backends, uvicorn's workers, started long after).
    _die_with_parent(sig)
    if cpus is not None:
        os.sched_setaffinity(0, cpus)


@dataclass
class Child:
    """One supervised process and how to stop it politely."""

    name: str
    popen: subprocess.Popen[bytes]
    stop_signal: int = signal.SIGTERM
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 10.0) -> int | None:
        """Signal the whole group, wait, then SIGKILL whatever is left."""
        if self.alive():
            _signal_group(self.pid, self.stop_signal)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        # The leader may be gone while its group lives on (a forked worker): sweep it too.
        _signal_group(self.pid, signal.SIGKILL)
        return self.popen.returncode


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass
class Supervisor:
    """Owns every child of a run; ``close()`` (or leaving the ``with``) ends them all, newest first.

    With ``cpu_plan``, a child started with a ``role`` runs on that role's CPUs (bench.topology)."""

    cpu_plan: CpuPlan | None = None
    children: list[Child] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log_path: Path | None = None,
        stop_signal: int = signal.SIGTERM,
        user: str | None = None,
        role: Role | None = None,
    ) -> Child:
        log: IO[bytes] | int = subprocess.DEVNULL
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log = log_path.open("ab")
        cpus = self.cpu_plan.cpus(role) if self.cpu_plan is not None else None
        try:
            popen = subprocess.Popen(
                list(argv),
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: _prepare_child(stop_signal, cpus),
                user=user,
            )
        finally:
            if not isinstance(log, int):
                log.close()
        child = Child(name, popen, stop_signal, log_path)
        self.children.append(child)
        return child

    def stop(self, child: Child, timeout: float = 10.0) -> int | None:
        code = child.stop(timeout)
        if child in self.children:
            self.children.remove(child)
        return code

    def close(self) -> None:
        while self.children:
            self.stop(self.children[-1])

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so every ``finally`` and ``with`` runs on the way out."""


@contextlib.contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """Within the block, SIGINT raises ``KeyboardInterrupt`` and SIGTERM raises ``Terminated``; both restored after.

    SIGINT is installed explicitly because Python leaves it ignored when the parent ignored it (a script's
    background job, ``cmd &`` in a non-interactive shell): relying on the default handler, ``kill -INT`` would
    never stop a run. A caught signal also resets to its default in every child exec'd meanwhile, so the
    processes a run starts do not inherit the ignore either. Main thread only (``signal.signal``'s rule).
    """

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise Terminated(f"received signal {signum}")

    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        previous_term = signal.signal(signal.SIGTERM, terminate)
        try:
            yield
        finally:
            _restore(signal.SIGTERM, previous_term)
    finally:
        _restore(signal.SIGINT, previous_int)


def _restore(sig: int, previous: Callable[[int, FrameType | None], Any] | int | None) -> None:
    # None: the previous handler was not installed from Python; the default is the closest we can restore.
    signal.signal(sig, signal.SIG_DFL if previous is None else previous)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
