"""What a results file says about the run that wrote it: machine, packages, the load, the pool, the server.

It states only what dbbench set or measured. For a server dbbench did not start (``--url``) everything it
cannot know is "unknown", never a default borrowed from its own variants.
"""

from __future__ import annotations

from typing import Any

from bench import metadata
from bench.check.server import UNKNOWN, ExternalServer
from bench.pg import Database
from bench.run_config import RunConfig
from bench.target import PROJECT_ROOT
from scenarios import WRITING

THREADPOOL_SIZE = 40  # anyio's default, which FastAPI runs `def` routes on; recorded, not changed


def describe(config: RunConfig, database: Database, locustfiles: dict[str, Any]) -> dict[str, Any]:
    """The metadata of a run on a database dbbench provisioned (``locustfiles``: bench.locustfiles.inspect)."""
    model = (
        f"open model: {', '.join(f'{r:g}' for r in config.rates)} req/s over {config.users[0]} connections"
        if config.rates
        else "closed model: each user sends its next request when the previous one returns"
    )
    return {
        "tool": "dbbench",
        "started_at": metadata.now_iso(),
        # Until the run ends normally (Recorder.finish): a file left by an interrupt says so.
        "completed": False,
        "machine": metadata.machine(),
        "packages": metadata.package_versions(),
        "git": metadata.git_revision(PROJECT_ROOT),
        "database": database.describe(),
        "cpus": config.cpu_plan().describe(config.server_side()),
        "config": {
            "variants": [v.name for v in config.variants],
            "scenarios": {s.name: s.label for s in config.scenarios},
            # What each file really runs (user classes, wait times), found by loading it; refuses a
            # file whose meaning the run could not keep (a LoadTestShape; think time under --rate).
            "locustfiles": locustfiles,
            "users": config.users,
            "rates": config.rates,
            "duration_s": config.duration_s,
            "warmup_s": config.warmup_s,
            "trials": config.trials,
            "load_generator": f"locust, {load_processes(config)}; {model}; users as each locustfile defines them",
            "server": f"uvicorn, {config.server_workers} worker(s) in the timed cells, 127.0.0.1",
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


def describe_external(config: RunConfig, server: ExternalServer, locustfiles: dict[str, Any]) -> dict[str, Any]:
    """The metadata of a --url run: what dbbench set (the load), and of the server only what it knows (its
    URL; its /_bench/info if it is dbbench); everything else "unknown"."""
    described = describe(config, Database(dsn="", kind=UNKNOWN), locustfiles)
    described.update(server.describe())  # "cpus" says the server at the URL is not dbbench's (config.server_side)
    writes = (
        "allowed (--allow-writes)"
        if config.allow_writes
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


def load_processes(config: RunConfig) -> str:
    if config.load_workers <= 1 and not config.remote_workers:
        return "1 process"
    return f"master + {config.load_workers} local and {config.remote_workers} remote worker(s)"
