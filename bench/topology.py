"""Which CPUs the load generator gets and which the server and its database get: one plan per command.

Locust spends ~300-430 µs of CPU per request (wrk ~42 µs). On a small machine that CPU is taken from the
server it measures, and most from the fastest variants, so the ratios between variants come out distorted
(2026-11, 2 cores: sync/pooled +37 % and async_orm/pooled +43 % beside what wrk saw). With the load on CPUs
of its own, what it costs is no longer taken from the server. The plan is pure data; the supervisor
(bench.procs) applies it to every child it starts, by the child's role, before the child's program runs, so
PostgreSQL's backends (forked from the postmaster) and uvicorn's workers inherit it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from bench.errors import BenchError

Role = Literal["server", "load"]
# Where each role's processes come from, for the results and the README: what a plan's sets hold.
SERVER_PROCESSES = "uvicorn (and its workers), the embedded PostgreSQL (postmaster and backends), redis-server"
LOAD_PROCESSES = "Locust (master and local workers)"
NO_SERVER_CPUS = "none: every CPU is the load's (a calibration target, if any, runs unpinned)"


@dataclass(frozen=True)
class ServerSide:
    """What a command starts on the server CPUs, in a report label's words (``label``) and the results' list
    (``processes``); ``elsewhere`` names what the measured requests reach that dbbench did not start, and so
    pinned nowhere (a database at --dsn, the server at --url). Chosen by the command (RunConfig.server_side)."""

    label: str  # "" when nothing measured runs there
    processes: str
    elsewhere: str = ""


EMBEDDED = ServerSide("server + database", SERVER_PROCESSES)
SQLITE = ServerSide("server + database", "uvicorn (and its workers, each opening the SQLite file), redis-server")
OWN_DATABASE = ServerSide("server", "uvicorn (and its workers), redis-server", "the database at --dsn")
EXTERNAL = ServerSide("", "the calibration target only, when --calibrate", "the server at --url")
CALIBRATION = ServerSide("calibration target", "the calibration target (uvicorn serving a no-database /db)")


@dataclass(frozen=True)
class CpuPlan:
    """The CPU split of one command. ``load`` and ``server`` are CPU numbers (as ``taskset`` and
    ``os.sched_setaffinity`` use them); both empty when nothing is pinned, and then ``reason`` says why."""

    available: tuple[int, ...]
    load: tuple[int, ...] = ()
    server: tuple[int, ...] = ()
    chosen_by: str = "default"  # "default" | "--cpus"
    reason: str = ""  # why nothing is pinned ("--no-pin", "one CPU")

    @property
    def pinned(self) -> bool:
        return bool(self.load)

    def cpus(self, role: Role | None) -> frozenset[int] | None:
        """The CPUs a process of ``role`` is held to; None: leave it where it is (unpinned, no role, or a role
        with no CPUs of its own: under --url every CPU may go to the load, and the one server dbbench may
        still start there, the calibration target, then runs on every CPU this process may use)."""
        if not self.pinned or role is None:
            return None
        chosen = self.load if role == "load" else self.server
        return frozenset(chosen) if chosen else None

    def describe(self, side: ServerSide = EMBEDDED) -> dict[str, Any]:
        """What the results record (metadata "cpus"): the split and who chose it, or why there is none; ``side``
        says what runs on the server CPUs and what dbbench did not start (``not_placed``, only when there is)."""
        not_placed = {"not_placed": side.elsewhere} if side.elsewhere else {}
        if not self.pinned:
            return {"pinned": False, "available": format_cpus(self.available), "reason": self.reason, **not_placed}
        return {
            "pinned": True,
            "available": format_cpus(self.available),
            "load": format_cpus(self.load),
            "load_cpu_count": len(self.load),
            "server": format_cpus(self.server),
            "chosen_by": self.chosen_by,
            "load_processes": LOAD_PROCESSES,
            "server_role": side.label if self.server else "",
            "server_processes": side.processes if self.server else NO_SERVER_CPUS,
            **not_placed,
        }


def available() -> tuple[int, ...]:
    """The CPUs this process may run on (its affinity: a container's or taskset's limit, not the machine's)."""
    return tuple(sorted(os.sched_getaffinity(0)))


# Gunicorn's docs size workers by cores ("(2 x cores) + 1", for I/O-bound apps); four per CPU this
# process may use is past any sensible count, and stops a typo (100000) from forking a host to death.
WORKERS_PER_CPU = 4


def server_workers_fault(workers: int, cpus_available: Iterable[int]) -> str | None:
    """Why ``--server-workers workers`` cannot run here (below 1, or more than WORKERS_PER_CPU per CPU this
    process may use), or None."""
    most = WORKERS_PER_CPU * max(1, len(set(cpus_available)))
    if workers < 1:
        return f"--server-workers must be >= 1; got {workers}"
    if workers > most:
        return (
            f"--server-workers {workers} is more than {WORKERS_PER_CPU} per CPU this process may use "
            f"({most} here); uvicorn workers beyond the cores only add context switches"
        )
    return None


def plan(
    cpus_available: Iterable[int],
    *,
    cpus: str | None = None,
    pin: bool = True,
    load_cpus: int = 1,
    starts_server: bool = True,
) -> CpuPlan:
    """The split for ``--cpus``/``--no-pin``: ``cpus`` is ``LOAD`` or ``LOAD:SERVER`` in taskset's list form
    (``1``, ``2-3``, ``0,2``); without it the load gets the last ``load_cpus`` CPUs (at most half of them,
    at least one) and the server the rest. One CPU, or ``pin=False``, leaves everything unpinned.
    ``starts_server`` False (``--url``: the measured server is not dbbench's) lets ``--cpus`` give the load
    every CPU.

    Raises BenchError (one line) for ``--cpus`` with ``--no-pin``, on one CPU, naming a CPU this process
    may not use, overlapping sets or leaving the server none (when dbbench starts one)."""
    have = tuple(sorted(set(cpus_available)))
    if not pin:
        if cpus is not None:
            raise BenchError("--cpus conflicts with --no-pin; drop one")
        return CpuPlan(have, reason="--no-pin")
    if len(have) < 2:
        if cpus is not None:
            raise BenchError(f"--cpus needs at least 2 CPUs to split; this process may use {format_cpus(have)} only")
        return CpuPlan(have, reason="one CPU: nothing to split")
    if cpus is None:
        count = min(max(1, load_cpus), len(have) // 2)
        return CpuPlan(have, load=have[-count:], server=have[:-count])
    load_text, colon, server_text = cpus.partition(":")
    if (colon and not server_text.strip()) or ":" in server_text:  # "1:" or "0:1:1": a typo, not "the rest"
        raise BenchError(f"--cpus takes LOAD or LOAD:SERVER, e.g. 1 or 2-3 or 1:0; got {cpus!r}")
    load = _cpu_set(load_text, "--cpus", have)
    server = _cpu_set(server_text, "--cpus", have) if colon else tuple(c for c in have if c not in load)
    if set(load) & set(server):
        raise BenchError(f"--cpus: the load and the server share CPU {format_cpus(sorted(set(load) & set(server)))}")
    if not server and starts_server:
        raise BenchError(f"--cpus {cpus} leaves the server no CPU (available: {format_cpus(have)})")
    return CpuPlan(have, load=load, server=server, chosen_by="--cpus")


def _cpu_set(text: str, option: str, have: tuple[int, ...]) -> tuple[int, ...]:
    """``1,3-4`` as (1, 3, 4); BenchError for bad syntax or a CPU outside ``have``."""
    ranges: list[tuple[int, int]] = []
    try:
        for part in text.split(","):
            low, dash, high = part.strip().partition("-")
            first, last = int(low), int(high) if dash else int(low)
            if first < 0 or last < first:
                raise ValueError(part)
            ranges.append((first, last))
    except ValueError:
        raise BenchError(
            f"{option} takes the load's CPUs, then optionally ':' and the server's, e.g. 1 or 2-3 or 1:0; got {text!r}"
        ) from None
    # Named as given ("0-9"), never expanded: a typo such as 0-99999999 must not build a set that large.
    outside = [f"{a}" if a == b else f"{a}-{b}" for a, b in ranges if any(c not in have for c in _within(a, b, have))]
    if outside:
        raise BenchError(
            f"{option} names CPU {','.join(outside)}, which this process may not all use "
            f"(available: {format_cpus(have)})"
        )
    return tuple(sorted({c for a, b in ranges for c in range(a, b + 1)}))


def _within(first: int, last: int, have: tuple[int, ...]) -> list[int]:
    """The range first..last, or (when it reaches past every CPU in ``have``) a witness that it does."""
    return [last] if last > max(have) else list(range(first, last + 1))


def taskset(cpus: Iterable[int]) -> list[str]:
    """The argv prefix that runs a program on ``cpus`` (``taskset -c 1``), or none when ``cpus`` is empty
    (nothing pinned); for tools dbbench does not start through its supervisor (wrk in benchmarks/)."""
    chosen = tuple(cpus)
    return ["taskset", "-c", format_cpus(chosen)] if chosen else []


def format_cpus(cpus: Iterable[int]) -> str:
    """(0, 1, 2, 5) as "0-2,5": taskset's list form."""
    ordered = sorted(set(cpus))
    runs: list[str] = []
    start = previous = None
    for cpu in [*ordered, None]:
        if previous is not None and cpu == previous + 1:
            previous = cpu
            continue
        if start is not None and previous is not None:
            runs.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = cpu
    return ",".join(runs)


def label(described: dict[str, Any] | None) -> str:
    """One line for a report's environment section, from ``CpuPlan.describe()`` as a results file keeps it."""
    if not described:
        return "CPU split not recorded (a results file from before it was)"
    # What dbbench did not start (a database at --dsn, the server at --url) it pinned nowhere: said, not implied.
    elsewhere = f"; {described['not_placed']} runs wherever its owner put it" if described.get("not_placed") else ""
    if not described.get("pinned"):
        return (
            f"not pinned ({described.get('reason', '?')}): "
            f"dbbench's processes share CPUs {described.get('available')}{elsewhere}"
        )
    # A file from before "server_role" was recorded: its runs started the embedded database there.
    role = described.get("server_role", EMBEDDED.label)
    server = f", {role} on CPU {described['server']}" if described.get("server") and role else ""
    return (
        f"load generator on CPU {described.get('load')}{server} "
        f"(of {described.get('available')}; {described.get('chosen_by', '?')}){elsewhere}"
    )
