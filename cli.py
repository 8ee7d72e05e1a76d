"""``bench``: the command line. Thin: parse options, call into ``bench``, map errors to exit codes.

Exit codes: 0 all good, 1 a variant failed its check or a cell failed (nothing succeeded, or its error
rate was above --max-error-rate), 2 bad input or environment, 130 interrupted (what was measured is kept).
Heavy imports (the engine, Rich rendering) happen inside the command that needs them, so ``bench --help``
stays instant.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bench.failures import DEFAULT_MAX_ERROR_RATE  # pure and tiny: the option's default, declared once
from bench.gate_defaults import DEFAULT_GATE_ON, DEFAULT_THRESHOLD  # likewise

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

    from bench.apps.spec import AppsConfig
    from bench.results import Results
    from bench.runner import RunConfig
    from scenarios import Scenario
    from targets import Variant

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Which way of talking to PostgreSQL makes a FastAPI service fastest? Measured, side by side.",
)

DURATION_S = 10.0
WARMUP_S = 3.0
# --quick: short interleaved trials rather than one long cell, so a ratio comes with a confidence interval and a
# difference within the run's noise is marked as such (reports.fmt.noise). Measured with benchmarks/quick_run.py.
QUICK_WARMUP_S = 0.5
QUICK_DURATION_S = 0.5
QUICK_TRIALS = 3


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _ints(raw: str, option: str) -> list[int]:
    try:
        values = [int(part) for part in _split(raw)]
    except ValueError:
        raise _fail(f"{option} takes whole numbers separated by commas, e.g. {option} 16,64; got {raw!r}") from None
    if not values or any(v < 1 for v in values):
        raise _fail(f"{option} values must be >= 1; got {raw!r}")
    return values


def _floats(raw: str, option: str) -> list[float]:
    try:
        values = [float(part) for part in _split(raw)]
    except ValueError:
        raise _fail(f"{option} takes numbers separated by commas, e.g. {option} 500,1000; got {raw!r}") from None
    if not values or any(v <= 0 for v in values):
        raise _fail(f"{option} values must be > 0; got {raw!r}")
    return values


def _host_port(raw: str, option: str) -> tuple[str, int]:
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _fail(f"{option} takes HOST:PORT, e.g. {option} 192.168.1.10:5557; got {raw!r}")
    return host, int(port)


def _master(raw: str | None) -> dict[str, Any]:
    if raw is None:
        return {}
    host, port = _host_port(raw, "--master-bind")
    return {"master_bind": host, "master_port": port}


def _default_output() -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("results") / f"{stamp}.json"


def _trials(quick: bool, trials: int | None) -> int:
    """An explicit --trials wins; --quick only changes the default (1, or QUICK_TRIALS)."""
    return trials if trials is not None else QUICK_TRIALS if quick else 1


def _timing(quick: bool, duration: float | None, warmup: float | None) -> tuple[float, float]:
    """(duration_s, warmup_s): an explicit --duration/--warmup wins; --quick only changes the defaults."""
    default_duration, default_warmup = (QUICK_DURATION_S, QUICK_WARMUP_S) if quick else (DURATION_S, WARMUP_S)
    return (default_duration if duration is None else duration, default_warmup if warmup is None else warmup)


# Options that `run` and `advice` share, declared once. Duration and warm-up default to None so that an
# explicit value can be told from the default, which --quick changes.
DurationOption = Annotated[
    float | None,
    typer.Option(help=f"Measured seconds per cell (default: {DURATION_S:g}; {QUICK_DURATION_S:g} with --quick)."),
]
WarmupOption = Annotated[
    float | None,
    typer.Option(
        help=f"Warm-up seconds per cell, excluded from every figure "
        f"(default: {WARMUP_S:g}; {QUICK_WARMUP_S:g} with --quick). Up to 1 s it is a cap: the warm-up ends once "
        "every user has had 2 responses."
    ),
]
DsnOption = Annotated[
    str | None, typer.Option(help="Use an existing server: postgresql://user@host:port/db (default: embedded).")
]
OutputOption = Annotated[Path | None, typer.Option("-o", "--output", help="Results file to write.")]
ForceOption = Annotated[bool, typer.Option(help="Overwrite an existing results file.")]
HtmlOption = Annotated[
    bool,
    typer.Option("--html/--no-html", help="Also write the HTML report beside the results file (x.json -> x.html)."),
]
QuickOption = Annotated[
    bool,
    typer.Option(
        help=f"Quick run: {QUICK_TRIALS} interleaved trials of up to {QUICK_WARMUP_S:g} s warm-up (until every user "
        f"has had 2 responses) + {QUICK_DURATION_S:g} s per cell; an explicit --trials, --warmup or --duration wins."
    ),
]
TrialsOption = Annotated[
    int | None,
    typer.Option(help=f"Repeats of every cell, interleaved across variants (default: 1; {QUICK_TRIALS} with --quick)."),
]
CalibrateOption = Annotated[
    bool, typer.Option(help="Measure the load generator's ceiling first and flag cells near it.")
]
MaxErrorRateOption = Annotated[
    float,
    typer.Option(
        help="Fail a cell whose failed requests exceed this fraction of its window's requests (0.01 = 1 %); "
        "req/s always counts successful responses only."
    ),
]
RedisUrlOption = Annotated[
    str | None, typer.Option(help="The Redis behind --cache redis: redis://HOST:PORT/DB (default: a throwaway one).")
]
AdviceRedisUrlOption = Annotated[
    str | None,
    typer.Option(
        help="The Redis for the caching claim's Redis cells: redis://HOST:PORT/DB "
        "(default: a throwaway one when redis-server is installed, else the claim is measured in-process only)."
    ),
]


# A user's own app (bench run --app, bench ab): see bench.apps.
SetupOption = Annotated[
    list[str] | None,
    typer.Option(help="A command run once per app, in its directory, before any load (repeatable, in order)."),
]
DbEnvOption = Annotated[str, typer.Option(help="The environment variable your app reads its database URL from.")]
DbUrlStyleOption = Annotated[
    str | None,
    typer.Option(help="The URL your app's driver expects: libpq, asyncpg or psycopg (default: detected)."),
]
AppEnvOption = Annotated[list[str] | None, typer.Option(help="KEY=VALUE for your app's environment (repeatable).")]
PythonOption = Annotated[
    str | None, typer.Option(help="The interpreter to run your app with (its virtualenv needs uvicorn).")
]
ServerWorkersOption = Annotated[
    int, typer.Option(help="uvicorn workers per server dbbench starts (a variant's timed cells, or your app).")
]
CpusOption = Annotated[
    str | None,
    typer.Option(
        help="CPUs for the load generator (Locust), then optionally ':' and the CPUs for the server and the "
        "database dbbench starts, in taskset's list form, e.g. 1 or 2-3:0-1 (default: the last CPUs for the load, "
        "one per local Locust process and at most half; the rest for the server and database)."
    ),
]
PinOption = Annotated[
    bool,
    typer.Option(
        "--pin/--no-pin", help="Keep the load generator and the server + database on CPUs of their own (≥ 2 CPUs)."
    ),
]


_GATE_ON_DEFAULT = ",".join(DEFAULT_GATE_ON)
_THRESHOLD_HELP = (
    "Smallest change that counts as a regression, as a share (0.05 = 5 %; asv's rule: significant and beyond it)."
)
GateOnOption = Annotated[
    str,
    typer.Option(
        help="Timed metrics whose 'slower' fails the gate, comma list of rps, p50_ms, p99_ms, "
        "cpu_ms_per_request, cpu_ms_per_request_net, or all (the others are reported; counters and failed cells "
        "always gate)."
    ),
]


@app.command()
def run(
    variants: Annotated[str, typer.Option(help="Comma list of variants, or 'all' (see bench list).")] = "all",
    scenarios: Annotated[
        str, typer.Option(help="Comma list of scenarios, groups (core, advice, all) or locustfile paths.")
    ] = "core",
    users: Annotated[
        str, typer.Option(help="Concurrent users (closed model; a comma list sweeps), or connections with --rate.")
    ] = "32",
    rate: Annotated[
        str | None,
        typer.Option(help="Open model: arrival rate in requests/s, latency from intended send time; a list sweeps."),
    ] = None,
    duration: DurationOption = None,
    warmup: WarmupOption = None,
    trials: TrialsOption = None,
    pool_size: Annotated[
        str,
        typer.Option(help="Connections per pooled variant, aligned across all; a list sweeps, e.g. 1,5,10,20."),
    ] = "10",
    index: Annotated[
        str | None,
        typer.Option(help="Search index per cell: on, off, or on,off to compare (dropped and rebuilt between cells)."),
    ] = None,
    cache: Annotated[
        str,
        typer.Option(help="The cached variant's backend: memory (in-process), redis, or memory,redis to compare."),
    ] = "memory",
    redis_url: RedisUrlOption = None,
    dsn: DsnOption = None,
    db: Annotated[
        str,
        typer.Option(help="postgres, or sqlite: a file in the run's temp dir, no server (asyncpg variants skipped)."),
    ] = "postgres",
    output: OutputOption = None,
    force: ForceOption = False,
    html: HtmlOption = True,
    quick: QuickOption = False,
    calibrate: CalibrateOption = True,
    max_error_rate: MaxErrorRateOption = DEFAULT_MAX_ERROR_RATE,
    load_workers: Annotated[
        int, typer.Option(help="Locust worker processes on this machine (master/worker mode above 1).")
    ] = 1,
    remote_workers: Annotated[
        int, typer.Option(help="Also wait for this many `bench worker` processes from other machines.")
    ] = 0,
    master_bind: Annotated[
        str | None, typer.Option(help="HOST:PORT the Locust master listens on for remote workers.")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Load a server that is already running (base URL) instead of the variants.")
    ] = None,
    label: Annotated[str, typer.Option(help="Name for the --url server in the results.")] = "external",
    allow_writes: Annotated[
        bool,
        typer.Option(help="--url: let the check and the scenarios write (/updates, PUT, POST) to that server's data."),
    ] = False,
    ready_timeout: Annotated[
        float | None,
        typer.Option(help="--url: seconds to wait for the server's first answer before giving up (default 30)."),
    ] = None,
    check: Annotated[bool, typer.Option(help="Check the API contract before any load.")] = True,
    profile: Annotated[
        bool, typer.Option(help="Afterwards, profile each variant x scenario with pyinstrument (separate pass).")
    ] = False,
    profile_requests: Annotated[
        int, typer.Option(help="Requests per profiled variant x scenario (more: steadier top frames, slower).")
    ] = 400,
    instrument: Annotated[
        bool | None,
        typer.Option(
            "--instrument/--no-instrument",
            help="Per-statement timing in timed cells for every variant (default: on where it costs < 5 %).",
        ),
    ] = None,
    app_: Annotated[
        list[str] | None,
        typer.Option("--app", help="Your own app instead of the variants: [LABEL=]MODULE:ATTR (repeatable)."),
    ] = None,
    app_dir: Annotated[
        list[str] | None,
        typer.Option(help="[LABEL=]DIR your app is imported from and set up in (default: the current directory)."),
    ] = None,
    setup: SetupOption = None,
    db_env: DbEnvOption = "DATABASE_URL",
    db_url_style: DbUrlStyleOption = None,
    app_env: AppEnvOption = None,
    python: PythonOption = None,
    server_workers: ServerWorkersOption = 1,
    cpus: CpusOption = None,
    pin: PinOption = True,
) -> None:
    """Measure every variant x scenario and write a results file."""
    from bench.check.server import READY_TIMEOUT_S
    from bench.errors import BenchError
    from bench.runner import RunConfig

    pools = _ints(pool_size, "--pool-size")
    caches = _split(cache)
    if not caches or len(set(caches)) < len(caches):
        raise _fail(f"--cache takes memory, redis or memory,redis; got {cache!r}")
    duration_s, warmup_s = _timing(quick, duration, warmup)
    if url and variants != "all":
        raise _fail("--variants picks dbbench's own servers; with --url the one server is the URL (name it: --label)")
    try:
        apps = (
            _apps(app_, app_dir or [], setup, db_env, db_url_style, app_env, python, server_workers) if app_ else None
        )
        config = RunConfig(
            variants=[a.variant for a in apps.apps] if apps else [_external(label)] if url else _variants(variants),
            scenarios=_user_scenarios(scenarios)
            if apps
            else _scenarios(scenarios, read_only=bool(url) and not allow_writes),
            users=_ints(users, "--users"),
            duration_s=duration_s,
            warmup_s=warmup_s,
            trials=_trials(quick, trials),
            pool_size=pools[0],
            pool_sizes=pools if len(pools) > 1 else [],
            indexes=_indexes(index),
            cache=caches[0],
            cache_backends=caches if len(caches) > 1 else [],
            redis_url=redis_url,
            output=output or _default_output(),
            dsn=dsn,
            db=db,
            force=force,
            rates=_floats(rate, "--rate") if rate else [],
            calibrate=calibrate,
            max_error_rate=max_error_rate,
            load_workers=load_workers,
            remote_workers=remote_workers,
            **_master(master_bind),
            url=url.rstrip("/") if url else None,
            allow_writes=allow_writes,
            ready_timeout_s=READY_TIMEOUT_S if ready_timeout is None else ready_timeout,
            check=check,
            profile=profile,
            profile_requests=profile_requests,
            instrument=instrument,
            apps=apps,
            pin=pin,
            cpus=cpus,
            server_workers=server_workers,
        )
        if apps is None:
            _execute(config, html)  # as before --app: tests stand in for it with a (config, html) function
        else:
            _execute(config, html, closing=_print_restore)
    except BenchError as exc:
        raise _fail(str(exc)) from None


def _apps(
    apps: list[str],
    dirs: list[str],
    setup: list[str] | None,
    db_env: str,
    db_url_style: str | None,
    app_env: list[str] | None,
    python: str | None,
    server_workers: int,
    roles: dict[str, str] | None = None,
) -> AppsConfig:
    from dataclasses import replace

    from bench.apps import spec

    parsed = spec.parse(
        apps,
        dirs,
        python=python,
        db_env=db_env,
        url_style=db_url_style,
        env=app_env,
        setup=setup,
        server_workers=server_workers,
    )
    return replace(parsed, roles=roles or {})


def _user_scenarios(raw: str) -> list[Scenario]:
    """With --app: the user's locustfiles only (dbbench's scenarios ask dbbench's API, which an app lacks)."""
    from bench.errors import BenchError
    from scenarios import SCENARIOS, is_builtin

    picked = SCENARIOS.select(_split(raw))
    if builtin := [s.name for s in picked if is_builtin(s.path)]:
        raise BenchError(
            f"--app loads your app with your locustfile: pass --scenarios path/to/locustfile.py "
            f"({builtin[0]} is one of dbbench's own scenarios, written for its variants' API)"
        )
    return picked


