"""Server-side view of a cell: pg_stat_statements per statement, and EXPLAIN ANALYZE of the heaviest ones.

The target's own hooks say what the driver sent and how long the client waited; pg_stat_statements says what
the server executed and how long that took. Reset before a cell, snapshot after it, then capture plans for the
top statements once per run: with the parameter values a target recorded for the statement when there are some
("given"), else with values read from the tables ("derived"; see _sample_value).

Every statement this module sends starts with the comment ``/* dbbench:pgstats */`` (pg_stat_statements keeps
comments in its text), so snapshots never report dbbench's own queries.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

import psycopg
from psycopg import sql

# A pathological plan must not stall a run; EXPLAIN ANALYZE executes the statement for real.
EXPLAIN_TIMEOUT: Final = "30s"
NOT_PRELOADED: Final = "pg_stat_statements not in shared_preload_libraries"

# Statements that are not the workload: transaction and session control (psycopg's BEGIN/COMMIT, asyncpg's
# pool reset "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL"), seeding and schema work
# (TRUNCATE, COPY, VACUUM ANALYZE, CREATE ... IF NOT EXISTS), and our own EXPLAIN/PREPARE traffic.
# REFRESH MATERIALIZED VIEW is deliberately absent: it is an endpoint's workload.
_NOISE = re.compile(
    r"""^\s*(?:/\*.*?\*/\s*)*(?:
        (?:begin|start\s+transaction|commit|end|rollback|abort|savepoint|release|prepare|execute|deallocate
          |set|reset|discard|show|close|listen|unlisten|checkpoint|explain
          |vacuum|analy[sz]e|truncate|copy|create|drop|alter|grant|revoke|comment)\b
        |select\s+pg_advisory_unlock_all\b
    )""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)
# dbbench's own connections name themselves, so the connection count of a variant leaves them out.
MONITOR_APP = "dbbench-monitor"
_OWN = ("dbbench:pgstats", "pg_stat_statements", "pg_prepared_statements")
_EXPLAINABLE = {"select", "with", "values", "table", "insert", "update", "delete", "merge"}
_explain_names = itertools.count(1)


@dataclass(frozen=True)
class Availability:
    """Whether pg_stat_statements can be used; ``reason`` says why not, in words fit for the report."""

    ok: bool
    reason: str | None = None


@dataclass(frozen=True)
class StatementStat:
    """One pg_stat_statements row. Times are execution only (ms): planning time is tracked separately and
    only when pg_stat_statements.track_planning is on, which it is not by default."""

    queryid: int
    query: str
    calls: int
    total_ms: float
    mean_ms: float
    stddev_ms: float
    min_ms: float
    max_ms: float
    rows: int
    shared_blks_hit: int
    shared_blks_read: int

    @property
    def hit_ratio(self) -> float | None:
        """Share of shared-buffer block accesses served from cache; None when the statement touched none."""
        touched = self.shared_blks_hit + self.shared_blks_read
        return self.shared_blks_hit / touched if touched else None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.query)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "hit_ratio": self.hit_ratio, "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatementStat:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})

    def merged_with(self, other: StatementStat) -> StatementStat:
        """The same statement over two windows: counts add up; the spread is not recoverable from
        two summaries, so ``stddev_ms`` keeps the larger of the two as a lower bound."""
        calls = self.calls + other.calls
        total = self.total_ms + other.total_ms
        return replace(
            self,
            calls=calls,
            total_ms=total,
            mean_ms=total / calls if calls else 0.0,
            stddev_ms=max(self.stddev_ms, other.stddev_ms),
            min_ms=min(self.min_ms, other.min_ms),
            max_ms=max(self.max_ms, other.max_ms),
            rows=self.rows + other.rows,
            shared_blks_hit=self.shared_blks_hit + other.shared_blks_hit,
            shared_blks_read=self.shared_blks_read + other.shared_blks_read,
        )


@dataclass(frozen=True)
class ExplainResult:
    """EXPLAIN (ANALYZE, BUFFERS) of one statement; ``plan`` is PostgreSQL's JSON document, or None with
    ``error`` saying in one line why no plan was captured. Buffers are the top node's (they include its
    children's). ``params_source`` is "given", "derived" (sample values read from the tables) or "none"
    (the statement has no parameters)."""

    query: str
    params: list[Any] | None
    params_source: str | None
    plan: dict[str, Any] | None
    total_ms: float | None = None
    planning_ms: float | None = None
    node_type: str | None = None
    shared_hit: int | None = None
    shared_read: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["params"] = None if self.params is None else [_jsonable(value) for value in self.params]
        return data


