"""DSN handling: parse, retarget to another database, and redact passwords before anything is shown."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit, urlunsplit

from bench.errors import BenchError

_SCHEMES = ("postgresql", "postgres")


def validate(dsn: str) -> str:
    parts = urlsplit(dsn)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in _SCHEMES or not parts.hostname:
        raise BenchError(f"--dsn must look like postgresql://user[:password]@host[:port]/dbname, got {redact(dsn)!r}")
    return dsn


def redact(dsn: str) -> str:
    """The DSN with any password replaced by ``***`` (safe to print and to store in results)."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    user = quote(unquote(parts.username or ""), safe="")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def with_database(dsn: str, dbname: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(dbname), parts.query, parts.fragment))


def database_of(dsn: str) -> str:
    return unquote(urlsplit(dsn).path.lstrip("/")) or "postgres"