def _indexes(raw: str | None) -> list[bool]:
    if raw is None:
        return []
    states = {"on": True, "off": False}
    names = _split(raw)
    if not names or any(name not in states for name in names) or len(set(names)) < len(names):
        raise _fail(f"--index takes on, off or on,off; got {raw!r}")
    return [states[name] for name in names]


def _variants(raw: str) -> list[Variant]:
    from bench.errors import BenchError
    from targets import VARIANTS, UnknownVariant

    names = _split(raw)
    if names == ["all"]:
        return list(VARIANTS)
    try:
        return [VARIANTS.get(name) for name in dict.fromkeys(names)]  # once each, in the order given
    except UnknownVariant as exc:
        raise BenchError(str(exc)) from None


def _external(label: str) -> Variant:
    from targets import Variant

    if not label.replace("_", "").replace("-", "").isalnum():
        raise _fail(f"--label takes letters, digits, '-' and '_'; got {label!r}")
    return Variant(label, "(external)")


def _scenarios(raw: str, *, read_only: bool = False) -> list[Scenario]:
    """``read_only`` (--url without --allow-writes): groups keep their read-only scenarios; a scenario that
    writes, named on its own, is refused."""
    from scenarios import SCENARIOS, WRITING

    names = _split(raw)
    if read_only:
        if writing := [name for name in names if name in WRITING]:
            raise _fail(
                f"scenario {writing[0]} writes to the --url server's data; pass --allow-writes to run it anyway"
            )
        names = [each for name in names for each in SCENARIOS.groups.get(name, [name]) if each not in WRITING]
    return SCENARIOS.select(names)


