"""``bench compare``: did head get slower than base? A verdict per (scenario, load, setting, endpoint) and metric.

Two sources of the two sides: two results files (each variant of base against the same variant of head), or
one file whose cells carry two labels (``bench ab``: the apps labelled base and head, interleaved trial by
trial). Interleaved trials are paired (head's trial k against base's trial k: both saw the same machine
moment); trials of two files are not.

Timed metrics (req/s, p50, p99, target CPU per request) are compared as log-ratios head / base with a 95 %
bootstrap interval (``scipy.stats.bootstrap``: one-sample over the paired log-ratios, or two-sample,
independent, over each side's log values); the trials must also differ by rank (Mann-Whitney U for two runs,
as in asv; Wilcoxon signed-rank for pairs), so a handful of same-signed trials is not a verdict. The rule
is asv's (``asv compare --factor``): a change is a regression only when it is significant (the interval
excludes 0 and the ranks differ) **and** larger than ``threshold``. A
metric is "no change" when its whole interval lies within the threshold, "inconclusive" otherwise (too few
trials for an interval, or an interval too wide to say).

Which timed metrics fail the gate (``gate_on``; default bench.gate_defaults: CPU per request, plain and net of the
app's fixed CPU per second, see fixed_cpu_per_s; ``--gate-on all`` for every one): throughput and latency measure
the app *and* how much of the cores other processes leave it, and on a shared machine that swings within one
comparison faster than interleaving can cancel; the target's CPU seconds per successful request (its process
tree's, read around each measured window) is what a code change moves. Measured with benchmarks/gate_quality.py on
the 2-core machine (`bench ab` of examples/shop, 10 pairs of 1 + 4 s, other engineers' suites running, load average
3-16), median width of the paired 95 % interval over 6 A/A and 5 slowdown comparisons: req/s 54 and 35 points, p99
74 and 67, plain CPU per request 11 and 18, net CPU per request 9 and 9; at a 10 % threshold net CPU per request
said slower in 5/5 slowdowns and 0/6 A/A, plain CPU 4/5 and 0/6, req/s 1/5 and 0/6. The others are still compared
and printed ("slower (reported, not gating)").

Deterministic counters (queries per request per endpoint, statement calls per request by fingerprint,
response bytes per request per endpoint (per scenario in files without them), error rate) are compared as
they are, noise or not: 2 -> 21 queries per request is a regression whatever the latency did. Queries come
from the target's own statement hooks (dbbench's variants, per endpoint) or, for a target without them (a
user's app, ``bench ab --app``), from the pg_stat_statements deltas of each measured window on the database
dbbench started for it: per endpoint when every window of the point loaded one endpoint, else per scenario
(the verdict's ``method`` says which).
A side whose cells all failed is never compared as numbers: head failing where base ran is a regression,
the reverse an improvement.
"""

from __future__ import annotations

import inspect
import math
import statistics
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from bench import hist, pgstats
from bench.errors import BenchError
from bench.gate_defaults import DEFAULT_GATE_ON, DEFAULT_THRESHOLD
from bench.results import Cell, Results
from reports.summary import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, judged, max_error_rate

CONFIDENCE = 0.95
# A counter is an average over a window's requests: a statement run by one request in 20 moves it by 0.05.
QUERY_TOLERANCE = 0.05
# pg_stat_statements windows also count the queries of requests in flight at their edges, and a window of a
# scenario mixes its endpoints at random: the counter then wobbles from trial to trial by that much. A change is
# counted only beyond this many standard errors of that wobble (and beyond QUERY_TOLERANCE).
WOBBLE_SIGMAS = 4.0
# bench.locust_entry keeps pgstats.snapshot's default number of statements per window: a window that reached it
# may miss statements, so its query count is not exact and is not gated.
PG_SNAPSHOT_LIMIT: int = inspect.signature(pgstats.snapshot).parameters["limit"].default
EXACT, PER_ENDPOINT, PER_SCENARIO = (
    "exact",
    "exact, pg_stat_statements per endpoint",
    "exact, pg_stat_statements per scenario",
)
# Response bytes per request of a scenario mixing endpoints: a mean over the mix (see _bytes_counter).
MIX_METHOD = "per scenario, beyond the endpoint mix's wobble"
# Response bytes per request of one endpoint, from files that record them per endpoint (see _endpoint_bytes).
ENDPOINT_BYTES_METHOD = "per endpoint, beyond its windows' wobble"
ERROR_RATE_TOLERANCE = 0.001  # 0.1 percentage point: one failure in a thousand requests
STATEMENTS_SHOWN = 3

SLOWER, FASTER, NO_CHANGE, INCONCLUSIVE = "slower", "faster", "no change", "inconclusive"
TIMED_METRICS = ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request", "cpu_ms_per_request_net")
ALL = ""  # the endpoint of a scenario-wide comparison

Point = tuple[str, str, int, float | None, str]  # variant ("" for labelled sides), scenario, users, rate, setting


@dataclass(frozen=True)
class Verdict:
    """One metric of one (variant, scenario, load, setting, endpoint) compared."""

    variant: str
    scenario: str
    load: str  # "8 users" or "1000 req/s"
    setting: str
    endpoint: str  # "" for the whole scenario
    metric: str  # "rps", "p50_ms", "p99_ms", "cpu_ms_per_request", "queries_per_request", ...
    verdict: str  # slower / faster / no change / inconclusive
    base: float | None  # timed: the trials' geometric mean; a counter: its value over the trials
    head: float | None
    change: float | None  # head / base - 1 (the point estimate); None when not a ratio
    ci: tuple[float, float] | None  # 95 % interval of the change, same unit
    method: str  # "paired", "unpaired", "failed", or a counter's: EXACT, PER_ENDPOINT, PER_SCENARIO
    evidence: list[str] = field(default_factory=list)  # one line each: what changed and why it may have
    gating: bool = True  # whether "slower" here fails the gate (False: a timed metric reported only)
    reason: str = ""  # why an inconclusive verdict is one ("3 pairs: the signed-rank test needs 6 or more")

    @property
    def where(self) -> str:
        parts = [self.scenario, self.endpoint or "", self.load, self.setting, self.variant]
        return " · ".join(part for part in parts if part)

    def to_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            **{name: getattr(self, name) for name in self.__dataclass_fields__},
        }


