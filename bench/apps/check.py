"""The check for a user's app (not dbbench's contract): before any measured cell, the scenario's warm-up is run
once against the app, and every endpoint it touched must have answered: no 5xx, no connection error. A failing
app is reported with the status, the endpoint, the body's start and the app's own log (its traceback), and is
not measured.

A 4xx is the app's own answer (a 404 for a missing id, a 409 for an empty stock) and is judged later by the
cells' error rate (bench.failures), as for any run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench import dsn as dsnlib
from bench import failures
from bench.check.server_log import last_exception
from bench.check.variant import CheckReport

LOG_TAIL_LINES = 30


def is_fault(kind: str) -> bool:
    """A failure kind (bench.failures) the check refuses: an HTTP 5xx, or no HTTP answer at all."""
    if kind.startswith("HTTP "):
        return kind[5:6] == "5"
    return True


def report(sample: Mapping[str, Any], log: str, secrets: tuple[str, ...] = ()) -> CheckReport:
    """Judge one warm-up's samples (bench.sampling.Window.to_dict) and the app's log written meanwhile."""
    endpoints = {str(name): int(e["requests"]) for name, e in sample.get("endpoints", {}).items()}
    errors: dict[str, int] = {str(k): int(v) for k, v in sample.get("errors", {}).items()}
    samples = {str(k): str(v) for k, v in sample.get("error_samples", {}).items()}
    faults = {kind: count for kind, count in errors.items() if is_fault(kind)}
    info: dict[str, Any] = {"endpoints": endpoints, "requests": int(sample.get("requests", 0))}
    if not endpoints:
        return CheckReport(False, ["the scenario's warm-up sent no request (does its user class have tasks?)"], info)
    if not faults:
        return CheckReport(True, [], info)
    problems = []
    for kind, count in failures.top_kinds(faults):
        body = f"; body: {samples[kind]}" if samples.get(kind) else ""
        problems.append(f"{kind}: {count:,} of the warm-up's requests failed{body}")
    exception = last_exception(log, secrets)
    if exception is not None:
        problems.append(f"the app logged: {exception}")
    info["log_tail"] = log_tail(log, secrets)
    return CheckReport(False, problems, info)


def log_tail(log: str, secrets: tuple[str, ...] = (), lines: int = LOG_TAIL_LINES) -> str:
    """The end of the app's log (where its traceback is), passwords masked."""
    return dsnlib.scrub("\n".join(log.splitlines()[-lines:]), *secrets)