@app.command()
def advice(
    users: Annotated[int, typer.Option(help="Concurrent users in every cell.")] = 32,
    duration: DurationOption = None,
    warmup: WarmupOption = None,
    trials: TrialsOption = None,
    pool_size: Annotated[
        str, typer.Option(help="Pool sizes for the pooling sweep (other cells: 10 if listed, else the first).")
    ] = "1,5,10,20",
    redis_url: AdviceRedisUrlOption = None,
    dsn: DsnOption = None,
    output: OutputOption = None,
    force: ForceOption = False,
    html: HtmlOption = True,
    quick: QuickOption = False,
    calibrate: CalibrateOption = True,
    max_error_rate: MaxErrorRateOption = DEFAULT_MAX_ERROR_RATE,
    claims: Annotated[str, typer.Option(help="Which claims: index, cache, refresh, pool (comma list).")] = (
        "index,cache,refresh,pool"
    ),
    variants: Annotated[str | None, typer.Option(help="Only these variants (comma list).")] = None,
    scenarios: Annotated[str | None, typer.Option(help="Only these of the advice scenarios (comma list).")] = None,
    server_workers: ServerWorkersOption = 1,
    cpus: CpusOption = None,
    pin: PinOption = True,
) -> None:
    """Measure the usual FastAPI advice: index on/off, cache vs no cache, background refresh, pool sizes."""
    from bench import advice as claim_plan
    from bench.errors import BenchError
    from bench.runner import RunConfig, validate_config
    from targets import VARIANTS

    sizes = _ints(pool_size, "--pool-size")
    duration_s, warmup_s = _timing(quick, duration, warmup)
    redis = claim_plan.redis_available(redis_url)
    if not redis:
        typer.echo("note: no redis-server installed and no --redis-url: caching is measured in-process only", err=True)
    chosen = tuple(_split(claims))
    unknown = [c for c in chosen if c not in claim_plan.CLAIMS]
    if not chosen or unknown:
        raise _fail(f"--claims takes {', '.join(claim_plan.CLAIMS)}; got {claims!r}")
    try:
        picked = tuple(v.name for v in _variants(variants)) if variants else ()
        names = tuple(s.name for s in _scenarios(scenarios)) if scenarios else ()
        parts = claim_plan.parts(tuple(sizes), redis, chosen, picked, names)
        if not parts:
            raise BenchError("nothing to measure: --claims, --variants and --scenarios leave no cell (see bench list)")
        if redis_url is not None and not any(s and s.cache == "redis" for part in parts for s in part.settings):
            # Nothing to connect to it: the chosen claims, variants or scenarios have no Redis cell.
            typer.echo(
                "note: --redis-url is not used: no cell left by --claims/--variants/--scenarios uses Redis", err=True
            )
            redis_url = None
        config = RunConfig(
            variants=[v for v in VARIANTS if any(v.name in part.variants for part in parts)],
            scenarios=list({id(s): s for part in parts for s in part.scenarios}.values()),
            users=[users],
            duration_s=duration_s,
            warmup_s=warmup_s,
            trials=_trials(quick, trials),
            pool_size=10 if 10 in sizes else sizes[0],
            output=output or _default_output(),
            dsn=dsn,
            force=force,
            calibrate=calibrate,
            max_error_rate=max_error_rate,
            redis_url=redis_url,
            parts=parts,
            pin=pin,
            cpus=cpus,
            server_workers=server_workers,
        )
        validate_config(config)  # before the note: a refused --server-workers gets its one line only
        if server_workers > 1:
            # Each worker counts its own /_bench/* figures, so the cells read none of them (bench.runner).
            typer.echo(
                "note: with --server-workers above 1 the cache hit ratios and refresh counts are not measured "
                "(each uvicorn worker keeps its own)",
                err=True,
            )
        _execute(config, html)
    except BenchError as exc:
        raise _fail(str(exc)) from None


