"""--dsn through a real PgBouncer (field case: "a DSN through PgBouncer in transaction pool mode").

Before: 2 of 3 runs were "ok", exit 0, with 53-61 % HTTP 500s (asyncpg's prepared statements meet another
server connection), otherwise only "HTTP 500" lines. Now the run asks the pooler first (bench.pooling) and gives
the same verdict every time, naming the server's prepared-statement error and the fix; a session-mode pool,
where the drivers work, is measured as usual.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from bench import pg
from bench.net import LOOPBACK, free_port
from bench.procs import Supervisor
from bench.target import PROJECT_ROOT
from targets.common import connargs

SECRET = "B0uncer-Pa55word"  # auth_type = trust: never checked, and it must never be shown either
RUNS = 3


def bench_run(dsn: str, out: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "bench", "run", "--dsn", dsn, "--variants", "pooled", "--scenarios", "db",
            "--users", "4", "--warmup", "0.5", "--duration", "1", "--no-calibrate", "-o", str(out)]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT)


@pytest.fixture
def pgbouncer(pg_database: pg.Database, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Start a PgBouncer in ``pool_mode`` in front of the session's embedded PostgreSQL; returns its DSN.

    Every database name falls through to the server (``* =``): the run creates its scratch database there.
    """
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    assert Path(binary).exists(), "pgbouncer is not installed: apt-get install pgbouncer (.ci/run does)"
    server = connargs.parse(pg_database.dsn)
    with Supervisor() as supervisor:

        def start(pool_mode: str) -> str:
            port = free_port()
            (tmp_path / "users.txt").write_text('"postgres" ""\n')
            ini = tmp_path / f"pgbouncer-{pool_mode}.ini"
            ini.write_text(
                f"[databases]\n* = host={server['host']} port={server['port']}\n"
                f"[pgbouncer]\nlisten_addr = {LOOPBACK}\nlisten_port = {port}\nunix_socket_dir =\n"
                f"auth_type = trust\nauth_file = {tmp_path / 'users.txt'}\npool_mode = {pool_mode}\n"
                "max_client_conn = 200\ndefault_pool_size = 20\n"
            )
            # PgBouncer refuses to run as root; -u drops to the postgres user after reading its files.
            argv = [binary, *(["-u", "postgres"] if os.geteuid() == 0 else []), str(ini)]
            child = supervisor.start(f"pgbouncer-{pool_mode}", argv, log_path=tmp_path / f"{pool_mode}.log")
            dsn = f"postgresql://postgres:{SECRET}@{LOOPBACK}:{port}/postgres"
            deadline = time.monotonic() + 15
            while True:
                try:
                    psycopg.connect(dsn, connect_timeout=2).close()
                    return dsn
                except psycopg.OperationalError:
                    if not child.alive() or time.monotonic() > deadline:
                        pytest.fail(f"pgbouncer did not start: {child.log_tail()}")
                    time.sleep(0.1)

        yield start


def scratch_databases(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'dbbench\\_%'")]


def test_transaction_pooling_gets_the_same_verdict_every_run_with_the_cause_and_the_fix(
    pgbouncer: Callable[[str], str], pg_dsn: str, tmp_path: Path
) -> None:
    dsn = pgbouncer("transaction")
    before = scratch_databases(pg_dsn)
    verdicts = set()
    for run in range(RUNS):
        out = tmp_path / f"run{run}.json"
        proc = bench_run(dsn, out)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        reason = lines[0]
        assert "transaction pool mode" in reason
        assert "prepared statement" in reason and "does not exist" in reason  # the server's own words
        assert "statement_cache_size=0" in reason and "pool_mode = session" in reason  # the fixes
        assert SECRET not in proc.stdout + proc.stderr
        assert not out.exists()
        verdicts.add((proc.returncode, reason.split("prepared statement", 1)[0]))
    assert len(verdicts) == 1
    assert scratch_databases(pg_dsn) == before  # refused before anything was created


def test_statement_pooling_is_refused_too(pgbouncer: Callable[[str], str], tmp_path: Path) -> None:
    proc = bench_run(pgbouncer("statement"), tmp_path / "statement.json")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "statement pool" in proc.stderr and "statement_cache_size=0" in proc.stderr, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr


def test_session_pooling_is_measured(pgbouncer: Callable[[str], str], tmp_path: Path) -> None:
    """No false alarm: in session mode a client keeps its server, and asyncpg's statements work."""
    out = tmp_path / "session.json"
    proc = bench_run(pgbouncer("session"), out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert [cell["status"] for cell in data["cells"]] == ["ok"]
    assert not any(cell["errors"] for cell in data["cells"])
    assert SECRET not in proc.stdout + proc.stderr + out.read_text()
