"""pyinstrument profiles written by the targets themselves, under real uvicorn against real PostgreSQL.

Each test starts a variant with DBBENCH_PROFILE_DIR, makes ~50 requests, stops it with SIGTERM (uvicorn's
graceful shutdown runs the lifespan exit, which writes the file) and reads the combined session back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pyinstrument.session import Session

from bench import profiles
from bench.net import LOOPBACK, free_port
from bench.procs import Supervisor
from bench.seed import apply_schema, seed
from bench.target import PROJECT_ROOT, uvicorn_argv
from targets import VARIANTS
from targets.common import settings
from targets.common.profiling import FILENAME
from targets.common.settings import TargetSpec

pytestmark = pytest.mark.e2e  # starts real processes: the slow tier

# Where each variant's driver lives: the profile must show time spent inside it, not only the event loop.
DRIVER_FILES = {
    "pooled": ("/asyncpg/",),
    "sync": ("/sqlalchemy/", "/psycopg/"),
    "async_orm": ("/sqlalchemy/", "/asyncpg/"),
    "databases": ("/databases/", "/asyncpg/"),
}
PATHS = ["/queries?queries=20", "/db", "/fortunes", "/authors/lazy?limit=10", "/updates?queries=5"] * 10


def file_paths(session: Session) -> set[str]:
    root = session.root_frame()
    assert root is not None
    seen, stack = set(), [root]
    while stack:
        frame = stack.pop()
        if frame.file_path:
            seen.add(frame.file_path)
        stack.extend(frame.children)
    return seen


@pytest.fixture
def seeded_dsn(pg_dsn: str) -> str:
    apply_schema(pg_dsn)
    seed(pg_dsn)
    return pg_dsn


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    with Supervisor() as supervisor:
        yield supervisor


def serve_profiled(supervisor: Supervisor, variant: str, dsn: str, profile_dir: Path, log: Path) -> Path:
    """Start, load, SIGTERM; return the profile file the target wrote on its way out."""
    port = free_port()
    env = {
        **os.environ,
        **TargetSpec(dsn, 4, profile_dir=str(profile_dir)).to_env(),
        "PYTHONPATH": str(PROJECT_ROOT),
        "PYTHONWARNINGS": "error",
    }
    argv = uvicorn_argv(VARIANTS.get(variant).app, port, 1)
    child = supervisor.start(variant, argv, env=env, log_path=log, cwd=PROJECT_ROOT)
    url = f"http://{LOOPBACK}:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert child.alive(), child.log_tail()
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, child.log_tail()
            time.sleep(0.1)
    with httpx.Client(base_url=url, timeout=30) as client:
        for path in PATHS:
            client.get(path).raise_for_status()
    assert not (profile_dir / FILENAME).exists()  # written at shutdown, not per request
    # SIGTERM: uvicorn shuts down gracefully (lifespan exit runs), then re-raises the signal (exit -15).
    supervisor.stop(child)
    assert (profile_dir / FILENAME).is_file(), child.log_tail()
    return profile_dir / FILENAME


@pytest.mark.parametrize("variant", list(DRIVER_FILES))
def test_profile_holds_every_request_and_the_driver(
    variant: str, seeded_dsn: str, supervisor: Supervisor, tmp_path: Path
) -> None:
    path = serve_profiled(supervisor, variant, seeded_dsn, tmp_path / "profile", tmp_path / "uvicorn.log")

    session = Session.load(str(path))
    assert session.sample_count > 0 and session.duration > 0
    files = file_paths(session)
    for driver in DRIVER_FILES[variant]:
        assert any(driver in f for f in files), (driver, sorted(files)[:40])
    assert any(f.endswith("targets/common/contract.py") for f in files)  # the routes themselves were sampled

    # What a person opens: the speedscope file holds the request's frames (the driver's among them), not
    # the single "run" frame left when interleaved requests fragmented the tree; both files stay small.
    rendered = profiles.render(path, tmp_path / "out", variant)
    speedscope = json.loads((tmp_path / "out" / rendered["files"]["speedscope"]).read_text())
    frame_files = {frame["file"] or "" for frame in speedscope["shared"]["frames"]}
    for driver in DRIVER_FILES[variant]:
        assert any(driver in f for f in frame_files), (driver, sorted(frame_files))
    assert len(speedscope["profiles"][0]["events"]) > 20
    for name in rendered["files"].values():
        assert (tmp_path / "out" / name).stat().st_size < 10_000_000, name


def test_sync_profile_is_taken_in_the_worker_threads(seeded_dsn: str, supervisor: Supervisor, tmp_path: Path) -> None:
    # A loop-side middleware would see only the event loop awaiting the threadpool (pyinstrument #257):
    # the driver's frames prove the samples come from the threads that ran the routes.
    path = serve_profiled(supervisor, "sync", seeded_dsn, tmp_path / "p", tmp_path / "uvicorn.log")
    files = file_paths(Session.load(str(path)))
    assert any("/psycopg/" in f for f in files)
    assert any(f.endswith("sqlalchemy/orm/session.py") for f in files)
    assert not any(f.endswith("asyncio/base_events.py") for f in files)  # no event-loop stacks at all


def test_without_profile_dir_no_profiler_is_on_the_request_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.PROFILE_DIR, raising=False)
    code = (
        "import sys, targets.async_orm as p, targets.sync as s\n"
        "db = next(r.endpoint for r in s.app.routes if getattr(r, 'path', '') == '/db')\n"
        "print([m.cls.__name__ for m in p.app.user_middleware], hasattr(db, '__wrapped__'),"
        " 'pyinstrument' in sys.modules, p.app.stats_collector is not None)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT
    ).stdout
    # No middleware at all: the statistics are timed in the app's own __call__ (instrument.RequestTiming).
    assert out.strip() == "[] False False True"