# --- fingerprints ----------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
      (?P<space>\s+|--[^\n]*|/\*.*?\*/)
    | (?P<literal>[Ee]'(?:[^'\\]|\\.|'')*'
        | (?:[BbXxNn]|[Uu]&)?'(?:[^']|'')*'
        | \$(?P<tag>(?:[A-Za-z_]\w*)?)\$.*?\$(?P=tag)\$)
    | (?P<ident>"(?:[^"]|"")*")
    | (?P<param>\$\d+|%\(\w+\)s|%[sbt]|\?|(?<!:):[A-Za-z_]\w*)
    | (?P<cast>::)
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[Ee][+-]?\d+)?)
    | (?P<word>[^\W\d]\w*)
    | (?P<op>(?:[-+*/<>=~!@#^&|`]|%(?![(sbt]))+)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
# PostgreSQL normalises these keywords' constants too (SELECT NULL, TRUE -> $1).
_CONSTANT_WORDS = {"null", "true", "false"}
_IN_LIST = re.compile(r"\bin ?\(\?(?:::[\w\[\]]+)?(?:, \?(?:::[\w\[\]]+)?)*\)")
# Before these, a "-" is a sign, so "-3" is one constant (pg_stat_statements gives "$1", not "-$1").
_BEFORE_SIGN = {
    "", "(", ",", "=", "<", ">", "<=", ">=", "<>", "!=", "[",
    "and", "or", "not", "select", "where", "when", "then", "else",
}  # fmt: skip


def fingerprint(query: str) -> str:
    """The statement's shape, equal for pg_stat_statements text and the driver's text of one source query.

    Parameters ($1, :name, %(name)s, %s, ?) and constants (numbers, strings, NULL/TRUE/FALSE, a leading
    sign included) become ``?``; comments and a trailing ``;`` go; whitespace collapses, with one space
    around operators and after commas and none inside brackets. Unquoted words are folded to lower case
    (PostgreSQL folds unquoted keywords and identifiers itself); "quoted identifiers" keep their case.
    ``IN (?, ?, ?)`` is ``IN (?)`` whatever its length, as in targets/common/fingerprint.py (the targets' own
    fingerprints, which keep case); sample keys in that form therefore fingerprint to the same text here.
    """
    out: list[str] = []
    spaced = False  # whitespace or a comment separated this token from the previous one
    for match in _TOKEN.finditer(query):
        kind = match.lastgroup
        text = match.group()
        if kind == "space":
            spaced = True
            continue
        if kind == "op" and len(text) > 1 and text[-1] in "+-" and not set(text) & set("~!@#%^&|`"):
            # PostgreSQL's lexer: "=-3" is "=" then "-3"; keep the sign apart for the number that follows.
            head = text.rstrip("+-")
            out += [f" {op} " for op in [head, *text[len(head) :]] if op]
            spaced = False
            continue
        if kind == "word" and text.lower() in _CONSTANT_WORDS and not _is_test(out):
            kind = "literal"
        if kind in ("literal", "param", "number"):
            # A "-" directly before a constant or parameter is its sign: PostgreSQL records "-3" as "$1".
            if kind != "literal" and _previous(out, 1) in ("-", "+") and _previous(out, 2).lower() in _BEFORE_SIGN:
                out.pop()
            out.append(" ?" if spaced else "?")
        elif kind == "word":
            out.append((" " if spaced else "") + text.lower())
        elif kind == "op":
            out.append(f" {text} ")
        elif text == ",":
            out.append(", ")
        elif text in (")", "]", ".", "::"):
            out.append(text)
        else:
            out.append((" " if spaced else "") + text)
        spaced = False
    joined = re.sub(r"\s+", " ", "".join(out)).strip().rstrip(";").strip()
    tidy = re.sub(r"\s+(?=[)\],.;])|(?<=[(\[.])\s+|\s*::\s*", lambda m: "::" if "::" in m.group() else "", joined)
    return _IN_LIST.sub("in (?)", tidy)


def _is_test(out: list[str]) -> bool:
    """After IS / IS NOT, NULL/TRUE/FALSE are part of a test, not constants (pg_stat_statements keeps them)."""
    last = _previous(out, 1).lower()
    return last == "is" or (last == "not" and _previous(out, 2).lower() == "is")


def _previous(out: list[str], back: int) -> str:
    return out[-back].strip() if len(out) >= back else ""


# --- availability, reset, snapshot -----------------------------------------------------------------------


def reason_for(sqlstate: str | None, message: str) -> str:
    """One line for the report from the error pg_stat_statements' setup or probe raised."""
    lowered = message.lower()
    if "shared_preload_libraries" in lowered:
        return NOT_PRELOADED
    if sqlstate == "58P01" or "could not open extension control file" in lowered:
        return "pg_stat_statements is not installed on the server (the contrib package is missing)"
    if sqlstate == "42501":
        return f"the role lacks rights for pg_stat_statements: {_first_line(message)}"
    if sqlstate == "42703":
        return f"pg_stat_statements is too old (PostgreSQL 13+ needed): {_first_line(message)}"
    return f"pg_stat_statements unusable: {_first_line(message)}"


class _Unavailable(Exception):
    """Raised inside the probe transaction so that a CREATE EXTENSION made by the probe is rolled back."""


def availability(dsn: str) -> Availability:
    """Probe pg_stat_statements in this (the run's own scratch) database; never raises.

    CREATE EXTENSION succeeds even when the library is not preloaded; only reading the view fails. Both run
    in one transaction, so a failed probe leaves no extension behind.
    """
    try:
        conn = psycopg.connect(dsn, connect_timeout=5, application_name=MONITOR_APP)
    except psycopg.Error as exc:
        return Availability(False, f"cannot connect: {_first_line(str(exc))}")
    try:
        with conn, conn.transaction():
            if not conn.execute(
                "/* dbbench:pgstats */ SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"
            ).fetchone():
                conn.execute("/* dbbench:pgstats */ CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute(
                "/* dbbench:pgstats */ SELECT calls, total_exec_time, rows, shared_blks_hit, shared_blks_read "
                "FROM pg_stat_statements LIMIT 1"
            )
            track = conn.execute("/* dbbench:pgstats */ SELECT current_setting('pg_stat_statements.track')").fetchone()
            if track and track[0] == "none":
                raise _Unavailable("pg_stat_statements.track = none: nothing is recorded")
            can_reset = conn.execute(
                "/* dbbench:pgstats */ SELECT "
                "has_function_privilege('pg_stat_statements_reset(oid, oid, bigint)', 'EXECUTE')"
            ).fetchone()
            if not (can_reset and can_reset[0]):
                raise _Unavailable("the role may not call pg_stat_statements_reset (grant EXECUTE on it)")
    except _Unavailable as exc:
        return Availability(False, str(exc))
    except psycopg.Error as exc:
        return Availability(False, reason_for(exc.sqlstate, str(exc)))
    return Availability(True)


def available(dsn: str) -> bool:
    """True when pg_stat_statements works here; ``availability(dsn).reason`` says why when it does not."""
    return availability(dsn).ok


def reset(dsn: str) -> None:
    """Forget this database's statistics only: other databases on a shared --dsn server keep theirs.

    Call it only when ``available``: without the extension or the right it raises psycopg.Error."""
    with psycopg.connect(dsn, autocommit=True, application_name=MONITOR_APP) as conn:
        # (userid, dbid, queryid) with 0 meaning "all": all users and statements of this database.
        conn.execute(
            "/* dbbench:pgstats */ SELECT pg_stat_statements_reset("
            "0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)"
        )


def is_noise(query: str) -> bool:
    """True for statements that are not the workload: see _NOISE, plus anything this module sent."""
    return bool(_NOISE.match(query)) or any(marker in query for marker in _OWN)


def snapshot(dsn: str, limit: int = 100) -> list[StatementStat]:
    """This database's statements by total execution time, heaviest first, without the noise; at most ``limit``
    (a storage bound per window: the query reads every row anyway). bench.compare gates a user's app's queries
    per request on these windows only when none reached the limit (a capped window may miss statements), so
    the bound is set well above what an app's endpoints run: it was 20, which made the gate step aside for
    apps with more distinct statements."""
    with psycopg.connect(dsn, autocommit=True, application_name=MONITOR_APP) as conn:
        rows = conn.execute(
            "/* dbbench:pgstats */ SELECT queryid, query, calls, total_exec_time, mean_exec_time, stddev_exec_time, "
            "min_exec_time, max_exec_time, rows, shared_blks_hit, shared_blks_read "
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "ORDER BY total_exec_time DESC"
        ).fetchall()
    stats = [
        StatementStat(
            queryid=int(r[0] or 0),
            query=str(r[1]),
            calls=int(r[2]),
            total_ms=float(r[3]),
            mean_ms=float(r[4]),
            stddev_ms=float(r[5]),
            min_ms=float(r[6]),
            max_ms=float(r[7]),
            rows=int(r[8]),
            shared_blks_hit=int(r[9]),
            shared_blks_read=int(r[10]),
        )
        for r in rows
        if r[1] is not None and not is_noise(r[1])
    ]
    return stats[:limit]


# --- EXPLAIN ---------------------------------------------------------------------------------------------


def explain(dsn: str, query: str, params: Sequence[Any] | None = None) -> ExplainResult:
    """EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) of ``query`` ($n placeholders) with ``params``; never raises.

    When ``params`` is None or has the wrong length, sample values are derived from the tables (see
    _sample_value); when none can be, the result carries the reason instead of a plan.
    """
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=5, application_name=MONITOR_APP)
    except psycopg.Error as exc:
        return ExplainResult(query, _list(params), None, None, error=f"cannot connect: {_first_line(str(exc))}")
    with conn:
        return _explain(conn, query, params)


def capture_top_explains(
    dsn: str,
    stats: Sequence[StatementStat],
    samples: Mapping[str, Sequence[Any]] | None = None,
    top: int = 3,
) -> list[ExplainResult]:
    """Plans for the ``top`` statements by total time. ``samples`` maps a statement (any text form: it is
    fingerprinted) to real parameter values, e.g. from the target's own instrumentation."""
    by_fingerprint = {fingerprint(text): values for text, values in (samples or {}).items()}
    heaviest = sorted(stats, key=lambda stat: stat.total_ms, reverse=True)[:top]
    if not heaviest:
        return []
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=5, application_name=MONITOR_APP)
    except psycopg.Error as exc:
        why = f"cannot connect: {_first_line(str(exc))}"
        return [ExplainResult(stat.query, None, None, None, error=why) for stat in heaviest]
    with conn:
        return [_explain(conn, stat.query, by_fingerprint.get(stat.fingerprint)) for stat in heaviest]


def _explain(conn: psycopg.Connection[Any], query: str, params: Sequence[Any] | None) -> ExplainResult:
    text = query.strip().rstrip(";").strip()
    first = re.sub(r"^(?:\s*/\*.*?\*/)*\s*", "", text, flags=re.DOTALL).split(None, 1)[:1]
    if not first or first[0].lower() not in _EXPLAINABLE:
        return ExplainResult(query, _list(params), None, None, error="not a query EXPLAIN ANALYZE can run")
    name = f"dbbench_explain_{next(_explain_names)}"
    prepared = False
    try:
        # Always rolled back: EXPLAIN ANALYZE really executes, and an UPDATE/INSERT/DELETE (or a SELECT
        # calling a writing function) must not change the data. Sequences still advance: nextval is not
        # transactional.
        with conn.transaction(force_rollback=True):
            conn.execute("/* dbbench:pgstats */ SELECT set_config('statement_timeout', %s, true)", [EXPLAIN_TIMEOUT])
            conn.execute(sql.SQL("PREPARE {} AS {}").format(sql.Identifier(name), sql.SQL(text)))
            prepared = True
            return _explain_prepared(conn, name, query, text, params)
    except psycopg.Error as exc:
        return ExplainResult(query, _list(params), None, None, error=_first_line(str(exc)))
    finally:
        # A prepared statement belongs to the session and survives the rollback (the connection is in
        # autocommit mode here, so a failure cannot leave a transaction open).
        if prepared and not conn.closed:
            with contextlib.suppress(psycopg.Error):
                conn.execute(sql.SQL("DEALLOCATE {}").format(sql.Identifier(name)))


def _explain_prepared(
    conn: psycopg.Connection[Any], name: str, query: str, text: str, params: Sequence[Any] | None
) -> ExplainResult:
    row = conn.execute(
        "/* dbbench:pgstats */ SELECT parameter_types::text[] FROM pg_prepared_statements WHERE name = %s", [name]
    ).fetchone()
    types: list[str] = list(row[0]) if row and row[0] else []
    if not types:
        values, source = [], "none"
    elif params is not None and len(params) == len(types):
        values, source = list(params), "given"
    else:
        values, source = [], "derived"
        for number, type_name in enumerate(types, start=1):
            value, why = _sample_value(conn, text, number, type_name)
            if why is not None:
                return ExplainResult(query, _list(params), None, None, error=f"no plan captured: {why}")
            values.append(value)
    # EXECUTE's arguments are not a place the server accepts bind parameters ("there is no parameter $1",
    # PostgreSQL 15), so each value goes through psycopg's own literal adapter (quoted and escaped by the
    # driver, never Python string formatting) and is cast to the type the server inferred at PREPARE.
    args = sql.SQL(", ").join(
        sql.SQL("{}::{}").format(sql.Literal(value), sql.SQL(type_name))
        for value, type_name in zip(values, types, strict=True)
    )
    ident = sql.Identifier(name)
    execute = sql.SQL("EXECUTE {}({})").format(ident, args) if types else sql.SQL("EXECUTE {}").format(ident)
    explained = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ") + execute).fetchone()
    document: dict[str, Any] = explained[0][0] if explained else {}
    top: dict[str, Any] = document.get("Plan", {})
    return ExplainResult(
        query,
        values,
        source,
        document,
        total_ms=document.get("Execution Time"),
        planning_ms=document.get("Planning Time"),
        node_type=top.get("Node Type"),
        shared_hit=top.get("Shared Hit Blocks"),
        shared_read=top.get("Shared Read Blocks"),
    )


_RELATION = re.compile(
    r"\b(?:from|join|update|into)\s+(?P<table>[A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)?)\b(?!\s*\()"
    r"(?:\s+(?:as\s+)?(?P<alias>[A-Za-z_][\w$]*))?",
    re.IGNORECASE,
)
_NOT_ALIAS = {
    "where", "set", "on", "using", "join", "inner", "left", "right", "full", "cross", "natural", "group",
    "order", "limit", "offset", "returning", "values", "select", "union", "for", "having", "window", "lateral",
}  # fmt: skip


def _sample_value(conn: psycopg.Connection[Any], query: str, number: int, type_name: str) -> tuple[Any, str | None]:
    """A real value for ``$number``, by simple rules: LIMIT/OFFSET get 10/0; ``col = $n`` (any comparison,
    either side), ``col IN (..., $n, ...)`` and ``col = ANY($n)`` read a value of ``col`` from its table.
    Returns (value, None) or (None, reason)."""
    n = rf"\${number}(?!\d)"
    if re.search(rf"\blimit\s+{n}", query, re.IGNORECASE):
        return 10, None
    if re.search(rf"\boffset\s+{n}", query, re.IGNORECASE):
        return 0, None
    column = r"(?:(?P<qual>[A-Za-z_][\w$]*)\.)?(?P<col>[A-Za-z_][\w$]*)"
    patterns = [
        (rf"{column}\s*(?:=|<>|!=|<=|>=|<|>)\s*{n}", False),
        (rf"{n}(?:::[\w\s\[\]]+?)?\s*(?:=|<>|!=|<=|>=|<|>)\s*{column}", False),
        (rf"{column}\s+in\s*\((?:\s*\$\d+\s*,)*\s*{n}", False),
        (rf"{column}\s*=\s*any\s*\(\s*{n}", True),
    ]
    for pattern, wants_array in patterns:
        match = re.search(pattern, query, re.IGNORECASE)
        if not match:
            continue
        table = _table_for(query, match.group("qual"))
        if table is None:
            return None, f"${number}: cannot tell which table {match.group('col')} belongs to"
        col = sql.Identifier(match.group("col").lower())
        lookup = sql.SQL("/* dbbench:pgstats */ SELECT {} FROM {} WHERE {} IS NOT NULL LIMIT 1 OFFSET %s").format(
            col, sql.Identifier(*table.lower().split(".")), col
        )
        try:
            with conn.transaction():  # a savepoint: a failed lookup must not abort the EXPLAIN's transaction
                row = conn.execute(lookup, [number - 1]).fetchone()
        except psycopg.Error as exc:
            return None, f"${number}: cannot read a sample from {table}: {_first_line(str(exc))}"
        if row is None:
            return None, f"${number}: {table}.{match.group('col')} has no rows to sample"
        return ([row[0]] if wants_array else row[0]), None
    return None, f"no sample value for ${number} ({type_name}): no simple column comparison to draw one from"


def _table_for(query: str, qualifier: str | None) -> str | None:
    relations: dict[str, str] = {}
    for match in _RELATION.finditer(query):
        table = match.group("table")
        relations[table.lower().rsplit(".", 1)[-1]] = table
        alias = match.group("alias")
        if alias and alias.lower() not in _NOT_ALIAS:
            relations[alias.lower()] = table
    if qualifier is not None:
        return relations.get(qualifier.lower(), qualifier)
    tables = set(relations.values())
    return tables.pop() if len(tables) == 1 else None


def _list(params: Sequence[Any] | None) -> list[Any] | None:
    return None if params is None else list(params)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return str(value)


def _first_line(message: str) -> str:
    lines = message.strip().splitlines()
    return lines[0] if lines else "unknown error"
