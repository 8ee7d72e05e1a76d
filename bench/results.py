"""The results file: what ``bench run`` measured, and all that ``report`` / ``compare`` ever read.

Raw material only (request counts, error counts by kind, encoded HDR histograms, per-trial figures);
medians, percentiles and ratios are computed when a file is read, so a better statistic later
needs no re-run.

Format history. What bumps ``FORMAT_VERSION`` (and needs a step in ``_upgrade``, or a refusal there): an
incompatible change, one an older reader would misread: a field renamed or removed, a field whose meaning or
unit changes (e.g. ``requests`` counting successes only instead of successes and failures, a histogram in
nanoseconds), or a new field without which the existing ones would be read wrong. What does not: a field
added with a default that means "not measured" (``None``, ``0``, ``""``, empty), listed below under its
version. A reader ignores the fields it does not know and keeps them when it rewrites the file
(``unknown_fields`` on each object), so a newer dbbench's additions survive an older one's rewrite.
Every number in a typed field is a count, seconds, a rate or a size: a negative one is damage (a signed
field would need its own rule in ``_leaf_problem``), and so is a histogram that does not decode.
- 1 (dbbench 0.1): metadata, contract checks per variant, cells with histograms per endpoint.
- 2: cells gain the load model (closed users / open rate), coordinated-omission fields (service
  histogram, late requests), resource figures (target CPU and RSS, database CPU and connections),
  the target's own statement statistics and pg_stat_statements; metadata gains the load
  generator's calibration; the file gains EXPLAIN plans and profiles (one per variant x scenario).
  Added since, optional (absent in older files, read as their defaults): cells' ``settings`` (the factors
  a run swept besides load: pool size, search index) and ``target_window`` (the target's /_bench/info at
  the window's edges: cache hit/miss counters, background refreshes), explains' ``setting``; checks'
  ``skipped`` (why a variant was not run at all, e.g. asyncpg-only variants on ``--db sqlite``); cells'
  ``error_samples`` (the start of a response body per HTTP failure kind); cells' ``user_errors`` (exceptions
  the locustfile's own code raised in the window, by kind: bench.failures.user_error_kind); metadata's ``completed``
  (``false`` while the run is going and when it was interrupted or stopped by an error, ``true`` once every
  planned cell was measured; absent: unknown, an older file) and ``cells_planned`` (cells the run meant to
  measure, once known); cells' ``load_cpus_busy`` (how busy the load process's CPUs were in the window, 0..1,
  anyone's work: under a CPU split, the generator's own CPUs) and metadata's ``cpus`` (bench.topology's plan);
  endpoints' ``bytes_received`` (response bytes of the endpoint's successful requests; absent or null: not
  recorded, and bench.compare then judges response bytes per scenario only).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import orjson

from bench import hist, typed_json
from bench.errors import BenchError

FORMAT_VERSION = 2
FORMAT_NAME = "dbbench-results"


@dataclass
class EndpointStats:
    requests: int
    errors: int
    histogram: str  # encoded HDR histogram of successful requests, microseconds
    # Response bytes of its successful requests (bodies, as Locust counts them); None: not recorded (older files).
    bytes_received: int | None = None
    # Keys this version does not know (a newer dbbench wrote them): ignored when read (and by ==), written back.
    unknown_fields: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


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
    user_errors: dict[str, int] = field(default_factory=dict)  # exceptions in the locustfile's code, by kind
    histogram: str = ""  # encoded HDR histogram of successful requests, microseconds
    endpoints: dict[str, EndpointStats] = field(default_factory=dict)
    bytes_received: int = 0
    load_cpu_s: float = 0.0  # CPU the load generator used in the window (all its processes)
    load_processes: int = 1  # Locust processes that sent requests (workers, in master/worker mode)
    load_cpus_busy: float | None = None  # share (0..1) of the load process's CPUs busy in the window, anyone's
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
    # Keys this version does not know (a newer dbbench wrote them): ignored when read (and by ==), written back.
    unknown_fields: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

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
    # Keys this version does not know (a newer dbbench wrote them): ignored when read (and by ==), written back.
    unknown_fields: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class Results:
    metadata: dict[str, Any] = field(default_factory=dict)
    checks: list[VariantCheck] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    explains: list[dict[str, Any]] = field(default_factory=list)  # plans of the run's top statements
    profiles: list[dict[str, Any]] = field(default_factory=list)  # the profiling pass, if any
    # Keys this version does not know (a newer dbbench wrote them): ignored when read (and by ==), written back.
    unknown_fields: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON: envelope first, then every field, then the keys a newer dbbench wrote (kept)."""
        return {"format": FORMAT_NAME, "version": FORMAT_VERSION, **typed_json.to_json(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Results:
        """Read a parsed results file, checking every field against these dataclasses.

        Raises ``BenchError`` for a file of another kind or a newer version, and ``typed_json.Damaged`` (a
        ``ValueError`` naming the cell and the field) for one that does not match the format.
        """
        return _RESULTS.read(_upgrade(data))


@dataclass
class _Envelope:
    """What identifies a results file; everything else is ``Results``."""

    format: str
    version: int


def _upgrade(data: Mapping[str, Any]) -> dict[str, Any]:
    """The file's body (``Results``' fields, envelope removed) in the current version's shape."""
    if data.get("format") != FORMAT_NAME:
        raise BenchError("not a dbbench results file (no 'format': 'dbbench-results'); pass a file from bench run")
    version = _ENVELOPE.read(data).version
    if version > FORMAT_VERSION:
        raise BenchError(
            f"results format version {version} is newer than this dbbench understands "
            f"({FORMAT_VERSION}); upgrade dbbench to read it"
        )
    if version < 1:
        raise typed_json.Damaged("", "version", f"must be 1..{FORMAT_VERSION}, got {version}")
    # Version 1 -> 2: every field added in version 2 has a default that means "not measured"; nothing moves.
    return {key: value for key, value in data.items() if key not in ("format", "version")}


def _leaf_problem(name: str, value: Any) -> str | None:
    """Rules for single values of the format's typed fields (see the format history)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return f"must not be negative (a count, seconds, a rate or a size), got {value}"
    if name.endswith("histogram") and value:
        try:
            hist.check(value)
        except ValueError as exc:
            return f"is not an encoded HDR histogram dbbench can read: {exc}"
    return None


def _cell_problem(cell: Cell) -> tuple[str, str] | None:
    if cell.requests > 0 and cell.duration_s <= 0:
        return "duration_s", f"is {cell.duration_s:g} with {cell.requests} requests: a measured window lasts > 0 s"
    return None


# The free-form parts of the format (metadata, the target's own figures, profiles) are filled by their writers
# as they see fit; what follows is what the reports read in them, checked when a file is read so that a
# damaged one is refused by field name instead of failing inside a report. Keys not named here are not checked.
class _Config(TypedDict, total=False):
    variants: list[str]
    scenarios: dict[str, Any]
    users: list[int]
    rates: list[float]
    warmup_s: float
    duration_s: float
    trials: int


class _Calibration(TypedDict, total=False):
    rps: float | None


class _Metadata(TypedDict, total=False):
    completed: bool  # absent in older files: unknown
    cells_planned: int
    machine: dict[str, Any]
    database: dict[str, Any]
    pool: dict[str, Any]
    cache: dict[str, Any]
    config: _Config
    calibration: _Calibration


class _Suspect(TypedDict):
    endpoint: str
    message: str


class _CheckInfo(TypedDict, total=False):
    nplus1_suspects: list[_Suspect]


class _EndpointTime(TypedDict):
    requests: int
    queries: int
    request_time_s: float
    db_time_s: float


class _StatementTime(TypedDict):
    fingerprint: str
    calls: int
    total_ms: float
    p50_ms: float
    p95_ms: float


class _GcCounts(TypedDict, total=False):  # targets.common.gcclock.GcClock.snapshot()
    collections: list[int]
    seconds: list[float]
    collected: int


class _TargetStats(TypedDict, total=False):
    instrumented: bool
    endpoints: dict[str, _EndpointTime]
    statements: list[_StatementTime]
    gc: _GcCounts


class _PgStatementRequired(TypedDict):
    query: str
    calls: int
    total_ms: float
    rows: int
    shared_blks_hit: int
    shared_blks_read: int


class _PgStatement(_PgStatementRequired, total=False):  # pgstats.StatementStat.to_dict()
    fingerprint: str


class _CacheCounters(TypedDict, total=False):
    hits: int
    misses: int


class _Refreshes(TypedDict, total=False):
    requested: int
    coalesced: int
    completed: int
    failed: int
    durations_ms: list[float] | None


class _TargetInfo(TypedDict, total=False):
    cache: _CacheCounters | None
    refresh: _Refreshes | None


class _TargetWindow(TypedDict, total=False):
    open: _TargetInfo | None
    close: _TargetInfo | None


class _Frame(TypedDict):
    function: str
    self_share: float


class _ProfileFiles(TypedDict):
    html: str


class _ProfileRequired(TypedDict):
    scenario: str
    variant: str


class _Profile(_ProfileRequired, total=False):  # bench/profiles.py: either an error or what was captured
    error: str
    requests: int
    top_frames: list[_Frame]
    directory: str
    files: _ProfileFiles


def _profile_problem(profile: _Profile) -> tuple[str, str] | None:
    if "error" in profile:
        return None
    for name in ("top_frames", "directory", "files"):
        if name not in profile:
            return name, "is missing (a profile without an 'error' has top_frames, directory and files)"
    return None


_SHAPES: dict[tuple[type, str], Any] = {
    (Results, "metadata"): _Metadata,
    (Results, "profiles"): list[_Profile],
    (VariantCheck, "info"): _CheckInfo,
    (Cell, "target_stats"): _TargetStats | None,
    (Cell, "target_window"): _TargetWindow | None,
    (Cell, "pg_statements"): list[_PgStatement] | None,
}

# Built once; each compiles its dataclasses' annotations on first use.
_ENVELOPE = typed_json.Reader(_Envelope)
_RESULTS = typed_json.Reader(
    Results,
    labels=("variant", "scenario"),
    leaf_rule=_leaf_problem,
    record_rules={Cell: _cell_problem, _Profile: _profile_problem},
    field_shapes=_SHAPES,
)


def load(path: Path) -> Results:
    """Read a results file. Raises ``BenchError`` (one line naming the file, and the cell and field if damaged)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BenchError(f"results file {path} does not exist; run 'bench run -o {path}' first") from None
    except UnicodeDecodeError:
        raise BenchError(f"{path} is not UTF-8 text: is it a dbbench results file?") from None
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
    except typed_json.Damaged as exc:
        raise BenchError(
            f"damaged results file {path}: {exc}; the file is left as it is: restore it or re-run bench run"
        ) from None


_ORJSON_OPTIONS = (
    orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS
)


def _fields(value: Any) -> dict[str, Any]:
    """One dataclass as ``typed_json.to_json`` writes it, one level deep (orjson encodes what it holds)."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        raise TypeError(f"not JSON: {type(value).__name__}")
    out = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.name != typed_json.UNKNOWN_FIELDS}
    unknown = getattr(value, typed_json.UNKNOWN_FIELDS, {})
    out.update({key: item for key, item in unknown.items() if key not in out})
    return out


def encode(results: Results) -> bytes:
    """The file's bytes: the same JSON as ``Results.to_dict``, encoded by orjson (already the variants' encoder).
    A run saves after every cell, and the stdlib's encoder is pure Python when it indents: with to_dict's copy of
    every cell it took 37 ms per save of a 90-cell quick run on this machine; this takes ~1 ms."""
    envelope = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **_fields(results)}
    return orjson.dumps(envelope, default=_fields, option=_ORJSON_OPTIONS)


def dump(results: Results, path: Path, *, force: bool = False) -> None:
    """Write atomically (temp file + rename), so a reader or a crash never sees half a file."""
    if not force and path.exists():
        raise BenchError(f"{path} already exists; choose another -o or pass --force to overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(encode(results))
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
    # The nearest folder on the way that exists must be one (a file there makes the save's mkdir fail) and
    # writable; the folders below it are created when the results are first saved.
    existing = next((p for p in (parent, *parent.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise BenchError(f"{existing} is a file, not a folder; choose another -o")
    if not os.access(existing, os.W_OK):
        raise BenchError(f"cannot write to {existing}; choose another -o")
