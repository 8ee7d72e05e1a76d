"""Start one variant under its own uvicorn on 127.0.0.1, wait until it is healthy, stop it after."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from bench import dsn as dsnlib
from bench.check.server_log import last_exception
from bench.errors import BenchError
from bench.net import LOOPBACK, free_port, port_in_use
from bench.procs import Child, Supervisor
from targets.common.settings import TargetSpec

START_TIMEOUT_S = 30.0
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class TargetFailed(Exception):
    """The variant did not come up (or died); the cell or check is recorded as failed, the run goes on."""


# What a target is told (DSN, pool size, instrumentation, cache, profiling): declared once in targets.common.settings,
# written to the child's environment by its to_env() and read back by the variant's from_env().
TargetConfig = TargetSpec
# One worker: the variants compete on how they use one event loop (or one threadpool), and a second worker
# would fight PostgreSQL and Locust for this machine's cores.
WORKERS = 1
# How much of the log a failure reason quotes.
REASON_CHARS = 400


@dataclass
class Target:
    variant: str
    url: str
    child: Child
    secrets: tuple[str, ...] = ()  # DSNs whose passwords are masked in anything quoted from its log

    def info(self) -> dict[str, Any]:
        """The variant's own account of its configuration (pool sizes, driver, cache counters)."""
        try:
            response = httpx.get(f"{self.url}/_bench/info", timeout=5)
            response.raise_for_status()
            data: dict[str, Any] = response.json()
            return data
        except (httpx.HTTPError, ValueError) as exc:
            return {"error": f"/_bench/info unavailable: {exc}"}


def uvicorn_argv(app: str, port: int, workers: int, python: str = sys.executable) -> list[str]:
    return [
        python,
        "-m",
        "uvicorn",
        app,
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        # No proxy stands in front of a server dbbench starts (it binds to 127.0.0.1, and the load comes from
        # there): uvicorn's X-Forwarded-* middleware would be one more layer (a coroutine and a dict of the
        # headers) on every request of every variant, measuring nothing.
        "--no-proxy-headers",
        "--log-level",
        "warning",
    ]


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def serve(
    supervisor: Supervisor,
    variant: str,
    app: str,
    config: TargetSpec,
    log_path: Path,
    port: int | None = None,
    workers: int = WORKERS,
) -> Iterator[Target]:
    """Run ``app`` until the ``with`` ends; ``port=None`` picks a free one. Raises TargetFailed with the
    exception the variant logged when it does not come up or dies."""
    if port is not None and port_in_use(port):
        raise BenchError(f"port {port} on {LOOPBACK} is already in use; pick another --port or omit it")
    chosen = port if port is not None else free_port()
    env = dict(os.environ)
    env.update(replace(config, variant=variant).to_env())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    child = supervisor.start(
        f"uvicorn:{variant}",
        uvicorn_argv(app, chosen, workers),
        env=env,
        log_path=log_path,
        cwd=PROJECT_ROOT,
        role="server",
    )
    url = f"http://{LOOPBACK}:{chosen}"
    secrets = tuple(s for s in (config.dsn, config.cache.redis_url) if s)
    with supervised(supervisor, child, variant, url, _healthy, "was not healthy", secrets) as target:
        yield target


@contextlib.contextmanager
def supervised(
    supervisor: Supervisor,
    child: Child,
    name: str,
    url: str,
    ready: Callable[[str], bool],
    not_ready: str,
    secrets: tuple[str, ...] = (),
) -> Iterator[Target]:
    """``child`` (a uvicorn just started) as a Target once ``ready(url)``, stopped when the ``with`` ends.
    Raises TargetFailed with the exception from its log when it exits first, is still not ready after
    START_TIMEOUT_S (the reason starts "<name> <not_ready> within ..."), or dies while in use."""
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready(url):
            if not child.alive():
                raise TargetFailed(f"{name} exited during start-up: {failure_reason(child, secrets)}")
            if time.monotonic() > deadline:
                reason = failure_reason(child, secrets)
                raise TargetFailed(f"{name} {not_ready} within {START_TIMEOUT_S:.0f}s: {reason}")
            time.sleep(0.1)
        yield Target(name, url, child, secrets)
        if not child.alive():
            raise TargetFailed(f"{name} died under load: {failure_reason(child, secrets)}")
    finally:
        supervisor.stop(child)


LOG_LINES = 200


def failure_reason(child: Child, secrets: tuple[str, ...] = ()) -> str:
    """Why a target failed, from its log: the exception it raised (uvicorn's own last line, e.g.
    "Application startup failed. Exiting.", says nothing), else the last line; passwords masked."""
    tail = child.log_tail(LOG_LINES)
    exception = exception_in(tail, secrets)
    if exception is not None:
        return exception
    lines = [line for line in tail.splitlines() if line.strip()]
    return dsnlib.scrub(lines[-1], *secrets)[:REASON_CHARS] if lines else "(no output)"


def exception_in(log: str, secrets: tuple[str, ...] = ()) -> str | None:
    """The exception ending the last traceback in ``log`` (read as the contract check reads a 500's log:
    bench.check.server_log), with the passwords of the DSNs in ``secrets`` masked; None without one."""
    return last_exception(log, secrets)
