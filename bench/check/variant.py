"""Check one running server against the contract, doing only what its ``Scope`` allows.

A variant dbbench started on a database it just seeded gets the full check: values compared with the seed
and read back from the database, writes (/updates, PUT /worlds/{id}, POST /refresh-views) verified, queries
counted through /_bench/*. A server dbbench did not start (``--url``) gets shapes and ranges only, no write
unless the user allowed writes, and /_bench/* only if it says it is dbbench: so the same server passes the
same check every time, and is left as it was found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.check import core, data
from bench.check.counting import QueryCounter
from bench.check.probe import Probe, Unreachable
from bench.check.server_log import ServerLog
from bench.check.session import Scope, Session


@dataclass(frozen=True)
class CheckReport:
    ok: bool
    problems: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def check_variant(
    base_url: str, dsn: str | None, *, writes: bool = True, private: bool = True, server_log: Path | None = None
) -> CheckReport:
    """Check the server at ``base_url`` within a ``Scope`` (bench.check.session) made of the arguments:
    ``dsn``, the database dbbench seeded for it (None: no values compared); ``writes``, whether requests that
    change data may be sent; ``private``, whether it is dbbench (/_bench/* may be asked); ``server_log``, its
    log, read for the exception behind an HTTP 500."""
    scope = Scope(dsn, writes, private, server_log)
    log = ServerLog(scope.server_log) if scope.server_log is not None else None
    info: dict[str, Any] = {}
    with Probe(base_url, log) as probe:
        session = Session(probe, QueryCounter(probe, info), scope, info)
        try:
            _run(session)
        except Unreachable as error:
            probe.problem(f"{error}; remaining checks skipped")
        problems = probe.problems
    return CheckReport(ok=not problems, problems=problems, info=session.info)


def _run(session: Session) -> None:
    scope = session.scope
    if scope.private:
        core.check_info(session)
        session.counter.detect()
    else:
        session.info["query_counts"] = "not checked: not a dbbench server, so /_bench/* was not asked"
    if not scope.writes:
        session.info["writes"] = (
            "not checked: /updates, PUT /worlds/{id} and POST /refresh-views were not sent (no writes allowed)"
        )
    core.check_db(session)
    core.check_queries(session)
    core.check_fortunes(session)
    core.check_authors(session)
    data.check_data_endpoints(session)  # /search, /report, /worlds/{id}, /refresh-views: see its module
    if scope.writes:
        core.check_updates(session)  # it changes the values the other checks compare with the seed
    session.counter.growth(writes=scope.writes)  # after check_updates: it runs /updates too
