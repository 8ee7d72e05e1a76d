"""The --dsn rows of the field cases (../shared/field-cases/README.md), against the embedded PostgreSQL:
every form libpq or DATABASE_URL accepts reaches every variant in its driver's own terms, what cannot work is
refused in one line, and no fragment of a password appears in stdout, stderr, the results file or a report."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from bench import pg, seed
from bench.procs import Supervisor
from bench.target import PROJECT_ROOT, TargetFailed, serve
from targets import VARIANTS
from targets.common.settings import TargetSpec

SECRET = "Fie1d-Pa55word"  # trust auth on the embedded server: sent or not, it must never be shown


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "bench", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT)


def run_one(dsn: str, variants: str, out: Path) -> subprocess.CompletedProcess[str]:
    return bench("run", "--dsn", dsn, "--variants", variants, "--scenarios", "db", "--users", "2",
                 "--warmup", "0.5", "--duration", "1", "--no-calibrate", "-o", str(out))  # fmt: skip


def assert_no_secret(proc: subprocess.CompletedProcess[str], out: Path, secret: str = SECRET) -> None:
    """Nothing a user sees or keeps holds the password or a piece of it."""
    seen = {"stdout": proc.stdout, "stderr": proc.stderr}
    if out.exists():
        seen["results"] = out.read_text()
        for fmt in ("terminal", "md", "json"):
            seen[f"report {fmt}"] = bench("report", str(out), "--format", fmt).stdout
    for where, text in seen.items():
        for fragment in {secret, secret[: len(secret) // 2], secret[len(secret) // 2 :]}:
            assert fragment not in text, f"{fragment!r} in {where}"


def ok_cells(out: Path) -> list[dict[str, object]]:
    data = json.loads(out.read_text())
    assert all(check["ok"] for check in data["checks"]), data["checks"]
    cells: list[dict[str, object]] = data["cells"]
    assert cells and all(cell["status"] == "ok" and int(str(cell["requests"])) > 0 for cell in cells), cells
    return cells


@pytest.fixture
def port(pg_database: pg.Database) -> str:
    return pg_database.dsn.rsplit(":", 1)[1].split("/", 1)[0]


def test_sqlalchemy_style_url_with_sslmode_runs_async_orm_and_never_shows_the_password(
    port: str, tmp_path: Path
) -> None:
    """Rows 1 and 3: postgresql+asyncpg:// (normalised per driver) and ?sslmode=disable, which SQLAlchemy's
    asyncpg dialect used to pass on as asyncpg.connect(sslmode=...) → TypeError, async_orm dropped."""
    out = tmp_path / "asyncpg_url.json"
    dsn = f"postgresql+asyncpg://postgres:{SECRET}@127.0.0.1:{port}/postgres?sslmode=disable"
    proc = run_one(dsn, "async_orm,pooled", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {cell["variant"] for cell in ok_cells(out)} == {"async_orm", "pooled"}
    assert json.loads(out.read_text())["metadata"]["database"]["dsn"].startswith("postgresql://postgres:***@")
    assert_no_secret(proc, out)


def test_unix_socket_dsn_reaches_both_drivers(pg_database: pg.Database, port: str, tmp_path: Path) -> None:
    """Row 2: postgresql:///db?host=/socket/dir (libpq's Unix-socket form) for psycopg (sync) and asyncpg."""
    assert pg_database.socket_dir is not None
    out = tmp_path / "socket.json"
    dsn = f"postgresql:///postgres?host={pg_database.socket_dir}&port={port}&user=postgres&password={SECRET}"
    proc = run_one(dsn, "sync,nopool", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {cell["variant"] for cell in ok_cells(out)} == {"sync", "nopool"}
    assert "password=***" in json.loads(out.read_text())["metadata"]["database"]["dsn"]  # was stored in clear
    assert_no_secret(proc, out)


@pytest.fixture(scope="module")
def scratch(pg_database: pg.Database) -> Iterator[pg.Database]:
    """A seeded database of this module's own on the session's server."""
    with pg.external(pg_database.dsn) as database:
        seed.apply_schema(database.dsn)
        seed.seed(database.dsn)
        yield database


def test_every_variant_connects_with_every_libpq_spelling_at_once(
    pg_database: pg.Database, scratch: pg.Database, port: str, tmp_path: Path
) -> None:
    """Each variant's own driver gets the DSN in its terms: SQLAlchemy scheme, %2F socket host,
    percent-encoded password, sslmode, connect_timeout and application_name (a server setting for asyncpg)."""
    assert pg_database.socket_dir is not None
    database = scratch.dsn.rsplit("/", 1)[1]
    host = quote(pg_database.socket_dir, safe="")
    dsn = (
        f"postgresql+psycopg://postgres:{quote(SECRET + '@x')}@{host}:{port}/{database}"
        "?sslmode=disable&connect_timeout=5&application_name=dbbench-dsn-forms"
    )
    with Supervisor() as supervisor:
        for variant in VARIANTS:
            log = tmp_path / f"{variant.name}.log"
            with serve(supervisor, variant.name, variant.app, TargetSpec(dsn, 2), log) as target:
                response = httpx.get(f"{target.url}/db", timeout=10)
                assert response.status_code == 200, (variant.name, target.server_exception())
                assert set(response.json()) == {"id", "randomNumber"}


def test_a_variant_that_cannot_start_shows_its_exception_without_the_password(
    scratch: pg.Database, tmp_path: Path
) -> None:
    """Row 3's second half: the reason is the exception in the variant's log, not uvicorn's last line."""
    base = scratch.dsn.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")
    dsn = f"{base}?sslmode=require"  # the embedded server has no TLS: asyncpg refuses at start-up
    spec = TargetSpec(dsn, 1)
    with (
        Supervisor() as supervisor,
        pytest.raises(TargetFailed) as caught,
        serve(supervisor, "pooled", "targets.pooled:app", spec, tmp_path / "t.log"),
    ):
        pass
    reason = str(caught.value)
    assert "pooled exited during start-up" in reason
    assert "Application startup failed" not in reason
    assert "Error" in reason and "SSL" in reason, reason
    assert SECRET not in reason


def test_a_raw_at_in_the_password_is_refused_with_the_percent_encoding_hint(port: str, tmp_path: Path) -> None:
    """Row 4: libpq reads postgresql://u:ab@cd@host as host 'cd@host' and printed the password's tail."""
    out = tmp_path / "raw_at.json"
    proc = run_one(f"postgresql://postgres:ab@{SECRET}@127.0.0.1:{port}/postgres", "pooled", out)
    assert proc.returncode == 2
    assert "%40" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
    assert_no_secret(proc, out)
    assert "ab@" not in proc.stderr
