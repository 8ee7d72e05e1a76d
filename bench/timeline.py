"""Where a run's wall time goes: its steps before the first cell, each cell's parts, and what follows the last.

Kept in the results file (``metadata["timeline"]``) because a quick run's time is a product goal (issue 13:
`bench run --quick` in a minute) and one cannot shorten what one has not measured. Times are seconds on the
monotonic clock from the ``bench`` process's start (psutil's create time, so the interpreter's imports count),
rounded to the millisecond. Shape::

    {"process_start_to_run_s": 0.85,
     "steps": [{"step": "provisioning PostgreSQL", "start_s": 0.9, "s": 1.2}, ...],
     "cells": {"parts": ["seed", "target", "sampler", "warmup", "window", "load_rest", "after"],
               "s": [[0.0, 0.002, 0.001, 0.12, 0.5, 0.03, 0.004], ...]},
     "first_cell_s": 18.2, "last_cell_end_s": 75.3}

A cell's parts: restoring the seed, switching to its target (emptying a cache, replacing a dead server), opening
the connection sampler, the warm-up and window the load process reports, the rest of the load round trip (handing
the spec over, the users' start and stop, the window's statistics collected and written), and what the runner does
after the load (filling, judging, saving the file, the display) until the next cell starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil

CELL_PARTS = ("seed", "target", "sampler", "warmup", "window", "load_rest", "after")


def _process_origin() -> float:
    """This process's start on the monotonic clock (psutil gives it on the wall clock, to ~10 ms)."""
    created: float = psutil.Process().create_time()
    return time.monotonic() - (time.time() - created)


@dataclass
class Timeline:
    """Steps and cell parts as they happen; ``to_dict`` for the results file. ``clock``: seconds, monotonic
    (a test's fake one, with ``origin`` and ``created`` on it)."""

    origin: float = field(default_factory=_process_origin)
    created: float = field(default_factory=time.monotonic)
    clock: Callable[[], float] = time.monotonic
    steps: list[dict[str, Any]] = field(default_factory=list)
    cells: list[list[float]] = field(default_factory=list)
    first_cell: float | None = None
    last_cell_end: float | None = None
    _open: dict[str, Any] | None = None  # the step running now (a phase lasts until the next one starts)
    _cell_started: float | None = None
    _marks: dict[str, float] = field(default_factory=dict)

    def now(self) -> float:
        return self.clock() - self.origin

    def phase(self, step: str) -> None:
        """A new step starts now; the one before (or the last cell) ends here."""
        self._end_cell(self.now())
        self._close()
        self._open = {"step": step, "start_s": self.now()}

    @contextmanager
    def step(self, step: str) -> Iterator[None]:
        """A step with its own end (a part that may overlap the phases around it)."""
        started = self.now()
        try:
            yield
        finally:
            self.steps.append({"step": step, "start_s": started, "s": self.now() - started})

    def _close(self) -> None:
        if self._open is not None:
            self._open["s"] = self.now() - self._open["start_s"]
            self.steps.append(self._open)
            self._open = None

    def cell_started(self) -> None:
        self._close()
        now = self.now()
        if self.first_cell is None:
            self.first_cell = now
        self._end_cell(now)
        self._cell_started = now
        self._marks = {}

    def mark(self, part: str) -> None:
        """``part`` of the current cell ends now (parts in CELL_PARTS order; warm-up and window are the load's)."""
        self._marks[part] = self.now()

    def load_reported(self, warmup_s: float, window_s: float) -> None:
        self._marks["warmup_s"], self._marks["window_s"] = warmup_s, window_s

    def _end_cell(self, now: float) -> None:
        """Close the cell before ``now`` (its "after" part lasts until now)."""
        if self._cell_started is None:
            return
        marks, previous = self._marks, self._cell_started
        parts: list[float] = []
        for part in ("seed", "target", "sampler"):
            at = marks.get(part, previous)
            parts.append(at - previous)
            previous = at
        load_end = marks.get("load", previous)
        load = load_end - previous
        warmup, window = marks.get("warmup_s", 0.0), marks.get("window_s", 0.0)
        parts += [warmup, window, max(0.0, load - warmup - window), now - load_end]
        self.cells.append(parts)
        self.last_cell_end = now
        self._cell_started = None

    def finish(self) -> None:
        """The cells are over (the last one's "after" ends here)."""
        self._end_cell(self.now())
        self._close()

    def to_dict(self) -> dict[str, Any]:
        return {
            "process_start_to_run_s": round(self.created - self.origin, 3),
            "steps": [
                {"step": s["step"], "start_s": round(s["start_s"], 3), "s": round(s.get("s", 0.0), 3)}
                for s in sorted(self.steps, key=lambda s: float(s["start_s"]))
            ],
            "cells": {"parts": list(CELL_PARTS), "s": [[round(v, 4) for v in cell] for cell in self.cells]},
            "first_cell_s": None if self.first_cell is None else round(self.first_cell, 3),
            "last_cell_end_s": None if self.last_cell_end is None else round(self.last_cell_end, 3),
        }
