"""One PostgreSQL DSN, as each variant's driver takes it.

A run hands every variant the DSN its user wrote (``targets.common.settings``): a libpq URL (``postgresql://``,
``postgres://``, SQLAlchemy's ``postgresql+asyncpg://``...) or a libpq ``key=value`` string. What it means is
libpq's business, so libpq parses it: ``psycopg.conninfo.conninfo_to_dict`` is libpq's own
``PQconninfoParse`` (percent-decoding, ``%2F`` socket hosts, ``?host=/dir``, ``?password=``, quoting).
Each driver then gets the result in the form it accepts:

* psycopg 3 (sync, through SQLAlchemy; and dbbench itself): the libpq keywords, handed back to libpq.
* asyncpg (pooled, cached, nopool, databases; async_orm through SQLAlchemy's asyncpg dialect): keyword
  arguments of ``asyncpg.connect`` / ``create_pool``. Never the user's URL: asyncpg sends every URL query
  parameter it does not know to the server as a setting (``connect_timeout`` → "unrecognized configuration
  parameter"), and SQLAlchemy's dialect turns them into keyword arguments (``sslmode`` → ``TypeError``).

A libpq parameter asyncpg has no equivalent for raises ``UnsupportedDsn``, so the run refuses it up front
instead of a variant dying at start-up.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

# The schemes libpq accepts, plus SQLAlchemy's "+driver" spelling of them (DATABASE_URL often has one).
URL_SCHEME = re.compile(r"^(?P<scheme>postgres(?:ql)?)(?:\+[A-Za-z0-9_]+)?://", re.IGNORECASE)

# libpq keywords asyncpg's own DSN parser reads (asyncpg 0.32 connect_utils._parse_connect_dsn_and_args).
ASYNCPG_NATIVE = frozenset(
    {
        "host",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "service",
        "sslmode",
        "sslcert",
        "sslkey",
        "sslrootcert",
        "sslcrl",
        "sslpassword",
        "sslnegotiation",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
    }
)
# libpq keywords that are startup parameters of the server: asyncpg sends them as server_settings.
ASYNCPG_SERVER_SETTINGS = frozenset({"application_name", "options"})
_UTF8 = ("utf8", "utf-8", "unicode")
DEFAULT_PORT = 5432
_UNKNOWN_PARAMETER = "invalid URI query parameter"


class UnsupportedDsn(ValueError):
    """A DSN libpq rejects, or a parameter one of the variants' drivers cannot honour. The message never
    contains the DSN (it may hold a password)."""


def normalise_scheme(dsn: str) -> str:
    """``postgres://``, ``postgresql+asyncpg://``... → ``postgresql://``; a ``key=value`` string unchanged."""
    return URL_SCHEME.sub("postgresql://", dsn.strip(), count=1)


def parse(dsn: str) -> dict[str, str]:
    """The libpq keywords of ``dsn`` (URL or key=value), e.g. ``{"host": "/var/run/postgresql", ...}``.

    Raises ``UnsupportedDsn`` naming libpq's complaint without echoing the input.
    """
    # Imported here: psycopg costs ~0.2 s CPU to import, and `bench report` reaches this module (failures ->
    # dsn -> here, for redaction) without ever parsing a DSN.
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        return {key: str(value) for key, value in conninfo_to_dict(normalise_scheme(dsn)).items()}
    except ProgrammingError as exc:
        raise UnsupportedDsn(f"libpq cannot parse it: {_without_input(str(exc))}") from None


def psycopg_args(dsn: str) -> dict[str, str]:
    """Keyword arguments of ``psycopg.connect`` (SQLAlchemy ``connect_args`` for ``postgresql+psycopg://``)."""
    return parse(dsn)


def asyncpg_args(dsn: str) -> dict[str, Any]:
    """Keyword arguments of ``asyncpg.connect`` / ``asyncpg.create_pool`` with the same meaning as ``dsn``.

    Hosts and ports are arguments; the other keywords asyncpg knows travel in a DSN built for it (its parser
    reads SSL files, passfile and service the way libpq does); ``connect_timeout`` becomes ``timeout``
    (seconds) and ``application_name`` / ``options`` become ``server_settings``. Raises ``UnsupportedDsn``
    for anything else.
    """
    params = parse(dsn)
    args: dict[str, Any] = {}
    settings: dict[str, str] = {}
    native: dict[str, str] = {}
    for key, value in params.items():
        if key in ASYNCPG_NATIVE:
            native[key] = value
        elif key in ASYNCPG_SERVER_SETTINGS:
            settings[key] = value
        elif key == "fallback_application_name":
            settings.setdefault("application_name", value)
        elif key == "connect_timeout":
            # libpq: seconds, 0 or negative = wait forever; asyncpg: seconds, a float (default 60).
            timeout = _timeout(value)
            if timeout is not None:
                args["timeout"] = timeout
        elif key == "client_encoding":
            if value.lower() not in _UTF8:
                raise UnsupportedDsn(f"client_encoding={value}: asyncpg speaks UTF8 only; drop it")
        else:
            raise UnsupportedDsn(
                f"the libpq parameter {key!r} has no asyncpg equivalent (the pooled, cached, nopool, databases "
                "and async_orm variants use asyncpg); drop it"
            )
    # Hosts and ports as arguments: asyncpg reads an IPv6 host in a DSN's query as host:port.
    if "host" in native:
        hosts = native.pop("host").split(",")
        args["host"] = hosts if len(hosts) > 1 else hosts[0]
    if "port" in native:
        ports = [_port(port) for port in native.pop("port").split(",")]
        args["port"] = ports if len(ports) > 1 else ports[0]
    args["dsn"] = "postgresql://?" + urlencode(native) if native else "postgresql://"
    if settings:
        args["server_settings"] = settings
    return args


def _port(value: str) -> int:
    """libpq: an empty entry in a port list means the default port."""
    try:
        return int(value) if value else DEFAULT_PORT
    except ValueError:
        raise UnsupportedDsn(f"port must be a number, got {value!r}") from None


def _timeout(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        raise UnsupportedDsn(f"connect_timeout must be a number of seconds, got {value!r}") from None
    return seconds if seconds > 0 else None  # libpq's "forever": asyncpg's own default (60 s) instead


def _without_input(message: str) -> str:
    """libpq's complaint with the parts of the input it quotes cut out (they may be the password); an unknown
    parameter's name is kept: it is a key, and the user needs it."""
    message = message.strip().splitlines()[0] if message.strip() else "invalid"
    if message.startswith(_UNKNOWN_PARAMETER):
        return message
    return re.sub(r'"[^"]*"', '"…"', message)
