"""One ``bench run`` on the variants dbbench starts: provision, seed, check every variant, measure the cells
in an interleaved order, explain the heaviest statements, then (if asked) profile.

The pieces live apart, one job each: what was asked and what is refused (bench.run_config), the results as
measured so far (bench.recorder), a cell's plan, fill and verdict (bench.cells), what the results say about the
run (bench.run_metadata), EXPLAIN (bench.explain), a server dbbench did not start (bench.external). This module
only orders them and owns the processes they need.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import (
    calibration,
    load,
    locustfiles,
    pgstats,
    profiles,
    redis_server,
    results,
    run_metadata,
    seed,
    sqlite_db,
)
from bench.apps.execute import run_apps
from bench.cells import fill, load_spec, new_cell, run_cells
from bench.check.variant import CheckReport, check_variant
from bench.dbmon import ConnectionSampler
from bench.explain import explain_run
from bench.external import run_external
from bench.load import LoadSession
from bench.net import LOOPBACK
from bench.pg import Database, provision, refuse_pool_sizes
from bench.plan import CACHE_VARIANTS, CellKey, Setting
from bench.procs import Supervisor
from bench.recorder import Observer, Recorder
from bench.results import Cell, Results, VariantCheck
from bench.run_config import RunConfig, validate_config
from bench.target import TargetConfig, TargetFailed
from bench.target_pool import TargetPool
from bench.timeline import Timeline
from scenarios import SCENARIOS, WRITING, is_builtin
from targets import Variant
from targets.common.settings import CacheSpec

__all__ = ["Observer", "Run", "RunConfig", "validate_config"]


@dataclass
class Run:
    config: RunConfig
    observer: Observer
    recorder: Recorder = field(init=False)
    pg_dsn: str | None = None  # set when pg_stat_statements is usable on the run's database
    cache_description: dict[str, Any] = field(default_factory=lambda: {"backend": "memory"})
    locustfiles: dict[str, Any] = field(default_factory=dict)  # what each scenario's file runs (bench.locustfiles)
    _dirty: bool = True  # the database may differ from the seed (a check or a cell wrote since it was restored)
    # The load sessions the calibration and the cells share, by locustfile (closed when the cells are done).
    _sessions: dict[Path, LoadSession] = field(default_factory=dict)
    _workdir: Path = field(default_factory=Path)
    timeline: Timeline = field(default_factory=Timeline)

    def __post_init__(self) -> None:
        # Every phase and cell the observer hears of is also timed (bench.timeline, kept in the results file).
        self.observer = _Timed(self.observer, self.timeline)
        self.recorder = Recorder(self.config.output, self.observer)

    @property
    def results(self) -> Results:
        """What was measured so far (also on disk): the CLI reports it, even after an interrupt."""
        return self.recorder.results

    def execute(self) -> Results:
        """Run everything; the file says ``completed`` only when this returns normally."""
        self._execute()
        if self.results.metadata:  # refused before the file was first written: no file to mark
            self.timeline.finish()
            self.results.metadata["timeline"] = self.timeline.to_dict()
            self.recorder.finish()
        return self.results

    def _execute(self) -> Results:
        config = self.config
        self.timeline.phase("reading the locustfiles, planning the CPUs")
        results.ensure_writable(config.output, force=config.force)
        if config.profile:
            profiles.claim_dir(config.output, force=config.force)
        # Before anything starts: a file whose meaning the run could not keep is refused in one line.
        self.locustfiles = locustfiles.inspect(config.scenarios, rated=bool(config.rates))
        with (
            Supervisor(cpu_plan=config.cpu_plan()) as supervisor,
            tempfile.TemporaryDirectory(prefix="dbbench-run-") as tmp,
        ):
            workdir = self._workdir = Path(tmp)
            if config.url:
                run_external(config, self.recorder, supervisor, workdir, self.locustfiles)
                return self.results
            if config.apps is not None:
                run_apps(config, self.recorder, supervisor, workdir, self.locustfiles)
                return self.results
            self.timeline.phase("starting the calibration's load session")
            calibration_session = self._calibration_session(supervisor) if config.calibrate else None
            self.observer.phase("creating the SQLite file" if config.db == "sqlite" else "provisioning PostgreSQL")
            with self._database(supervisor, workdir) as database, self._cache(supervisor) as cache:
                self.timeline.phase("checking pool sizes, describing the run")
                if config.db != "sqlite":  # before the results file is written: a refusal overwrites nothing
                    refuse_pool_sizes(
                        database.dsn,
                        config.plan_pool_sizes(),
                        servers=len(config.variants),
                        workers=config.server_workers,
                    )
                self.results.metadata = run_metadata.describe(config, database, self.locustfiles)
                self.results.metadata["cache"] = self.cache_description
                if config.warmup_s <= load.EVIDENCE_MAX_WARMUP_S:
                    # Each cell's warm-up ends on evidence (bench.load.with_evidence); the cell records its own.
                    self.results.metadata["warmup_evidence"] = {
                        "responses_per_user": load.EVIDENCE_RESPONSES,
                        # Once the cell's server has served its scenario (and its cache is not emptied per cell).
                        "responses_per_user_warm_server": load.EVIDENCE_WARM_SERVER_RESPONSES,
                        "floor_s": load.EVIDENCE_FLOOR_S,
                        "cap_s": config.warmup_s,
                    }
                self.recorder.save()
                if config.calibrate:
                    calibration.calibrate_run(
                        self.recorder,
                        supervisor,
                        workdir,
                        max(config.users),
                        config.warmup_s,
                        config.duration_s,
                        calibration_session,
                    )
                self.observer.phase("seeding")
                seed.apply_schema(database.dsn)
                self._probe_pg_stat_statements(database)
                base = TargetConfig(database.dsn, config.pool_size, instrument=config.instrument, cache=cache)
                # The check always counts queries, whatever the timed cells do.
                check_config = replace(base, instrument=True)
                workers = config.server_workers
                with self._cells(supervisor, workdir) as (pool, sessions):
                    self.timeline.phase("starting the scenarios' load sessions")
                    self._start_sessions(sessions, supervisor)
                    passed = self._check_all(pool, database, check_config)
                    self._dirty = True  # the checks wrote
                    # A checked server can serve the cells when the cells' configuration means the same to it.
                    # (Not when the cells run more uvicorn workers than the check's one.)
                    bases = {
                        v.name: check_config if workers == 1 and self._same(v, check_config, base) else base
                        for v in passed
                    }
                    for variant in passed:
                        if bases[variant.name] != check_config:
                            pool.retire_one(variant, check_config)
                    self.observer.phase("starting the variants")
                    fresh = [v for v in passed if bases[v.name] == base]
                    pool.start(fresh, base, workers)  # side by side, before the first cell: nothing is measured yet
                    run_cells(
                        config,
                        self.recorder,
                        passed,
                        lambda key: self._measure(database, bases[key.variant.name], key, pool, sessions),
                    )
                    self.timeline.phase("stopping the targets and load sessions")
                if self.pg_dsn is not None:
                    self.timeline.phase("EXPLAIN of the heaviest statements")
                    explain_run(self.recorder, database)
                if config.profile:
                    self._profile(supervisor, database, passed, workdir)
                self.timeline.phase("stopping PostgreSQL (and Redis), removing the run's files")
        return self.results

    @contextmanager
    def _cells(self, supervisor: Supervisor, workdir: Path) -> Iterator[tuple[TargetPool, dict[Path, LoadSession]]]:
        """The targets and load sessions the cells share, all stopped when the cells are done."""
        pool = TargetPool(supervisor, lambda variant, n: workdir / f"{variant.name}-{n}.log")
        sessions = self._sessions
        try:
            yield pool, sessions
        finally:
            for session in sessions.values():
                session.close()
            pool.close()

    def _calibration_session(self, supervisor: Supervisor) -> LoadSession:
        """The db scenario's load session, started before the database is provisioned: the calibration measures
        in it (as the cells do in theirs), and its start-up (importing Locust, ~1 s of CPU on the load's CPU)
        overlaps the provisioning instead of following it. The db cells use it afterwards."""
        db = SCENARIOS.get("db")
        session = self._sessions.setdefault(db.path, LoadSession(supervisor, self._workdir, db.name))
        # Users, times and host are the calibration's own (its spec); this one only starts the process.
        session.start(load.LoadSpec(db.path, f"http://{LOOPBACK}", 1, 0.0, 0.0))
        return session

    def _start_sessions(self, sessions: dict[Path, LoadSession], supervisor: Supervisor) -> None:
        """Start the load session of every scenario whose cells can share one (bench.load.sessions_serve),
        before the contract check: their start-up (importing Locust) then overlaps the check, when nothing is
        measured, instead of delaying the first cell of each scenario. They send nothing until a cell."""
        config = self.config
        closed = [users for users, rate in config.load_points() if rate is None]
        if not closed or not config.variants:
            return
        scenarios = {s.path: s for part in config.plan_parts() for s in part.scenarios}
        for path, scenario in scenarios.items():
            key = CellKey(config.variants[0], scenario, closed[0], 1)
            # The host is each cell's own (its target's URL); this one only fills the spec and is never asked.
            spec = load_spec(config, key, f"http://{LOOPBACK}", pg_dsn=self.pg_dsn)
            if load.sessions_serve(spec):
                sessions.setdefault(path, LoadSession(supervisor, self._workdir, scenario.name)).start(spec)

    def _database(self, supervisor: Supervisor, workdir: Path) -> AbstractContextManager[Database]:
        if self.config.db == "sqlite":
            return sqlite_db.provision(workdir)
        return provision(supervisor, self.config.dsn)

    @contextmanager
    def _cache(self, supervisor: Supervisor) -> Iterator[CacheSpec]:
        """The cached variant's backend; Redis only when it will be used."""
        config = self.config
        if "redis" not in config.caches() or not any(v.name in CACHE_VARIANTS for v in config.variants):
            self.cache_description = {"backend": "memory"}
            yield CacheSpec("memory")
            return
        self.observer.phase("starting Redis" if config.redis_url is None else "connecting to Redis")
        with redis_server.provision(supervisor, config.redis_url) as server:
            self.cache_description = {"backend": "redis", **server.describe()}
            if len(config.caches()) > 1:
                self.cache_description["backends"] = sorted(config.caches())  # a sweep: per cell in its settings
            yield CacheSpec("redis", server.url)

    def _probe_pg_stat_statements(self, database: Database) -> None:
        if sqlite_db.is_sqlite(database):
            # No server statistics and no EXPLAIN via PREPARE there: both are skipped for the whole run.
            reason = "SQLite: pg_stat_statements and EXPLAIN are PostgreSQL's"
            self.results.metadata["pg_stat_statements"] = {"available": False, "reason": reason}
            self.pg_dsn = None
            return
        found = pgstats.availability(database.dsn)
        self.results.metadata["pg_stat_statements"] = {"available": found.ok, "reason": found.reason}
        self.pg_dsn = database.dsn if found.ok else None

    def _profile(self, supervisor: Supervisor, database: Database, variants: list[Variant], workdir: Path) -> None:
        out_dir = profiles.profile_dir_for(self.config.output)
        for variant in variants:
            for scenario in self.config.scenarios:
                self.observer.phase(f"profiling {variant.name} · {scenario.name}")
                entry = profiles.profile(
                    supervisor,
                    database,
                    self.config.pool_size,
                    variant,
                    scenario,
                    workdir,
                    out_dir,
                    self.config.profile_requests,
                )
                entry["directory"] = out_dir.name
                self.results.profiles.append(entry)
                self.recorder.save()

    def _runnable(self, database: Database) -> list[Variant]:
        """The variants that can run on this database; the rest are recorded as skipped, with the reason."""
        if not sqlite_db.is_sqlite(database):
            return list(self.config.variants)
        runnable = []
        for variant in self.config.variants:
            if variant.runs_on_sqlite:
                runnable.append(variant)
                continue
            reason = f"not run on SQLite: {variant.postgres_only}"
            self.recorder.checked(VariantCheck(variant.name, False, [reason], skipped=reason))
        return runnable

    def _same(self, variant: Variant, check: TargetConfig, base: TargetConfig) -> bool:
        """Whether ``variant``'s server behaves the same under the check's configuration as under the cells':
        they differ in statement timing only, forced on for the check, and the variant's default (the cells'
        ``None``) is on for the variants whose hooks cost < 5 % (its /_bench/info says which)."""
        if check == base:
            return True
        if replace(check, instrument=base.instrument) != base or base.instrument is not None:
            return False
        info = next((c.info for c in reversed(self.results.checks) if c.variant == variant.name and c.ok), {})
        return info.get("instrumented_by_default") is True

    def _check_all(self, pool: TargetPool, database: Database, config: TargetConfig) -> list[Variant]:
        variants = self._runnable(database)
        if not self.config.check:
            return variants
        self.observer.phase("starting the variants for their contract check")
        # One after the other, and not waited for: each check waits for its own server, so the first seed (the
        # items, ~1.4 s) and the checks overlap the later servers' start-up, as nothing is measured yet.
        pool.start(variants, config, wait=False, queue=True)
        ok = set()
        seed.seed(database.dsn)  # the first (with the items, ~1.4 s) while the servers start
        # Each variant as soon as its server is up: the order of the checks does not matter, their results are
        # put back in the variants' order below.
        for checked, variant in enumerate(pool.as_ready(variants, config), start=1):
            self.observer.phase(f"checking the contract: {variant.name}")
            try:
                with pool.use(variant, config) as target:
                    # The full check: seeded values, writes, /_bench/*, and the log behind any HTTP 500.
                    report = check_variant(target.url, database.dsn, server_log=pool.log(variant, config))
                    if variant.name in CACHE_VARIANTS:
                        pool.taint(variant, config)  # the check filled its cache
            except TargetFailed as exc:
                report = CheckReport(False, [str(exc)])
            if self.recorder.check(variant.name, report).ok:
                ok.add(variant.name)
            if checked < len(variants):
                seed.seed(database.dsn)  # the next check starts from the seed: this one wrote
        order = {variant.name: index for index, variant in enumerate(self.config.variants)}
        self.results.checks.sort(key=lambda check: order.get(check.variant, len(order)))  # stable: skips keep theirs
        self.recorder.save()
        return [variant for variant in variants if variant.name in ok]

    def _measure(
        self,
        database: Database,
        base: TargetConfig,
        key: CellKey,
        pool: TargetPool,
        sessions: dict[Path, LoadSession],
    ) -> Cell:
        cell = new_cell(self.config, key)
        setting = key.setting or Setting()
        if setting.index is not None:
            seed.set_search_index(database.dsn, setting.index)
        # Every cell starts from the same data: writes from an earlier cell (and their bloat) are gone. Only
        # a cell that wrote (or the checks) leaves anything to undo, so the seed is restored after those only.
        if self._dirty:
            seed.seed(database.dsn)
            self._dirty = False
        timeline = self.timeline
        timeline.mark("seed")
        self._dirty = key.scenario.name in WRITING or not is_builtin(key.scenario.path)
        cache = base.cache if setting.cache is None else replace(base.cache, backend=setting.cache)
        config = replace(base, pool_size=setting.pool_size or base.pool_size, cache=cache)
        workers = self.config.server_workers
        try:
            with pool.use(key.variant, config, workers) as target:
                timeline.mark("target")
                with ConnectionSampler(database.dsn, idle_ports=pool.idle_ports(but=target)) as connections:
                    timeline.mark("sampler")
                    spec = load_spec(
                        self.config,
                        key,
                        target.url,
                        pg_dsn=self.pg_dsn,
                        # Each worker keeps its own /_bench/stats: one worker's share is no figure of the target's.
                        target_stats=workers == 1,
                        target_pid=target.child.pid,
                        db_pid=database.server_pid,
                        # The cached variant's cache is emptied before every cell: its server is never all warm.
                        warm_server=pool.served(target, _served_as(key)) and key.variant.name not in CACHE_VARIANTS,
                    )

                    def tick(elapsed: float) -> None:
                        connections.sample()
                        self.observer.tick(elapsed)

                    if load.sessions_serve(spec):
                        session = sessions.setdefault(
                            key.scenario.path, LoadSession(pool.supervisor, self._workdir, key.scenario.name)
                        )
                        sample = session.run(spec, on_tick=tick)
                    else:
                        sample = load.run_load(pool.supervisor, spec, self._workdir, on_tick=tick)
                    timeline.mark("load")
                    timeline.load_reported(float(sample.get("warmup_s", spec.warmup_s)), float(sample["duration_s"]))
                # The load process read /_bench/info as the window closed: no second request for it.
                cell.target = (sample.get("target_window") or {}).get("close") or target.info()
                if workers > 1:
                    cell.target = cell.target | {"server_workers": workers}
                cell.db_connections = connections.peak
                if key.variant.name in CACHE_VARIANTS and _cache_used(sample):
                    pool.taint(key.variant, config, workers)  # its next cell starts from an empty cache, as always
        except (TargetFailed, load.LoadFailed) as exc:
            cell.status, cell.reason = "failed", str(exc)
            return cell
        fill(cell, sample)
        return cell


@dataclass
class _Timed:
    """The caller's observer, with every phase and cell start also marked on the run's timeline."""

    inner: Observer
    timeline: Timeline

    def phase(self, text: str) -> None:
        self.timeline.phase(text)
        self.inner.phase(text)

    def checked(self, check: VariantCheck) -> None:
        self.inner.checked(check)

    def calibrated(self, calibration: dict[str, Any]) -> None:
        self.inner.calibrated(calibration)

    def cell_started(self, index: int, total: int, key: CellKey, seconds: float) -> None:
        self.timeline.cell_started()
        self.inner.cell_started(index, total, key, seconds)

    def tick(self, elapsed: float) -> None:
        self.inner.tick(elapsed)

    def cell_finished(self, cell: Cell) -> None:
        self.inner.cell_finished(cell)


def _served_as(key: CellKey) -> str:
    """What a server that served ``key``'s cell has been warmed by: its scenario under its load and settings."""
    return f"{key.scenario.path}|{key.users}|{key.rate}|{key.setting}"


def _cache_used(sample: dict[str, Any]) -> bool:
    """Whether the cell looked anything up in the target's cache (its counters moved across the window);
    True when the window does not say."""
    edges = sample.get("target_window") or {}
    counts = [
        (edge.get("cache") or {}).get("hits", 0) + (edge.get("cache") or {}).get("misses", 0)
        for edge in (edges.get("open") or {}, edges.get("close") or {})
    ]
    return not edges.get("open") or not edges.get("close") or counts[0] != counts[1]
