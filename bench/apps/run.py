"""Measuring users' apps: set each up once, check it with its scenarios' warm-up, then measure cells, each on
the app's set-up data.

Each app's server stays up from cell to cell, as the variants' do (bench.target_pool): starting a user's app
costs seconds of CPU under load, and that was most of a short cell's wall time. What a cell must not inherit
is the data an earlier cell wrote, so every cell's writes are detected (bench.apps.databases.marks: the
server's transaction counter and the sequences, read before and after it) and undone before the next cell of
that app: in place while the server stays connected (databases.reload), or, when that cannot be done, on a
new clone of the set-up database with a new server. A cell that wrote nothing leaves nothing to undo.

The runner (bench.runner) owns the run (results file, plan, observer); this module does what is particular to
a user's app and hands back checks and cells.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import load, pgstats
from bench.apps import check as app_check
from bench.apps import databases
from bench.apps.databases import AppDatabases, app_url
from bench.apps.serve import app_environment, serve_app
from bench.apps.spec import App, AppsConfig
from bench.check.variant import CheckReport
from bench.dbmon import ConnectionSampler
from bench.errors import BenchError
from bench.plan import CellKey
from bench.procs import Supervisor
from bench.results import Cell
from bench.target import Target, TargetFailed, failure_reason
from scenarios import Scenario

SETUP_TIMEOUT_S = 600.0
CHECK_MIN_S = 1.0  # the check's warm-up lasts at least this long, so every weighted task has a chance to run
SpecFor = Callable[[CellKey, str, int | None], load.LoadSpec]  # (key, url, target pid) -> the load's spec


class SetupFailed(Exception):
    """A --setup command exited non-zero or did not finish; the app is not measured."""


@dataclass
class _Served:
    """One app's server between cells, on its cell database ``dsn``."""

    target: Target
    stack: ExitStack  # holds serve_app(): closing it stops the server (TargetFailed if it had died)
    dsn: str
    number: int  # the app's n-th server of the run
    snapshot: databases.Snapshot | None  # the set-up's data, to put back in place; None: clone instead
    dirty: bool = False  # the last cell wrote (or could not be shown not to have): restore before the next