@app.command()
def ab(
    app_: Annotated[
        list[str], typer.Option("--app", help="Your app, MODULE:ATTR (uvicorn's syntax), in both checkouts; once.")
    ],
    base: Annotated[Path, typer.Option(help="The checkout to compare against (e.g. main), run as the app 'base'.")],
    head: Annotated[Path, typer.Option(help="The checkout under test (e.g. your branch), run as the app 'head'.")],
    scenarios: Annotated[str, typer.Option(help="Your locustfile path(s), comma separated.")],
    trials: Annotated[int, typer.Option(help="Pairs of cells, base and head alternating first.")] = 10,
    users: Annotated[str, typer.Option(help="Concurrent users (a comma list sweeps).")] = "32",
    duration: DurationOption = None,
    warmup: WarmupOption = None,
    quick: Annotated[
        bool,
        typer.Option(
            help=f"Short cells: {QUICK_WARMUP_S:g} s warm-up + {QUICK_DURATION_S:g} s; the --trials pairs stay (with "
            "fewer than 6 pairs the paired test cannot reach 95 %); an explicit --warmup or --duration wins."
        ),
    ] = False,
    setup: SetupOption = None,
    db_env: DbEnvOption = "DATABASE_URL",
    db_url_style: DbUrlStyleOption = None,
    app_env: AppEnvOption = None,
    python: PythonOption = None,
    server_workers: ServerWorkersOption = 1,
    dsn: DsnOption = None,
    output: OutputOption = None,
    force: ForceOption = False,
    calibrate: CalibrateOption = True,
    max_error_rate: MaxErrorRateOption = DEFAULT_MAX_ERROR_RATE,
    check: Annotated[bool, typer.Option(help="Check each app's warm-up endpoints answer (no 5xx) before load.")] = True,
    html: HtmlOption = True,
    cpus: CpusOption = None,
    pin: PinOption = True,
    threshold: Annotated[float, typer.Option(help=_THRESHOLD_HELP)] = DEFAULT_THRESHOLD,
    gate_on: GateOnOption = _GATE_ON_DEFAULT,
) -> None:
    """Two versions of your app in one run: cells interleaved, order alternated trial by trial; ends with the
    side-by-side table and bench compare's verdicts (exit 1 on a regression)."""
    from bench.errors import BenchError
    from bench.runner import RunConfig

    duration_s, warmup_s = _timing(quick, duration, warmup)
    try:
        from bench.compare import check_threshold, gate_metrics

        metrics = gate_metrics(gate_on)  # refused before any server starts, not after the run
        check_threshold(threshold)
        if len(app_) != 1:
            raise BenchError(f"bench ab takes one --app (both checkouts run the same one); got {len(app_)}")
        module = app_[0]
        if ":" not in module or "=" in module.partition(":")[0]:
            raise BenchError(f"--app takes MODULE:ATTR (both checkouts run the same one); got {module!r}")
        for option, directory in (("--base", base), ("--head", head)):
            if not directory.is_dir():
                raise BenchError(f"{option} {directory} is not a directory; pass the checkout's folder")
        apps = _apps(
            [f"base={module}", f"head={module}"],
            [f"base={base}", f"head={head}"],
            setup,
            db_env,
            db_url_style,
            app_env,
            python,
            server_workers,
            roles={"base": "base", "head": "head"},
        )
        config = RunConfig(
            variants=[a.variant for a in apps.apps],
            scenarios=_user_scenarios(scenarios),
            users=_ints(users, "--users"),
            duration_s=duration_s,
            warmup_s=warmup_s,
            trials=trials,
            pool_size=1,  # not used: an app's pool is its own
            output=output or _default_output(),
            dsn=dsn,
            force=force,
            calibrate=calibrate,
            max_error_rate=max_error_rate,
            check=check,
            apps=apps,
            pin=pin,
            cpus=cpus,
        )
        verdicts: list[int] = []

        def closing(results: Results, console: Console) -> None:
            _print_ab(results, console)
            verdicts.append(_ab_verdict(results, console, threshold, metrics))

        _execute(config, html, closing=closing)
    except BenchError as exc:
        raise _fail(str(exc)) from None
    if verdicts and verdicts[0]:
        raise typer.Exit(verdicts[0])


