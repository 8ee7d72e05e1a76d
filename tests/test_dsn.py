from __future__ import annotations

import pytest

from bench import dsn
from bench.errors import BenchError


def test_redact_removes_password_only() -> None:
    assert dsn.redact("postgresql://bob:s3cr%40t@db.example:5433/app") == "postgresql://bob:***@db.example:5433/app"
    assert dsn.redact("postgresql://bob@localhost/app") == "postgresql://bob@localhost/app"


def test_with_database_keeps_credentials_and_options() -> None:
    out = dsn.with_database("postgresql://bob:pw@h:1/app?sslmode=disable", "dbbench_1")
    assert out == "postgresql://bob:pw@h:1/dbbench_1?sslmode=disable"
    assert dsn.database_of(out) == "dbbench_1"


@pytest.mark.parametrize("bad", ["mysql://u@h/db", "127.0.0.1:5432", "postgresql:///db"])
def test_validate_rejects_non_postgres_urls(bad: str) -> None:
    with pytest.raises(BenchError, match="--dsn must look like"):
        dsn.validate(bad)
