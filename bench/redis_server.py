"""Provision the Redis the cached variant's Redis backend talks to: a throwaway redis-server or the user's.

The embedded server keeps nothing: no RDB snapshots, no append-only file, a temp dir removed afterwards,
loopback only. On a user's server dbbench touches only its own keys (the target deletes its key prefix,
never FLUSHDB), and the URL's password is never printed or stored.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import redis
from redis.exceptions import RedisError

from bench import dsn as dsnlib
from bench.errors import BenchError
from bench.net import LOOPBACK, free_port
from bench.procs import Supervisor

_SCHEMES = ("redis", "rediss")
_START_TIMEOUT = 20.0
_MISSING = (
    "redis-server not found on PATH: install redis-server (Debian: apt-get install redis-server) or pass --redis-url"
)


@dataclass(frozen=True)
class RedisServer:
    """Where the cache lives: ``url`` may carry a password, ``display_url`` and ``describe()`` never do."""

    url: str
    kind: str  # "embedded" | "external"
    version: str = ""
    server_pid: int | None = None  # the redis-server we started, when we started one

    @property
    def display_url(self) -> str:
        return dsnlib.redact(self.url)

    @property
    def address(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or LOOPBACK
        return f"[{host}]:{parts.port or 6379}" if ":" in host else f"{host}:{parts.port or 6379}"

    def describe(self) -> dict[str, object]:
        return {"backend": "redis", "address": self.address, "version": self.version, "kind": self.kind}


def validate(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise BenchError(f"--redis-url must look like redis://[:password@]host[:port]/db, got {dsnlib.redact(url)!r}")
    return url


def server_version(url: str) -> str:
    """PING, then ``redis_version`` from INFO server; raises RedisError when the server does not answer."""
    with redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5) as client:
        client.ping()
        info = client.info("server")
    return str(info.get("redis_version", ""))


def _reason(exc: Exception, url: str) -> str:
    """The first line of a client error, with the URL's password masked should the message echo it, in any
    form bench.dsn.scrub knows (as written, percent-decoded as the client sends it, its fragments)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return dsnlib.scrub(text, url)


def _wait_ready(url: str, alive: Callable[[], bool], log_tail: Callable[[], str]) -> str:
    deadline = time.monotonic() + _START_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise BenchError(f"embedded redis-server exited during start-up: {log_tail()!s:.300}")
        try:
            return server_version(url)
        except RedisError as exc:
            last = exc
            time.sleep(0.05)
    raise BenchError(f"embedded redis-server did not answer PING within {_START_TIMEOUT:.0f}s: {last}")


@contextlib.contextmanager
def embedded(supervisor: Supervisor) -> Iterator[RedisServer]:
    """A redis-server of our own on a free loopback port, persisting nothing; stopped and removed afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise BenchError(_MISSING)
    root = Path(tempfile.mkdtemp(prefix="dbbench-redis-"))
    try:
        for attempt in range(3):
            port = free_port()
            argv = [
                binary,
                "--bind",
                LOOPBACK,
                "--port",
                str(port),
                "--dir",
                str(root),
                # A cache of a throwaway database: persistence would only add disk writes to the timings.
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--logfile",
                "",  # to stdout, which the supervisor sends to the log file
            ]
            child = supervisor.start("redis-server", argv, log_path=root / "redis.log", role="server")
            url = f"redis://{LOOPBACK}:{port}/0"
            try:
                version = _wait_ready(url, child.alive, child.log_tail)
                break
            except BenchError:
                supervisor.stop(child)
                # free_port() races other processes for the port: retry on a bind failure only.
                if "Address already in use" not in child.log_tail() or attempt == 2:
                    raise
        yield RedisServer(url, "embedded", version, child.pid)
        supervisor.stop(child)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def external(url: str) -> Iterator[RedisServer]:
    """The user's Redis, checked with a PING; nothing to start or stop."""
    validate(url)
    try:
        version = server_version(url)
    except RedisError as exc:
        raise BenchError(f"cannot reach --redis-url {dsnlib.redact(url)}: {_reason(exc, url)}") from None
    yield RedisServer(url, "external", version)


@contextlib.contextmanager
def provision(supervisor: Supervisor, url: str | None) -> Iterator[RedisServer]:
    if url:
        with external(url) as server:
            yield server
    else:
        with embedded(supervisor) as server:
            yield server
