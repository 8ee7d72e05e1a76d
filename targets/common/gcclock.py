"""How often CPython's cyclic garbage collector ran in this process, and the CPU time it took, per generation.

Why a target keeps it: on this 2-core machine the collector took ~20 % of ``pooled``'s CPU per /db request
(118 µs, of which 24-30 µs in collections, two thirds of it in full ones: ~0.7 per 1,000 requests at ~25 ms
each; wrk, 32 connections, 8 s windows, every process on every CPU, 2-vCPU AMD EPYC, 2026-12-01, a probe
through ``gc.callbacks``; how often collections come depends on the topology: targets.pooled.keep_session),
and how many collections a window happens to contain moves its CPU per request by ±10 % between identical
windows. A figure of CPU per request (benchmarks/overhead.py, the results' ``target_cpu_s``) is read with
this beside it: GET /_bench/stats serves it as ``gc`` and POST /_bench/stats/reset zeroes it with the rest.

Cost: two clock reads per collection (``gc.callbacks``, Python docs, "gc — Garbage Collector interface"),
none per request; on in every variant whatever DBBENCH_INSTRUMENT says, so hooks on and off pay it alike.
The clock is ``time.thread_time`` (the CPU time of the thread that runs the collection, which is the thread
whose allocation triggered it: the event loop's, or a sync route's worker thread), so time the thread spent
descheduled by the OS during a collection is not counted.
"""

from __future__ import annotations

import gc
from time import thread_time
from typing import Any

GENERATIONS = 3  # CPython's generations 0, 1 and 2 (gc.get_threshold() has one threshold each)


class GcClock:
    """Collections and CPU seconds per generation since the last ``reset``; ``install`` starts counting.

    Shape of ``snapshot()``: ``{"collections": [n0, n1, n2], "seconds": [s0, s1, s2], "collected": n}``,
    counts and CPU seconds of generations 0, 1 and 2 (a collection of generation 2 is a full one), and the
    unreachable objects the collections freed."""

    def __init__(self) -> None:
        self._started = 0.0
        self.reset()

    def install(self) -> None:
        """Count from now on (idempotent: a second call does not count each collection twice)."""
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def reset(self) -> None:
        self._collections = [0] * GENERATIONS
        self._seconds = [0.0] * GENERATIONS
        self._collected = 0

    def snapshot(self) -> dict[str, Any]:
        return {"collections": list(self._collections), "seconds": list(self._seconds), "collected": self._collected}

    # Runs with the GIL held around each collection, which never overlaps another: "start" and "stop" come
    # in pairs from the same thread, so one start time suffices. No lock anywhere: a collection can start at
    # any allocation, inside ``snapshot`` too, and a lock taken here would then deadlock; at worst a snapshot
    # taken during a collection's bookkeeping is one collection's seconds off its count.
    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = thread_time()
            return
        generation = info["generation"]
        self._seconds[generation] += thread_time() - self._started
        self._collections[generation] += 1
        self._collected += info["collected"]


CLOCK = GcClock()
