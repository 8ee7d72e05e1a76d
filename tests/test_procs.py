"""Process supervision with real processes: a group is ended as a whole, and nothing outlives bench."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.procs import Supervisor

pytestmark = pytest.mark.e2e  # starts real processes: the slow tier

# A child that forks a grandchild and ignores SIGTERM: the worst case for cleanup.
STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print("ready", flush=True)
time.sleep(600)
"""


def test_stop_ends_the_whole_group_even_when_sigterm_is_ignored(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    with Supervisor() as supervisor:
        child = supervisor.start("stubborn", [sys.executable, "-c", STUBBORN], log_path=log)
        deadline = time.monotonic() + 10
        while "ready" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.05)
        family = [child.pid] + [p.pid for p in psutil.Process(child.pid).children(recursive=True)]
        assert len(family) == 2
        started = time.monotonic()
        supervisor.stop(child, timeout=1)
        assert time.monotonic() - started < 5
    time.sleep(0.2)
    assert not [pid for pid in family if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


ORPHANER = """
import sys, time
from bench.procs import Supervisor
sup = Supervisor()
child = sup.start("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


def test_children_die_when_bench_itself_is_killed() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", ORPHANER],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ) as parent:
        assert parent.stdout is not None
        grandchild = int(parent.stdout.readline())
        assert psutil.pid_exists(grandchild)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while psutil.pid_exists(grandchild) and time.monotonic() < deadline:
            if psutil.Process(grandchild).status() == "zombie":
                break
            time.sleep(0.05)
        assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie"