@dataclass
class AppCells:
    """One run's apps on one database server. ``databases`` makes and drops their databases."""

    supervisor: Supervisor
    config: AppsConfig
    databases: AppDatabases
    workdir: Path
    secrets: tuple[str, ...] = ()  # the run's DSNs: masked in anything quoted from an app's log
    templates: dict[str, str] = field(default_factory=dict)  # label -> its set-up database
    setup_s: dict[str, float] = field(default_factory=dict)  # label -> seconds its --setup commands took
    statements: dict[str, pgstats.Availability] = field(default_factory=dict)  # label -> pg_stat_statements
    in_place: bool = True  # put a cell's writes back in place (bench.apps.databases.reload) rather than re-clone
    servers: dict[str, _Served] = field(default_factory=dict)  # label -> its server, kept up between cells
    started: dict[str, int] = field(default_factory=dict)  # label -> servers started for its cells so far
    sessions: dict[Path, load.LoadSession] = field(default_factory=dict)  # scenario file -> its load process
    _last_restore_s: float = 0.0

    def env(self, app: App, dsn: str) -> dict[str, str]:
        return {**self.config.env, self.config.db_env: app_url(dsn, app.url_style)}

    def set_up(self, app: App) -> CheckReport | None:
        """Build ``app``'s set-up database with the --setup commands; None when it worked, else the failed check."""
        template = self.databases.name(app.label, "setup")
        dsn = self.databases.create(template)
        self.templates[app.label] = template
        started = time.perf_counter()
        for index, argv in enumerate(self.config.setup):
            log = self.workdir / f"setup-{app.label}-{index}.log"
            try:
                self._run_setup(app, argv, dsn, log)
            except SetupFailed as exc:
                text = log.read_text(errors="replace") if log.exists() else ""
                return CheckReport(False, [str(exc)], {"log_tail": app_check.log_tail(text, self.secrets)})
        self.setup_s[app.label] = time.perf_counter() - started
        # Created in the set-up database (after the app's own set-up), so every copy of it has the view.
        self.statements[app.label] = pgstats.availability(dsn)
        return None

    def _run_setup(self, app: App, argv: list[str], dsn: str, log: Path) -> None:
        command = " ".join(argv)
        try:
            child = self.supervisor.start(
                f"setup:{app.label}",
                argv,
                env=app_environment(app, self.env(app, dsn)),
                cwd=app.directory,
                log_path=log,
            )
        except OSError as exc:  # the program itself is missing: say so as the shell would
            raise SetupFailed(f"--setup {command!r} for {app.label} could not start: {exc.strerror}") from None
        deadline = time.monotonic() + SETUP_TIMEOUT_S
        try:
            while child.alive():
                if time.monotonic() > deadline:
                    raise SetupFailed(f"--setup {command!r} for {app.label} did not finish in {SETUP_TIMEOUT_S:.0f}s")
                time.sleep(0.05)
        finally:
            self.supervisor.stop(child)
        if child.popen.returncode != 0:
            raise SetupFailed(
                f"--setup {command!r} for {app.label} exited with code {child.popen.returncode}: "
                f"{failure_reason(child, self.secrets)}"
            )

    def restore(self, app: App, purpose: str) -> tuple[str, float]:
        """A fresh copy of ``app``'s set-up database: (its DSN, seconds the copy took)."""
        return self.databases.restore(self.templates[app.label], self.databases.name(app.label, purpose))

    def check(
        self, app: App, scenarios: list[Scenario], warmup_s: float, spec_for: SpecFor, users: int = 1
    ) -> CheckReport:
        """Each scenario's warm-up once, on fresh data: every endpoint it touched must have answered."""
        endpoints: dict[str, dict[str, int]] = {}
        for scenario in scenarios:
            dsn, _ = self.restore(app, "check")
            log = self.workdir / f"check-{app.label}-{scenario.name}.log"
            key = CellKey(app.variant, scenario, users, 0)  # trial 0: not a measured cell
            try:
                with serve_app(
                    self.supervisor, app, self.env(app, dsn), log, self.config.server_workers, self.secrets
                ) as target:
                    spec = dataclasses.replace(
                        spec_for(key, target.url, target.child.pid),
                        warmup_s=0.0,
                        duration_s=max(warmup_s, CHECK_MIN_S),
                        target_stats=False,
                        pg_dsn=None,
                    )
                    sample = load.run_load(self.supervisor, spec, self.workdir)
            except (TargetFailed, load.LoadFailed) as exc:
                text = log.read_text(errors="replace") if log.exists() else ""
                return CheckReport(
                    False, [f"{scenario.name}: {exc}"], {"log_tail": app_check.log_tail(text, self.secrets)}
                )
            found = app_check.report(sample, log.read_text(errors="replace"), self.secrets)
            if not found.ok:
                return CheckReport(False, [f"{scenario.name}: {p}" for p in found.problems], found.info)
            endpoints[scenario.name] = found.info["endpoints"]
        info: dict[str, Any] = {"endpoints": endpoints}
        if app.label in self.setup_s:
            info["setup_s"] = round(self.setup_s[app.label], 3)
        return CheckReport(True, [], info)

    def measure(
        self,
        key: CellKey,
        cell: Cell,
        spec_for: SpecFor,
        fill: Callable[[Cell, dict[str, Any]], None],
        on_tick: Callable[[float], None] | None = None,
    ) -> Cell:
        """One cell on the set-up's data: the app's server of the previous cell when that cell wrote nothing,
        or when what it wrote could be put back in place; else a fresh clone and a new server. How the data
        was restored and how long it took are kept in ``cell.target``."""
        app = self.config.get(key.variant.name)
        try:
            served, restore, restore_s = self._ready(app)
        except TargetFailed as exc:
            cell.status, cell.reason = "failed", str(exc)
            cell.target = {"app": app.target, "restore": "clone", "restore_s": self._last_restore_s}
            return cell
        about: dict[str, Any] = {
            "app": app.target,
            "restore": restore,  # "clone" (new server), "in place" (after a write) or "none" (nothing written)
            "server": served.number,  # the app's n-th server of the run: equal numbers, one process
            "server_workers": self.config.server_workers,
        }
        if restore != "none":
            about["restore_s"] = restore_s
        try:
            before = databases.marks(served.dsn)
            with ConnectionSampler(served.dsn) as connections:
                sample = self._load(key, served.target, spec_for, connections, on_tick, served.dsn)
                cell.db_connections = connections.peak
            if not served.target.child.alive():
                self._stop(app.label)  # supervised() says how: "died under load", with its log's reason
        except (TargetFailed, load.LoadFailed) as exc:
            # Whatever the load or a dying server left behind is not looked into: the next cell starts afresh.
            self._discard(app.label)
            cell.status, cell.reason = "failed", str(exc)
            cell.target = about
            return cell
        settled = databases.settle(served.dsn)
        served.dirty = not settled or databases.marks(served.dsn) != before
        fill(cell, sample)
        cell.target = about
        return cell

    def _ready(self, app: App) -> tuple[_Served, str, float]:
        """``app``'s server on the set-up's data: (it, how the data was restored, seconds that took)."""
        served = self.servers.get(app.label)
        if served is not None and not served.target.child.alive():
            self._discard(app.label)  # died between cells; its cell already said so, or it died idle
            served = None
        if served is not None and not served.dirty:
            return served, "none", 0.0
        if served is not None and served.snapshot is not None:
            started = time.perf_counter()
            if databases.reload(served.dsn, served.snapshot):
                served.dirty = False
                return served, "in place", time.perf_counter() - started
        if served is not None:
            self._discard(app.label)
        dsn, restore_s = self.restore(app, "cell")
        self._last_restore_s = restore_s
        self.started[app.label] = number = self.started.get(app.label, 0) + 1
        log = self.workdir / f"server-{app.label}-{number}.log"
        stack = ExitStack()
        try:
            target = stack.enter_context(
                serve_app(self.supervisor, app, self.env(app, dsn), log, self.config.server_workers, self.secrets)
            )
        except TargetFailed:
            stack.close()
            raise
        # Read once the app is up: what its start-up wrote (if anything) is part of what every cell starts from.
        snap = databases.snapshot(dsn) if self.in_place and databases.settle(dsn) else None
        served = self.servers[app.label] = _Served(target, stack, dsn, number, snap)
        return served, "clone", restore_s

    def _stop(self, label: str) -> None:
        """Stop ``label``'s server; TargetFailed when it had died (supervised()'s reason, from its log)."""
        served = self.servers.pop(label, None)
        if served is not None:
            served.stack.close()

    def _discard(self, label: str) -> None:
        with suppress(TargetFailed):  # already reported by the cell it failed
            self._stop(label)

    def _load(
        self,
        key: CellKey,
        target: Target,
        spec_for: SpecFor,
        connections: ConnectionSampler,
        on_tick: Callable[[float], None] | None,
        dsn: str,
    ) -> dict[str, Any]:
        def tick(elapsed: float) -> None:
            connections.sample()
            if on_tick is not None:
                on_tick(elapsed)

        found = self.statements.get(key.variant.name)
        spec = dataclasses.replace(
            spec_for(key, target.url, target.child.pid),
            target_stats=False,
            pg_dsn=dsn if found is not None and found.ok else None,  # pg_stat_statements of this copy
        )
        if load.sessions_serve(spec):  # one Locust process per scenario, as in the variants' runs
            path = key.scenario.path
            session = self.sessions.setdefault(path, load.LoadSession(self.supervisor, self.workdir, key.scenario.name))
            return session.run(spec, on_tick=tick)
        return load.run_load(self.supervisor, spec, self.workdir, on_tick=tick)

    def close(self) -> None:
        """Stop the load sessions and every app's server, then drop every database made for them."""
        for session in self.sessions.values():
            session.close()
        for label in list(self.servers):
            self._discard(label)  # died idle after its last cell: no cell is left to report it on
        self.databases.close()


def refuse_dsn_for(apps: AppsConfig, dsn: str) -> None:
    """Every app's URL can be built from ``dsn`` (BenchError otherwise), before anything is started."""
    for app in apps.apps:
        try:
            app_url(dsn, app.url_style)
        except BenchError as exc:
            raise BenchError(f"{app.label}: {exc}") from None
