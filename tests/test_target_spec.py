"""The target spec (targets.common.settings) and what bench.target quotes from a variant's log (fast tier)."""

from __future__ import annotations

import pytest

from bench.target import exception_in
from targets.common import instrument, profiling, settings
from targets.common.settings import CacheSpec, TargetSpec

# The field's log (async_orm, --dsn ...?sslmode=disable): uvicorn's last line said nothing.
UVICORN_STARTUP_FAILURE = """\
INFO:     Started server process [4242]
INFO:     Waiting for application startup.
ERROR:    Traceback (most recent call last):
  File "/app/.venv/lib/python3.11/site-packages/starlette/routing.py", line 694, in lifespan
    async with self.lifespan_context(app) as maybe_state:
  File "/app/.venv/lib/python3.11/site-packages/asyncpg/connection.py", line 2421, in connect
    return await connect_utils._connect(
TypeError: connect() got an unexpected keyword argument 'sslmode'

ERROR:    Application startup failed. Exiting.
"""

# asyncpg through a transaction-mode pooler: a multi-line message whose HINT names the fix.
ASYNCPG_UNDER_PGBOUNCER = """\
ERROR:    Exception in ASGI application
Traceback (most recent call last):
  File "/app/targets/pooled.py", line 50, in read_worlds
    rows = [await conn.fetchrow(SELECT_WORLD, world_id) for world_id in ids]
asyncpg.exceptions.InvalidSQLStatementNameError: prepared statement "__asyncpg_stmt_1__" does not exist
HINT:
NOTE: pgbouncer with pool_mode set to "transaction" or "statement" does not support prepared statements properly.
INFO:     127.0.0.1:5000 - "GET /db HTTP/1.1" 500 Internal Server Error
"""


def test_every_setting_survives_the_process_boundary() -> None:
    spec = TargetSpec(
        "postgresql://bob:pw@h/db?sslmode=disable",
        pool_size=4,
        variant="cached",
        instrument=False,
        cache=CacheSpec("redis", "redis://127.0.0.1:6390/0"),
        profile_dir="/tmp/profiles",
    )
    assert TargetSpec.from_env(spec.to_env()) == spec
    assert TargetSpec.from_env(TargetSpec("postgresql://h/db").to_env()) == TargetSpec("postgresql://h/db")


def test_every_variable_a_target_reads_is_declared_in_the_spec() -> None:
    names = set(TargetSpec("d", instrument=True, cache=CacheSpec("redis", "r"), profile_dir="p", variant="v").to_env())
    declared = {value for key, value in vars(settings).items() if key.isupper() and str(value).startswith("DBBENCH_")}
    assert names == declared


# Values TargetSpec.to_env cannot write, as a person could set them, under the spec's own names.
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, f"{settings.DSN} is not set"),
        ({settings.DSN: "x", settings.POOL_SIZE: "0"}, f"{settings.POOL_SIZE} must be at least 1"),
        ({settings.DSN: "x", settings.POOL_SIZE: "ten"}, f"{settings.POOL_SIZE} must be an integer"),
        ({settings.DSN: "x", settings.CACHE: "memcached"}, f"{settings.CACHE} must be one of memory, redis"),
        ({settings.DSN: "x", settings.CACHE: "redis"}, f"needs {settings.REDIS_URL}"),
    ],
)
def test_a_wrong_setting_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        TargetSpec.from_env(env)


def test_the_import_time_switches_read_the_same_declarations() -> None:
    assert instrument.enabled(True, TargetSpec("d", instrument=False).to_env()) is False
    assert instrument.enabled(False, TargetSpec("d", instrument=True).to_env()) is True
    assert instrument.enabled(False, TargetSpec("d").to_env()) is False
    assert profiling.sink_from_env(TargetSpec("d").to_env()) is None
    assert profiling.sink_from_env(TargetSpec("d", profile_dir="/tmp/p").to_env()) is not None


def test_the_reason_is_the_exception_not_uvicorns_last_line() -> None:
    assert exception_in(UVICORN_STARTUP_FAILURE) == "TypeError: connect() got an unexpected keyword argument 'sslmode'"
    under_load = exception_in(ASYNCPG_UNDER_PGBOUNCER)
    assert under_load is not None
    assert under_load.startswith("asyncpg.exceptions.InvalidSQLStatementNameError: prepared statement")
    assert exception_in("INFO:     Started server process [1]\n") is None


def test_a_password_in_the_log_is_masked() -> None:
    log = "Traceback (most recent call last):\nOSError: cannot reach postgresql://bob:Hunter22@h/db (Hunter22)\n"
    reason = exception_in(log, ("postgresql://bob:Hunter22@h/db",))
    assert reason is not None and "Hunter22" not in reason
