"""The run's results as measured so far, kept on disk after every change, and who is told about it.

Every check and every cell is written to the results file (atomically) the moment it is known, so a run
that is interrupted, or that hits a failing variant, keeps everything it already measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench import results
from bench.check.variant import CheckReport
from bench.plan import CellKey
from bench.results import Cell, Results, VariantCheck


class Observer(Protocol):
    """What the runner tells whoever is watching (the CLI's Rich display, or a test)."""

    def phase(self, text: str) -> None: ...
    def checked(self, check: VariantCheck) -> None: ...
    def calibrated(self, calibration: dict[str, Any]) -> None: ...
    def cell_started(self, index: int, total: int, key: CellKey, seconds: float) -> None: ...
    def tick(self, elapsed: float) -> None: ...
    def cell_finished(self, cell: Cell) -> None: ...


@dataclass
class Recorder:
    """Owns the run's Results: every change goes to ``output`` at once and to the observer."""

    output: Path
    observer: Observer
    results: Results = field(default_factory=Results)

    def save(self) -> None:
        results.dump(self.results, self.output, force=True)

    def check(self, variant: str, report: CheckReport) -> VariantCheck:
        return self.checked(VariantCheck(variant, report.ok, list(report.problems), dict(report.info)))

    def checked(self, check: VariantCheck) -> VariantCheck:
        self.results.checks.append(check)
        self.save()
        self.observer.checked(check)
        return check

    def planned(self, cells: int) -> None:
        """The run knows how many cells it will measure (recorded, so an interrupted file says "N of M")."""
        self.results.metadata["cells_planned"] = cells
        self.save()

    def finish(self) -> None:
        """The run ended normally: every planned cell was measured (or there was none to measure)."""
        self.results.metadata["completed"] = True
        self.save()

    def cell(self, cell: Cell) -> None:
        self.results.cells.append(cell)
        self.save()
        self.observer.cell_finished(cell)
