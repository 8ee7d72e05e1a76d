"""Cells: the planned order, each cell measured by the caller, filled from the load process's window and judged.

One cell is one (variant, scenario, load point, setting, trial). How a cell is measured differs between the
variants dbbench starts (bench.runner) and a server it did not (bench.external); what a cell holds and when it
counts as failed does not, and lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench import failures, load, metadata, results
from bench.plan import CellKey, plan_parts
from bench.recorder import Recorder
from bench.results import Cell
from bench.run_config import RunConfig
from targets import Variant


def run_cells(
    config: RunConfig, recorder: Recorder, variants: list[Variant], measure: Callable[[CellKey], Cell]
) -> None:
    """Measure the planned cells in order (interleaved across variants, see bench.plan), judging each and
    saving the results file after every one."""
    keys = plan_parts(variants, config.plan_parts(), config.load_points(), config.trials)
    recorder.planned(len(keys))
    for index, key in enumerate(keys, start=1):
        recorder.observer.cell_started(index, len(keys), key, config.warmup_s + config.duration_s)
        cell = measure(key)
        judge(cell, config.max_error_rate)
        recorder.cell(cell)


def new_cell(config: RunConfig, key: CellKey) -> Cell:
    """An empty cell for ``key``, status "ok" until its measurement says otherwise."""
    return Cell(
        key.variant.name,
        key.scenario.name,
        key.users,
        key.trial,
        status="ok",
        rate=key.rate,
        warmup_s=config.warmup_s,
        started_at=metadata.now_iso(),
        settings=key.setting.labels() if key.setting else {},
    )


def load_spec(
    config: RunConfig,
    key: CellKey,
    url: str,
    *,
    pg_dsn: str | None,
    target_stats: bool = True,
    target_pid: int | None = None,
    db_pid: int | None = None,
    warm_server: bool = False,
) -> load.LoadSpec:
    """The load process's spec for one cell against ``url`` (with the evidence-based warm-up when it is short,
    bench.load.with_evidence; ``warm_server``: the target already served this cell's scenario)."""
    spec = load.LoadSpec(
        key.scenario.path,
        url,
        key.users,
        config.warmup_s,
        config.duration_s,
        rate=key.rate,
        target_pid=target_pid,
        db_pid=db_pid,
        target_stats=target_stats,
        workers=config.load_workers,
        remote_workers=config.remote_workers,
        master_bind=config.master_bind,
        master_port=config.master_port,
        pg_dsn=pg_dsn,
    )
    return load.with_evidence(spec, warm_server=warm_server)


def fill(cell: Cell, sample: dict[str, Any]) -> None:
    """Copy what the load process measured (see bench.sampling.Window.to_dict) into the cell."""
    cell.duration_s = float(sample["duration_s"])
    cell.warmup_s = float(sample.get("warmup_s", cell.warmup_s))  # an evidence-based warm-up's own length
    cell.requests = int(sample["requests"])
    cell.errors = {str(k): int(v) for k, v in sample["errors"].items()}
    cell.error_samples = {str(k): str(v) for k, v in sample.get("error_samples", {}).items()}
    cell.user_errors = {str(k): int(v) for k, v in sample.get("user_errors", {}).items()}
    cell.histogram = str(sample["histogram"])
    cell.service_histogram = str(sample.get("service_histogram", ""))
    cell.late = int(sample.get("late", 0))
    cell.endpoints = {
        name: results.EndpointStats(
            int(e["requests"]), int(e["errors"]), str(e["histogram"]), _count_or_none(e.get("bytes_received"))
        )
        for name, e in sample["endpoints"].items()
    }
    cell.bytes_received = int(sample["bytes_received"])
    cell.load_cpu_s = float(sample["load_cpu_s"])
    cell.load_processes = int(sample.get("load_processes", 1))
    cell.load_cpus_busy = sample.get("load_cpus_busy")
    cell.target_cpu_s = sample.get("target_cpu_s")
    cell.target_rss_mb = sample.get("target_rss_mb")
    cell.db_cpu_s = sample.get("db_cpu_s")
    cell.target_stats = sample.get("target_stats")
    cell.pg_statements = sample.get("pg_statements")
    cell.target_window = sample.get("target_window")


def judge(cell: Cell, max_error_rate: float) -> None:
    """Mark a measured cell failed when nothing succeeded or its error rate is above ``max_error_rate``
    (bench.failures.verdict); a cell that already failed (its target or its load died) keeps its reason."""
    if not cell.ok:
        return
    reason = failures.verdict(cell.requests, cell.errors, max_error_rate, cell.error_samples, cell.user_errors)
    if reason is not None:
        cell.status, cell.reason = "failed", reason


def _count_or_none(value: Any) -> int | None:
    """An optional count from a load process: None (not recorded, e.g. an older `bench worker`) stays None."""
    return None if value is None else int(value)
