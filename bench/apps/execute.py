"""``bench run --app`` / ``bench ab``: a run whose targets are users' apps instead of dbbench's variants.

Same results file, plan (interleaved trials, alternated order), load, accounting and observer as any run
(bench.runner); what differs is the set-up (one database per app, built by its --setup commands), the check
(bench.apps.check) and the data restore before every cell (bench.apps.databases).
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import dsn as dsnlib
from bench import load, locustfiles, results
from bench.apps.databases import AppDatabases
from bench.apps.run import AppCells, refuse_dsn_for
from bench.apps.spec import AppsConfig
from bench.errors import BenchError
from bench.pg import Database, provision
from bench.plan import CellKey
from bench.procs import Supervisor
from bench.results import Cell, Results
from bench.runner import Run, RunConfig, fill
from targets import Variant

UNSET = "the app's own (not set by dbbench)"


@dataclass
class AppRun(Run):
    apps: AppsConfig | None = None

    def execute(self) -> Results:
        config, apps = self.config, self.apps
        if apps is None:
            return super().execute()
        results.ensure_writable(config.output, force=config.force)
        if config.dsn is not None:
            refuse_dsn_for(apps, dsnlib.normalise(config.dsn))
        self.locustfiles = locustfiles.inspect(config.scenarios, rated=bool(config.rates))
        with Supervisor() as supervisor, tempfile.TemporaryDirectory(prefix="dbbench-run-") as tmp:
            workdir = Path(tmp)
            self.observer.phase("provisioning PostgreSQL")
            with provision(supervisor, config.dsn) as database:
                refuse_dsn_for(apps, database.dsn)
                self.results.metadata = self._app_metadata(database, apps)
                self.save()
                if config.calibrate:
                    self._calibrate(supervisor, workdir)
                databases = AppDatabases(database.dsn, owned_server=config.dsn is None)
                cells = AppCells(supervisor, apps, databases, workdir, (database.dsn,))
                try:
                    self._execute_apps(cells, apps)
                finally:
                    cells.close()
        return self.results

    def _execute_apps(self, cells: AppCells, apps: AppsConfig) -> None:
        config = self.config
        passed: list[Variant] = []
        for app in apps.apps:
            self.observer.phase(f"setting up {app.label} ({app.directory})")
            report = cells.set_up(app)
            if report is None:
                found = cells.statements[app.label]
                self.results.metadata["pg_stat_statements"] = {"available": found.ok, "reason": found.reason}
                self.observer.phase(f"checking {app.label}: each scenario's warm-up")
                report = cells.check(app, config.scenarios, config.warmup_s, self._app_spec)
            if self._record_check(app.variant, report).ok:
                passed.append(app.variant)

        def measure(key: CellKey) -> Cell:
            return cells.measure(key, self._new_cell(key), self._app_spec, fill, self.observer.tick)

        self._run_cells(passed, measure)

    def _app_spec(self, key: CellKey, url: str, target_pid: int | None) -> load.LoadSpec:
        return dataclasses.replace(self._spec(key, url, target_pid), target_stats=False, pg_dsn=None)

    def _app_metadata(self, database: Database, apps: AppsConfig) -> dict[str, Any]:
        """What dbbench set (the database, the load, the uvicorn) and, of each app, where it came from; the
        app's pool and threadpool are its own business and are not claimed."""
        described = self._metadata(database)
        described["apps"] = apps.describe()
        described["pool"] = {"note": UNSET}
        described["config"].update(
            server=f"uvicorn, {apps.server_workers} worker(s), 127.0.0.1, started from each app's directory",
            instrument=UNSET,
            search_index=UNSET,
        )
        return described


def validate_apps(config: RunConfig, apps: AppsConfig) -> None:
    """What a run of users' apps cannot do, refused in one line before anything starts."""
    checks = [
        (config.url is None, "--app conflicts with --url (dbbench starts your app itself); drop one"),
        (config.db == "postgres", "--app needs PostgreSQL: --db sqlite is not supported with --app yet"),
        (not config.profile, "--profile is not supported with --app yet"),
        (
            not (config.indexes or config.pool_sizes or config.cache_backends),
            "--app cannot sweep --index, --pool-size or --cache (they set dbbench's variants)",
        ),
        (len(apps.apps) >= 1, "--app takes at least one MODULE:ATTR"),
    ]
    for ok, message in checks:
        if not ok:
            raise BenchError(message)
