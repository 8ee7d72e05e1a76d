"""Live progress while ``bench run`` measures: an overall bar, the current cell, results as they land."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from bench.failures import percent
from bench.plan import CellKey
from bench.results import Cell, VariantCheck


class LiveObserver:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.overall: TaskID | None = None
        self.current: TaskID | None = None

    def __enter__(self) -> LiveObserver:
        self.progress.start()
        self.overall = self.progress.add_task("starting", total=None)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()

    def phase(self, text: str) -> None:
        if self.overall is not None:
            self.progress.update(self.overall, description=text)

    def checked(self, check: VariantCheck) -> None:
        if check.ok:
            # --no-check records an ok check that never ran: say so, never "passed".
            if (ran := check.info.get("check")) and str(ran).startswith("not run"):
                self.console.print(Text(f"– {check.variant}: check {ran}", style="dim"))
            else:
                self.console.print(f"[green]✓[/green] {check.variant}: contract check passed")
            return
        if check.skipped:
            self.console.print(Text(f"– {check.variant}: not run: {check.skipped}", style="dim"))
            return
        self.console.print(Text(f"✗ {check.variant}: contract check failed; not measured", style="red"))
        for problem in check.problems[:5]:
            self.console.print(Text(f"    {problem}", style="red"))

    def calibrated(self, calibration: dict[str, object]) -> None:
        if "error" in calibration:
            self.console.print(f"[yellow]calibration failed: {calibration['error']}[/yellow]")
            return
        rps = float(str(calibration["rps"]))
        share = float(str(calibration["load_cpu_share"]))
        if calibration.get("locust_limited") is False:
            self.console.print(
                f"[yellow]no load generator ceiling: {rps:,.0f} req/s with Locust at only {share:.0%} of a core "
                "(something else held the rate down); cells are flagged by Locust's own CPU only[/yellow]"
            )
            return
        self.console.print(f"load generator ceiling: {rps:,.0f} req/s (Locust at {share:.0%} of a core)")

    def cell_started(self, index: int, total: int, key: CellKey, seconds: float) -> None:
        assert self.overall is not None
        self.progress.update(self.overall, description="cells", total=total, completed=index - 1)
        setting = "".join(f" · {k} {v}" for k, v in (key.setting.labels() if key.setting else {}).items())
        label = f"{key.variant.name} · {key.scenario.name} · {key.load}{setting} · trial {key.trial}"
        if self.current is None:
            self.current = self.progress.add_task(label, total=seconds)
        else:
            self.progress.reset(self.current, description=label, total=seconds)

    def tick(self, elapsed: float) -> None:
        if self.current is not None:
            self.progress.update(self.current, completed=elapsed)

    def cell_finished(self, cell: Cell) -> None:
        assert self.overall is not None
        self.progress.advance(self.overall)
        setting = f" · {cell.setting}" if cell.setting else ""
        name = f"{cell.variant} · {cell.scenario} · {cell.load}{setting} · trial {cell.trial}"
        if cell.ok:
            failed = f"{cell.error_count:,} errors ({percent(cell.error_rate)})"
            errors = f", [red]{failed}[/red]" if cell.error_count else ""
            target = f" (target {cell.rate:g})" if cell.rate else ""
            self.console.print(f"  {name}: {cell.rps:,.0f} req/s{target}{errors}")
        else:
            self.console.print(Text(f"  {name}: failed: {cell.reason}", style="bold red"))