@dataclass(frozen=True)
class Comparison:
    base_name: str
    head_name: str
    paired: bool
    threshold: float
    warnings: list[str]
    verdicts: list[Verdict]
    gate_on: tuple[str, ...] = DEFAULT_GATE_ON

    @property
    def regressions(self) -> list[Verdict]:
        """The slower verdicts that fail the gate (a reported-only metric's "slower" is not one)."""
        return [v for v in self.verdicts if v.verdict == SLOWER and v.gating]

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base_name,
            "head": self.head_name,
            "method": "paired" if self.paired else "unpaired",
            "threshold": self.threshold,
            "gate_on": list(self.gate_on),
            "warnings": self.warnings,
            "regressions": len(self.regressions),
            "verdicts": [v.to_dict() for v in self.verdicts],
        }


@dataclass(frozen=True)
class _Side:
    name: str
    results: Results
    cells: dict[Point, list[Cell]]


def compare_files(
    base: Results,
    head: Results,
    *,
    base_name: str,
    head_name: str,
    threshold: float,
    gate_on: Sequence[str] = DEFAULT_GATE_ON,
) -> Comparison:
    """Each (variant, scenario, load, setting) of ``base`` against the same in ``head``, unpaired; ``gate_on``
    names the timed metrics whose "slower" fails the gate (counters and failed cells always do).

    Raises ``BenchError`` when the files cannot be compared (other scenarios or settings, no common cell) or
    ``gate_on`` names an unknown metric.
    """
    sides = (_side(base_name, base, lambda c: c.variant), _side(head_name, head, lambda c: c.variant))
    found = [*_machine_warnings(base, head), *_settings_warnings(base, head)]
    return _compare(*sides, paired=False, threshold=threshold, warnings=found, gate_on=gate_on)


def compare_labels(
    run: Results, *, base: str, head: str, threshold: float, gate_on: Sequence[str] = DEFAULT_GATE_ON
) -> Comparison:
    """The cells labelled ``base`` against those labelled ``head`` in one interleaved file, paired by trial
    (``gate_on`` as in compare_files).

    Raises ``BenchError`` for a label the file does not hold, or an unknown metric in ``gate_on``.
    """
    labels = list(dict.fromkeys(c.variant for c in run.cells))
    if base == head:
        raise BenchError("--base and --head name the same label; pass two different ones")
    unstarted = _failed_to_start(run, base, head, labels, threshold, tuple(gate_on))
    if unstarted is not None:
        return unstarted
    for label in (base, head):
        if label not in labels:
            raise BenchError(f"no cells labelled {label!r} in this file (it holds {', '.join(labels) or 'none'})")

    def only(label: str) -> Results:
        return Results(
            metadata=run.metadata,
            checks=run.checks,
            cells=[c for c in run.cells if c.variant == label],
            explains=run.explains,
            profiles=[p for p in run.profiles if p.get("variant") == label],
        )

    sides = (_side(base, only(base), lambda c: ""), _side(head, only(head), lambda c: ""))
    return _compare(*sides, paired=True, threshold=threshold, warnings=[], gate_on=gate_on)


def _failed_to_start(
    run: Results, base: str, head: str, labels: list[str], threshold: float, gate_on: tuple[str, ...]
) -> Comparison | None:
    """A side that has no cell because it failed its check (e.g. it exited during start-up; ``bench ab``
    measures nothing of an app that fails it): the comparison of each of the other side's points with that
    failure, as for a side whose cells all failed (head: a regression; base: an improvement); None when both
    or neither have cells, or the missing side has no failed check (a label the file does not hold)."""
    failed = {label: [c for c in run.checks if c.variant == label and not c.ok] for label in (base, head)}
    missing = [label for label in (base, head) if label not in labels and failed[label]]
    if len(missing) != 1:
        return None
    gone = missing[0]
    ran = head if gone == base else base
    reasons = "; ".join(problem for check in failed[gone] for problem in (check.problems or [check.skipped]))
    evidence = [f"the {'head' if gone == head else 'base'} {gone!r} failed its check, nothing measured: {reasons}"]
    points = dict.fromkeys((c.scenario, c.users, c.rate, c.setting) for c in run.cells if c.variant == ran)
    verdicts = [
        Verdict(
            "",
            scenario,
            _point_label((ALL, ALL, users, rate, ALL)),
            setting,
            ALL,
            "status",
            SLOWER if gone == head else FASTER,
            None,
            None,
            None,
            None,
            "failed",
            evidence,
        )
        for scenario, users, rate, setting in points
    ]
    return Comparison(base, head, True, threshold, [], verdicts, gate_on)


def check_threshold(threshold: float) -> None:
    """Raise ``BenchError`` unless 0 < ``threshold`` < 1: a share (0.1 = 10 %); 5 would be 500 %, a gate that
    could never fail on a slowdown (a share of 1 or more is a change no halving of throughput reaches)."""
    if not (math.isfinite(threshold) and 0 < threshold < 1):
        raise BenchError(f"--threshold is a share between 0 and 1 (0.1 = 10 %), got {threshold:g}")


def gate_metrics(raw: str) -> tuple[str, ...]:
    """``--gate-on``'s value: a comma list of timed metrics, or "all"; BenchError for an unknown one."""
    if raw.strip() == "all":
        return TIMED_METRICS
    names = tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    unknown = [name for name in names if name not in TIMED_METRICS]
    if unknown or not names:
        raise BenchError(f"--gate-on takes some of {', '.join(TIMED_METRICS)} or all; got {raw!r}")
    return names


def from_paths(
    files: Sequence[Path],
    *,
    base: str | None,
    head: str | None,
    threshold: float,
    gate_on: Sequence[str] = DEFAULT_GATE_ON,
) -> Comparison:
    """``bench compare``'s arguments: two files, or one with ``base`` and ``head`` labels (those ``bench ab``
    recorded when not given). Raises ``BenchError`` for anything else, or files that cannot be compared."""
    from bench import results
    from bench.budgets import require_complete

    def load(path: Path) -> Results:
        run = results.load(path)
        require_complete(run, str(path))
        return run

    if len(files) == 2 and base is None and head is None:
        before, after = (load(path) for path in files)
        return compare_files(
            before, after, base_name=str(files[0]), head_name=str(files[1]), threshold=threshold, gate_on=gate_on
        )
    if len(files) == 1:
        run = load(files[0])
        labels = (base, head) if base and head else ab_labels(run)
        if labels is None:
            raise BenchError("one file: pass --base LABEL --head LABEL (the variants or apps to compare)")
        return compare_labels(run, base=labels[0], head=labels[1], threshold=threshold, gate_on=gate_on)
    raise BenchError("pass BASE.json HEAD.json, or one file with --base LABEL --head LABEL")


