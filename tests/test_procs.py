"""Process supervision: a group is ended as a whole, nothing outlives bench, and signals always interrupt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from processes import survivors

from bench.procs import Supervisor, Terminated, interrupts_as_exceptions

# Tests that start real processes are the slow tier; the pure ones below are not marked.
e2e = pytest.mark.e2e

# A child that forks a grandchild and ignores SIGTERM: the worst case for cleanup.
STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print("ready", flush=True)
time.sleep(600)
"""


@e2e
def test_stop_ends_the_whole_group_even_when_sigterm_is_ignored(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    with Supervisor() as supervisor:
        child = supervisor.start("stubborn", [sys.executable, "-c", STUBBORN], log_path=log)
        deadline = time.monotonic() + 60
        while "ready" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "the child never said it was ready"
            time.sleep(0.05)
        family = [child.pid] + [p.pid for p in psutil.Process(child.pid).children(recursive=True)]
        assert len(family) == 2
        started = time.monotonic()
        supervisor.stop(child, timeout=1)
        assert time.monotonic() - started < 5
    assert not survivors(family)


ORPHANER = """
import sys, time
from bench.procs import Supervisor
sup = Supervisor()
child = sup.start("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


@e2e
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


def test_interrupts_raise_even_when_sigint_was_ignored_and_both_handlers_are_restored() -> None:
    # A script's background job starts bench with SIGINT ignored; Python then never installs its own handler.
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        term_before = signal.getsignal(signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt), interrupts_as_exceptions():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the handler runs at the next bytecode; never reached
        with pytest.raises(Terminated), interrupts_as_exceptions():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) == term_before
    finally:
        signal.signal(signal.SIGINT, saved)


# Prints what SIGINT does in a child started inside the block, then waits to be interrupted.
IGNORED_PARENT = """
import signal, subprocess, sys, time
from bench.procs import Supervisor, interrupts_as_exceptions
probe = "import signal; print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)"
try:
    with interrupts_as_exceptions(), Supervisor():
        child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        print("child ignores SIGINT:", child.stdout.strip(), flush=True)
        time.sleep(60)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@e2e
def test_a_command_started_with_sigint_ignored_still_stops_on_sigint() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", IGNORED_PARENT],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # as `cmd &` in a script does
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "child ignores SIGINT: False"
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline().strip() == "interrupted"
        assert proc.wait(10) == 0
