"""A new user's findings (issue 9, hardening pass): each test asserts the behaviour the user should get.

Fast tests (pure logic, or the CLI refusing input before anything starts); the e2e ones are marked by the
fixtures they use.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from bench.check import data as check_data
from bench.check.counting import QueryCounter
from bench.check.probe import Probe
from bench.check.session import Scope, Session


def _refresh_server(lag_reads: int) -> httpx.MockTransport:
    """A dbbench-like server whose view shows the refresh at once but whose ``completed`` counter moves only
    after ``lag_reads`` more reads of /_bench/info (targets/refresh.py counts after the call returns)."""
    state = {"posted": False, "reads_after": 0}

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/refresh-views":
            state["posted"] = True
            return httpx.Response(202, json={"status": "accepted"})
        if request.url.path == "/report":
            return httpx.Response(200, json=["refreshed"] if state["posted"] else [])
        if request.url.path == "/_bench/info":
            counts = {"requested": 0, "coalesced": 0, "started": 0, "completed": 0, "failed": 0}
            if state["posted"]:
                counts.update(requested=1, started=1)
                state["reads_after"] += 1
                if state["reads_after"] > lag_reads:
                    counts["completed"] = 1
            return httpx.Response(200, json={"refresh": {**counts, "durations_ms": [5.0]}})
        return httpx.Response(404)

    return httpx.MockTransport(handle)


def _session(transport: httpx.MockTransport) -> Session:
    probe = Probe("http://testserver")
    probe.client = httpx.Client(base_url="http://testserver", transport=transport)
    info: dict[str, Any] = {}
    return Session(probe, QueryCounter(probe, info), Scope(dsn=None, private=True), info)


def test_refresh_counters_are_awaited_when_the_view_shows_the_refresh_first() -> None:
    session = _session(_refresh_server(lag_reads=3))
    before = check_data._refresh_counts(session)
    check_data._post_and_wait(session, before, lambda report: report == ["refreshed"])
    assert session.probe.problems == []
    assert session.info["refresh"]["completed"] == 1


def test_refresh_counters_that_never_move_are_still_a_problem(monkeypatch) -> None:
    monkeypatch.setattr(check_data, "REFRESH_TIMEOUT_SECONDS", 0.2)
    session = _session(_refresh_server(lag_reads=10**9))
    before = check_data._refresh_counts(session)
    check_data._post_and_wait(session, before, lambda report: report == ["refreshed"])
    assert len(session.probe.problems) == 1
    assert "refresh counters after one POST /refresh-views" in session.probe.problems[0]
    assert json.dumps(session.probe.problems)  # one plain line each
