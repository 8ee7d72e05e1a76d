"""One ``bench run``: provision, seed, check every variant, then measure cells in an interleaved order.

Every finished cell is appended to the results file at once (atomically), so a run that is
interrupted, or that hits a failing variant, keeps everything it already measured.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from bench import (
    calibration,
    failures,
    load,
    locustfiles,
    metadata,
    pgstats,
    profiles,
    redis_server,
    results,
    seed,
    sqlite_db,
)
from bench.check.server import READY_TIMEOUT_S, UNKNOWN, ExternalServer, identify
from bench.check.variant import CheckReport, check_variant
from bench.dbmon import ConnectionSampler
from bench.errors import BenchError
from bench.pg import Database, provision
from bench.plan import CACHE_VARIANTS, CellKey, Part, Setting, plan_parts
from bench.procs import Supervisor
from bench.results import Cell, Results, VariantCheck
from bench.target import PROJECT_ROOT, TargetConfig, TargetFailed, serve
from scenarios import WRITING, Scenario
from targets import Variant
from targets.settings import CacheSpec

THREADPOOL_SIZE = 40  # anyio's default, which FastAPI runs `def` routes on; recorded, not changed
DATABASES = ("postgres", "sqlite")
CACHES = ("memory", "redis")  # the cached variant's backends (targets.worldcache)
CALIBRATION_MAX_S = 5.0


@dataclass(frozen=True)
class RunConfig:
    variants: list[Variant]
    scenarios: list[Scenario]
    users: list[int]
    duration_s: float
    warmup_s: float
    trials: int
    pool_size: int
    output: Path
    dsn: str | None = None
    db: str = "postgres"  # or "sqlite": a file in the run's temp dir, no server (see bench.sqlite_db)
    force: bool = False
    rates: list[float] = field(default_factory=list)  # open model when given: one cell per rate
    calibrate: bool = True
    load_workers: int = 1  # local Locust processes per cell (Locust's master/worker mode above 1)
    remote_workers: int = 0  # workers joining from other machines via `bench worker`
    master_bind: str = "127.0.0.1"
    master_port: int | None = None
    url: str | None = None  # load a server dbbench did not start (then there is one "variant")
    allow_writes: bool = False  # --url: the check and the load may change that server's data
    ready_timeout_s: float = READY_TIMEOUT_S  # --url: how long to wait for the server's first answer
    check: bool = True  # run the contract check before any load
    profile: bool = False  # after the timed cells, a pyinstrument pass per variant x scenario
    profile_requests: int = profiles.REQUESTS  # requests per profiled variant x scenario
    instrument: bool | None = None  # statement timing in timed cells: None = each variant's default
    pool_sizes: list[int] = field(default_factory=list)  # a pool-size sweep (>= 2 sizes); else ``pool_size``
    indexes: list[bool] = field(default_factory=list)  # search index on/off per cell; empty = left as built (on)
    cache: str = "memory"  # the cached variant's backend: "memory" or "redis"
    cache_backends: list[str] = field(default_factory=list)  # a cache-backend sweep (>= 2); else ``cache``
    redis_url: str | None = None  # with cache "redis": the user's server (default: a throwaway redis-server)
    parts: list[Part] = field(default_factory=list)  # several cross products (bench advice); empty: one
    max_error_rate: float = failures.DEFAULT_MAX_ERROR_RATE  # above it a cell is failed (a fraction: 0.01 = 1 %)

    def load_points(self) -> list[tuple[int, float | None]]:
        """(users, rate) per point of the sweep: users sweep the closed model, rates the open one."""
        if self.rates:
            return [(self.users[0], rate) for rate in self.rates]
        return [(users, None) for users in self.users]

    def settings(self) -> list[Setting | None]:
        """The non-load factors this run sweeps, crossed: every pool size with every index state and every
        cache backend (the backend applies to the cached variant only: see Setting.applied_to)."""
        pools: list[int | None] = list(self.pool_sizes) if self.pool_sizes else [None]
        indexes: list[bool | None] = list(self.indexes) if self.indexes else [None]
        caches: list[str | None] = list(self.cache_backends) if self.cache_backends else [None]
        if not (self.pool_sizes or self.indexes or self.cache_backends):
            return [None]
        return [Setting(pool, index, cache) for pool in pools for index in indexes for cache in caches]

    def caches(self) -> set[str]:
        """Every cache backend some cell will use."""
        return {self.cache} | {s.cache for part in self.plan_parts() for s in part.settings if s and s.cache}

    def plan_parts(self) -> list[Part]:
        return list(self.parts) or [Part(self.scenarios, self.settings())]


class Observer(Protocol):
    """What the runner tells whoever is watching (the CLI's Rich display, or a test)."""

    def phase(self, text: str) -> None: ...
    def checked(self, check: VariantCheck) -> None: ...
    def calibrated(self, calibration: dict[str, Any]) -> None: ...
    def cell_started(self, index: int, total: int, key: CellKey, seconds: float) -> None: ...
    def tick(self, elapsed: float) -> None: ...
    def cell_finished(self, cell: Cell) -> None: ...


@dataclass
class Run:
    config: RunConfig
    observer: Observer
    results: Results = field(default_factory=Results)
    pg_dsn: str | None = None  # set when pg_stat_statements is usable on the run's database
    cache_description: dict[str, Any] = field(default_factory=lambda: {"backend": "memory"})
    locustfiles: dict[str, Any] = field(default_factory=dict)  # what each scenario's file runs (bench.locustfiles)

    def save(self) -> None:
        results.dump(self.results, self.config.output, force=True)

    def execute(self) -> Results:
        config = self.config
        results.ensure_writable(config.output, force=config.force)
        if config.profile:
            profiles.claim_dir(config.output, force=config.force)
        # Before anything starts: a file whose meaning the run could not keep is refused in one line.
        self.locustfiles = locustfiles.inspect(config.scenarios, rated=bool(config.rates))
        with Supervisor() as supervisor, tempfile.TemporaryDirectory(prefix="dbbench-run-") as tmp:
            workdir = Path(tmp)
            if config.url:
                self._execute_external(supervisor, workdir, config.url)
                return self.results
            self.observer.phase("creating the SQLite file" if config.db == "sqlite" else "provisioning PostgreSQL")
            with self._database(supervisor, workdir) as database, self._cache(supervisor) as cache:
                self.results.metadata = self._metadata(database)
                self.results.metadata["cache"] = self.cache_description
                self.save()
                if config.calibrate:
                    self._calibrate(supervisor, workdir)
                self.observer.phase("seeding")
                seed.apply_schema(database.dsn)
                self._probe_pg_stat_statements(database)
                base = TargetConfig(database.dsn, config.pool_size, instrument=config.instrument, cache=cache)
                # The check always counts queries, whatever the timed cells do.
                check_config = replace(base, instrument=True)
                passed = self._check_all(supervisor, database, check_config, workdir)
                self._run_cells(passed, lambda key: self._measure(supervisor, database, base, key, workdir))
                self._explain(database)
                if config.profile:
                    self._profile(supervisor, database, passed, workdir)
        return self.results

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

    def _explain(self, database: Database) -> None:
        """EXPLAIN (ANALYZE, BUFFERS) of the run's heaviest statements, with the parameters the targets
        recorded where their statement timing was on (else derived: see pgstats.explain): once, or
        once per search-index state when the run compared them (the point is the two plans side by side)."""
        if self.pg_dsn is None:
            return
        states = sorted({cell.settings["index"] for cell in self.results.cells if "index" in cell.settings})
        for state in states:
            seed.set_search_index(database.dsn, state == "on")
            cells = [c for c in self.results.cells if c.settings.get("index") == state]
            self._explain_cells(database, cells, f"index {state}")
        if states:
            seed.set_search_index(database.dsn, True)  # back to the schema's default for the rest
        self._explain_cells(database, [c for c in self.results.cells if "index" not in c.settings], None)

    def _explain_cells(self, database: Database, cells: list[Cell], setting: str | None) -> None:
        totals: dict[str, pgstats.StatementStat] = {}
        samples: dict[str, Any] = {}
        for cell in cells:
            for raw in cell.pg_statements or []:
                stat = pgstats.StatementStat.from_dict(raw)
                seen = totals.get(stat.fingerprint)
                totals[stat.fingerprint] = stat if seen is None else stat.merged_with(seen)
            for statement in (cell.target_stats or {}).get("statements", []):
                if statement.get("sample_params") is not None:
                    samples.setdefault(statement["fingerprint"], statement["sample_params"])
        if not totals:
            return
        self.observer.phase(f"explaining the heaviest statements{f' ({setting})' if setting else ''}")
        seed.seed(database.dsn)
        plans = pgstats.capture_top_explains(database.dsn, list(totals.values()), samples)
        self.results.explains.extend({**plan.to_dict(), "setting": setting} for plan in plans)
        self.save()

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
                self.save()

    def _execute_external(self, supervisor: Supervisor, workdir: Path, url: str) -> None:
        """``--url``: the server is the user's; no database to provision or seed, no process to watch.

        Waits for it to answer; the check compares no values and writes nothing unless ``allow_writes``;
        /_bench/* is asked (by the check and at each window's edges) only of a server that says it is dbbench.
        """
        config = self.config
        self.observer.phase(f"waiting for {url}")
        server = identify(url, config.ready_timeout_s)
        self.results.metadata = self._external_metadata(server)
        self.save()
        if config.calibrate:
            self._calibrate(supervisor, workdir)
        variant = config.variants[0]
        if config.check:
            self.observer.phase(f"checking the contract: {url}")
            report = check_variant(url, None, writes=config.allow_writes, private=server.private_ok)
            check = self._record_check(variant, report)
            if not check.ok:
                return

        def measure(key: CellKey) -> Cell:
            cell = self._new_cell(key)
            spec = dataclasses.replace(self._spec(key, url), target_stats=server.private_ok)
            try:
                sample = load.run_load(supervisor, spec, workdir, on_tick=self.observer.tick)
            except load.LoadFailed as exc:
                cell.status, cell.reason = "failed", str(exc)
            else:
                fill(cell, sample)
            return cell

        self._run_cells([variant], measure)

    def _external_metadata(self, server: ExternalServer) -> dict[str, Any]:
        """The run's metadata for a --url server: what dbbench set (the load), and of the server only what
        it knows (its URL; its /_bench/info if it is dbbench); everything else "unknown"."""
        described = self._metadata(Database(dsn="", kind=UNKNOWN))
        described.update(server.describe())
        writes = (
            "allowed (--allow-writes)"
            if self.config.allow_writes
            else f"not sent: the check skips writes, scenarios that write ({', '.join(sorted(WRITING))}) are not run"
        )
        described["config"].update(
            url=server.url,
            server=f"not started by dbbench: {UNKNOWN}",
            instrument="not set by dbbench",
            search_index=UNKNOWN,
            writes=writes,
        )
        return described

    def _record_check(self, variant: Variant, report: CheckReport) -> VariantCheck:
        check = VariantCheck(variant.name, report.ok, list(report.problems), dict(report.info))
        self.results.checks.append(check)
        self.save()
        self.observer.checked(check)
        return check

    def _run_cells(self, variants: list[Variant], measure: Callable[[CellKey], Cell]) -> None:
        """Measure the planned cells in order, saving the results file after every one."""
        config = self.config
        keys = plan_parts(variants, config.plan_parts(), config.load_points(), config.trials)
        for index, key in enumerate(keys, start=1):
            self.observer.cell_started(index, len(keys), key, config.warmup_s + config.duration_s)
            cell = measure(key)
            judge(cell, config.max_error_rate)
            self.results.cells.append(cell)
            self.save()
            self.observer.cell_finished(cell)

    def _new_cell(self, key: CellKey) -> Cell:
        return Cell(
            key.variant.name,
            key.scenario.name,
            key.users,
            key.trial,
            status="ok",
            rate=key.rate,
            warmup_s=self.config.warmup_s,
            started_at=metadata.now_iso(),
            settings=key.setting.labels() if key.setting else {},
        )

    def _spec(self, key: CellKey, url: str, target_pid: int | None = None, db_pid: int | None = None) -> load.LoadSpec:
        return load.LoadSpec(
            key.scenario.path,
            url,
            key.users,
            self.config.warmup_s,
            self.config.duration_s,
            rate=key.rate,
            target_pid=target_pid,
            db_pid=db_pid,
            target_stats=True,
            workers=self.config.load_workers,
            remote_workers=self.config.remote_workers,
            master_bind=self.config.master_bind,
            master_port=self.config.master_port,
            pg_dsn=self.pg_dsn,
        )

    def _load_processes(self) -> str:
        config = self.config
        if config.load_workers <= 1 and not config.remote_workers:
            return "1 process"
        return f"master + {config.load_workers} local and {config.remote_workers} remote worker(s)"

    def _calibrate(self, supervisor: Supervisor, workdir: Path) -> None:
        self.observer.phase("calibrating the load generator")
        users = max(self.config.users)
        duration = min(self.config.duration_s, CALIBRATION_MAX_S)
        try:
            measured = calibration.calibrate(supervisor, workdir, users, min(self.config.warmup_s, 1.0), duration)
        except (TargetFailed, load.LoadFailed) as exc:
            measured = {"error": str(exc)}
        self.results.metadata["calibration"] = measured
        self.save()
        self.observer.calibrated(measured)

    def _metadata(self, database: Database) -> dict[str, Any]:
        config = self.config
        model = (
            f"open model: {', '.join(f'{r:g}' for r in config.rates)} req/s over {config.users[0]} connections"
            if config.rates
            else "closed model: each user sends its next request when the previous one returns"
        )
        return {
            "tool": "dbbench",
            "started_at": metadata.now_iso(),
            "machine": metadata.machine(),
            "packages": metadata.package_versions(),
            "git": metadata.git_revision(PROJECT_ROOT),
            "database": database.describe(),
            "config": {
                "variants": [v.name for v in config.variants],
                "scenarios": {s.name: s.label for s in config.scenarios},
                # What each file really runs (user classes, wait times), found by loading it; refuses a
                # file whose meaning the run could not keep (a LoadTestShape; think time under --rate).
                "locustfiles": self.locustfiles,
                "users": config.users,
                "rates": config.rates,
                "duration_s": config.duration_s,
                "warmup_s": config.warmup_s,
                "trials": config.trials,
                "load_generator": f"locust, {self._load_processes()}; {model}; users as each locustfile defines them",
                "server": "uvicorn, 1 worker, 127.0.0.1",
                "instrument": {None: "each variant's default", True: "on", False: "off"}[config.instrument],
                "search_index": [("on" if i else "off") for i in config.indexes] or "on (as the schema builds it)",
                "max_error_rate": config.max_error_rate,
            },
            "pool": {
                "size": config.pool_size,
                "swept": config.pool_sizes,
                "max_overflow": 0,
                "threadpool_size": THREADPOOL_SIZE,
                "note": "every pooled variant holds exactly `size` connections; "
                "nopool opens one per request, at most `size` at once"
                + (
                    "; on SQLite sync, async_orm and cached hold `size` sqlite3 connections, databases opens"
                    " one per request with no cap (its SQLite backend has no pool)"
                    if config.db == "sqlite"
                    else ""
                ),
            },
        }

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
            check = VariantCheck(variant.name, False, [reason], skipped=reason)
            self.results.checks.append(check)
            self.save()
            self.observer.checked(check)
        return runnable

    def _check_all(
        self, supervisor: Supervisor, database: Database, config: TargetConfig, workdir: Path
    ) -> list[Variant]:
        variants = self._runnable(database)
        if not self.config.check:
            return variants
        passed = []
        for variant in variants:
            self.observer.phase(f"checking the contract: {variant.name}")
            seed.seed(database.dsn)
            log = workdir / f"check-{variant.name}.log"
            try:
                with serve(supervisor, variant.name, variant.app, config, log) as target:
                    # The full check: seeded values, writes, /_bench/*, and the log behind any HTTP 500.
                    report = check_variant(target.url, database.dsn, server_log=log)
            except TargetFailed as exc:
                report = CheckReport(False, [str(exc)])
            check = self._record_check(variant, report)
            if check.ok:
                passed.append(variant)
        return passed

    def _measure(
        self, supervisor: Supervisor, database: Database, base: TargetConfig, key: CellKey, workdir: Path
    ) -> Cell:
        cell = self._new_cell(key)
        setting = key.setting or Setting()
        if setting.index is not None:
            seed.set_search_index(database.dsn, setting.index)
        # Every cell starts from the same data: writes from an earlier cell (and their bloat) are gone.
        seed.seed(database.dsn)
        cache = base.cache if setting.cache is None else replace(base.cache, backend=setting.cache)
        config = replace(base, pool_size=setting.pool_size or base.pool_size, cache=cache)
        log = workdir / f"{key.slug}.log"
        try:
            with (
                serve(supervisor, key.variant.name, key.variant.app, config, log) as target,
                ConnectionSampler(database.dsn) as connections,
            ):
                spec = self._spec(key, target.url, target.child.pid, database.server_pid)

                def tick(elapsed: float) -> None:
                    connections.sample()
                    self.observer.tick(elapsed)

                sample = load.run_load(supervisor, spec, workdir, on_tick=tick)
                cell.target = target.info()
                cell.db_connections = connections.peak
        except (TargetFailed, load.LoadFailed) as exc:
            cell.status, cell.reason = "failed", str(exc)
            return cell
        fill(cell, sample)
        return cell


def fill(cell: Cell, sample: dict[str, Any]) -> None:
    """Copy what the load process measured (see bench.sampling.Window.to_dict) into the cell."""
    cell.duration_s = float(sample["duration_s"])
    cell.requests = int(sample["requests"])
    cell.errors = {str(k): int(v) for k, v in sample["errors"].items()}
    cell.error_samples = {str(k): str(v) for k, v in sample.get("error_samples", {}).items()}
    cell.histogram = str(sample["histogram"])
    cell.service_histogram = str(sample.get("service_histogram", ""))
    cell.late = int(sample.get("late", 0))
    cell.endpoints = {
        name: results.EndpointStats(int(e["requests"]), int(e["errors"]), str(e["histogram"]))
        for name, e in sample["endpoints"].items()
    }
    cell.bytes_received = int(sample["bytes_received"])
    cell.load_cpu_s = float(sample["load_cpu_s"])
    cell.load_processes = int(sample.get("load_processes", 1))
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
    reason = failures.verdict(cell.requests, cell.errors, max_error_rate, cell.error_samples)
    if reason is not None:
        cell.status, cell.reason = "failed", reason


def validate_config(config: RunConfig) -> None:
    if not config.variants:
        raise BenchError("no variants selected; pass --variants with at least one name (see bench list)")
    if not config.scenarios:
        raise BenchError("no scenarios selected; pass --scenarios with at least one name (see bench list)")
    on_sqlite = config.db == "sqlite"
    caches = ",".join(config.cache_backends) or config.cache
    checks: list[tuple[bool, str]] = [
        (bool(config.users) and all(u >= 1 for u in config.users), "--users must be whole numbers >= 1"),
        (all(r > 0 for r in config.rates), "--rate values must be > 0 requests/s"),
        (not (config.rates and len(config.users) > 1), "sweep either --users or --rate, not both"),
        (config.duration_s > 0, "--duration must be > 0 seconds"),
        (config.warmup_s >= 0, "--warmup must be >= 0 seconds"),
        (config.trials >= 1, "--trials must be >= 1"),
        (
            0 <= config.max_error_rate <= 1,
            f"--max-error-rate is a fraction of requests from 0 to 1 (0.05 = 5 %); got {config.max_error_rate:g}",
        ),
        (config.profile_requests >= 1, "--profile-requests must be >= 1"),
        (config.pool_size >= 1 and all(p >= 1 for p in config.pool_sizes), "--pool-size values must be >= 1"),
        (
            all(c in CACHES for c in (config.cache, *config.cache_backends)),
            f"--cache takes {', '.join(CACHES)} or a comma list of them; got {caches!r}",
        ),
        (config.db in DATABASES, f"--db takes {' or '.join(DATABASES)}; got {config.db!r}"),
        (not (on_sqlite and config.dsn), "--db sqlite conflicts with --dsn (a PostgreSQL server); drop one"),
        (not (on_sqlite and config.url), "--db sqlite conflicts with --url (a server with its own database)"),
        (config.redis_url is None or "redis" in config.caches(), "--redis-url needs --cache redis"),
        (
            config.redis_url is None or urlsplit(config.redis_url).scheme in ("redis", "rediss", "unix"),
            "--redis-url takes redis://HOST:PORT/DB (or rediss://, unix://)",
        ),
        (
            not (config.url and (config.indexes or config.pool_sizes or config.cache_backends)),
            "--url cannot sweep --index, --pool-size or --cache",
        ),
        (config.ready_timeout_s > 0, "--ready-timeout must be > 0 seconds"),
        (
            not config.allow_writes or bool(config.url),
            "--allow-writes is for --url (dbbench's own databases are throwaway)",
        ),
        (config.load_workers >= 1, "--load-workers must be >= 1"),
        (config.remote_workers >= 0, "--remote-workers must be >= 0"),
        (not config.remote_workers or config.master_port is not None, "--remote-workers needs --master-bind HOST:PORT"),
    ]
    if config.url is not None:
        parts = urlsplit(config.url)
        checks.append(
            (
                parts.scheme in ("http", "https") and bool(parts.hostname) and parts.path in ("", "/"),
                f"--url takes the server's base URL, e.g. http://127.0.0.1:8000; got {config.url!r}",
            )
        )
    for ok, message in checks:
        if not ok:
            raise BenchError(message)
