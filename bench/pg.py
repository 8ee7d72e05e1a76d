"""Provision the PostgreSQL a run talks to: an embedded throwaway server (default) or an existing one.

Either way the run gets a database of its own, created for it and dropped afterwards, so dbbench
never touches anyone else's tables.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from bench import dsn as dsnlib
from bench import pooling
from bench.errors import BenchError
from bench.net import LOOPBACK, free_port
from bench.procs import Supervisor

# A throwaway benchmark database: durability buys nothing here and disk flushes on a shared VM add
# noise that has nothing to do with the access strategy under test. Recorded in the results.
EMBEDDED_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "256MB",
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "top",
}
RUN_DATABASE = "dbbench"
REASON_CHARS = 400  # of a driver's error message quoted in a one-line refusal
UNPRIVILEGED_USER = "postgres"


@dataclass
class Database:
    """Where a run's data lives: ``dsn`` carries any password, ``display_dsn`` never does."""

    dsn: str
    kind: str
    server_version: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    server_pid: int | None = None  # the postmaster, when it runs on this machine under our control
    socket_dir: str | None = None  # its Unix-domain socket's directory, when it has one we know

    @property
    def display_dsn(self) -> str:
        return dsnlib.redact(self.dsn)

    def describe(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "dsn": self.display_dsn,
            "server_version": self.server_version,
            "settings": dict(self.settings),
        }


def find_bindir() -> Path | None:
    """System PostgreSQL server binaries: ``pg_config --bindir`` first, then Debian's layout, then PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            candidates.append(Path(out.stdout.strip()))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for path in candidates:
        if (path / "initdb").exists() and (path / "postgres").exists():
            return path
    return None


def server_version(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else ""


# Connections a run opens beside a variant's pool: the check, the connection sampler, pg_stat_statements and
# EXPLAIN, the seed, the run database's admin connection, with room to spare.
OWN_CONNECTIONS = 10


def refuse_pool_sizes(dsn: str, sizes: list[int], *, servers: int = 1, workers: int = 1) -> None:
    """Raise BenchError (one line) when the connections the run's servers hold at once do not fit in the
    server's max_connections beside the superuser-reserved ones and OWN_CONNECTIONS: a variant would
    otherwise fail at startup with a bare "Application startup failed", or the seed with "too many clients".

    ``sizes``: every pool size some cell uses (connections per pool; a variant's sweep settings replace each
    other, bench.target_pool); ``servers``: how many variants' servers run side by side (bench.target_pool
    keeps every variant's up, each holding its whole pool open: a fresh-eyes run of 2026-12-01 passed the
    old per-variant check with ``--pool-size 100`` on two variants and died in the seed); ``workers``:
    uvicorn workers per server, each with its own pool."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT name, setting::int FROM pg_settings"
            " WHERE name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections')"
        ).fetchall()
    settings: dict[str, int] = {str(name): int(value) for name, value in rows}
    reserved = settings.get("superuser_reserved_connections", 0) + settings.get("reserved_connections", 0)
    room = settings["max_connections"] - reserved - OWN_CONNECTIONS
    pools = max(1, servers) * max(1, workers)
    if max(sizes) * pools <= room:
        return
    limits = (
        f"max_connections is {settings['max_connections']} ({reserved} reserved, {OWN_CONNECTIONS} for dbbench itself)"
    )
    if pools == 1:
        raise BenchError(
            f"--pool-size {max(sizes)} does not fit the server: {limits}; use --pool-size {max(room, 1)} or less"
        )
    held = " × ".join(
        part
        for part in (
            f"--pool-size {max(sizes)}",
            f"{servers} variants side by side" if servers > 1 else "",
            f"{workers} --server-workers" if workers > 1 else "",
        )
        if part
    )
    raise BenchError(
        f"{held} = {max(sizes) * pools} connections do not fit the server: {limits}; "
        f"use --pool-size {max(room // pools, 1)} or less, or fewer variants or --server-workers"
    )


def _wait_ready(dsn: str, alive: Callable[[], bool], timeout: float, log_tail: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise BenchError(f"embedded PostgreSQL exited during start-up: {log_tail()!s:.300}")
        try:
            with psycopg.connect(dsn, connect_timeout=1):
                return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.1)
    raise BenchError(f"embedded PostgreSQL did not accept connections within {timeout:.0f}s: {last}")


def _create_run_database(admin: str) -> str:
    """The run's own database on a server we just started; returns its DSN."""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(RUN_DATABASE)))
    return dsnlib.with_database(admin, RUN_DATABASE)