def _ab_verdict(results: Results, console: Console, threshold: float, gate_on: tuple[str, ...]) -> int:
    """``bench ab`` ends as ``bench compare RUN.json --threshold T --gate-on M`` would on its file (paired
    trials): the verdicts printed, their exit code returned (0 no regression, 1 a regression)."""
    from bench import compare as comparing
    from bench.errors import BenchError
    from reports import gate

    try:
        done = comparing.compare_labels(results, base="base", head="head", threshold=threshold, gate_on=gate_on)
        text, code = gate.compared(done, format="terminal", junit=None)
    except BenchError as exc:  # e.g. every cell of one side failed: the failed cells already fail the run
        console.print(f"[yellow]no comparison: {exc}[/yellow]")
        return 0
    console.print(text, end="", markup=False, highlight=False)
    return code


def _print_restore(results: Results, console: Console) -> None:
    """How long the data restore before each cell took (bench.apps.databases), from the cells."""
    import statistics

    restores = [float(c.target["restore_s"]) for c in results.cells if "restore_s" in c.target]
    if restores:
        console.print(
            f"data restored before each of {len(restores)} cell(s) from the set-up database: "
            f"median {statistics.median(restores) * 1000:.0f} ms, max {max(restores) * 1000:.0f} ms"
        )


def _print_ab(results: Results, console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    from bench.apps import ab as side_by_side

    def number(value: float | None, form: str) -> str:
        return "—" if value is None else format(value, form)

    table = Table(
        "scenario",
        "endpoint",
        title="base vs head: geometric means over trials (p99: each trial's own), head/base: geometric mean of "
        "the paired trials' req/s ratios; the figures bench compare judges below (the run table above: medians)",
        title_justify="left",
    )
    for heading in ("base req/s", "head req/s", "head/base", "base p99 ms", "head p99 ms", "pairs"):
        table.add_column(heading, justify="right")
    for row in side_by_side.rows(results, "base", "head"):
        table.add_row(
            escape(row.scenario) if row.endpoint == side_by_side.ALL else "",
            escape(row.endpoint),  # Locust names such as /items/[id] are not Rich markup
            number(row.base_rps, ",.0f"),
            number(row.head_rps, ",.0f"),
            number(row.ratio, ".2f"),
            number(row.base_p99_ms, ".1f"),
            number(row.head_p99_ms, ".1f"),
            str(row.pairs),
        )
    console.print(table)
    _print_restore(results, console)


def _write_html(results: Results, output: Path, console: Console) -> None:
    """The HTML report beside the results file (results.json -> results.html); a report that cannot be
    written is a warning, never a lost run: the results file is already on disk."""
    from bench.errors import BenchError
    from reports.base import renderer

    try:
        path = renderer("html").write(results, html_path(output))
    except BenchError as exc:
        console.print(f"[yellow]no HTML report: {exc}[/yellow]")
        return
    except Exception as exc:  # a renderer's bug must not turn a finished run into a traceback
        console.print(f"[yellow]no HTML report ({type(exc).__name__}: {exc}); bench report {output} --format html "
                      "retries it[/yellow]")  # fmt: skip
        return
    console.print(f"report: {path}")


def html_path(output: Path) -> Path:
    return output.with_suffix(".html") if output.suffix != ".html" else output.with_name(output.name + ".html")


def _execute(config: RunConfig, html: bool = True, closing: Callable[[Results, Console], None] | None = None) -> None:
    from bench.procs import interrupts_as_exceptions
    from bench.runner import Run, validate_config
    from reports.live import LiveObserver
    from reports.terminal import console as make_console
    from reports.terminal import print_report

    validate_config(config)
    console = make_console()
    observer = LiveObserver(console)
    run_ = Run(config, observer)
    try:
        with interrupts_as_exceptions(), observer:
            run_.execute()
    except KeyboardInterrupt:
        saved = len(run_.results.cells)
        if config.output.is_file():
            console.print(f"[yellow]interrupted: {saved} measured cell(s) kept in {config.output}[/yellow]")
        else:  # stopped during set-up, before the runner first wrote the file: say so, do not point at nothing
            console.print(f"[yellow]interrupted before any cell was measured: {config.output} was not written[/yellow]")
        raise typer.Exit(130) from None
    print_report(run_.results, console)
    if closing is not None:
        closing(run_.results, console)
    console.print(f"results: {config.output}")
    if html:
        _write_html(run_.results, config.output, console)
    failed_checks = [c for c in run_.results.checks if not c.ok and not c.skipped]  # a skip is not a failure
    failed_cells = [c for c in run_.results.cells if not c.ok]
    if failed_checks or failed_cells:
        raise typer.Exit(1)


@app.command()
def report(
    file: Annotated[Path, typer.Argument(help="A results file from bench run.")],
    format: Annotated[str, typer.Option("--format", "-f", help="terminal, json, md or html.")] = "terminal",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file, not stdout.")] = None,
) -> None:
    """Render a results file (never re-runs anything)."""
    from bench import results
    from bench.errors import BenchError
    from reports.base import renderer

    try:
        chosen = renderer(format)
        loaded = results.load(file)
        if output is not None:
            typer.echo(f"report: {chosen.write(loaded, output)}")
        else:
            chosen.show(loaded)
    except BenchError as exc:
        raise _fail(str(exc)) from None


@app.command("calibrate")
def calibrate_(
    users: Annotated[int, typer.Option(help="Concurrent users, as in the runs you want to compare.")] = 32,
    duration: Annotated[float, typer.Option(help="Measured seconds.")] = 10.0,
    warmup: Annotated[float, typer.Option(help="Warm-up seconds.")] = 2.0,
    cpus: CpusOption = None,
    pin: PinOption = True,
) -> None:
    """Measure the load generator's ceiling on this machine against a target that does no work."""
    # No --server-workers: one uvicorn worker serves the no-work /db ~3x faster than one Locust process sends
    # (DESIGN: ~10k req/s vs 300-430 us of Locust CPU per request), and a ceiling is reported only when Locust
    # was the limit (calibration.locust_limited), so more target workers could not change what is measured.
    import tempfile

    from bench import calibration, topology
    from bench.errors import BenchError
    from bench.load import LoadFailed
    from bench.procs import Supervisor, interrupts_as_exceptions
    from bench.run_config import window_fault
    from bench.target import TargetFailed

    if users < 1:
        raise _fail("--users must be >= 1")
    if fault := window_fault("--duration", duration, inclusive=False) or window_fault("--warmup", warmup):
        raise _fail(fault)
    try:
        plan = topology.plan(topology.available(), cpus=cpus, pin=pin)
    except BenchError as exc:
        raise _fail(str(exc)) from None
    try:
        with interrupts_as_exceptions(), Supervisor(cpu_plan=plan) as supervisor, tempfile.TemporaryDirectory() as tmp:
            measured = calibration.calibrate(supervisor, Path(tmp), users, warmup, duration)
    except (TargetFailed, LoadFailed) as exc:
        raise _fail(str(exc), code=1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if not measured["locust_limited"]:
        raise _fail(
            f"no ceiling: {measured['rps']:,.0f} req/s with Locust at only {measured['load_cpu_share']:.0%} of a core, "
            "so something else (other jobs on the machine?) held the rate down; run again on a quieter machine",
            code=1,
        )
    typer.echo(
        f"load generator ceiling: {measured['rps']:,.0f} req/s with {users} users "
        f"(Locust used {measured['load_cpu_share']:.0%} of a core; target: {measured['target']})"
    )
    typer.echo(f"CPUs: {topology.label(plan.describe(topology.CALIBRATION))}")  # no database here
    typer.echo(
        f"cells above {calibration.CEILING_FRACTION:.0%} of this, or with Locust above "
        f"{calibration.LOAD_CPU_LIMIT:.0%} CPU, are flagged generator-bound"
    )


@app.command()
def worker(
    master: Annotated[str, typer.Option(help="HOST:PORT of the Locust master a `bench run` started.")],
) -> None:
    """Join a `bench run --remote-workers N --master-bind HOST:PORT` as one more load process.

    The run's master sends each cell's locustfile and load spec (users, rate, window); the worker joins
    every cell of the run in turn, and leaves on Ctrl-C or when no master has answered for 5 minutes.
    """
    import tempfile
    import time

    from bench.load import entry_argv
    from bench.loadspec import worker_args
    from bench.procs import Supervisor, interrupts_as_exceptions

    host, port = _host_port(master, "--master")
    cells = 0
    try:
        with interrupts_as_exceptions(), Supervisor() as supervisor, tempfile.TemporaryDirectory() as tmp:
            typer.echo(f"joining {host}:{port}: each cell's locustfile and load come from the run (Ctrl-C leaves)")
            while True:
                log = Path(tmp) / f"worker-{cells}.log"
                child = supervisor.start("locust-worker", entry_argv(*worker_args(host, port)), log_path=log)
                while child.alive():
                    time.sleep(0.2)
                if child.popen.returncode != 0:
                    break
                cells += 1
                typer.echo(f"cell {cells} done; waiting for the next one")
                # Let the finished cell's master release its port before asking for the next one's file.
                time.sleep(1.0)
            code, tail = child.popen.returncode, child.log_tail(1).strip()
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if "Got no locustfile response from master" not in tail:
        raise _fail(f"the Locust worker exited with code {code} after {cells} cell(s): {tail}", code=1)
    if not cells:
        raise _fail(f"no master answered at {host}:{port} for 5 minutes; start `bench run` first", code=1)
    typer.echo(f"left after {cells} cell(s): no master answered for 5 minutes, the run is over")


@app.command("list")
def list_() -> None:
    """Show the variants and scenarios with their labels."""
    from rich.table import Table

    from reports.terminal import console as make_console
    from scenarios import SCENARIOS
    from targets import VARIANTS

    console = make_console()
    table = Table("variant", "label", "hypothesis", title="variants (most abstraction first)", title_justify="left")
    for variant in VARIANTS:
        table.add_row(variant.name, variant.label, variant.hypothesis)
    console.print(table)
    table = Table(
        "scenario", "group", "label", title="scenarios (--scenarios takes names or groups)", title_justify="left"
    )
    for scenario in SCENARIOS:
        group = next((g for g, names in SCENARIOS.groups.items() if g != "all" and scenario.name in names), "")
        table.add_row(scenario.name, group, scenario.label)
    console.print(table)


@app.command()
def serve(
    variant: Annotated[str, typer.Argument(help="The variant to start (see bench list).")],
    port: Annotated[int | None, typer.Option(help="Port on 127.0.0.1 (default: a free one).")] = None,
    pool_size: Annotated[int, typer.Option(help="Connections in the variant's pool.")] = 10,
    dsn: Annotated[str | None, typer.Option(help="Use an existing server instead of the embedded one.")] = None,
    server_workers: ServerWorkersOption = 1,
    cpus: CpusOption = None,
    pin: PinOption = True,
) -> None:
    """Provision, seed and start one variant for manual poking; Ctrl-C stops everything."""
    import signal
    import tempfile
    import time

    from bench import seed, topology
    from bench.errors import BenchError
    from bench.pg import provision, refuse_pool_sizes
    from bench.procs import Supervisor, interrupts_as_exceptions
    from bench.target import TargetConfig, TargetFailed, failure_reason
    from bench.target import serve as serve_target

    try:
        chosen = _variants(variant)[0]
        if port is not None and not 1 <= port <= 65535:
            raise BenchError(f"--port must be between 1 and 65535, got {port}")
        if pool_size < 1:
            raise BenchError(f"--pool-size must be >= 1 connection; got {pool_size}")
        if fault := topology.server_workers_fault(server_workers, topology.available()):
            raise BenchError(fault)
        # The same split as `bench run`'s default, so a `bench run --url` (or wrk on the load CPUs) beside it
        # does not take the server's CPUs.
        plan = topology.plan(topology.available(), cpus=cpus, pin=pin)
        with (
            interrupts_as_exceptions(),
            Supervisor(cpu_plan=plan) as supervisor,
            tempfile.TemporaryDirectory() as tmp,
            provision(supervisor, dsn) as database,
        ):
            refuse_pool_sizes(database.dsn, [pool_size], workers=server_workers)
            seed.apply_schema(database.dsn)
            seed.seed(database.dsn)
            log = Path(tmp) / "target.log"
            config = TargetConfig(database.dsn, pool_size)
            with serve_target(
                supervisor, chosen.name, chosen.app, config, log, port=port, workers=server_workers
            ) as target:
                typer.echo(f"{chosen.name} serving on {target.url} (database {database.display_dsn})")
                # The database at --dsn is the user's: neither pinned nor stopped by dbbench, and said so.
                side = topology.EMBEDDED if dsn is None else topology.OWN_DATABASE
                typer.echo(f"CPUs: {topology.label(plan.describe(side))}")
                typer.echo("try: /db /queries?queries=20 /fortunes /updates?queries=5 /_bench/info")
                typer.echo(
                    "Ctrl-C stops the server and the database"
                    if dsn is None
                    else "Ctrl-C stops the server (the database at --dsn is yours: it keeps running)"
                )
                while target.child.alive():
                    time.sleep(0.5)
                code = target.child.popen.returncode
                how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
                raise _fail(f"{chosen.name} exited ({how}): {failure_reason(target.child, target.secrets)}", code=1)
    except BenchError as exc:
        raise _fail(str(exc)) from None
    except TargetFailed as exc:
        raise _fail(str(exc), code=1) from None
    except KeyboardInterrupt:
        typer.echo("stopped")
        raise typer.Exit(130) from None


def _distinct_paths(inputs: dict[str, Path], outputs: dict[str, Path | None]) -> None:
    """Raise ``BenchError`` when an output names an input or another output (``-o b.toml`` with ``--budget
    b.toml`` replaced the budgets; ``-o x --junit x`` kept one of the two): before anything is read or written.
    Two paths are the same when they resolve to one file (``./b.toml``, ``../dir/b.toml``, a symlink)."""
    from bench.errors import BenchError

    def same(a: Path, b: Path) -> bool:
        try:
            return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
        except OSError:
            return False

    named = [(option, path) for option, path in outputs.items() if path is not None]
    for index, (option, path) in enumerate(named):
        clash = [what for what, other in inputs.items() if same(path, other)]
        clash += [other_option for other_option, other in named[:index] if same(path, other)]
        if clash:
            raise BenchError(
                f"{option} {path} is also {clash[0]}: an output never replaces an input or another output; "
                f"choose another {option}"
            )


def _gate(
    work: Callable[[], tuple[str, int]],
    output: Path | None,
    inputs: dict[str, Path] | None = None,
    junit: Path | None = None,
) -> None:
    """Print (or write to ``output``) what a CI gate produced and exit with its code (0 pass, 1 regression or
    breach, 2 bad input). ``inputs`` (what each input option named) and the outputs must be distinct files."""
    from bench.errors import BenchError
    from reports import gate

    try:
        _distinct_paths(inputs or {}, {"--junit": junit, "-o": output})
        text, code = work()
        if output is not None:
            text = gate.write(text, output)
    except BenchError as exc:
        raise _fail(str(exc)) from None
    typer.echo(text, nl=False)
    raise typer.Exit(code)


@app.command()
def compare(
    files: Annotated[
        list[Path], typer.Argument(help="BASE.json HEAD.json, or one file of bench ab with --base/--head.")
    ],
    base: Annotated[str | None, typer.Option(help="One file: the label of the base cells (bench ab: base).")] = None,
    head: Annotated[str | None, typer.Option(help="One file: the label of the head cells (bench ab: head).")] = None,
    threshold: Annotated[float, typer.Option(help=_THRESHOLD_HELP)] = DEFAULT_THRESHOLD,
    format: Annotated[str, typer.Option("--format", "-f", help="terminal, md, json or html.")] = "terminal",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file, not stdout.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Also write a JUnit XML file: one test case per verdict.")] = None,
    gate_on: GateOnOption = _GATE_ON_DEFAULT,
) -> None:
    """Did head get slower than base? Exit 0 no regression, 1 a regression, 2 files that cannot be compared."""
    from bench import compare as comparing
    from reports import gate

    def work() -> tuple[str, int]:
        metrics = comparing.gate_metrics(gate_on)
        done = comparing.from_paths(files, base=base, head=head, threshold=threshold, gate_on=metrics)
        return gate.compared(done, format=format, junit=junit)

    roles = ["the results file"] if len(files) == 1 else [f"the {side} file" for side in ("base", "head")]
    _gate(work, output, dict(zip(roles, files, strict=False)), junit)


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="A results file from bench run or bench ab.")],
    budget: Annotated[
        Path | None,
        # The help is Rich markup: without the backslash "[tool.dbbench.budgets]" is read as a style and vanishes.
        typer.Option(help="Budget TOML file (default: \\[tool.dbbench.budgets] in ./pyproject.toml)."),
    ] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="terminal, md, json or html.")] = "terminal",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file, not stdout.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Also write a JUnit XML file: one test case per budget.")] = None,
) -> None:
    """A run against its budgets. Exit 0 all within, 1 a budget breached, 2 bad input (unknown field...)."""
    from bench import budgets, results
    from reports import gate

    def work() -> tuple[str, int]:
        run = results.load(file)
        budgets.require_complete(run, str(file))
        return gate.checked(file, budgets.check(run, budgets.load(budget)), format=format, junit=junit)

    _gate(
        work,
        output,
        {"the results file": file, "the budget file": budget or Path("pyproject.toml")},
        junit,
    )


def main() -> None:
    """The ``bench`` entry point: Typer in non-standalone mode, so that a usage error (an unknown option, a
    value of the wrong type, a missing argument) is one line and exit 2 like every other refusal, instead
    of Typer's boxed Rich panel. Typer 0.29 vendors Click privately: its public ``TyperException`` is the
    base of Click's errors, and a usage error is the one with exit code 2 (Click's ``UsageError``)."""
    if not sys.argv[1:]:
        app()  # plain `bench`: the help, as Typer shows it (no_args_is_help)
        return
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:
        message = " ".join(exc.format_message().split()).rstrip(".")
        ctx = getattr(exc, "ctx", None)
        hint = f"; see '{ctx.command_path if ctx is not None else 'bench'} --help'" if exc.exit_code == 2 else ""
        typer.echo(f"error: {message}{hint}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:  # end of input outside a command's own handling
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
