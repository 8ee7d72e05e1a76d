"""The results file: what ``bench run`` measured, and all that ``report`` / ``compare`` ever read.

Raw material only (request counts, error counts by kind, encoded HDR histograms, per-trial figures);
medians, percentiles and ratios are computed when a file is read, so a better statistic later
needs no re-run.

Format history (bump ``FORMAT_VERSION`` and teach ``_upgrade`` on every incompatible change):
- 1 (dbbench 0.1): metadata, contract checks per variant, cells with histograms per endpoint.
- 2: cells gain the load model (closed users / open rate), coordinated-omission fields (service
  histogram, late requests), resource figures (target CPU and RSS, database CPU and connections),
  the target's own statement statistics and pg_stat_statements; metadata gains the load
  generator's calibration; the file gains EXPLAIN plans and profiles (one per variant x scenario).
  Added since, optional (absent in older files, read as their defaults): cells' ``settings`` (the factors
  a run swept besides load: pool size, search index) and ``target_window`` (the target's /_bench/info at
  the window's edges: cache hit/miss counters, background refreshes), explains' ``setting``; checks'
  ``skipped`` (why a variant was not run at all, e.g. asyncpg-only variants on ``--db sqlite``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError

FORMAT_VERSION = 2
FORMAT_NAME = "dbbench-results"


@dataclass
class EndpointStats:
    requests: int
    errors: int
    histogram: str  # encoded HDR histogram of successful requests, microseconds


@dataclass
class Cell:
    """One measured (variant, scenario, users, trial): raw counts over the measured window only."""

    variant: str
    scenario: str
    users: int  # closed model: concurrent users; open model: connections sharing the rate
    trial: int
    status: str  # "ok" or "failed"
    reason: str = ""
    rate: float | None = None  # open model: target arrival rate, requests/s; None = closed model
    warmup_s: float = 0.0
    duration_s: float = 0.0  # the measured window, warm-up excluded
    requests: int = 0  # successful + failed, completed inside the window
    errors: dict[str, int] = field(default_factory=dict)  # failed requests by kind (bench.failures.error_kind)
    error_samples: dict[str, str] = field(default_factory=dict)  # HTTP failure kind -> start of a response body
    histogram: str = ""  # encoded HDR histogram of successful requests, microseconds
    endpoints: dict[str, EndpointStats] = field(default_factory=dict)
    bytes_received: int = 0
    load_cpu_s: float = 0.0  # CPU the load generator used in the window (all its processes)
    load_processes: int = 1  # Locust processes that sent requests (workers, in master/worker mode)
    started_at: str = ""
    target: dict[str, Any] = field(default_factory=dict)  # the variant's /_bench/info after the cell
    # Open model: latency from send to response (``histogram`` counts from the intended send time).
    service_histogram: str = ""
    late: int = 0  # open model: requests sent late because the previous response came after their slot
    target_cpu_s: float | None = None  # uvicorn's CPU over the window
    target_rss_mb: float | None = None  # uvicorn's peak RSS over the window
    db_cpu_s: float | None = None  # PostgreSQL's CPU over the window (embedded server only)
    db_connections: int | None = None  # peak client connections to the run's database
    target_stats: dict[str, Any] | None = None  # the target's /_bench/stats for the window
    pg_statements: list[dict[str, Any]] | None = None  # pg_stat_statements for the window (top by time)
    settings: dict[str, str] = field(default_factory=dict)  # swept factors, e.g. {"pool": "5", "index": "off"}
    target_window: dict[str, Any] | None = None  # {"open": /_bench/info, "close": /_bench/info} at the edges

    @property
    def setting(self) -> str:
        """The swept factors as a label: "pool 5 · index off" ("" when the run swept none)."""
        return " · ".join(f"{name} {value}" for name, value in self.settings.items())

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def successes(self) -> int:
        """Requests that completed inside the window without an error."""
        return max(0, self.requests - self.error_count)

    @property
    def error_rate(self) -> float:
        """Failed / completed requests in the window (0.0 when none completed)."""
        return self.error_count / self.requests if self.requests else 0.0

    @property
    def rps(self) -> float:
        """Throughput: successful responses per second of the measured window. A failed request is never
        throughput (a server answering 404 to everything would otherwise look fast)."""
        return self.successes / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def model(self) -> str:
        return "open" if self.rate else "closed"

    @property
    def load(self) -> str:
        """The load point as a label: "32 users" or "1000 req/s"."""
        return f"{self.rate:g} req/s" if self.rate else f"{self.users} users"


@dataclass
class VariantCheck:
    """The contract check a variant passed (or failed) before any load was applied."""

    variant: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    # Set when the variant could not run here at all (not a failure: the run still exits 0). ``ok`` is False
    # and ``problems`` holds the same reason, so a report that knows nothing of skips still shows why.
    skipped: str = ""


@dataclass
class Results:
    metadata: dict[str, Any] = field(default_factory=dict)
    checks: list[VariantCheck] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    explains: list[dict[str, Any]] = field(default_factory=list)  # plans of the run's top statements
    profiles: list[dict[str, Any]] = field(default_factory=list)  # the profiling pass, if any

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "metadata": self.metadata,
            "checks": [asdict(check) for check in self.checks],
            "cells": [asdict(cell) for cell in self.cells],
            "explains": self.explains,
            "profiles": self.profiles,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Results:
        data = _upgrade(data)
        cells = []
        for raw in data["cells"]:
            raw = dict(raw)
            raw["endpoints"] = {k: EndpointStats(**v) for k, v in raw.get("endpoints", {}).items()}
            cells.append(Cell(**raw))
        checks = [VariantCheck(**raw) for raw in data["checks"]]
        return cls(
            metadata=data["metadata"],
            checks=checks,
            cells=cells,
            explains=list(data.get("explains", [])),
            profiles=list(data.get("profiles", [])),
        )


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("format") != FORMAT_NAME:
        raise BenchError("not a dbbench results file (no 'format': 'dbbench-results'); pass a file from bench run")
    version = data.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BenchError(
            f"results format version {version!r} is newer than this dbbench understands "
            f"({FORMAT_VERSION}); upgrade dbbench to read it"
        )
    if version == 1:
        # Every field added in version 2 has a default that means "not measured".
        data = {**data, "version": 2}
    return data


def load(path: Path) -> Results:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BenchError(f"results file {path} does not exist; run 'bench run -o {path}' first") from None
    except OSError as exc:
        raise BenchError(f"cannot read results file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchError(f"{path} is not valid JSON (line {exc.lineno}): is it a dbbench results file?") from None
    if not isinstance(data, dict):
        raise BenchError(f"{path} is not a dbbench results file")
    try:
        return Results.from_dict(data)
    except (KeyError, TypeError) as exc:
        raise BenchError(f"{path} is a damaged dbbench results file ({exc}); re-run bench run") from None


def dump(results: Results, path: Path, *, force: bool = False) -> None:
    """Write atomically (temp file + rename), so a reader or a crash never sees half a file."""
    if not force and path.exists():
        raise BenchError(f"{path} already exists; choose another -o or pass --force to overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(results.to_dict(), handle, indent=1, ensure_ascii=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_writable(path: Path, *, force: bool) -> None:
    """Fail before measuring anything if the results could not be saved."""
    if path.exists() and not force:
        raise BenchError(f"{path} already exists; choose another -o or pass --force to overwrite")
    if path.exists() and path.is_dir():
        raise BenchError(f"{path} is a directory; -o takes a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not os.access(parent, os.W_OK):
        raise BenchError(f"cannot write to {parent}; choose another -o")