def ab_labels(run: Results) -> tuple[str, str] | None:
    """The base and head labels ``bench ab`` recorded (metadata apps.ab), or None for another kind of run."""
    roles = (run.metadata.get("apps") or {}).get("ab") if isinstance(run.metadata.get("apps"), dict) else None
    if isinstance(roles, dict) and isinstance(roles.get("base"), str) and isinstance(roles.get("head"), str):
        return roles["base"], roles["head"]
    return None


def _side(name: str, results: Results, variant: Callable[[Cell], str]) -> _Side:
    threshold = max_error_rate(results)
    cells: dict[Point, list[Cell]] = {}
    for cell in (judged(c, threshold) for c in results.cells):
        cells.setdefault((variant(cell), cell.scenario, cell.users, cell.rate, cell.setting), []).append(cell)
    return _Side(name, results, cells)


def _machine_warnings(base: Results, head: Results) -> list[str]:
    machines = [r.metadata.get("machine") or {} for r in (base, head)]
    keys = ("hostname", "cpu_model", "cpu_count")
    if any(machines[0].get(k) != machines[1].get(k) for k in keys):
        described = [" / ".join(str(m.get(k, "?")) for k in keys) for m in machines]
        return [
            f"the two files were measured on different machines ({described[0]} vs {described[1]}): "
            "a difference may be the machine's, not the change's"
        ]
    return []


# Settings of two runs (metadata paths) that make them measure different things: the files are refused. Why,
# each: a locustfile's content decides which requests are sent (another file is another test, whatever its
# name); the server's workers and dbbench's pool decide how much of the machine and the database the app may
# use (1 -> 4 workers moves req/s and CPU per request by design, not by the change under test); the
# instrumentation (dbbench's statement hooks or none) costs CPU per request and decides where the counters
# come from.
_REFUSED_SETTINGS: tuple[tuple[str, ...], ...] = (
    ("config", "server"),
    ("apps", "server_workers"),
    ("config", "instrument"),
    ("pool", "size"),
    ("pool", "max_overflow"),
    ("pool", "threadpool_size"),
)
# Settings that weaken a comparison but do not void it: a warning. Why, each: req/s, latency and CPU per
# request are per second or per request, so another window length (duration) or number of trials changes
# only how wide the intervals are, which the verdict already shows; a shorter warm-up can leave one side
# colder (caches, pools, the interpreter), a bias the warning names; another error-rate limit changes which
# cells count as failed; another load-generator set-up or CPU split changes what the generator can send.
_WARNED_SETTINGS: tuple[tuple[str, ...], ...] = (
    ("config", "duration_s"),
    ("config", "warmup_s"),
    ("config", "trials"),
    ("config", "max_error_rate"),
    ("config", "load_generator"),
    ("cpus",),
)


