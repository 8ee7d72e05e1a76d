"""Start a user's app under uvicorn exactly as a variant is started (127.0.0.1, a free port, its own process
group, stopped after), but from the app's own directory, with its own interpreter and environment.

A user's app has no /health: it is ready when it answers anything on ``/`` (a 404 is an answer; a refused
connection is not).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from bench.apps.spec import App
from bench.net import LOOPBACK, free_port
from bench.procs import Supervisor
from bench.target import Target, supervised, uvicorn_argv

# Variables of dbbench's own process that would make the app import dbbench's modules, or another checkout's.
_NOT_INHERITED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")


def app_environment(app: App, extra: Mapping[str, str]) -> dict[str, str]:
    """What the app (and its --setup commands) run with: this process's environment without its Python path,
    the app's interpreter's folder first on PATH (so ``python`` and tools in its virtualenv are found as when
    it is activated), and ``extra`` (the database URL, --app-env)."""
    env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    bindir = str(Path(app.python).parent)
    env["PATH"] = os.pathsep.join(p for p in (bindir, env.get("PATH", "")) if p)
    env.update(extra)
    return env


def answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/", timeout=2)
    except httpx.HTTPError:
        return False
    return True


@contextlib.contextmanager
def serve_app(
    supervisor: Supervisor,
    app: App,
    env: Mapping[str, str],
    log_path: Path,
    workers: int,
    secrets: tuple[str, ...] = (),
) -> Iterator[Target]:
    """Run ``app`` until the ``with`` ends. Raises TargetFailed with the exception from the app's log when it
    does not come up (an import error, a failing start-up) or dies."""
    port = free_port()
    child = supervisor.start(
        f"uvicorn:{app.label}",
        uvicorn_argv(app.target, port, workers, python=app.python),
        env=app_environment(app, env),
        log_path=log_path,
        cwd=app.directory,
        role="server",
    )
    url = f"http://{LOOPBACK}:{port}"
    with supervised(supervisor, child, app.label, url, answers, "did not answer on /", secrets) as target:
        yield target
