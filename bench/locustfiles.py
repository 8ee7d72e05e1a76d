"""What each scenario's locustfile really does, and what dbbench refuses to run because it could not
honour the file's meaning.

The description comes from a child process (bench.locust_describe: only a load process imports
locust or a user's file). The rules, pure functions of that description:

- A ``LoadTestShape`` is refused: the shape, not ``--users``/``--rate``, would set the load and change it
  during the window, while every dbbench cell is one fixed load point that sweeps, trials and ratios
  compare (a ``--users 1,16`` sweep of a shape would be drawn as a sweep of the same load twice). Run a
  shape with Locust itself.
- With ``--rate`` (the open model), dbbench paces every request on a schedule and counts latency from
  each request's intended send time. Think time in the file (a ``wait_time`` other than ``constant(0)``
  on a User or a TaskSet) cannot be combined with that schedule: it would be counted as server latency
  (a TaskSet's wait is invisible to the schedule). Refused, as is a plain ``User`` with a client of its
  own (dbbench paces HttpUser/FastHttpUser clients only).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.loadspec import file_sha256
from scenarios import Scenario, is_builtin

DESCRIBE = "bench.locust_describe"
_DESCRIBE_TIMEOUT_S = 120.0
_PACED_KINDS = ("FastHttpUser", "HttpUser")


def describe(paths: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """{str(path): description} for every file (see bench.locust_describe), from one child process.

    Raises BenchError when the child cannot run at all (a file's own import errors are per file)."""
    with tempfile.TemporaryDirectory(prefix="dbbench-describe-") as tmp:
        out = Path(tmp) / "describe.json"
        argv = [sys.executable, "-m", DESCRIBE, str(out), *(str(p) for p in paths)]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=_DESCRIBE_TIMEOUT_S, cwd=tmp)
        except subprocess.TimeoutExpired:
            limit = f"{_DESCRIBE_TIMEOUT_S:.0f} s"
            raise BenchError(f"loading the locustfiles took over {limit}; does one block at import?") from None
        if not out.exists():
            last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
            raise BenchError(f"could not load the locustfiles: {last}")
        answer: dict[str, dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))
        return answer


def think_time(description: dict[str, Any]) -> list[str]:
    """Where the file adds wait time between tasks, e.g. ["Browse.wait_time = between(0.5, 1)"]."""
    found = []
    for user in description.get("users", []):
        if not user["wait_time"]["zero"]:
            found.append(f"{user['name']}.wait_time = {user['wait_time']['text']}")
        for taskset in user["tasksets"]:
            if not taskset["wait_time"]["zero"]:
                found.append(f"{taskset['name']}.wait_time = {taskset['wait_time']['text']}")
    return found


def refusal(file_name: str, description: dict[str, Any], rated: bool) -> str | None:
    """One line saying why the run cannot use this file as it means it, or None when it can."""
    if "error" in description:
        return f"locustfile {file_name} cannot be loaded: {description['error']}"
    if not description.get("users"):
        return f"locustfile {file_name} defines no User class; add one (e.g. a FastHttpUser with a @task)"
    if description.get("shape"):
        return (
            f"locustfile {file_name} defines a LoadTestShape ({description['shape']}): the shape, not --users or "
            "--rate, would set the load, and dbbench measures fixed load points; remove the shape class "
            "(use --users or --rate with --warmup/--duration) or run the shape with locust itself"
        )
    if not rated:
        return None
    waits = think_time(description)
    if waits:
        return (
            f"--rate paces every request itself, but locustfile {file_name} waits between tasks "
            f"({'; '.join(waits)}), which would count as server latency; set wait_time = constant(0) "
            "or measure it without --rate (closed model)"
        )
    unpaced = [u["name"] for u in description["users"] if u["kind"] not in _PACED_KINDS]
    if unpaced:
        return (
            f"--rate paces HttpUser and FastHttpUser clients only; locustfile {file_name} has "
            f"{', '.join(unpaced)} (a plain User); measure it without --rate"
        )
    return None


def summary(description: dict[str, Any]) -> str:
    """One line for the results' metadata, e.g. "Visitor (FastHttpUser, wait constant(0); TaskSet Browse,
    wait between(0.5, 1))"."""
    parts = []
    for user in description.get("users", []):
        extra = "".join(f"; TaskSet {ts['name']}, wait {ts['wait_time']['text']}" for ts in user["tasksets"])
        count = f", fixed_count {user['fixed_count']}" if user["fixed_count"] else ""
        parts.append(f"{user['name']} ({user['kind']}, wait {user['wait_time']['text']}{count}{extra})")
    return ", ".join(parts)


def inspect(scenarios: Sequence[Scenario], rated: bool) -> dict[str, dict[str, Any]]:
    """Describe every scenario's file as it is, for the results' metadata: {scenario name: {"path",
    "sha256", "users", "shape", "summary", "locust_statistics"}}. ``sha256`` tells two files of the same
    name apart across results files. Raises BenchError (one line) for the first file the run must refuse."""
    found = describe([s.path for s in scenarios])
    described: dict[str, dict[str, Any]] = {}
    for scenario in scenarios:
        description = found.get(str(scenario.path), {"error": "not described"})
        reason = refusal(scenario.name, description, rated)
        if reason:
            raise BenchError(reason)
        described[scenario.name] = {
            "path": str(scenario.path),
            "sha256": file_sha256(scenario.path),
            "users": description["users"],
            "shape": description["shape"],
            "summary": summary(description),
            # The load process decides the same way (LoadSpec.own_scenario, bench.locust_entry).
            "locust_statistics": "off: dbbench's own scenario, which reads none"
            if is_builtin(scenario.path)
            else "kept",
        }
    return described