def _setting(metadata: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = metadata
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _settings_warnings(base: Results, head: Results) -> list[str]:
    """Raise ``BenchError`` (one line) when two runs' settings make them incomparable (_REFUSED_SETTINGS,
    another locustfile content under the same name); the warnings for those that weaken the comparison.
    A setting one file does not record (an older format) is not compared."""
    before, after = base.metadata, head.metadata
    for path in _REFUSED_SETTINGS:
        b, h = _setting(before, path), _setting(after, path)
        if b is not None and h is not None and b != h:
            raise BenchError(
                f"cannot compare: {'.'.join(path)} differs ({b!r} vs {h!r}); the two runs measured under other "
                "settings; rerun one with the other's"
            )
    files = [_setting(m, ("config", "locustfiles")) or {} for m in (before, after)]
    for name in (n for n in files[0] if n in files[1]):
        shas = [_setting(f, (name, "sha256")) for f in files]
        if all(isinstance(sha, str) for sha in shas) and shas[0] != shas[1]:
            raise BenchError(
                f"cannot compare: the locustfile {name} differs (sha256 {shas[0][:12]}… vs {shas[1][:12]}…): "
                "the two runs sent other requests; rerun both with one locustfile"
            )
    found = []
    for path in _WARNED_SETTINGS:
        b, h = _setting(before, path), _setting(after, path)
        if b is not None and h is not None and b != h:
            if isinstance(b, dict) and isinstance(h, dict):  # only the keys that differ (cpus holds 8)
                keys = [k for k in dict.fromkeys([*b, *h]) if b.get(k) != h.get(k)]
                b, h = ({k: side.get(k) for k in keys} for side in (b, h))
            found.append(f"{'.'.join(path)} differs ({b!r} vs {h!r}): the comparison is weaker for it")
    return found


def _compare(
    base: _Side, head: _Side, *, paired: bool, threshold: float, warnings: list[str], gate_on: Sequence[str]
) -> Comparison:
    check_threshold(threshold)
    gate_on = gate_metrics(",".join(gate_on))
    for what, index in (("scenarios", 1), ("settings", 4)):
        before, after = ({str(p[index]) for p in side.cells} for side in (base, head))
        if before != after:
            raise BenchError(
                f"cannot compare: base ran {what} {_listed(before)}, head ran {_listed(after)}; "
                "compare runs of the same scenarios and settings"
            )
    common = [p for p in base.cells if p in head.cells]
    if not common:
        raise BenchError(
            "cannot compare: no (variant, scenario, load, setting) was measured in both; "
            "compare runs of the same variants and loads"
        )
    for name, side, other in (("base", base, head), ("head", head, base)):
        alone = [p for p in side.cells if p not in other.cells]
        if alone:
            shown = ", ".join(_point_label(p) for p in alone[:3]) + (" …" if len(alone) > 3 else "")
            warnings = [*warnings, f"{len(alone)} cell(s) only in {name}, not compared: {shown}"]
    verdicts: list[Verdict] = []
    for point in common:
        verdicts.extend(_point(point, base, head, paired=paired, threshold=threshold, gate_on=gate_on))
    return Comparison(base.name, head.name, paired, threshold, warnings, verdicts, gate_on)


def _point_label(point: Point) -> str:
    variant, scenario, users, rate, setting = point
    load = f"{rate:g} req/s" if rate else f"{users} users"
    return " · ".join(part for part in (scenario, load, setting, variant) if part)


def _listed(names: Iterable[str]) -> str:
    return ", ".join(repr(n) if n else "(no setting)" for n in sorted(names)) or "none"


def _point(
    point: Point, base: _Side, head: _Side, *, paired: bool, threshold: float, gate_on: Sequence[str]
) -> list[Verdict]:
    variant, scenario, users, rate, setting = point
    load = _point_label((ALL, ALL, users, rate, ALL))
    before, after = base.cells[point], head.cells[point]
    ok_before, ok_after = [c for c in before if c.ok], [c for c in after if c.ok]

    def verdict(endpoint: str, metric: str, verdict: str, **kw: Any) -> Verdict:
        return Verdict(variant, scenario, load, setting, endpoint, metric, verdict, **kw)

    if not ok_before or not ok_after:
        return [
            verdict(
                ALL,
                "status",
                _failure_verdict(ok_before, ok_after),
                base=None,
                head=None,
                change=None,
                ci=None,
                method="failed",
                evidence=_failure_evidence(before, after, ok_before, ok_after),
            )
        ]
    pairs = _pairs(ok_before, ok_after) if paired else None
    out: list[Verdict] = []
    endpoints = [ALL, *dict.fromkeys(name for c in ok_before + ok_after for name in c.endpoints)]
    if len(endpoints) == 2:  # one endpoint: the scenario's own figures are the same
        endpoints = [ALL]
    timed = [*_TIMED, ("cpu_ms_per_request_net", _net_cpu_ms_per_request(ok_before, ok_after), False)]
    for endpoint in endpoints:
        for metric, value, higher_is_better in timed:
            sample_before = [v for c in ok_before if (v := value(c, endpoint)) is not None]
            sample_after = [v for c in ok_after if (v := value(c, endpoint)) is not None]
            if not sample_before or not sample_after:
                continue
            if pairs is not None:
                matched = [(value(b, endpoint), value(a, endpoint)) for b, a in pairs]
                logs = [math.log(a / b) for b, a in matched if a and b]
                estimate, ci, method = _paired_ci(logs)
                ranks_agree = _signed_ranks_differ(logs)
                sizes: tuple[int, ...] = (len(logs),)
            else:
                estimate, ci, method = _unpaired_ci(sample_before, sample_after)
                ranks_agree = _ranks_differ(sample_before, sample_after)
                sizes = (len(sample_before), len(sample_after))
            judged_as = _timed_verdict(estimate, ci, threshold, higher_is_better, ranks_agree)
            out.append(
                verdict(
                    endpoint,
                    metric,
                    judged_as,
                    reason=_inconclusive_reason(sizes, ci, threshold, ranks_agree) if judged_as == INCONCLUSIVE else "",
                    base=_typical(sample_before),
                    head=_typical(sample_after),
                    change=_share(estimate),
                    ci=(_share(ci[0]), _share(ci[1])) if ci else None,
                    method=method,
                    gating=metric in gate_on,
                )
            )
    out.extend(
        verdict(endpoint, metric, v, base=b, head=h, change=_ratio(b, h), ci=None, method=m, evidence=e)
        for endpoint, metric, v, b, h, e, m in _counters(ok_before, ok_after, threshold)
    )
    return _explained(out, base, head, point, ok_before, ok_after)


def _failure_verdict(ok_before: list[Cell], ok_after: list[Cell]) -> str:
    if ok_before and not ok_after:
        return SLOWER
    if ok_after and not ok_before:
        return FASTER
    return INCONCLUSIVE


def _failure_evidence(before: list[Cell], after: list[Cell], ok_before: list[Cell], ok_after: list[Cell]) -> list[str]:
    lines = []
    for name, cells, ok in (("base", before, ok_before), ("head", after, ok_after)):
        if not ok:
            lines.append(f"{name} failed: " + "; ".join(sorted({c.reason for c in cells if c.reason})))
    return lines


def _pairs(before: list[Cell], after: list[Cell]) -> list[tuple[Cell, Cell]]:
    by_trial = {c.trial: c for c in after}
    return [(b, by_trial[b.trial]) for b in before if b.trial in by_trial]


def _typical(values: list[float]) -> float:
    """The trials' geometric mean: the figure whose log-ratio the verdict's estimate is (median if one is 0)."""
    return statistics.geometric_mean(values) if all(v > 0 for v in values) else statistics.median(values)


def _share(log_ratio: float | None) -> float | None:
    return math.expm1(log_ratio) if log_ratio is not None else None


def _ratio(before: float | None, after: float | None) -> float | None:
    return after / before - 1 if before and after is not None else None


def _rps(cell: Cell, endpoint: str) -> float | None:
    if endpoint == ALL:
        return cell.rps
    part = cell.endpoints.get(endpoint)
    return (part.requests - part.errors) / cell.duration_s if part and cell.duration_s else None


def _percentile(percentile: float) -> Callable[[Cell, str], float | None]:
    def value(cell: Cell, endpoint: str) -> float | None:
        encoded = cell.histogram if endpoint == ALL else getattr(cell.endpoints.get(endpoint), "histogram", "")
        if not encoded:
            return None
        return hist.trials_of((encoded,)).percentiles([0], [percentile])[0]

    return value


def _cpu_ms_per_request(cell: Cell, endpoint: str) -> float | None:
    if endpoint != ALL or cell.target_cpu_s is None or not cell.successes:
        return None
    return cell.target_cpu_s * 1000 / cell.successes


def fixed_cpu_per_s(before: list[Cell], after: list[Cell]) -> float:
    """The target's CPU seconds per second that do not grow with requests, fitted over both sides' cells:
    least squares of each window's CPU rate on its throughput, cpu_s / s = fixed + per_request x req/s, one
    per_request per side and one fixed for both (the same app's idle costs; a change that adds per-request
    work moves only its side's slope). Clipped to [0, 0.8 x the lowest window's CPU rate], so every window keeps
    a per-request part (unclipped, the fits here were 41-74 ms/s against windows of 0.075-0.74 CPU s/s, the
    largest fit 0.65 x its lowest window); 0 (nothing taken out:
    the net figure is then plain CPU per request) below 3 windows a side or when the throughputs are too alike
    to tell the two parts apart (every window within 10 % of their mean, as on a quiet machine, where the
    plain figure does not swing either).

    Why: measured on the shared 2-core machine, a window's CPU per request follows its throughput (an A/A's
    base: 1.22 ms at 225 req/s, 1.92 ms at 43 req/s; a fit of CPU per request on 1/throughput explained 59-85 %
    of its variance in three comparisons), so the throughput swings that other processes cause come back in
    CPU per request; the fitted fixed part was 41-74 ms per second in ten comparisons.
    """
    usable = [
        (c, side)
        for side, cells in enumerate((before, after))
        for c in cells
        if c.target_cpu_s is not None and c.successes and c.duration_s
    ]
    if any(sum(side == wanted for _, side in usable) < 3 for wanted in (0, 1)):
        return 0.0
    rps = np.array([c.successes / c.duration_s for c, _ in usable])
    if np.all(np.abs(rps / rps.mean() - 1) < 0.10):
        return 0.0
    head = np.array([side for _, side in usable], dtype=float)
    rate = np.array([(c.target_cpu_s or 0.0) / c.duration_s for c, _ in usable])
    design = np.column_stack([np.ones_like(rps), rps * (1 - head), rps * head])
    (fixed, *_), *_ = np.linalg.lstsq(design, rate, rcond=None)
    return float(min(max(fixed, 0.0), 0.8 * rate.min()))


def _net_cpu_ms_per_request(before: list[Cell], after: list[Cell]) -> Callable[[Cell, str], float | None]:
    """CPU ms per request net of the point's fixed CPU per second (fixed_cpu_per_s), scenario-wide only."""
    fixed = fixed_cpu_per_s(before, after)

    def value(cell: Cell, endpoint: str) -> float | None:
        if endpoint != ALL or cell.target_cpu_s is None or not cell.successes:
            return None
        return (cell.target_cpu_s - fixed * cell.duration_s) * 1000 / cell.successes

    return value


# metric, its value in one trial, whether a higher value is better
_TIMED: tuple[tuple[str, Callable[[Cell, str], float | None], bool], ...] = (
    ("rps", _rps, True),
    ("p50_ms", _percentile(50.0), False),
    ("p99_ms", _percentile(99.0), False),
    ("cpu_ms_per_request", _cpu_ms_per_request, False),
)


def _bootstrap(samples: Sequence[Sequence[float]], statistic: Callable[..., Any], paired: bool) -> tuple[float, float]:
    with warnings.catch_warnings():  # identical trials: a degenerate interval, read as the point itself
        warnings.simplefilter("ignore")
        result = stats.bootstrap(
            tuple(np.asarray(s, dtype=float) for s in samples),
            statistic,
            paired=paired,
            vectorized=True,
            n_resamples=BOOTSTRAP_RESAMPLES,
            confidence_level=CONFIDENCE,
            method="percentile",
            rng=np.random.default_rng(BOOTSTRAP_SEED),
        )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _mean(x: Any, axis: int = -1) -> Any:
    return np.mean(x, axis=axis)


def _mean_difference(x: Any, y: Any, axis: int = -1) -> Any:
    return np.mean(y, axis=axis) - np.mean(x, axis=axis)


def _paired_ci(logs: list[float]) -> tuple[float | None, tuple[float, float] | None, str]:
    """Mean log-ratio of the paired trials and its interval (None below two pairs)."""
    if not logs:
        return None, None, "paired"
    estimate = statistics.fmean(logs)
    if len(logs) < 2:
        return estimate, None, "paired"
    low, high = _bootstrap([logs], _mean, paired=False)
    return estimate, _or_point(low, high, estimate), "paired"


def _unpaired_ci(before: list[float], after: list[float]) -> tuple[float | None, tuple[float, float] | None, str]:
    """Difference of the sides' mean log values and its two-sample interval (None below two trials a side)."""
    if any(v <= 0 for v in before + after):
        return None, None, "unpaired"
    logs_before, logs_after = [math.log(v) for v in before], [math.log(v) for v in after]
    estimate = statistics.fmean(logs_after) - statistics.fmean(logs_before)
    if len(before) < 2 or len(after) < 2:
        return estimate, None, "unpaired"
    low, high = _bootstrap([logs_before, logs_after], _mean_difference, paired=False)
    return estimate, _or_point(low, high, estimate), "unpaired"


def _or_point(low: float, high: float, estimate: float) -> tuple[float, float]:
    return (low, high) if not (math.isnan(low) or math.isnan(high)) else (estimate, estimate)


def _ranks_differ(before: list[float], after: list[float]) -> bool:
    """Two runs' trials: do their ranks differ at ``1 - CONFIDENCE`` (Mann-Whitney U, exact, two-sided)?

    asv's rule for unpaired samples. Two runs also differ by whatever the machine did between them, which
    the trials of each cannot show; with 3 trials a side the exact test cannot reach 0.05 (its smallest p
    is 0.1), so such a comparison is inconclusive rather than a false alarm (measured: an A/A of two runs
    with 3 trials each gave a bootstrap interval of -22 %..-10 % on this 2-core machine).
    """
    result = stats.mannwhitneyu(before, after, alternative="two-sided", method="exact")
    return bool(result.pvalue < 1 - CONFIDENCE)


def _signed_ranks_differ(logs: list[float]) -> bool:
    """Paired trials: are the log-ratios away from 0 at ``1 - CONFIDENCE`` (Wilcoxon signed-rank, exact,
    two-sided)? Below 6 pairs it cannot be (its smallest p with 5 is 0.0625): measured, an A/A ``bench ab``
    of 4 interleaved pairs on this 2-core machine had head below base in all 4 (bootstrap -31 %..-11 %),
    so 4 same-signed pairs are not evidence enough. DESIGN.md asks for >= 10 pairs on this box."""
    if len(logs) < 2 or all(value == 0 for value in logs):
        return False
    result = stats.wilcoxon(logs, alternative="two-sided", method="exact")
    return bool(result.pvalue < 1 - CONFIDENCE)


def _timed_verdict(
    estimate: float | None, ci: tuple[float, float] | None, threshold: float, higher: bool, ranks_agree: bool
) -> str:
    if estimate is None or ci is None:
        return INCONCLUSIVE
    bound = math.log1p(threshold)
    low, high = ci
    if -bound < low and high < bound:
        return NO_CHANGE
    significant = (low > 0 or high < 0) and ranks_agree
    if significant and abs(estimate) >= bound:
        return FASTER if (estimate > 0) == higher else SLOWER
    return INCONCLUSIVE


# The fewest paired trials whose exact signed-rank test can reach p < 1 - CONFIDENCE (two-sided: 2 / 2**n).
MIN_PAIRS = 6


def _fewest_unpaired(before: int, after: int) -> bool:
    """Whether the exact Mann-Whitney U test of ``before`` and ``after`` trials can reach p < 1 - CONFIDENCE
    at all: its smallest two-sided p is 2 / C(before + after, before) (3 + 3: 0.1; 4 + 4: 0.029)."""
    return 2 / math.comb(before + after, before) < 1 - CONFIDENCE


def _inconclusive_reason(sizes: tuple[int, ...], ci: tuple[float, float] | None, threshold: float, ranks: bool) -> str:
    """Why a timed verdict is inconclusive, in a few words the verdict line carries (sizes: the pairs, or each
    side's trials)."""
    if len(sizes) == 1 and sizes[0] < MIN_PAIRS:
        return f"{sizes[0]} pairs: the paired signed-rank test needs {MIN_PAIRS} or more, --trials {MIN_PAIRS}"
    if len(sizes) == 2 and (min(sizes) < 2 or not _fewest_unpaired(*sizes)):
        return (
            f"{sizes[0]} and {sizes[1]} trials: two runs' rank test needs 4 a side or more; "
            f"or one interleaved run, bench ab, of {MIN_PAIRS} pairs or more"
        )
    if ci is None:
        return "no interval: too few trials"
    low, high = ci
    bound = math.log1p(threshold)
    if low <= 0 <= high:
        return f"the 95 % interval spans 0 and reaches beyond ±{threshold:.0%}: too wide to say; more trials narrow it"
    if not ranks:
        return "the interval excludes 0 but the trials' ranks do not differ, p ≥ 0.05"
    if max(abs(low), abs(high)) >= bound:
        return f"a change, smaller than {threshold:.0%} at the estimate but its interval reaches beyond"
    return ""


@dataclass(frozen=True)
class _Counted:
    """One side's statement counters, pooled over its windows (each window's figures kept for their wobble)."""

    queries: dict[str, float]  # endpoint (ALL: the whole scenario) -> queries per request
    statements: dict[str, dict[str, float]]  # fingerprint -> {"calls": per request, "ms": per request}
    method: str  # EXACT (the target's hooks), PER_ENDPOINT or PER_SCENARIO (pg_stat_statements)
    query_trials: dict[str, list[float]] = field(default_factory=dict)  # endpoint -> each window's figure
    call_trials: dict[str, list[float]] = field(default_factory=dict)  # fingerprint -> each window's figure
    # Requests in flight at a window's edges, as a share of the side's requests (see _edge_share).
    edge: float = 0.0


def _target_counters(cells: list[Cell]) -> _Counted | None:
    """Queries per request per endpoint, and calls and ms per request per statement fingerprint, pooled, from
    the target's own statement hooks (/_bench/stats); None when a window has none."""
    windows = [c.target_stats for c in cells if c.target_stats and c.target_stats.get("instrumented")]
    if not windows or len(windows) != len(cells):
        return None
    requests: dict[str, int] = {}
    queries: dict[str, int] = {}
    statements: dict[str, dict[str, float]] = {}
    for window in windows:
        for name, figures in (window.get("endpoints") or {}).items():
            requests[name] = requests.get(name, 0) + int(figures["requests"])
            queries[name] = queries.get(name, 0) + int(figures["queries"])
        for statement in window.get("statements") or []:
            slot = statements.setdefault(statement["fingerprint"], {"calls": 0.0, "ms": 0.0})
            slot["calls"] += float(statement["calls"])
            slot["ms"] += float(statement["total_ms"])
    total = sum(requests.values())
    per_endpoint = {name: queries[name] / count for name, count in requests.items() if count}
    return _Counted(per_endpoint, _per_request(statements, total), EXACT, edge=_edge_share(cells, total))


def _edge_share(cells: list[Cell], requests: int) -> float:
    """The share of a side's ``requests`` whose statements a window may split from them: a statement is counted
    when it ends, a request when it ends, so a request in flight as the window opens (or closes) has its
    statements outside (or inside) and itself inside (or outside). A closed model has at most ``users``
    requests in flight at each edge. (A queries-per-request figure counted at the request's end, per endpoint,
    is exact; a statement's calls per request moves by up to this share: 0.969 -> 1.03 for a one-statement
    /db with 32 users in ~1,000-request windows, a fresh-eyes false alarm of 2026-12-01.)"""
    return 2 * sum(c.users for c in cells) / requests if requests else 0.0


def _pg_counters(cells: list[Cell]) -> _Counted | None:
    """The same counters from each window's pg_stat_statements delta (reset at the window's start, read at its
    end, on the database dbbench made for the cell), for targets without statement hooks (users' apps).

    The server cannot tell which request ran a statement, so the queries are an endpoint's only when every
    window loaded that one endpoint; otherwise they are the scenario's (endpoint ALL). None when a window has
    no snapshot (pg_stat_statements unavailable) or one that may be incomplete (PG_SNAPSHOT_LIMIT reached).
    """
    if not cells or any(c.pg_statements is None or len(c.pg_statements) >= PG_SNAPSHOT_LIMIT for c in cells):
        return None
    names = {name for c in cells for name in c.endpoints}
    one = len(names) == 1 and all(len(c.endpoints) == 1 for c in cells)
    endpoint = next(iter(names)) if one else ALL
    statements: dict[str, dict[str, float]] = {}
    query_trials: list[float] = []
    call_trials: dict[str, list[float]] = {}
    for index, cell in enumerate(cells):
        calls = 0
        for row in cell.pg_statements or []:
            slot = statements.setdefault(row["fingerprint"], {"calls": 0.0, "ms": 0.0})
            slot["calls"] += float(row["calls"])
            slot["ms"] += float(row["total_ms"])
            calls += int(row["calls"])
            if cell.requests:
                trials = call_trials.setdefault(row["fingerprint"], [0.0] * index)
                trials.append(row["calls"] / cell.requests)
        for trials in call_trials.values():  # a statement this window did not run: 0 calls in it
            trials.extend([0.0] * (index + 1 - len(trials)))
        if cell.requests:
            query_trials.append(calls / cell.requests)
    total = sum(c.requests for c in cells)
    if not total:
        return None
    queries = sum(slot["calls"] for slot in statements.values()) / total
    return _Counted(
        {endpoint: queries},
        _per_request(statements, total),
        PER_ENDPOINT if one else PER_SCENARIO,
        {endpoint: query_trials},
        call_trials,
        edge=_edge_share(cells, total),
    )


def _per_request(statements: dict[str, dict[str, float]], total: int) -> dict[str, dict[str, float]]:
    if not total:
        return {}
    return {text: {"calls": slot["calls"] / total, "ms": slot["ms"] / total} for text, slot in statements.items()}


def _counted(cells: list[Cell]) -> _Counted | None:
    """The target's own counters where it has them, else pg_stat_statements', else None."""
    return _target_counters(cells) or _pg_counters(cells)


def _tolerance(before: list[float], after: list[float]) -> float:
    """How far two sides' counters may differ without a verdict: QUERY_TOLERANCE, or WOBBLE_SIGMAS standard
    errors of the difference of their windows' means when each side has two windows or more."""
    if len(before) < 2 or len(after) < 2:
        return QUERY_TOLERANCE
    error = math.sqrt(statistics.variance(before) / len(before) + statistics.variance(after) / len(after))
    return max(QUERY_TOLERANCE, WOBBLE_SIGMAS * error)


_Counter = tuple[str, str, str, float, float, list[str], str]  # endpoint, metric, verdict, base, head, why, method


def _exact(before: float, after: float, tolerance: float) -> str:
    return SLOWER if after - before > tolerance else FASTER if before - after > tolerance else NO_CHANGE


def _counters(before: list[Cell], after: list[Cell], threshold: float) -> list[_Counter]:
    """The deterministic counters both sides measured, each with its verdict (no interval: they do not wobble
    beyond what the windows' edges and a scenario's random mix of endpoints explain; see _tolerance)."""
    out: list[_Counter] = []
    counted_before, counted_after = _counted(before), _counted(after)
    if counted_before and counted_after and counted_before.method == counted_after.method:
        method = counted_before.method
        statements_before, statements_after = counted_before.statements, counted_after.statements
        grown = _statement_changes(statements_before, statements_after)
        for endpoint in (name for name in counted_before.queries if name in counted_after.queries):
            b, h = counted_before.queries[endpoint], counted_after.queries[endpoint]
            tolerance = _tolerance(
                counted_before.query_trials.get(endpoint, []), counted_after.query_trials.get(endpoint, [])
            )
            verdict = _exact(b, h, tolerance)
            evidence = []
            if verdict != NO_CHANGE:
                evidence.append(
                    f"{endpoint or 'the scenario'}: {b:.3g} → {h:.3g} queries per request"
                    + (f" ({grown[0]})" if grown and verdict == SLOWER else "")
                )
                evidence.extend(grown[1:] if verdict == SLOWER else [])
            out.append((endpoint, "queries_per_request", verdict, b, h, evidence, method))
        for text in dict.fromkeys([*statements_before, *statements_after]):
            b, h = (side.get(text, {"calls": 0.0})["calls"] for side in (statements_before, statements_after))
            # A statement one side never ran is new (or gone): exact, whatever the other side's wobble.
            tolerance = _tolerance(counted_before.call_trials.get(text, []), counted_after.call_trials.get(text, []))
            tolerance = QUERY_TOLERANCE if not (b and h) else tolerance
            # Beyond what the windows' edges can split from their requests (0 for a statement one side never ran).
            edges = max(b, h) * max(counted_before.edge, counted_after.edge) if b and h else 0.0
            tolerance = max(tolerance, edges)
            verdict = _exact(b, h, tolerance)
            evidence = [f"{b:.3g} → {h:.3g} × {_short(text)} per request"] if verdict != NO_CHANGE else []
            out.append((ALL, f"calls_per_request {_short(text, 60)}", verdict, b, h, evidence, method))
    requests = [sum(c.requests for c in side) for side in (before, after)]
    if all(requests):
        per_endpoint = _endpoint_bytes(before, after, threshold)
        out.extend(per_endpoint if per_endpoint is not None else [_bytes_counter(before, after, requests, threshold)])
        b, h = (sum(c.error_count for c in side) / n for side, n in zip((before, after), requests, strict=True))
        verdict = _exact(b, h, ERROR_RATE_TOLERANCE)
        evidence = [f"error rate: {b:.2%} → {h:.2%}"] if verdict != NO_CHANGE else []
        out.append((ALL, "error_rate", verdict, b, h, evidence, EXACT))
    return out


def _endpoint_windows(cells: list[Cell]) -> dict[str, list[tuple[int, int]]] | None:
    """Each endpoint's windows as (response bytes, successful responses), in order of first appearance; None
    when a window holds an endpoint without its bytes (a file written before bench.results recorded them)."""
    windows: dict[str, list[tuple[int, int]]] = {}
    for cell in cells:
        for name, part in cell.endpoints.items():
            if part.bytes_received is None:
                return None
            successes = part.requests - part.errors
            if successes > 0:
                windows.setdefault(name, []).append((part.bytes_received, successes))
    return windows


def _endpoint_bytes(before: list[Cell], after: list[Cell], threshold: float) -> list[_Counter] | None:
    """Response bytes per successful request of each endpoint both sides answered; None when a side's file
    holds no bytes per endpoint (then _bytes_counter judges the scenario's figure, as before they existed).

    An endpoint's figure is its bytes over its successful responses, pooled over the windows. Its responses
    can differ with the random row they return (ids of 1 to 5 digits, a category's item names), so its window
    means wobble a little; measured on the 2-vCPU AMD EPYC (load average 2.7-7.7, other suites running), each
    endpoint's window means over 6 windows of 0.5-2 s, as a share of their mean:
    ``bench run --quick --variants pooled --trials 6 --users 8`` of db, fortunes, search, mixed, nplus1,
    queries, report_refresh, updates: /fortunes, /report, /authors/lazy, /authors/eager and POST
    /refresh-views never moved; /db -0.11..+0.07 %, /queries and /updates within 0.03 %, /search 0.03 %,
    /worlds/{id} -0.06..+0.11 %, PUT /worlds/{id} (15-78 requests a window) -0.33..+0.63 %; and examples/shop's
    A/A ``bench ab --trials 6 --users 4 --warmup 1 --duration 2`` (tests/data/shop-aa-bytes.json):
    /items/[id] within 0.06 %, /categories/[id]/items within 0.06 %, /orders -0.26..+0.11 %. Where the scenario's
    mix moved its figure -4.8..+13 %, an endpoint's moved under 1 %: so a change counts beyond ``threshold``
    of base (as a one-endpoint scenario's always did) and, for an endpoint whose size does vary, beyond
    WOBBLE_SIGMAS standard errors of its windows' means (when each side has two windows or more; with one,
    the threshold alone, the spread above being far inside any threshold the gate takes)."""
    sides = _endpoint_windows(before), _endpoint_windows(after)
    if sides[0] is None or sides[1] is None:
        return None
    out: list[_Counter] = []
    for name in (n for n in sides[0] if n in sides[1]):
        windows = sides[0][name], sides[1][name]
        b, h = (sum(size for size, _ in w) / sum(count for _, count in w) for w in windows)
        means = [[size / count for size, count in w] for w in windows]
        allowance = threshold * b
        if min(len(m) for m in means) >= 2:
            allowance = max(allowance, _tolerance(*means))
        verdict = _exact(b, h, allowance)
        evidence = [f"{name}: {b:,.0f} → {h:,.0f} bytes per request"] if verdict != NO_CHANGE else []
        out.append((name, "bytes_per_request", verdict, b, h, evidence, ENDPOINT_BYTES_METHOD))
    return out


def _bytes_counter(before: list[Cell], after: list[Cell], requests: list[int], threshold: float) -> _Counter:
    """Response bytes per request, scenario-wide: for files that hold no bytes per endpoint (written before
    bench.results recorded them; _endpoint_bytes judges the others).

    One endpoint in every window: its responses' size, gated beyond ``threshold`` (EXACT). Several: the figure
    is a mean over the endpoints' random mix, which moves it from window to window (a fresh-eyes A/A moved it
    -4.8..+3 %, and head vs base of the same responses +13.2 %: 420 -> 475 bytes, the windows of one side
    ranging 418-543), so a change must also exceed WOBBLE_SIGMAS standard errors of the windows' figures
    (MIX_METHOD); with fewer than two windows a side that wobble is unknown and the verdict inconclusive.
    """
    b, h = (sum(c.bytes_received for c in side) / n for side, n in zip((before, after), requests, strict=True))
    names = {name for c in before + after for name in c.endpoints}
    one_endpoint = len(names) <= 1
    allowance = threshold * b
    if one_endpoint:
        method = EXACT
    else:
        method = MIX_METHOD
        windows = [[c.bytes_received / c.requests for c in side if c.requests] for side in (before, after)]
        if min(len(w) for w in windows) < 2:
            return (ALL, "bytes_per_request", INCONCLUSIVE, b, h, [], method)
        allowance = max(allowance, _tolerance(*windows))
    verdict = _exact(b, h, allowance)
    evidence = [f"response bytes per request: {b:.0f} → {h:.0f}"] if verdict != NO_CHANGE else []
    return (ALL, "bytes_per_request", verdict, b, h, evidence, method)


def _statement_changes(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> list[str]:
    """The statements whose calls or time per request grew, most grown first: "+19 x SELECT ..." lines."""
    grown: list[tuple[float, str]] = []
    for text, figures in after.items():
        was = before.get(text, {"calls": 0.0, "ms": 0.0})
        calls = figures["calls"] - was["calls"]
        ms = figures["ms"] - was["ms"]
        if calls > QUERY_TOLERANCE:
            grown.append((calls * 1000 + ms, f"+{calls:.3g} × {_short(text)} per request"))
        elif was["ms"] and ms / was["ms"] > DEFAULT_THRESHOLD:
            grown.append((ms, f"{_short(text)}: {was['ms']:.3g} → {figures['ms']:.3g} ms per request"))
    return [line for _, line in sorted(grown, reverse=True)[:STATEMENTS_SHOWN]]


def _short(statement: str, limit: int = 80) -> str:
    text = " ".join(statement.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _explained(
    verdicts: list[Verdict], base: _Side, head: _Side, point: Point, before: list[Cell], after: list[Cell]
) -> list[Verdict]:
    """Each regression with why it may be one: statements that grew, plans that changed, profile frames."""
    if not any(v.verdict == SLOWER and v.method in _TIMED_METHODS for v in verdicts):
        return verdicts
    why: list[str] = []
    counted = _counted(before), _counted(after)
    if counted[0] and counted[1]:
        why.extend(_statement_changes(counted[0].statements, counted[1].statements))
    why.extend(_plan_changes(base.results, head.results, point[4]))
    why.extend(_profile_changes(base.results, head.results, point))
    return [
        Verdict(**{**v.__dict__, "evidence": [*v.evidence, *why]})
        if v.verdict == SLOWER and v.method in _TIMED_METHODS
        else v
        for v in verdicts
    ]


_TIMED_METHODS = ("paired", "unpaired")


def _plan_shape(plan: dict[str, Any] | None) -> str:
    """The plan's node types, outermost first ("Nested Loop > Seq Scan > Index Scan")."""
    nodes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        nodes.append(str(node.get("Node Type", "?")))
        for child in node.get("Plans") or []:
            walk(child)

    root = (plan or {}).get("Plan") if isinstance(plan, dict) else None
    if isinstance(root, dict):
        walk(root)
    return " > ".join(nodes)


def _plan_changes(base: Results, head: Results, setting: str) -> list[str]:
    def shapes(results: Results) -> dict[str, str]:
        return {
            e["query"]: _plan_shape(e.get("plan"))
            for e in results.explains
            if e.get("plan") and (e.get("setting") or "") == setting
        }

    before, after = shapes(base), shapes(head)
    return [
        f"plan changed for {_short(q)}: {before[q]} → {after[q]}"
        for q in after
        if q in before and before[q] != after[q]
    ]


def _profile_changes(base: Results, head: Results, point: Point) -> list[str]:
    def frames(results: Results) -> dict[str, float] | None:
        for profile in results.profiles:
            mine = profile.get("scenario") == point[1] and (not point[0] or profile.get("variant") == point[0])
            if mine and "top_frames" in profile:
                return {f["function"]: float(f["self_share"]) for f in profile["top_frames"]}
        return None

    before, after = frames(base), frames(head)
    if before is None or after is None:
        return []
    grown = sorted(((share - before.get(name, 0.0), name, share) for name, share in after.items()), reverse=True)
    return [
        f"profile: {name} self time {before.get(name, 0.0):.0%} → {share:.0%}"
        for delta, name, share in grown[:STATEMENTS_SHOWN]
        if delta > 0.02
    ]