@contextlib.contextmanager
def embedded(supervisor: Supervisor, keep_logs: Path | None = None) -> Iterator[Database]:
    """A PostgreSQL of our own on a free loopback port in a temp dir, removed afterwards."""
    bindir = find_bindir()
    if bindir is None:
        with _pgserver() as database:
            yield database
        return
    as_root = os.geteuid() == 0
    user = UNPRIVILEGED_USER if as_root else None
    if as_root:
        # initdb refuses to run as root; the server runs as the unprivileged system user instead.
        try:
            owner = pwd.getpwnam(UNPRIVILEGED_USER)
        except KeyError:
            raise BenchError(
                "running as root needs a 'postgres' system user for the embedded server; "
                "create one (useradd postgres) or pass --dsn"
            ) from None
    root = Path(tempfile.mkdtemp(prefix="dbbench-pg-"))
    try:
        data = root / "data"
        if as_root:
            os.chown(root, owner.pw_uid, owner.pw_gid)
        init = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            user=user,
            timeout=120,
            check=False,
        )
        if init.returncode != 0:
            raise BenchError(f"initdb failed: {init.stderr.strip().splitlines()[-1:]}")
        for _attempt in range(3):
            port = free_port()
            argv = [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-k",
                str(root),
                "-c",
                f"listen_addresses={LOOPBACK}",
            ]
            for key, value in EMBEDDED_SETTINGS.items():
                argv += ["-c", f"{key}={value}"]
            # SIGINT is PostgreSQL's "fast" shutdown: roll back open work and exit now.
            child = supervisor.start(
                "postgres", argv, log_path=root / "postgres.log", stop_signal=signal.SIGINT, user=user, role="server"
            )
            admin = f"postgresql://postgres@{LOOPBACK}:{port}/postgres"
            try:
                _wait_ready(admin, child.alive, 60, child.log_tail)
                break
            except BenchError:
                supervisor.stop(child)
                if "could not bind" not in child.log_tail() or _attempt == 2:
                    raise
        run_dsn = _create_run_database(admin)
        yield Database(
            run_dsn, "embedded", server_version(run_dsn), dict(EMBEDDED_SETTINGS), child.pid, socket_dir=str(root)
        )
        supervisor.stop(child)
    finally:
        if keep_logs is not None and (root / "postgres.log").exists():
            shutil.copy(root / "postgres.log", keep_logs)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _pgserver() -> Iterator[Database]:
    try:
        import pgserver  # optional: the wheel that ships its own binaries
    except ImportError:
        raise BenchError(
            "no PostgreSQL server binaries found: install them (apt-get install postgresql), "
            "or pip install 'dbbench[embedded]', or pass --dsn postgresql://..."
        ) from None
    root = Path(tempfile.mkdtemp(prefix="dbbench-pgserver-"))
    server = pgserver.get_server(root, cleanup_mode="delete")
    try:
        run_dsn = _create_run_database(server.get_uri())
        yield Database(run_dsn, "embedded-pgserver", server_version(run_dsn), {})
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def external(dsn: str) -> Iterator[Database]:
    """A database of our own on an existing server; dropped afterwards, other databases untouched.

    Raises BenchError (one line, no password) when the DSN cannot be used: malformed or unsupported
    (bench.dsn), unreachable, no CREATEDB, or behind a transaction-mode pooler (bench.pooling).
    """
    dsn = dsnlib.normalise(dsn)
    shown = dsnlib.redact(dsn)
    try:
        psycopg.connect(dsn, autocommit=True, connect_timeout=5).close()
    except psycopg.Error as exc:
        raise BenchError(f"cannot connect to --dsn {shown}: {_reason(exc, dsn)}") from None
    # Asked before anything is created, and with no other session open (a small session pool must not wait).
    _refuse_transaction_pooling(dsn, shown)
    name = f"dbbench_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        if exc.sqlstate is None:  # the connection itself failed this time
            raise BenchError(f"cannot connect to --dsn {shown}: {_reason(exc, dsn)}") from None
        raise BenchError(
            f"cannot create a scratch database on {shown} ({exc.sqlstate}): "
            "the role needs CREATEDB; grant it or use the embedded default (omit --dsn)"
        ) from None
    run_dsn = dsnlib.with_database(dsn, name)
    try:
        try:
            version = server_version(run_dsn)
        except psycopg.Error as exc:
            raise BenchError(
                f"created the scratch database {name} but cannot connect to it through --dsn {shown}: "
                f"{_reason(exc, dsn)} (if a pooler such as PgBouncer is in between, it must know the new "
                "database: add a '* = host=...' fallback to its [databases])"
            ) from None
        yield Database(run_dsn, "external", version, {})
    finally:
        with contextlib.suppress(psycopg.Error), psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _refuse_transaction_pooling(dsn: str, shown: str) -> None:
    try:
        server_said = pooling.transaction_pooling(dsn)
    except psycopg.Error as exc:
        raise BenchError(
            f"--dsn {shown}: could not tell how its pooler hands out servers: {_reason(exc, dsn)}"
        ) from None
    if server_said is not None:
        raise BenchError(
            f"--dsn {shown} goes through a pooler in transaction pool mode (PgBouncer pool_mode = transaction or "
            "statement): it does not keep a session on one server connection, and when asked it said "
            f"{dsnlib.scrub(server_said, dsn)!r}. Every variant's driver prepares statements per connection "
            "(asyncpg, psycopg), so a share of its requests would fail with HTTP 500. Fix: connect to PostgreSQL "
            "directly or through pool_mode = session; an app of your own behind it needs asyncpg's "
            "statement_cache_size=0 (psycopg: prepare_threshold=None)"
        )


def _reason(exc: psycopg.Error, *dsns: str) -> str:
    """A driver's error on one line, without any password of ``dsns`` (libpq quotes host names and more)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return dsnlib.scrub(text, *dsns)[:REASON_CHARS]


@contextlib.contextmanager
def provision(supervisor: Supervisor, dsn: str | None) -> Iterator[Database]:
    if dsn:
        with external(dsn) as database:
            yield database
    else:
        with embedded(supervisor) as database:
            yield database
