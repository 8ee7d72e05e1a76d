"""Waiting for processes to be gone, for the tests that stop bench and check nothing outlived it."""

from __future__ import annotations

import time
from collections.abc import Iterable

import psutil

# Generous: a process killed with its group is gone in milliseconds; only a leaked one is still there after
# this (the same bound as conftest's no_leftover_processes).
GONE_TIMEOUT_S = 10.0


def survivors(pids: Iterable[int], timeout_s: float = GONE_TIMEOUT_S) -> list[int]:
    """Those of ``pids`` still running (a zombie, exited and awaiting its parent's wait, is not) once they have
    all exited or ``timeout_s`` has passed: polls instead of sleeping a fixed time and hoping it was enough."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = [pid for pid in pids if _running(pid)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
