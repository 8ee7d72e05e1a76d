"""--dsn as people write it (fast tier): accepted forms, one-line refusals, each driver's arguments, and
passwords masked in every form. The e2e twins that connect for real are in tests/test_dsn_forms.py."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import make_url

from bench import dsn
from bench.errors import BenchError
from targets.common import connargs
from targets.common.models import engine_choice

SECRET = "Sup3rS3cret"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://bob@h/app", "postgresql://bob@h/app"),
        ("postgresql+asyncpg://bob:pw@h/app", "postgresql://bob:pw@h/app"),
        ("postgresql+psycopg://bob@h:5433/app", "postgresql://bob@h:5433/app"),
        ("POSTGRESQL://bob@h/app", "postgresql://bob@h/app"),
        ("postgresql:///app?host=/var/run/postgresql", "postgresql:///app?host=/var/run/postgresql"),
        ("postgresql://%2Fvar%2Frun%2Fpostgresql/app", "postgresql://%2Fvar%2Frun%2Fpostgresql/app"),
        ("postgresql://bob@h/app?sslmode=disable&application_name=x", None),
        ("postgresql://bob@h/app?password=pw&connect_timeout=3", None),
        ("host=/tmp port=5432 dbname=app user=bob password='a b'", None),
    ],
)
def test_libpq_forms_are_accepted(given: str, expected: str | None) -> None:
    assert dsn.normalise(given) == (expected if expected is not None else given)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("mysql://u@h/db", "must be a PostgreSQL URL"),
        ("127.0.0.1:5432", "must look like"),
        ("postgresql://u@h/db?foo=bar", "invalid URI query parameter"),
        ("postgresql://u@h/db?keepalives=1", "'keepalives' has no asyncpg equivalent"),
        ("postgresql://u@h/db?client_encoding=latin1", "asyncpg speaks UTF8 only"),
        ("postgresql://u@h/db?connect_timeout=soon", "connect_timeout must be a number"),
    ],
)
def test_what_cannot_be_honoured_is_refused_in_one_line(bad: str, message: str) -> None:
    with pytest.raises(BenchError, match=message) as caught:
        dsn.normalise(bad)
    assert "\n" not in str(caught.value)


def test_a_malformed_host_is_one_line_without_the_password() -> None:
    # urllib raises "Invalid IPv6 URL" on this; the password scrubber must not, since it runs first.
    with pytest.raises(BenchError) as caught:
        dsn.normalise(f"postgresql://postgres:{SECRET}@[::1:5432/postgres")
    assert SECRET not in str(caught.value) and "\n" not in str(caught.value)
    assert SECRET not in dsn.redact(f"postgresql://postgres:{SECRET}@[::1:5432/postgres")


def test_a_raw_at_sign_gets_the_percent_encoding_hint_and_no_fragment() -> None:
    with pytest.raises(BenchError) as caught:
        dsn.normalise("postgresql://app:p@ss-w0rd@127.0.0.1:5432/app")
    message = str(caught.value)
    assert "%40" in message
    for fragment in ("p@ss-w0rd", "ss-w0rd", "p@ss"):
        assert fragment not in message
    assert "postgresql://app:***@127.0.0.1:5432/app" in message


def test_libpq_parse_errors_do_not_quote_the_input() -> None:
    with pytest.raises(BenchError) as caught:
        dsn.normalise(f"host=h password={SECRET} xx{SECRET}yy")
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        (f"postgresql://bob:{SECRET}@db.example:5433/app", "postgresql://bob:***@db.example:5433/app"),
        ("postgresql://bob@localhost/app", "postgresql://bob@localhost/app"),
        (f"postgresql+asyncpg://bob:{SECRET}@h/app", "postgresql+asyncpg://bob:***@h/app"),
        (
            f"postgresql://bob@h/app?sslmode=disable&password={SECRET}",
            "postgresql://bob@h/app?sslmode=disable&password=***",
        ),
        (
            f"postgresql://bob@h/app?password={SECRET}&sslmode=disable",
            "postgresql://bob@h/app?password=***&sslmode=disable",
        ),
        (f"host=h user=bob password={SECRET} dbname=app", "host=h user=bob password=*** dbname=app"),
        (f"host=h password='{SECRET} x' dbname=app", "host=h password=*** dbname=app"),
        (f"postgresql://bob:p@{SECRET}@h/app", "postgresql://bob:***@h/app"),
        (f"redis://:{SECRET}@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        (f"no route to postgresql://bob:{SECRET}@h/app: refused", "no route to postgresql://bob:***@h/app: refused"),
    ],
)
def test_redact_masks_the_password_in_every_form(given: str, shown: str) -> None:
    assert dsn.redact(given) == shown


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        (
            f"postgresql://bob:{SECRET}@db.example/app?application_name=a@b",
            "postgresql://bob:***@db.example/app?application_name=a@b",
        ),
        # No password, a port: nothing to mask (it was read as a password up to the query's "@": "h:***@b").
        (
            "postgresql://db.example:5432/app?application_name=a@b",
            "postgresql://db.example:5432/app?application_name=a@b",
        ),
        ("postgresql://bob@h/app?application_name=x:y@z", "postgresql://bob@h/app?application_name=x:y@z"),
        # A raw "@" in the password and one in the query: the password is masked whole, the query kept.
        (f"postgresql://bob:p@{SECRET}@h/app?application_name=a@b", "postgresql://bob:***@h/app?application_name=a@b"),
        (
            f"postgresql://bob:{SECRET}@h/app?sslmode=disable&password={SECRET}@x",
            "postgresql://bob:***@h/app?sslmode=disable&password=***",
        ),
        # A query key libpq does not know is no query string: masked to its "@" (too much is safe).
        (f"postgresql://bob:{SECRET}?x=1@h/app", "postgresql://bob:***@h/app"),
    ],
)
def test_an_at_sign_in_the_query_string_is_not_taken_for_a_password(given: str, shown: str) -> None:
    assert dsn.redact(given) == shown


def test_scrub_keeps_the_host_and_the_query_of_a_dsn_with_an_at_sign_in_its_query() -> None:
    said = "could not connect to db.example:5432 (application_name=reporting@ci)"
    for given in (
        f"postgresql://bob:{SECRET}@db.example:5432/app?application_name=reporting@ci",
        "postgresql://db.example:5432/app?application_name=reporting@ci",
    ):
        assert dsn.scrub(said, given) == said
    # A password that holds "?sslmode=" is read to the last "@" all the same: none of it is shown.
    refused = f"postgresql://bob:{SECRET}?sslmode=x@h/app"
    with pytest.raises(BenchError) as caught:
        dsn.normalise(refused)
    assert SECRET not in str(caught.value) and "postgresql://bob:***@h/app" in str(caught.value)


def test_scrub_masks_a_password_a_driver_quotes_and_its_fragments() -> None:
    raw = f"postgresql://bob:ab@{SECRET}@127.0.0.1/app"
    said = f"failed to resolve host '{SECRET}@127.0.0.1': [Errno -2] Name or service not known"
    assert SECRET not in dsn.scrub(said, raw)
    quoted = "postgresql://bob:x%40y%2Fz@h/app"
    assert "x@y/z" not in dsn.scrub("password authentication failed: x@y/z", quoted)
    assert SECRET not in dsn.scrub(f"bad value {SECRET}", f"host=h password={SECRET}")


def test_with_database_keeps_the_form_credentials_and_options() -> None:
    out = dsn.with_database("postgresql://bob:pw@h:1/app?sslmode=disable", "dbbench_1")
    assert out == "postgresql://bob:pw@h:1/dbbench_1?sslmode=disable"
    assert dsn.database_of(out) == "dbbench_1"
    # libpq lets ?dbname= win over the path: it must not keep pointing at the user's database.
    socket = dsn.with_database("postgresql:///app?host=/run/pg&dbname=app", "s")
    assert connargs.parse(socket) == {"dbname": "s", "host": "/run/pg"}
    keyvalue = dsn.with_database("host=/run/pg dbname=app password='a b'", "s")
    assert connargs.parse(keyvalue) == {"host": "/run/pg", "dbname": "s", "password": "a b"}


def test_asyncpg_gets_keyword_arguments_with_the_same_meaning() -> None:
    args = connargs.asyncpg_args(
        "postgresql+asyncpg://bob:p%40ss@%2Frun%2Fpg:5433/app?sslmode=disable&connect_timeout=3&application_name=x"
    )
    assert args["timeout"] == 3.0
    assert args["server_settings"] == {"application_name": "x"}
    from asyncpg.connect_utils import _parse_connect_dsn_and_args

    addresses, params = _parse_connect_dsn_and_args(
        dsn=args["dsn"],
        host=args["host"],
        port=args["port"],
        user=None,
        password=None,
        passfile=None,
        database=None,
        ssl=None,
        direct_tls=False,
        server_settings=None,
        target_session_attrs=None,
        krbsrvname=None,
        gsslib=None,
        service=None,
        servicefile=None,
    )
    assert params.user == "bob" and params.password == "p@ss" and params.database == "app"
    assert addresses == ["/run/pg/.s.PGSQL.5433"]  # the Unix socket libpq would use
    assert params.ssl is False  # sslmode=disable


@pytest.mark.parametrize(
    ("given", "host", "port"),
    [
        ("postgresql://u@[::1]:5433/db", "::1", 5433),
        ("postgresql://u@h1:1,h2/db", ["h1", "h2"], [1, 5432]),
        ("postgresql:///db?host=/run/pg", "/run/pg", None),
    ],
)
def test_asyncpg_gets_hosts_and_ports_as_arguments(given: str, host: object, port: object) -> None:
    args = connargs.asyncpg_args(given)
    assert args["host"] == host
    assert args.get("port") == port


def test_the_async_orm_engine_gets_no_libpq_keyword_and_no_password_in_its_url() -> None:
    choice = engine_choice(f"postgresql://bob:{SECRET}@h/app?sslmode=disable", "asyncpg", "aiosqlite")
    assert SECRET not in str(choice.url)
    assert "sslmode" not in choice.connect_args  # asyncpg.connect(sslmode=...) is the field's TypeError
    cargs, cparams = asyncpg_dialect().create_connect_args(make_url(choice.url))
    assert not cargs and not cparams  # everything comes from connect_args
    psycopg_choice = engine_choice("postgresql:///app?host=/run/pg&sslmode=disable", "psycopg", "pysqlite")
    assert psycopg_choice.connect_args == {"dbname": "app", "host": "/run/pg", "sslmode": "disable"}


@pytest.mark.parametrize(
    ("given", "char"),
    [
        ("postgresql://benchu:Wr0ngPwQQ/x@127.0.0.1/postgres", "%2F"),
        ("postgresql://benchu:Wr0ng?PwQQ@127.0.0.1/postgres", "%3F"),
        ("postgresql://benchu:Wr0ng#PwQQ@127.0.0.1/postgres", "%23"),
    ],
)
def test_a_raw_url_delimiter_in_the_password_is_refused_without_a_fragment(given: str, char: str) -> None:
    # libpq reads "benchu:Wr0ngPwQQ" as host:port and said "port must be a number, got 'Wr0ngPwQQ'".
    with pytest.raises(BenchError) as caught:
        dsn.normalise(given)
    message = str(caught.value)
    assert char in message and "postgresql://benchu:***@127.0.0.1/postgres" in message
    assert "Wr0ng" not in message and "PwQQ" not in message and "\n" not in message


def test_a_port_then_a_path_is_not_a_password_with_a_delimiter() -> None:
    assert dsn.normalise("postgresql://u:pw@h:5432/app") == "postgresql://u:pw@h:5432/app"


@pytest.mark.parametrize(
    "given",
    [
        "host=127.0.0.1 port=54329 user=benchu password=Wr0ng\\'PwQQ",
        "host=127.0.0.1 user=benchu password='Wr0ng \\'PwQQ' port=54329",
    ],
)
def test_escaped_and_quoted_key_value_passwords_are_masked_whole(given: str) -> None:
    for shown in (dsn.redact(given), dsn.scrub(f"error near 'PwQQ' and Wr0ng in {given}", given)):
        assert "Wr0ng" not in shown and "PwQQ" not in shown, shown
        assert "port=54329" in shown


def test_a_redis_client_error_is_masked_by_the_same_helper_in_every_form_of_the_password() -> None:
    from redis.exceptions import AuthenticationError

    from bench.redis_server import _reason

    url = f"redis://:p%40{SECRET}@127.0.0.1:6390/0"  # the client sends it percent-decoded: p@Sup3rS3cret
    said = _reason(AuthenticationError(f"invalid password p@{SECRET} for redis://:p%40{SECRET}@127.0.0.1\nmore"), url)
    assert SECRET not in said and "\n" not in said and said.startswith("invalid password ***"), said
