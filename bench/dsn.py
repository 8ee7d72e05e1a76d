"""--dsn as people write it: accepted in libpq's forms, refused up front in one line, never shown with its password.

Meaning comes from libpq itself (``targets.common.connargs``, over ``psycopg.conninfo``); this module adds what the
command line needs: one-line refusals (with a ``%40`` hint for a raw ``@``), a scratch database on the same
server, and redaction of a password wherever one may appear: URL userinfo, a ``password=`` query parameter
or ``key=value`` pair, and any error text a driver built from the DSN.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from bench.errors import BenchError
from targets.common import connargs

MASK = "***"
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$", re.DOTALL)
# The parameters libpq reads from a URL's query string: its connection keywords (libpq 18's, as
# psycopg.pq.Conninfo.get_defaults() lists them, 2026-12). A keyword missing here (a newer libpq's) only makes
# redact mask more: an "@" in its value is then taken for the end of a password.
_LIBPQ_KEYWORDS = (
    "application_name",
    "channel_binding",
    "client_encoding",
    "connect_timeout",
    "dbname",
    "fallback_application_name",
    "gssdelegation",
    "gssencmode",
    "gsslib",
    "host",
    "hostaddr",
    "keepalives",
    "keepalives_count",
    "keepalives_idle",
    "keepalives_interval",
    "krbsrvname",
    "load_balance_hosts",
    "max_protocol_version",
    "min_protocol_version",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_issuer",
    "oauth_scope",
    "options",
    "passfile",
    "password",
    "port",
    "replication",
    "require_auth",
    "requirepeer",
    "scram_client_key",
    "scram_server_key",
    "service",
    "ssl_max_protocol_version",
    "ssl_min_protocol_version",
    "sslcert",
    "sslcertmode",
    "sslcompression",
    "sslcrl",
    "sslcrldir",
    "sslkey",
    "sslkeylogfile",
    "sslmode",
    "sslnegotiation",
    "sslpassword",
    "sslrootcert",
    "sslsni",
    "target_session_attrs",
    "tcp_user_timeout",
    "user",
)
# A URL's query string starts at a "?" followed by one of them and "=" ("?application_name=a@b").
_QUERY_START = r"\?(?:" + "|".join(_LIBPQ_KEYWORDS) + r")="
# userinfo with a password: up to the last "@" of the token before its query string (a raw "@" in a password
# included, an "@" in a query value not: "?application_name=a@b" is no password). A password that itself holds
# "?sslmode=" (or another keyword) before its "@" is not found here: normalise refuses a raw "?" in a password,
# its pieces masked by scrub (_secrets reads such a password to the last "@"), before it is used or shown.
_USERINFO_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*):(?P<password>(?:(?!" + _QUERY_START + r")\S)*)@"
)
# password=VALUE in a URL query or a key=value string (also sslpassword), quoted or not. libpq's key=value
# values may be single-quoted with \' and \\ escapes inside, and an unquoted value may hold a backslash-escaped
# character too ("password=Wr0ng\'PwQQ" is Wr0ng'PwQQ): both forms are matched whole, escapes included, an
# unterminated quote to the end (masking too much is safe, a fragment shown is not).
_PASSWORD_PARAM = re.compile(
    r"(?P<head>password\s*=\s*)(?:'(?:[^'\\]|\\.)*(?:'|$)|(?:\\.|[^\s&\\])*)", re.IGNORECASE | re.DOTALL
)
# A port after "host:" (its digits, then the path, the query or nothing): no password.
_PORT = re.compile(r"^[0-9]*(?:[/?#]|$)")
# A URL's authority ends at the first "/", "?" or "#": a password holding one raw ("user:ab/cd@host", as base64
# passwords do) makes libpq read "user" as the host and "ab" as the port, and echo it back in its error. Matched:
# user ":" then a password that holds such a character before the "@" (a port, all digits, is not a password).
_RAW_DELIMITER = re.compile(r"^[^/?#@:]*:(?![0-9]*[/?#])[^@]*?(?P<char>[/?#])[^@]*@")
# The characters around which a password's pieces can show up alone in an error (a URL's delimiters, a quote,
# an escape): each piece of _MIN_FRAGMENT characters or more is masked too.
_FRAGMENT_SEPARATORS = re.compile(r"[/?#@:'\"\\\s&=]")
# Shorter fragments would mask ordinary words in an error message; a 1-2 character password is no secret.
_MIN_FRAGMENT = 3
_USAGE = "postgresql://user[:password]@host[:port]/dbname, or libpq key=value (host=... dbname=...)"


def normalise(dsn: str) -> str:
    """``dsn`` in the form libpq and every variant's driver accept, scheme spelled ``postgresql://``.

    Raises ``BenchError`` (one line, password masked) for anything the run could not honour: not PostgreSQL,
    a raw ``@`` in the user info, a string libpq cannot parse, a parameter asyncpg has no equivalent for.
    """
    text = dsn.strip()
    url = _URL.match(text)
    if url is not None:
        scheme = url["scheme"].lower()
        if connargs.URL_SCHEME.match(text) is None:
            raise BenchError(f"--dsn must be a PostgreSQL URL or libpq string ({_USAGE}), got scheme {scheme!r}")
        if url["rest"].split("?", 1)[0].count("@") > 1:
            raise BenchError(
                f"--dsn {redact(text)}: the user name or password contains a raw '@'; "
                "percent-encode it as %40 (e.g. postgresql://user:p%40ss@host/db)"
            )
        raw = _RAW_DELIMITER.match(url["rest"])
        if raw is not None:
            encoded = quote(raw["char"], safe="")
            raise BenchError(
                f"--dsn {redact(scrub(text, text))}: the password contains a raw {raw['char']!r}, which ends a URL's "
                f"host part; percent-encode it as {encoded} (e.g. postgresql://user:ab{encoded}cd@host/db)"
            )
        text = connargs.normalise_scheme(text)
    elif "=" not in text:
        raise BenchError(f"--dsn must look like {_USAGE}, got {redact(text)!r}")
    try:
        connargs.parse(text)
        connargs.asyncpg_args(text)
    except connargs.UnsupportedDsn as exc:
        raise BenchError(scrub(f"--dsn {redact(text)}: {exc}", dsn)) from None
    return text


def redact(dsn: str) -> str:
    """``dsn`` (or any text holding DSNs) with every password replaced by ``***``: safe to print and store."""
    text = _USERINFO_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", dsn)
    return _PASSWORD_PARAM.sub(lambda m: f"{m['head']}{MASK}", text)


def scrub(text: str, *dsns: str) -> str:
    """``text`` (e.g. a driver's error message) with the passwords of ``dsns``, and their fragments and
    encodings, replaced by ``***``, then redacted like a DSN."""
    for secret in sorted({s for dsn in dsns for s in _secrets(dsn)}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return redact(text)


def _secrets(dsn: str) -> set[str]:
    """Every string that is, or is a part of, a password in ``dsn`` as a person may have written it."""
    found: set[str] = set()
    url = _URL.match(dsn.strip())
    if url is not None:
        userinfo = _USERINFO_PASSWORD.match(dsn.strip())
        rest = url["rest"]
        authority = rest[: rest.rfind("@")]
        if userinfo is not None:
            password: str | None = userinfo["password"]
        elif ":" in authority and not _PORT.match(authority.split(":", 1)[1]):
            # No password before a query string, yet a ":" and an "@" after it: a password holding "?name=" (one
            # normalise refuses for its raw "?") read to the last "@", as before query strings were told apart.
            password = authority.split(":", 1)[1]
        else:
            password = None
        if password is not None:
            found |= {password, unquote(password), *password.split("@")}
        # The query string cut by hand: urlsplit raises on a malformed host ("[::1:5432"), and this scrubber
        # runs on whatever the user typed, before anything has said what is wrong with it.
        query = dsn.strip().partition("?")[2].partition("#")[0]
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key.endswith("password"):
                found |= {value, quote(value, safe=""), quote(value)}
    for match in _PASSWORD_PARAM.finditer(dsn):
        value = match.group(0)[len(match["head"]) :]
        found |= {value, value.strip("'"), re.sub(r"\\(.)", r"\1", value.strip("'"))}
    try:
        parsed = connargs.parse(dsn)
    except connargs.UnsupportedDsn:
        parsed = {}
    for key in ("password", "sslpassword"):
        if parsed.get(key):
            found |= {parsed[key], quote(parsed[key], safe="")}
    found |= {piece for secret in found for piece in _FRAGMENT_SEPARATORS.split(secret)}
    return {s for s in found if len(s) >= _MIN_FRAGMENT}


def with_database(dsn: str, dbname: str) -> str:
    """The same connection aimed at database ``dbname`` (a URL stays a URL; key=value stays key=value)."""
    if _URL.match(dsn.strip()) is None:
        from psycopg.conninfo import make_conninfo  # here: ~0.2 s to import, and `bench report` never needs it

        return make_conninfo(dsn, dbname=dbname)
    parts = urlsplit(dsn.strip())
    # libpq lets ?dbname= override the path: drop it so the path decides.
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "dbname"])
    # Not urlunsplit: with an empty host (a Unix socket in ?host=) it would drop the "//" libpq needs.
    return f"{parts.scheme}://{parts.netloc}/{quote(dbname, safe='')}" + (f"?{query}" if query else "")


def database_of(dsn: str) -> str:
    """The database ``dsn`` names (libpq's default, the user name, is not guessed: ``postgres`` then)."""
    try:
        return connargs.parse(dsn).get("dbname") or "postgres"
    except connargs.UnsupportedDsn:
        return unquote(urlsplit(dsn).path.lstrip("/")) or "postgres"
