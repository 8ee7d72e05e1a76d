"""``bench run --app`` / ``bench ab``: a run whose targets are users' apps instead of dbbench's variants.

Same results file, plan (interleaved trials, alternated order), load, accounting and observer as any run
(bench.cells, bench.recorder); what differs is the set-up (one database per app, built by its --setup
commands), the check (bench.apps.check) and the data restore before every cell (bench.apps.databases).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import calibration, load, run_metadata
from bench.apps.databases import AppDatabases
from bench.apps.run import AppCells, refuse_dsn_for
from bench.apps.spec import AppsConfig
from bench.cells import fill, load_spec, new_cell, run_cells
from bench.check.variant import CheckReport
from bench.pg import Database, provision
from bench.plan import CellKey
from bench.procs import Supervisor
from bench.recorder import Recorder
from bench.results import Cell
from bench.run_config import RunConfig
from targets import Variant

UNSET = "the app's own (not set by dbbench)"


def run_apps(
    config: RunConfig, recorder: Recorder, supervisor: Supervisor, workdir: Path, locustfiles: dict[str, Any]
) -> None:
    """Provision the database server, set up, check and measure every app of ``config.apps`` into ``recorder``;
    every database made for the apps is dropped at the end."""
    apps = config.apps
    assert apps is not None
    recorder.observer.phase("provisioning PostgreSQL")
    with provision(supervisor, config.dsn) as database:
        refuse_dsn_for(apps, database.dsn)
        recorder.results.metadata = describe(config, apps, database, locustfiles)
        recorder.save()
        if config.calibrate:
            calibration.calibrate_run(
                recorder, supervisor, workdir, max(config.users), config.warmup_s, config.duration_s
            )
        cells = AppCells(
            supervisor, apps, AppDatabases(database.dsn, owned_server=config.dsn is None), workdir, (database.dsn,)
        )
        try:
            passed = _set_up_and_check(config, recorder, cells)

            def measure(key: CellKey) -> Cell:
                spec_for = _spec_for(config)
                return cells.measure(key, new_cell(config, key), spec_for, fill, recorder.observer.tick)

            run_cells(config, recorder, passed, measure)
        finally:
            cells.close()


def _set_up_and_check(config: RunConfig, recorder: Recorder, cells: AppCells) -> list[Variant]:
    """The apps whose set-up worked and whose check passed; each app's outcome is recorded as its check."""
    passed: list[Variant] = []
    for app in cells.config.apps:
        recorder.observer.phase(f"setting up {app.label} ({app.directory})")
        report = cells.set_up(app)
        if report is None:
            found = cells.statements[app.label]
            recorder.results.metadata["pg_stat_statements"] = {"available": found.ok, "reason": found.reason}
            if config.check:
                recorder.observer.phase(f"checking {app.label}: each scenario's warm-up")
                users = min(config.users)  # the lightest load point: the check judges answers, not speed
                report = cells.check(app, config.scenarios, config.warmup_s, _spec_for(config), users)
            else:
                report = CheckReport(True, [], {"check": "not run (--no-check)"})
        if recorder.check(app.label, report).ok:
            passed.append(app.variant)
    return passed


def _spec_for(config: RunConfig) -> Any:
    def spec_for(key: CellKey, url: str, target_pid: int | None) -> load.LoadSpec:
        # No /_bench/* (a user's app has none); pg_stat_statements is added per cell (bench.apps.run).
        return load_spec(config, key, url, pg_dsn=None, target_stats=False, target_pid=target_pid)

    return spec_for


def describe(config: RunConfig, apps: AppsConfig, database: Database, locustfiles: dict[str, Any]) -> dict[str, Any]:
    """What dbbench set (the database, the load, the uvicorn) and, of each app, where it came from; the app's
    pool and threadpool are its own business and are not claimed."""
    described = run_metadata.describe(config, database, locustfiles)
    described["apps"] = apps.describe()
    described["pool"] = {"note": UNSET}
    described["config"].update(
        server=f"uvicorn, {apps.server_workers} worker(s), 127.0.0.1, started from each app's directory",
        instrument=UNSET,
        search_index=UNSET,
    )
    return described
