"""What one ``bench run`` (or ``bench advice``) was asked to do, and the one-line refusals of what it cannot.

Pure data and rules: no process is started here, so the CLI refuses bad input before anything runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench import failures, profiles, topology
from bench.apps.spec import AppsConfig
from bench.check.server import READY_TIMEOUT_S
from bench.errors import BenchError
from bench.plan import Part, Setting
from scenarios import Scenario
from targets import Variant

DATABASES = ("postgres", "sqlite")
# The longest warm-up or measured window of one cell: a day. Longer is a typo (1e308, inf), and the load
# process's run time, the supervisor's deadlines and time.sleep all need a finite number of seconds.
MAX_WINDOW_S = 86_400.0
# The highest open-model rate: far above what one machine's Locust sends (~10k req/s here), low enough that
# the pacing interval (users / rate seconds) stays a usable number; inf and nan are refused with it.
MAX_RATE = 1_000_000.0
CACHES = ("memory", "redis")  # the cached variant's backends (targets.common.worldcache)


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
    apps: AppsConfig | None = None  # users' own apps instead of the variants (bench run --app, bench ab)
    pin: bool = True  # load generator and server + database on CPUs of their own (bench.topology)
    cpus: str | None = None  # --cpus LOAD[:SERVER]; None: the default split
    server_workers: int = 1  # uvicorn workers per variant in the timed cells (the check runs one)

    def cpu_plan(self) -> topology.CpuPlan:
        """The CPU split of this run on the CPUs this process may use; BenchError for a --cpus it cannot keep.
        The load gets one CPU per local Locust process (at most half the CPUs: see topology.plan); with
        --url dbbench starts no server to measure, so --cpus may give the load every CPU."""
        return topology.plan(
            topology.available(),
            cpus=self.cpus,
            pin=self.pin,
            load_cpus=self.load_workers,
            starts_server=self.url is None,
        )

    def server_side(self) -> topology.ServerSide:
        """What this run starts on the server CPUs, and what it reaches but did not start (bench.topology)."""
        if self.url is not None:
            return topology.EXTERNAL
        if self.db == "sqlite":
            return topology.SQLITE
        return topology.OWN_DATABASE if self.dsn is not None else topology.EMBEDDED

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

    def plan_pool_sizes(self) -> list[int]:
        """Every pool size some cell will use (connections per variant's pool)."""
        swept = [s.pool_size for part in self.plan_parts() for s in part.settings if s and s.pool_size]
        return [self.pool_size, *self.pool_sizes, *swept]

    def plan_parts(self) -> list[Part]:
        return list(self.parts) or [Part(self.scenarios, self.settings())]


def validate_config(config: RunConfig) -> None:
    if not config.variants:
        raise BenchError("no variants selected; pass --variants with at least one name (see bench list)")
    if not config.scenarios:
        raise BenchError("no scenarios selected; pass --scenarios with at least one name (see bench list)")
    on_sqlite = config.db == "sqlite"
    windows = (
        window_fault("--duration", config.duration_s, inclusive=False),
        window_fault("--warmup", config.warmup_s),
    )
    for fault in windows:
        if fault:
            raise BenchError(fault)
    caches = ",".join(config.cache_backends) or config.cache
    workers_fault = topology.server_workers_fault(config.server_workers, topology.available())
    checks: list[tuple[bool, str]] = [
        (bool(config.users) and all(u >= 1 for u in config.users), "--users must be whole numbers >= 1"),
        (
            all(0 < r <= MAX_RATE for r in config.rates),
            f"--rate values must be > 0 and at most {MAX_RATE:g} requests/s (a finite schedule)",
        ),
        (not (config.rates and len(config.users) > 1), "sweep either --users or --rate, not both"),
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
        (
            0 < config.ready_timeout_s <= MAX_WINDOW_S,
            f"--ready-timeout must be > 0 and at most {MAX_WINDOW_S:g} seconds",
        ),
        (
            not config.allow_writes or bool(config.url),
            "--allow-writes is for --url (dbbench's own databases are throwaway)",
        ),
        (config.load_workers >= 1, "--load-workers must be >= 1"),
        (workers_fault is None, workers_fault or ""),
        (
            config.server_workers == 1 or not config.url,
            "--server-workers sets the servers dbbench starts; with --url the server is yours",
        ),
        (config.remote_workers >= 0, "--remote-workers must be >= 0"),
        (not config.remote_workers or config.master_port is not None, "--remote-workers needs --master-bind HOST:PORT"),
    ]
    if config.url is not None:
        parts = urlsplit(config.url)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:  # urllib refuses a port above 65535 or not a number
            port_ok = False
        checks += [
            (
                parts.scheme in ("http", "https") and bool(parts.hostname) and parts.path in ("", "/"),
                f"--url takes the server's base URL, e.g. http://127.0.0.1:8000; got {config.url!r}",
            ),
            (port_ok, f"--url's port must be a number from 1 to 65535; got {config.url!r}"),
            (
                not config.profile,
                "--profile needs a variant dbbench starts (it profiles inside the server); drop it with --url",
            ),
        ]
    if config.apps is not None:
        checks += [
            (config.url is None, "--app conflicts with --url (dbbench starts your app itself); drop one"),
            (not on_sqlite, "--app needs PostgreSQL: --db sqlite is not supported with --app yet"),
            (not config.profile, "--profile is not supported with --app yet"),
            (
                not (config.indexes or config.pool_sizes or config.cache_backends),
                "--app cannot sweep --index, --pool-size or --cache (they set dbbench's variants, not your app)",
            ),
        ]
    for ok, message in checks:
        if not ok:
            raise BenchError(message)
    config.cpu_plan()  # refuses a --cpus this machine (or this process's affinity) cannot keep


def window_fault(option: str, seconds: float, *, inclusive: bool = True) -> str | None:
    """The one-line refusal of a warm-up or measured window in seconds, or None when it is usable: finite,
    >= 0 (> 0 unless ``inclusive``) and at most MAX_WINDOW_S."""
    if math.isfinite(seconds) and (seconds >= 0 if inclusive else seconds > 0) and seconds <= MAX_WINDOW_S:
        return None
    low = ">= 0" if inclusive else "> 0"
    return (
        f"{option} takes seconds {low} and at most {MAX_WINDOW_S:g} (one day: a cell's window must end); "
        f"got {seconds:g}"
    )
