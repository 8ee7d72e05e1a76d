"""Start one variant under its own uvicorn on 127.0.0.1, wait until it is healthy, stop it after."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.errors import BenchError
from bench.net import LOOPBACK, free_port, port_in_use
from bench.procs import Child, Supervisor

START_TIMEOUT_S = 30.0
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class TargetFailed(Exception):
    """The variant did not come up (or died); the cell or check is recorded as failed, the run goes on."""


@dataclass(frozen=True)
class TargetConfig:
    dsn: str
    pool_size: int
    # One worker: the variants compete on how they use one event loop (or one threadpool), and
    # a second worker would fight PostgreSQL and Locust for this machine's cores.
    workers: int = 1
    # More DBBENCH_* settings for the target (instrumentation, profiling, cache backend).
    extra_env: tuple[tuple[str, str], ...] = ()


@dataclass
class Target:
    variant: str
    url: str
    child: Child

    def info(self) -> dict[str, Any]:
        """The variant's own account of its configuration (pool sizes, driver, cache counters)."""
        try:
            response = httpx.get(f"{self.url}/_bench/info", timeout=5)
            response.raise_for_status()
            data: dict[str, Any] = response.json()
            return data
        except (httpx.HTTPError, ValueError) as exc:
            return {"error": f"/_bench/info unavailable: {exc}"}


def uvicorn_argv(app: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable,
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
    config: TargetConfig,
    log_path: Path,
    port: int | None = None,
) -> Iterator[Target]:
    """Run ``app`` until the ``with`` ends; ``port=None`` picks a free one."""
    if port is not None and port_in_use(port):
        raise BenchError(f"port {port} on {LOOPBACK} is already in use; pick another --port or omit it")
    chosen = port if port is not None else free_port()
    env = dict(os.environ)
    env.update(
        DBBENCH_DSN=config.dsn,
        DBBENCH_POOL_SIZE=str(config.pool_size),
        DBBENCH_VARIANT=variant,
        PYTHONPATH=os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p),
    )
    env.update(config.extra_env)
    child = supervisor.start(
        f"uvicorn:{variant}",
        uvicorn_argv(app, chosen, config.workers),
        env=env,
        log_path=log_path,
        cwd=PROJECT_ROOT,
    )
    url = f"http://{LOOPBACK}:{chosen}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            if not child.alive():
                raise TargetFailed(f"{variant} exited during start-up: {_last_line(child)}")
            if time.monotonic() > deadline:
                raise TargetFailed(f"{variant} was not healthy within {START_TIMEOUT_S:.0f}s: {_last_line(child)}")
            time.sleep(0.1)
        yield Target(variant, url, child)
        if not child.alive():
            raise TargetFailed(f"{variant} died under load: {_last_line(child)}")
    finally:
        supervisor.stop(child)


def _last_line(child: Child) -> str:
    lines = [line for line in child.log_tail(20).splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"
