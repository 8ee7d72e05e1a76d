"""The load process's whole configuration: one typed spec, serialised and parsed by the same code.

pyperf's manager/worker shape (``_manager.py``): the orchestrator builds a ``LoadSpec``, hands it to
the load process as one environment variable (``to_env``), and the load process reads it back with
``from_env``; Locust's own command line is derived from the spec inside the load process
(``locust_args``), so no setting is spelled twice or forgotten on one side. Locust workers, local or
on other machines (``bench worker``), receive the part of the spec they need from the master
(``for_workers``), carried in Locust's spawn message as a custom option (see bench.locust_entry).

No module other than this one spells a ``DBBENCH_*`` name for the load process. Stdlib only: the
orchestrator imports this module, and it must never import locust.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.net import LOOPBACK
from scenarios import is_builtin

ENV = "DBBENCH_LOAD_SPEC"  # the one variable the load process reads
# The attribute of Locust's parsed options that carries ``for_workers()`` from the master to its workers:
# Locust sends every option its own parser does not define along with each spawn message.
WORKER_OPTION = "dbbench_load_spec"
# Headroom past the window for Locust's start-up and shutdown; Locust's --run-time is only a backstop.
GRACE_S = 60.0
# A load session (see ``session``) quits after this long without a new cell: a backstop, the orchestrator
# normally ends it (and the kernel does when the orchestrator dies, bench.procs; the session also quits when
# its parent is gone). Long, because sessions are started ahead of their first cell and a session waits for
# every other scenario's cells between two of its own (4 x 6 cells of 13 s with the defaults: 312 s); a
# session that timed out while its next cell's spec was being written would fail that cell.
SESSION_IDLE_S = 1800.0
# How long a master waits for its workers to connect before giving up.
EXPECT_WORKERS_WAIT_S = 60


@dataclass(frozen=True)
class LoadSpec:
    """What one run of the load process does (one cell, a calibration, or a profiling pass).

    Defaults are declared here and nowhere else. Times are seconds, rates requests/s.
    """

    locustfile: Path
    host: str  # the target's base URL
    users: int  # closed model: concurrent users; open model: connections sharing the rate
    warmup_s: float
    duration_s: float
    rate: float | None = None  # open model: total arrival rate; None = closed model
    target_pid: int | None = None  # measured for CPU and RSS over the window
    db_pid: int | None = None  # PostgreSQL postmaster, for database CPU over the window
    target_stats: bool = False  # reset and collect the target's /_bench/stats at the window's edges
    max_requests: int = 0  # close the window early after this many requests (0: no limit)
    # Evidence-based warm-up (bench.sampling.WarmupEvidence): end the warm-up once every user has completed this
    # many responses and warmup_floor_s has passed, warmup_s at most; 0: always the whole warmup_s.
    warmup_responses: int = 0
    warmup_floor_s: float = 0.0
    workers: int = 1  # local Locust processes; above 1, Locust's own master/worker mode
    remote_workers: int = 0  # more workers that join from other machines (``bench worker``)
    master_bind: str = LOOPBACK  # where the master listens; only non-loopback for remote workers
    master_port: int | None = None  # fixed port for remote workers to join; None picks a free one
    pg_dsn: str | None = None  # reset / snapshot pg_stat_statements at the window's edges
    out: Path | None = None  # where the load process writes its window (set by bench.load.run_load)
    locustfile_sha256: str = ""  # the file's identity, so a worker can tell it runs the master's file
    # A load session (bench.load.LoadSession): the process stays up and measures one cell per spec file
    # the orchestrator drops in this folder (cell-1.json, cell-2.json, ...), each spec naming its own ``out``.
    session: Path | None = None

    @property
    def standby(self) -> bool:
        """A load session started before its first cell (bench.load.LoadSession.start): no user until a
        cell's spec arrives, so it sends nothing while other work (the contract check) runs."""
        return self.session is not None and self.users == 0

    @property
    def distributed(self) -> bool:
        return self.workers > 1 or self.remote_workers > 0

    @property
    def own_scenario(self) -> bool:
        """dbbench's own locustfile (scenarios/): nothing in it reads Locust's statistics or exit code,
        so the load process may unhook Locust's per-request bookkeeping (see bench.locust_entry)."""
        return is_builtin(self.locustfile)

    # --- serialisation: the same code writes and reads every field ---

    def to_json(self) -> str:
        raw: dict[str, Any] = dataclasses.asdict(self)
        for name in ("locustfile", "out", "session"):
            raw[name] = None if raw[name] is None else str(raw[name])
        return json.dumps(raw, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LoadSpec:
        """Raises ValueError on anything that is not a spec written by ``to_json``."""
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("a load spec is a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - names
        if unknown:
            raise ValueError(f"unknown load spec fields: {', '.join(sorted(unknown))}")
        raw["locustfile"] = Path(raw["locustfile"])
        for name in ("out", "session"):
            if raw.get(name) is not None:
                raw[name] = Path(raw[name])
        return cls(**raw)

    def to_env(self) -> dict[str, str]:
        return {ENV: self.to_json()}

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LoadSpec | None:
        """The spec the orchestrator passed, or None in a worker (which gets its spec from the master)."""
        text = environ.get(ENV)
        return cls.from_json(text) if text else None

    def for_workers(self) -> LoadSpec:
        """What a worker needs (pacing, the window's limits, the file's identity) and nothing it must not
        see: no database DSN (it may hold a password), no local pids, no output path."""
        digest = self.locustfile_sha256 or file_sha256(self.locustfile)
        return dataclasses.replace(
            self,
            target_pid=None,
            db_pid=None,
            target_stats=False,
            pg_dsn=None,
            out=None,
            session=None,
            locustfile_sha256=digest,
        )

    # --- Locust's own command line, derived from the spec inside the load process ---

    def locust_args(self) -> list[str]:
        """Arguments for ``locust`` (the master, or the only process). All users start within the first
        second (spawn rate = users) so the warm-up absorbs the ramp; --run-time is a backstop only: the
        load process ends the run itself when the window closes. ``--exit-code-on-error 0``: failed
        requests are dbbench's to count; a locustfile's own ``process_exit_code`` still wins."""
        args = ["-f", str(self.locustfile), "--headless", "--only-summary", "--host", self.host]
        # A session started ahead of its first cell (``standby``) starts with no user; Locust refuses a spawn
        # rate of 0, so it is never below 1.
        args += ["-u", str(self.users), "-r", str(max(1, self.users))]
        if self.session is None:  # a session ends itself when told to, or after SESSION_IDLE_S without a cell
            args += ["--run-time", f"{int(self.warmup_s + self.duration_s + GRACE_S)}s"]
        args += ["--stop-timeout", "0", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
        if self.distributed:
            if self.master_port is None:
                raise ValueError("a distributed load spec needs master_port")
            args += ["--master", "--master-bind-host", self.master_bind, "--master-bind-port", str(self.master_port)]
            args += ["--expect-workers", str(self.workers + self.remote_workers)]
            args += ["--expect-workers-max-wait", str(EXPECT_WORKERS_WAIT_S)]
        return args


def worker_args(master_host: str, master_port: int, locustfile: Path | None = None) -> list[str]:
    """Arguments for a Locust worker. Without ``locustfile`` the worker downloads the master's file
    (Locust's ``-f -``): a worker on another machine runs exactly what the master runs."""
    args = ["-f", str(locustfile) if locustfile else "-", "--worker", "--loglevel", "WARNING"]
    # A worker exits 0 after its master quits, failed requests or not (the master's process decides the cell).
    args += ["--exit-code-on-error", "0"]
    return [*args, "--master-host", master_host, "--master-port", str(master_port)]


def file_sha256(path: Path) -> str:
    """Of the text as Python reads it (universal newlines): Locust ships a file to its workers as text."""
    return hashlib.sha256(path.read_text(encoding="utf-8").encode("utf-8")).hexdigest()
