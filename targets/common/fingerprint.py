"""Statement fingerprints: the SQL with whitespace collapsed and every value replaced by ``?``.

Two calls of one statement with different parameters (or literals) get the same fingerprint, so timings
aggregate per statement shape, as pg_stat_statements does server-side. Pure string work, no driver import.
"""

from __future__ import annotations

import re
from functools import lru_cache

# One alternation, applied left to right, so a quote inside a comment or a "$1" inside a string literal
# is consumed by the construct it belongs to and never rewritten on its own.
_TOKENS = re.compile(
    r"""
      (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<string>E?'(?:[^']|'')*')
    | (?P<quoted>"(?:[^"]|"")*")                  # quoted identifier: kept as is
    | (?P<cast>::)                                # a cast, never the start of a :name placeholder
    | (?P<param>\$\d+|%\(\w+\)s|%s|(?<![\w:]):[A-Za-z_]\w*|\?)
    | (?P<number>(?<![\w.$])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.]))
    """,
    re.VERBOSE | re.DOTALL,
)
_SPACE = re.compile(r"\s+")
# "IN (?, ?, ?)" of an expanding IN list is one shape whatever the list's length (casts included:
# SQLAlchemy's asyncpg dialect renders "IN ($1::INTEGER, $2::INTEGER)").
_IN_LIST = re.compile(r"\bIN \(\?(?:::[\w\[\]]+)?(?: ?, ?\?(?:::[\w\[\]]+)?)*\)", re.IGNORECASE)


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "comment":
        return " "
    if kind in ("quoted", "cast"):
        return match.group()
    return "?"


@lru_cache(maxsize=4096)
def fingerprint(sql: str) -> str:
    """``SELECT * FROM t WHERE id = $1 AND s = 'x'`` -> ``SELECT * FROM t WHERE id = ? AND s = ?``.

    Cached: drivers pass the same statement strings over and over, so after warm-up this is a dict lookup.
    """
    text = _SPACE.sub(" ", _TOKENS.sub(_replace, sql)).strip()
    return _IN_LIST.sub("IN (?)", text)
