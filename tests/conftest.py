"""Shared fixtures: a real embedded PostgreSQL for the session, real uvicorn targets, and a guard
that fails any test which leaves a child process running."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from bench import pg
from bench.net import LOOPBACK, free_port
from bench.procs import Supervisor
from bench.target import PROJECT_ROOT, uvicorn_argv

# Tests that use these start real processes: they are the e2e tier (modules that start processes some other
# way say so with ``pytestmark = pytest.mark.e2e``). ``pytest -m "not e2e"`` is the inner loop.
_REAL_FIXTURES = frozenset({"pg_database", "pg_dsn", "run_target", "session_supervisor"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _REAL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


# Parallel runs (pytest-xdist: scripts/check passes ``-n 2``): a test marked ``serial`` asserts on measured
# rates or latencies, which a test in another worker would distort on a 2-core machine, so it runs alone.
# Every test holds a shared lock on one file for its whole protocol (its fixtures' set-up and tear-down
# included, where module servers start and stop); a ``serial`` test holds it exclusively. A second file is a
# turnstile everyone passes through before taking the first, and a ``serial`` test holds it while it waits,
# so no new test starts meanwhile and it cannot starve (Linux's flock prefers no waiter). The controller makes
# both files before it spawns the workers, which inherit its environment.
_SERIAL_LOCK = "PYTEST_DBBENCH_SERIAL_LOCK"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") or not config.getoption("numprocesses", default=None):
        return
    directory = Path(tempfile.mkdtemp(prefix="dbbench-tests-"))
    os.environ[_SERIAL_LOCK] = str(directory)
    config.add_cleanup(lambda: shutil.rmtree(directory, ignore_errors=True))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    directory = os.environ.get(_SERIAL_LOCK) if os.environ.get("PYTEST_XDIST_WORKER") else None
    if not directory:
        yield
        return
    exclusive = item.get_closest_marker("serial") is not None
    with open(Path(directory) / "turnstile", "a") as turnstile, open(Path(directory) / "tests", "a") as tests:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        fcntl.flock(tests, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        fcntl.flock(turnstile, fcntl.LOCK_UN)
        yield  # closing the file releases the lock


@pytest.fixture(scope="session")
def session_supervisor() -> Iterator[Supervisor]:
    with Supervisor() as supervisor:
        yield supervisor


# Process groups started for the whole session (the embedded PostgreSQL): allowed to outlive a test.
_SESSION_GROUPS: set[int] = set()


@pytest.fixture(scope="session")
def pg_database(session_supervisor: Supervisor) -> Iterator[pg.Database]:
    """The toolkit's own embedded throwaway PostgreSQL: real server, free port, removed afterwards."""
    with pg.embedded(session_supervisor) as database:
        _SESSION_GROUPS.update(child.pid for child in session_supervisor.children)
        yield database


@pytest.fixture(scope="session")
def pg_dsn(pg_database: pg.Database) -> str:
    return pg_database.dsn


@pytest.fixture
def run_target(tmp_path: Path) -> Iterator[Callable[[str, dict[str, str]], str]]:
    """Start ``uvicorn <app_import>`` on a free loopback port with extra env; returns its base URL."""
    with Supervisor() as supervisor:

        def start(app_import: str, env: dict[str, str]) -> str:
            port = free_port()
            full_env = {**os.environ, **env, "PYTHONPATH": str(PROJECT_ROOT)}
            log = tmp_path / f"uvicorn-{port}.log"
            child = supervisor.start(
                "uvicorn", uvicorn_argv(app_import, port, 1), env=full_env, log_path=log, cwd=PROJECT_ROOT
            )
            url = f"http://{LOOPBACK}:{port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if not child.alive():
                    pytest.fail(f"{app_import} exited during start-up:\n{child.log_tail()}")
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        return url
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            pytest.fail(f"{app_import} not healthy within 30 s:\n{child.log_tail()}")

        yield start


def _descendants() -> set[int]:
    pids = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if os.getpgid(child.pid) not in _SESSION_GROUPS:
                pids.add(child.pid)
        except ProcessLookupError:
            continue
    return pids


@pytest.fixture(autouse=True)
def no_leftover_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a process behind (the session's PostgreSQL is allowed to stay)."""
    before = _descendants()
    yield
    deadline = time.monotonic() + 10
    leftover = _descendants() - before
    while leftover and time.monotonic() < deadline:
        time.sleep(0.1)
        leftover = {pid for pid in leftover & _descendants() if _running(pid)}
    if leftover:
        names = []
        for pid in leftover:
            try:
                names.append(f"{pid} {' '.join(psutil.Process(pid).cmdline())[:120]}")
            except psutil.Error:
                continue
        if names:
            pytest.fail(f"{request.node.nodeid} left processes running: {names}")


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
