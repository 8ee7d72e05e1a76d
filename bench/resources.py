"""CPU and memory of the processes under test, read from the OS (psutil), never estimated.

Used from the load process at the exact edges of the measured window: the target's CPU seconds
and peak RSS, and the database server's CPU (postmaster, its live backends, and the ones that
already exited, which the kernel charges to the postmaster as reaped children).
"""

from __future__ import annotations

import contextlib
from typing import Any

import psutil


def _cpu_with_children(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


def tree_rss(infos: list[Any]) -> int:
    """Resident bytes of a process tree, from each process's ``psutil.Process.memory_info()``, with the pages
    its processes share counted once. Summing RSS counts the shared ones (the interpreter, its libraries) once
    per process: +33 % for uvicorn with 2 workers, +38 % with 3, beside the tree's distinct resident pages
    counted from /proc/PID/pagemap (2026-12-01, bench.calibration_app). Each process's private part (RSS minus
    its file-backed and shmem pages, Linux's statm "shared") is summed and the largest shared part is added
    once: the workers of one app map the same files. That came within 0.4 % of the pagemap count for 1, 2 and
    3 workers, at no cost over RSS (the same statm read); one process's figure is its RSS exactly. Where
    psutil gives no "shared" (not Linux) this is the plain sum."""
    shared = [int(getattr(info, "shared", 0)) for info in infos]
    return sum(int(info.rss) for info in infos) - sum(shared) + max(shared, default=0)


class ProcessTree:
    """A process plus its descendants, e.g. uvicorn or the PostgreSQL postmaster."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak_rss = 0

    def cpu_seconds(self) -> float:
        """Total CPU of the tree so far, including children that have already exited."""
        return self.cpu_and_rss()[0]

    def cpu_and_rss(self) -> tuple[float, int]:
        """(total CPU seconds, current RSS bytes: ``tree_rss``) of the tree from one listing of its processes
        (remembers the RSS peak). Listing a tree reads every process on the machine (psutil's ppid map: ~19 ms with 224
        processes on this machine under load), and the window's edges read both figures: one listing, not two."""
        total, infos = 0.0, []
        with contextlib.suppress(psutil.Error):
            total += _cpu_with_children(self.root)
            infos.append(self.root.memory_info())
            for child in self.root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    times = child.cpu_times()
                    total += times.user + times.system
                    infos.append(child.memory_info())
        return total, self._remember(infos)

    def sample_rss(self) -> int:
        """Current RSS of the tree in bytes (``tree_rss``: shared pages once); remembers the peak."""
        infos = []
        with contextlib.suppress(psutil.Error):
            infos.append(self.root.memory_info())
            for child in self.root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    infos.append(child.memory_info())
        return self._remember(infos)

    def _remember(self, infos: list[Any]) -> int:
        rss = tree_rss(infos)
        self.peak_rss = max(self.peak_rss, rss)
        return rss


class Meter:
    """CPU used by a process tree between ``start()`` and ``stop()``; RSS peak from ``sample()``."""

    def __init__(self, pid: int | None) -> None:
        self.tree: ProcessTree | None = None
        if pid:
            with contextlib.suppress(psutil.Error):
                self.tree = ProcessTree(pid)
        self.cpu_start = 0.0
        self.cpu_s: float | None = None

    def start(self) -> None:
        if self.tree is not None:
            self.cpu_start = self.tree.cpu_and_rss()[0]

    def sample(self) -> None:
        if self.tree is not None:
            self.tree.sample_rss()

    def stop(self) -> None:
        if self.tree is not None:
            self.cpu_s = self.tree.cpu_and_rss()[0] - self.cpu_start

    @property
    def peak_rss_mb(self) -> float | None:
        if self.tree is None or not self.tree.peak_rss:
            return None
        return self.tree.peak_rss / (1024 * 1024)


class CpuSetMeter:
    """How busy a set of CPUs was between ``start()`` and ``stop()``, whoever kept them busy: a share of
    their time (0..1) from the kernel's per-CPU counters (/proc/stat via psutil). Under a CPU split the load
    generator's own CPUs are this set: near 1, the generator had no CPU to spare (its own work, or another
    process's on the same CPUs), whatever share of a core it used itself."""

    def __init__(self, cpus: set[int] | frozenset[int]) -> None:
        self.cpus = sorted(cpus)
        self._start: tuple[float, float] | None = None
        self.busy: float | None = None

    def _totals(self) -> tuple[float, float] | None:
        """(busy, all) seconds summed over the set; None when the kernel does not list one of its CPUs."""
        with contextlib.suppress(psutil.Error, OSError):
            per_cpu = psutil.cpu_times(percpu=True)
            if self.cpus and max(self.cpus) < len(per_cpu):
                times = [per_cpu[cpu] for cpu in self.cpus]
                # iowait is idle time spent waiting on a disk, not CPU the generator could not have.
                idle = sum(t.idle + getattr(t, "iowait", 0.0) for t in times)
                total = sum(sum(t) for t in times)
                # guest time is counted inside user already (Linux): subtract it so it is not counted twice.
                total -= sum(getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0) for t in times)
                return total - idle, total
        return None

    def start(self) -> None:
        self._start = self._totals()

    def stop(self) -> None:
        end = self._totals()
        if self._start is None or end is None or end[1] <= self._start[1]:
            return
        self.busy = min(1.0, max(0.0, (end[0] - self._start[0]) / (end[1] - self._start[1])))
