"""How far a CI job can trust `bench ab`'s verdict on this machine: false alarms, detections, wall time.

    python benchmarks/gate_quality.py [--repeats 10] [--which aa,slow,nplus1] [--trials 10] [--users 8]
                                      [--warmup 1] [--duration 4] [--slowdown 0.10]
                                      [--log /tmp/dbbench-gate-quality.jsonl] [--stop-after MINUTES]
                                      [--summary [--rejudge 0.05,0.1]]

Each comparison is one `bench ab` run exactly as the example CI workflow (examples/github-actions/bench-ab.yml)
runs it on examples/shop: `--trials 10 --users 8 --warmup 1 --duration 4 --no-calibrate --no-html` by default,
every other option at its default (the check; the verdict gating on net CPU per request and the counters at
the default threshold, bench.gate_defaults), its exit code read as a CI job reads it (1: a regression, the job
fails). Three kinds of comparison, each between two temporary copies of examples/shop (base: the copy as
shipped; head: an edited copy; nothing shipped is switched):

- aa:     head is an unedited copy too. A regression verdict here is a false alarm.
- slow:   head burns --slowdown (default 10 %) of its own CPU per request in every request (in the `session`
          dependency every measured endpoint uses). The copy sizes the burn itself: every BURN_WINDOW requests
          it reads its process's CPU time, takes the burn out, and burns that share of what is left per
          request from then on, so the injection follows what the app costs at that moment on a machine whose
          load changes (a fixed burn sized from an earlier run measured +19 % median when aimed at +10 %).
          Printed per comparison: the share the head burnt of its own CPU (its log, warm-up included) and the
          share measured by the comparison itself (head / base CPU per request of the paired trials).
- nplus1: head's GET /categories/{id}/items fetches each listed item's category name with one query per row
          instead of the one joined query (20 rows: 1 -> 21 queries per request on that endpoint).

Kinds are interleaved (the least-run one next), so a slow hour of the machine hits each alike. Every comparison
is appended to --log as one JSON line (exit code, wall time, slower metrics, CPU figures, queries per request,
the load average before and after) with bench ab's own output and results file in LOG.d/; a later run with the
same settings resumes from it, and --summary prints the rates from what is there without running anything,
with, from the kept results files, how often each timed metric alone says slower per kind (which metric
separates A/A from A/B) and, with --rejudge, what `bench compare --threshold T` says on the same files.
--summary reads every --log given (campaigns of several sessions, e.g. the ones kept in
benchmarks/campaigns/gate_quality/); each comparison records the commit it ran.

Counts alone prove the goal slowly (below), so the summary also prints each comparison's *margin*: how far
the gate's timed rule was from flagging it (see margin()), and, from a normal fit of the margins of a kind,
the model's rate of the rare event (an A/A flagged, a slowdown missed) with a bootstrap upper bound. A model,
printed beside the counts, never instead of them: it says how close the comparisons came, which 0 of 40 cannot.

Printed: per comparison its exit code, wall time, load average, the injected share and the metrics found
slower; then the false-alarm rate (aa) and the detection rates (slow, nplus1), each with its 95 % Wilson
interval (scipy), the wall time per comparison, the command line and the machine. A comparison that ends with
neither 0 nor 1 (bad input, a failed set-up) is counted apart, never as a pass.

It takes long: each comparison runs 2 x trials cells of warm-up + duration (100 s of load with the defaults)
plus each app's set-up and check, and a server and a Locust started and stopped per cell: measured at load
average 10-16, 313 s, of which 36 s before the first cell, 13.7 s per cell (5 s of load) and 16 s after the
last. The issue's goal (<= 5 % false alarms, >= 95 % of 10 % slowdowns caught) needs 73 comparisons of a kind
without a miss before the Wilson interval's far end passes 5 % (0 of 20: up to 16 %; 0 of 40: 8.8 %).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import math
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import compare, metadata, results  # noqa: E402
from bench.errors import BenchError  # noqa: E402

SHOP = ROOT / "examples" / "shop"
APP = "shop.main:app"
KINDS = ("aa", "slow", "nplus1")
SETUP = ("python migrate.py", "python seed.py")
# What the example workflow (examples/github-actions/bench-ab.yml) passes besides the timing: the load
# generator's calibration and the HTML report serve no verdict and cost a comparison ~10-20 s (see README).
AB_FLAGS = ("--no-calibrate", "--no-html")
# The slowdown's copy measures its own CPU per request every BURN_WINDOW requests (~0.3-1 s here at 300-900
# req/s: within the 1 s warm-up, so the measured window burns at the aim) and logs it to BURN_LOG.
BURN_WINDOW = 100
BURN_LOG = "burn.jsonl"
DEFAULT_LOG = Path("/tmp/dbbench-gate-quality.jsonl")
# Copied with the app, never its products: results, reports, bytecode.
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.json", "*.html", "*.profiles", "results")

# The edits, each applied to exactly one place of the copy's shop/main.py (edit() refuses otherwise, so a change
# to examples/shop that moves these lines fails loudly instead of measuring an unedited copy).
_BURN_IMPORT = (
    "from __future__ import annotations\n",
    "from __future__ import annotations\n\nimport json\nimport os\nimport time\nfrom pathlib import Path\n",
)
_BURN_DEFINITION = (
    'app = FastAPI(title="shop", lifespan=lifespan)\n',
    'app = FastAPI(title="shop", lifespan=lifespan)\n'
    "BURN_SHARE = {share!r}  # gate_quality.py: the injected slowdown, a share of the app's own CPU per request\n"
    "BURN_WINDOW = {window!r}  # requests between two measures of the app's own CPU per request\n"
    "BURN_LOG = Path(__file__).with_name({log!r})\n"
    "_burn_s = 0.0  # CPU seconds burnt per request, resized every BURN_WINDOW requests\n"
    "_window = [0, 0.0, 0.0]  # requests in this window, process CPU when it opened, CPU burnt in it\n"
    "\n"
    "\n"
    "def _burn() -> None:\n"
    "    # Sized from the process's own CPU per request (the figure dbbench measures), burn excluded, over the\n"
    "    # last window: BURN_SHARE of what this copy costs now, however busy the machine makes it.\n"
    "    global _burn_s\n"
    "    if _window[0] == 0:\n"
    "        _window[1], _window[2] = time.process_time(), 0.0\n"
    "    elif _window[0] >= BURN_WINDOW:\n"
    "        own_s = (time.process_time() - _window[1] - _window[2]) / _window[0]\n"
    "        row = {{'pid': os.getpid(), 'requests': _window[0], 'own_s': own_s, 'burn_s': _burn_s}}\n"
    "        with BURN_LOG.open('a') as log:\n"
    "            log.write(json.dumps(row) + '\\n')\n"
    "        _burn_s = BURN_SHARE * own_s\n"
    "        _window[:] = [0, time.process_time(), 0.0]\n"
    "    _window[0] += 1\n"
    "    # CPU time, not wall time: the same cost per request however often the thread is preempted.\n"
    "    start = time.thread_time()\n"
    "    while time.thread_time() < start + _burn_s:\n"
    "        pass\n"
    "    _window[2] += time.thread_time() - start\n",
)
_BURN_CALL = (
    "async def session(request: Request) -> AsyncIterator[AsyncSession]:\n",
    "async def session(request: Request) -> AsyncIterator[AsyncSession]:\n    _burn()\n",
)
_ONE_QUERY = """\
    rows = await db.execute(
        select(Item, Category.name)
        .join(Category)
        .where(Item.category_id == category_id)
        .order_by(Item.price_cents, Item.id)
        .limit(max(1, min(limit, 100)))
    )
    return [ItemOut(id=i.id, name=i.name, category=c, price_cents=i.price_cents, stock=i.stock) for i, c in rows.all()]
"""
_QUERY_PER_ROW = """\
    items = (
        await db.execute(
            select(Item)
            .where(Item.category_id == category_id)
            .order_by(Item.price_cents, Item.id)
            .limit(max(1, min(limit, 100)))
        )
    ).scalars().all()
    out = []
    for i in items:  # gate_quality.py: an injected N+1, the category's name fetched once per row
        c = (await db.execute(select(Category.name).where(Category.id == i.category_id))).scalar_one()
        out.append(ItemOut(id=i.id, name=i.name, category=c, price_cents=i.price_cents, stock=i.stock))
    return out
"""


def edit(text: str, old: str, new: str) -> str:
    """``text`` with its one occurrence of ``old`` replaced by ``new``; ValueError when ``old`` is not there
    exactly once."""
    count = text.count(old)
    if count != 1:
        raise ValueError(f"expected one occurrence of {old.splitlines()[0].strip()!r}, found {count}")
    return text.replace(old, new)


def copy_shop(destination: Path, source: Path = SHOP) -> Path:
    """A copy of examples/shop at ``destination`` (which must not exist), without bytecode or results."""
    shutil.copytree(source, destination, ignore=IGNORED)
    return destination


def inject_slowdown(app_dir: Path, share: float, window: int = BURN_WINDOW) -> None:
    """Make the copy at ``app_dir`` burn ``share`` of its own CPU per request in every request that opens a
    session, measured by the copy itself every ``window`` requests; each measure is appended to BURN_LOG in
    the copy's shop/ folder (read back by burn_figures)."""
    main = app_dir / "shop" / "main.py"
    text = main.read_text(encoding="utf-8")
    old, new = _BURN_DEFINITION
    for before, after in (_BURN_IMPORT, (old, new.format(share=share, window=window, log=BURN_LOG)), _BURN_CALL):
        text = edit(text, before, after)
    main.write_text(text, encoding="utf-8")


def burn_figures(app_dir: Path) -> tuple[float, float] | None:
    """(the share of its own CPU the copy burnt, its own CPU ms per request), request-weighted over every
    window of every process the comparison started (warm-up included; the first window of each process burns
    nothing, so the share sits a little under the aim); None when no window closed."""
    path = app_dir / "shop" / BURN_LOG
    if not path.exists():
        return None
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    requests = sum(r["requests"] for r in rows)
    own = sum(r["own_s"] * r["requests"] for r in rows)
    burnt = sum(r["burn_s"] * r["requests"] for r in rows)
    return (burnt / own, own / requests * 1e3) if own and requests else None


def inject_nplus1(app_dir: Path) -> None:
    """Make the copy's category listing fetch each row's category with its own query (an N+1)."""
    main = app_dir / "shop" / "main.py"
    main.write_text(edit(main.read_text(encoding="utf-8"), _ONE_QUERY, _QUERY_PER_ROW), encoding="utf-8")


def rate(hits: int, completed: int) -> float | None:
    """hits / completed, None when nothing completed (no rate, rather than 0 %)."""
    return hits / completed if completed else None


def wilson(hits: int, completed: int) -> tuple[float, float] | None:
    """The 95 % Wilson score interval of hits / completed (scipy's), None when nothing completed."""
    if not completed:
        return None
    from scipy.stats import binomtest  # lazy: scipy is slow to import and --help needs none of it

    interval = binomtest(hits, completed).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


def _metric_figures(outcome: Outcome, metric: str) -> tuple[float | None, tuple[float, float] | None]:
    """(change, 95 % interval) of one gated timed metric, as head / base - 1 of the paired trials."""
    if metric == "cpu_ms_per_request":
        return outcome.cpu_change, outcome.cpu_ci
    if metric == "cpu_ms_per_request_net":
        return outcome.net_change, outcome.net_ci
    return None, None


def margin(outcome: Outcome, threshold: float, gate_on: tuple[str, ...] = compare.DEFAULT_GATE_ON) -> float | None:
    """How far the gate's timed rule was from saying "slower", in log-ratio units (0.01 is about 1 point).

    bench.compare says slower when the interval excludes 0 **and** the estimate reaches ``threshold`` (and the
    ranks agree, which this leaves out); per gated metric the margin is min(log(1 + change) - log(1 +
    threshold), log(1 + interval's low end)), and the comparison's is the largest over ``gate_on`` (any one
    fails the gate): positive means flagged by the timed rule, negative how far from it. Counters (queries,
    bytes, errors) are not in it. Only the CPU metrics the log records count; None when it holds none of them.
    """
    found = []
    for metric in gate_on:
        change, ci = _metric_figures(outcome, metric)
        if change is not None and ci is not None and change > -1 and ci[0] > -1:
            found.append(min(math.log1p(change) - math.log1p(threshold), math.log1p(ci[0])))
    return max(found) if found else None


@dataclass(frozen=True)
class TailModel:
    """A normal fit of one kind's margins: ``rate`` the modelled chance of the rare event (A/A: margin > 0, a
    false alarm; a slowdown: margin <= 0, a miss), ``upper`` its 95 % one-sided upper bound (scipy.stats.bootstrap,
    percentile, over the comparisons), ``normality_p`` Shapiro-Wilk's p of the margins (small: the normal
    tail is a poor guide, trust the counts)."""

    n: int
    mean: float
    sd: float
    rate: float
    upper: float
    normality_p: float


# Fewer margins than this fit no tail worth printing.
MIN_MODEL = 8


def tail_model(margins: list[float], kind: str) -> TailModel | None:
    """The normal fit of ``margins`` (see TailModel); None with fewer than MIN_MODEL or no spread."""
    if len(margins) < MIN_MODEL or statistics.pstdev(margins) == 0:
        return None
    import numpy as np  # lazy, as scipy: --help needs neither
    from scipy import stats

    def event(sample: Any, axis: int = -1) -> Any:
        mean, sd = np.mean(sample, axis=axis), np.std(sample, axis=axis, ddof=1)
        tail = stats.norm.sf(0.0, loc=mean, scale=sd)  # P(margin > 0)
        return tail if kind == "aa" else 1 - tail

    data = np.asarray(margins, dtype=float)
    boot = stats.bootstrap(
        (data,),
        event,
        confidence_level=0.90,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(0),
    )  # the high end of a 90 % two-sided interval is a 95 % one-sided upper bound
    return TailModel(
        n=len(margins),
        mean=float(np.mean(data)),
        sd=float(np.std(data, ddof=1)),
        rate=float(event(data)),
        upper=float(boot.confidence_interval.high),
        normality_p=float(stats.shapiro(data).pvalue),
    )


def margin_line(kind: str, outcomes: list[Outcome], threshold: float) -> str | None:
    """The margins of one kind's completed comparisons at ``threshold``: the closest one, the median and the
    normal fit's rate of the rare event; None when no comparison logged its CPU figures."""
    pairs = [(m, o) for o in outcomes if o.completed and (m := margin(o, threshold)) is not None]
    found = sorted(m for m, _ in pairs)
    if not found:
        return None
    # Where the margin and bench ab's own verdict part: a positive margin that passed (the ranks condition the
    # margin leaves out), or a flag without one (a counter, a failed cell, or a rule other than the default's).
    # Only meaningful at the threshold the comparisons ran with.
    parted = ""
    if math.isclose(threshold, compare.DEFAULT_THRESHOLD):
        passed = sum(m > 0 and not o.flagged for m, o in pairs)
        flagged = sum(m <= 0 and o.flagged for m, o in pairs)
        parted = f" ({passed} above 0 passed, {flagged} at or below 0 flagged)" if passed or flagged else ""
    # A/A: the closest to a false alarm is the highest margin; a slowdown: the closest to a miss, the lowest.
    closest = found[-1] if kind == "aa" else found[0]
    event = "false alarm" if kind == "aa" else "miss"
    line = (
        f"  {kind:<7} margin at {threshold:.0%}: closest {closest * 100:+.1f}, median"
        f" {statistics.median(found) * 100:+.1f} log points over {len(found)}{parted}"
    )
    model = tail_model(found, kind)
    if model is None:
        return line + f" (a normal fit needs {MIN_MODEL})"
    return line + (
        f"; normal fit ({model.mean * 100:+.1f} ± {model.sd * 100:.1f}): P({event}) {model.rate:.2g},"
        f" 95 % upper bound {model.upper:.2g} (bootstrap), Shapiro-Wilk p {model.normality_p:.2f}"
    )


@dataclass
class Outcome:
    """One comparison: ``bench ab``'s exit code (0 pass, 1 regression, else an error) and what it found.

    CPU figures are the app process's CPU milliseconds per successful request (the trials' geometric mean of
    each side), ``cpu_change`` head / base - 1 of the paired trials and ``cpu_ci`` its 95 % interval: for a
    slowdown, the share really injected, measured by the comparison itself.
    """

    kind: str
    exit_code: int
    wall_s: float
    slower: list[str] = field(default_factory=list)  # "metric endpoint" of each slower verdict
    cpu_change: float | None = None  # head / base - 1 of the target's CPU per request (scenario-wide)
    failed_cells: int = 0  # cells that failed (bench ab exits 1 for them too: a CI job fails either way)
    error: str = ""
    cpu_ci: tuple[float, float] | None = None
    base_cpu_ms: float | None = None
    head_cpu_ms: float | None = None
    net_change: float | None = None  # the same for CPU per request net of the fixed CPU per second (the gate's)
    net_ci: tuple[float, float] | None = None
    burn_share: float | None = None  # slow: burnt / the head's own CPU per request, as the head measured it
    head_own_cpu_ms: float | None = None  # slow: the head's own CPU ms per request (burn excluded), its measure
    queries: str = ""  # the queries-per-request verdict: "1.07 -> 5.35 (exact, pg_stat_statements per scenario)"
    load_before: tuple[float, float, float] | None = None  # os.getloadavg() when it started
    load_after: tuple[float, float, float] | None = None
    started: str = ""  # UTC, ISO 8601
    settings: dict[str, Any] = field(default_factory=dict)  # trials, users, warmup, duration, slowdown
    raw: str = ""  # the file holding bench ab's own output
    commit: str = ""  # the dbbench commit that ran it (git describe: "-dirty" when the checkout had changes)

    @property
    def flagged(self) -> bool:
        return self.exit_code == 1

    @property
    def completed(self) -> bool:
        return self.exit_code in (0, 1)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in ("cpu_ci", "net_ci", "load_before", "load_after"):
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        return cls(**values)


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """What makes two comparisons alike: only outcomes of the same settings are counted together."""
    return {
        "trials": args.trials,
        "flags": " ".join(AB_FLAGS),
        "users": args.users,
        "warmup": args.warmup,
        "duration": args.duration,
        "slowdown": args.slowdown,
    }


def read_log(path: Path) -> list[Outcome]:
    """The outcomes appended to ``path`` so far (none when it does not exist); a torn last line is skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(Outcome.from_dict(json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            continue  # a line cut short by a kill: that comparison is simply not counted
    return out


def append_log(path: Path, outcome: Outcome) -> None:
    with path.open("a", encoding="utf-8") as log:
        log.write(outcome.to_json() + "\n")


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _interval(hits: int, completed: int) -> str:
    ci = wilson(hits, completed)
    return "" if ci is None else f", 95 % CI {ci[0]:.0%}..{ci[1]:.0%} (Wilson)"


def summary(kind: str, outcomes: list[Outcome], target_share: float | None) -> str:
    """One line per kind: the rate (false alarms for aa, detections otherwise) with its Wilson interval,
    errors, wall time, load average and, for slowdowns, the share really injected."""
    done = [o for o in outcomes if o.completed]
    hits = sum(o.flagged for o in done)
    name = {"aa": "A/A false alarms", "slow": "slowdown detected", "nplus1": "N+1 detected"}[kind]
    line = f"{name:<18} {hits}/{len(done)} ({_percent(rate(hits, len(done)))}{_interval(hits, len(done))})"
    errors = len(outcomes) - len(done)
    if errors:
        line += f", {errors} comparison(s) ended in error (not counted)"
    walls = [o.wall_s for o in outcomes]
    if walls:
        line += f"; wall time per comparison median {statistics.median(walls):.0f} s, max {max(walls):.0f} s"
    loads = [o.load_before[0] for o in outcomes if o.load_before] + [o.load_after[0] for o in outcomes if o.load_after]
    if loads:
        line += f"; load average (1 min) {min(loads):.2f}..{max(loads):.2f}"
    shares = [o.cpu_change for o in done if o.cpu_change is not None]
    if kind == "slow" and shares:
        line += (
            f"; injected CPU per request measured {statistics.median(shares):+.1%} median"
            f" ({min(shares):+.1%}..{max(shares):+.1%})"
        )
        if target_share is not None:
            line += f", aimed at +{target_share:.0%}"
    return line


def _bench() -> list[str]:
    script = Path(sys.executable).parent / "bench"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bench"]


def _env() -> dict[str, str]:
    # The set-up commands say `python`: the interpreter running this script (its venv has the shop's packages).
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    return env


def _setup_args() -> list[str]:
    return [arg for command in SETUP for arg in ("--setup", command)]


def _timing_args(args: argparse.Namespace) -> list[str]:
    return ["--users", str(args.users), "--warmup", f"{args.warmup:g}", "--duration", f"{args.duration:g}"]


def ab_command(args: argparse.Namespace, output: str) -> list[str]:
    """The comparison, as a CI job runs it from the head checkout with the base one beside it."""
    return [
        *_bench(),
        "ab",
        "--app",
        APP,
        "--base",
        "../base",
        "--head",
        ".",
        "--scenarios",
        "perf/locustfile.py",
        *_setup_args(),
        "--trials",
        str(args.trials),
        *_timing_args(args),
        *AB_FLAGS,
        "-o",
        output,
    ]


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _run(command: list[str], cwd: Path, raw: Path | None = None) -> tuple[int, str]:
    """Run ``command``, its output into ``raw`` (or kept in memory); (exit code, last line of its output).

    Ctrl-C or SIGTERM here is passed on to it as SIGINT, and it is waited for: bench stops what it started
    (its database, the apps, the load) on SIGINT, which a kill of bench alone would orphan."""
    with tempfile.TemporaryFile("w+") if raw is None else raw.open("w+", encoding="utf-8") as out:
        child = subprocess.Popen(command, cwd=cwd, env=_env(), stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            code = child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
            child.wait()
            raise
        out.seek(0)
        return code, _last_line(out.read())


def _read_verdicts(path: Path, outcome: Outcome) -> None:
    """Fill ``outcome`` from one `bench ab` results file: slower verdicts, CPU figures, queries, failed cells."""
    run = results.load(path)
    done = compare.compare_labels(run, base="base", head="head", threshold=compare.DEFAULT_THRESHOLD)
    outcome.slower = [
        f"{v.metric}{' ' + v.endpoint if v.endpoint else ''}" for v in done.verdicts if v.verdict == compare.SLOWER
    ]
    for v in done.verdicts:
        if v.metric == "cpu_ms_per_request" and v.endpoint == compare.ALL:
            outcome.cpu_change, outcome.cpu_ci = v.change, v.ci
            outcome.base_cpu_ms, outcome.head_cpu_ms = v.base, v.head
        elif v.metric == "cpu_ms_per_request_net" and v.endpoint == compare.ALL:
            outcome.net_change, outcome.net_ci = v.change, v.ci
        elif v.metric == "queries_per_request" and v.base is not None and v.head is not None:
            where = f"{v.endpoint} " if v.endpoint else ""
            outcome.queries = f"{where}{v.base:.3g} -> {v.head:.3g} ({v.method}: {v.verdict})"
    outcome.failed_cells = sum(not c.ok for c in run.cells)


def compare_once(kind: str, args: argparse.Namespace, workdir: Path, raw: Path | None = None) -> Outcome:
    """One `bench ab` between a shipped copy (base) and a copy edited for ``kind`` (head); its output is kept
    in ``raw`` and its results file beside it (``raw`` with .json) when given."""
    base = copy_shop(workdir / "base")
    head = copy_shop(workdir / "head")
    if kind == "slow":
        inject_slowdown(head, args.slowdown)
    elif kind == "nplus1":
        inject_nplus1(head)
    outcome = Outcome(kind, -1, 0.0, settings=settings_of(args), raw=str(raw or ""), commit=code_commit())
    outcome.started = datetime.now(UTC).isoformat(timespec="seconds")
    outcome.load_before = os.getloadavg()
    started = time.monotonic()
    try:
        outcome.exit_code, last = _run(ab_command(args, "ab.json"), head, raw)
        outcome.wall_s = time.monotonic() - started
        outcome.load_after = os.getloadavg()
        if not outcome.completed:
            outcome.error = last
        elif (head / "ab.json").exists():
            _read_verdicts(head / "ab.json", outcome)
            if raw is not None:
                shutil.copyfile(head / "ab.json", raw.with_suffix(".json"))
        if kind == "slow" and (figures := burn_figures(head)):
            outcome.burn_share, outcome.head_own_cpu_ms = figures
    finally:
        shutil.rmtree(base)
        shutil.rmtree(head)
    return outcome


def code_commit() -> str:
    """The dbbench checkout's commit ("a43e526", "a43e526-dirty"), "" outside a git checkout."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=7"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def _describe(outcome: Outcome, number: int) -> str:
    verdict = {0: "pass", 1: "regression"}.get(outcome.exit_code, f"error: {outcome.error}")
    line = f"{outcome.kind:<6} #{number}: exit {outcome.exit_code} ({verdict}), {outcome.wall_s:.0f} s"
    if outcome.load_before:
        line += f", load {outcome.load_before[0]:.2f}"
        if outcome.load_after:
            line += f"->{outcome.load_after[0]:.2f}"
    if outcome.cpu_change is not None:
        line += f", CPU per request {outcome.cpu_change:+.1%}"
        if outcome.cpu_ci:
            line += f" [{outcome.cpu_ci[0]:+.1%}..{outcome.cpu_ci[1]:+.1%}]"
        if outcome.net_change is not None:
            line += f", net {outcome.net_change:+.1%}"
            if outcome.net_ci:
                line += f" [{outcome.net_ci[0]:+.1%}..{outcome.net_ci[1]:+.1%}]"
        if outcome.kind == "slow" and outcome.burn_share is not None:
            line += f" (head burnt {outcome.burn_share:.1%} of its own {outcome.head_own_cpu_ms:.3f} ms)"
    if outcome.queries:
        line += f", queries per request {outcome.queries}"
    if outcome.completed:
        line += f", slower: {', '.join(outcome.slower) or '-'}"
    if outcome.failed_cells:
        line += f", failed cells: {outcome.failed_cells}"
    return line


def _machine() -> str:
    m = metadata.machine()
    return f"{m['cpu_count']} CPUs ({m['cpu_model']}), {m['platform']}, Python {m['python']}"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeats", type=int, default=10, help="comparisons per kind (default 10)")
    parser.add_argument("--which", default=",".join(KINDS), help="kinds, comma separated (default aa,slow,nplus1)")
    parser.add_argument("--trials", type=int, default=10, help="bench ab --trials (default 10, as the CI example)")
    parser.add_argument("--users", type=int, default=8, help="bench ab --users (default 8, as the CI example)")
    parser.add_argument("--warmup", type=float, default=1.0, help="bench ab --warmup, s (default 1, as the CI example)")
    parser.add_argument(
        "--duration", type=float, default=4.0, help="bench ab --duration, s (default 4, as the CI example)"
    )
    parser.add_argument("--slowdown", type=float, default=0.10, help="injected CPU per request, a share (default 0.10)")
    parser.add_argument(
        "--log",
        type=Path,
        action="append",
        default=None,
        help=f"every comparison is appended here as a JSON line, its raw output beside it in LOG.d/; a run "
        f"resumes from it, counting the comparisons of the same settings already there (default {DEFAULT_LOG});"
        f" --summary takes it several times and counts every log's comparisons",
    )
    parser.add_argument(
        "--stop-after",
        type=float,
        default=None,
        metavar="MINUTES",
        help="start no comparison after this many minutes (the summary is of everything in the log)",
    )
    parser.add_argument(
        "--summary", action="store_true", help="run nothing: print the summary of the log's comparisons"
    )
    parser.add_argument(
        "--rejudge",
        default="",
        metavar="T[,T...]",
        help="with the summary, also the rates bench compare --threshold T gives on the kept results files",
    )
    parser.add_argument(
        "--rejudge-on",
        default=",".join(compare.DEFAULT_GATE_ON),
        metavar="M[,M...][;M...]",
        help="--rejudge's --gate-on: timed metrics, comma separated; several sets separated by ';' "
        f"(default {','.join(compare.DEFAULT_GATE_ON)})",
    )
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.which.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        parser.error(f"--which takes some of {','.join(KINDS)}; got {args.which!r}")
    if args.repeats < 1 or args.trials < 1 or args.users < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--repeats, --trials, --users and --duration must be positive (--warmup 0 or more)")
    if not 0 < args.slowdown < 1:
        parser.error(f"--slowdown is a share between 0 and 1 (0.10 is 10 %); got {args.slowdown}")
    if args.stop_after is not None and args.stop_after <= 0:
        parser.error(f"--stop-after is a number of minutes above 0; got {args.stop_after:g}")
    try:
        args.rejudge = [float(t) for t in args.rejudge.split(",") if t.strip()]
    except ValueError:
        parser.error(f"--rejudge takes thresholds as shares, comma separated (0.05,0.1); got {args.rejudge!r}")
    if any(not 0 < t < 1 for t in args.rejudge):
        parser.error(f"--rejudge thresholds are shares between 0 and 1; got {args.rejudge}")
    try:
        args.rejudge_on = [compare.gate_metrics(raw) for raw in args.rejudge_on.split(";") if raw.strip()]
    except BenchError as exc:
        parser.error(str(exc))
    args.logs = args.log or [DEFAULT_LOG]
    if len(args.logs) > 1 and not args.summary:
        parser.error("--log more than once is for --summary (a run appends to one log)")
    args.log = args.logs[0]
    args.kinds = kinds
    return args


def timed_verdicts(path: Path) -> dict[str, compare.Verdict]:
    """The scenario-wide timed verdicts (rps, p50_ms, p99_ms, cpu_ms_per_request) of one logged results file."""
    done = compare.compare_labels(results.load(path), base="base", head="head", threshold=compare.DEFAULT_THRESHOLD)
    return {v.metric: v for v in done.verdicts if v.endpoint == compare.ALL and v.metric in compare.TIMED_METRICS}


def by_metric(outcomes: list[Outcome]) -> list[str]:
    """Which timed metric separates A/A from A/B: per kind and metric, how many comparisons it alone would
    flag (its own "slower" verdict), its median change (slower positive: req/s's sign turned) and the median
    width of its 95 % interval, from the results files kept in the log's folder (comparisons without one are
    left out). The verdict rule is bench.compare's as it is now, so a changed rule is re-judged here."""
    lines = [f"{'by metric':<10} {'kind':<7} " + "  ".join(f"{m:<34}" for m in compare.TIMED_METRICS)]
    for kind in KINDS:
        judged = []
        for outcome in outcomes:
            path = Path(outcome.raw).with_suffix(".json") if outcome.raw else None
            if outcome.kind == kind and path is not None and path.exists():
                judged.append(timed_verdicts(path))
        if not judged:
            continue
        cells = []
        for metric in compare.TIMED_METRICS:
            found = [j[metric] for j in judged if metric in j and j[metric].change is not None]
            flagged = sum(v.verdict == compare.SLOWER for v in found)
            sign = -1.0 if metric == "rps" else 1.0
            changes = [sign * (v.change or 0.0) for v in found]
            widths = [v.ci[1] - v.ci[0] for v in found if v.ci]
            median = f"{statistics.median(changes):+.1%}" if changes else "n/a"
            width = f"{statistics.median(widths):.0%}" if widths else "n/a"
            cells.append(f"{flagged}/{len(found)} slower, {median}, CI {width} wide".ljust(34))
        lines.append(f"{'':<10} {kind:<7} " + "  ".join(cells))
    return lines


def rejudged(
    outcomes: list[Outcome], threshold: float, gate_on: tuple[str, ...] = compare.DEFAULT_GATE_ON
) -> list[str]:
    """Per kind, how many comparisons `bench compare ab.json --threshold T --gate-on M` fails on the kept
    results files, with the Wilson interval: what another threshold or gating metric would have done to the
    very same measurements (a failed cell fails either way)."""
    lines = []
    for kind in KINDS:
        flagged = completed = 0
        for outcome in outcomes:
            path = Path(outcome.raw).with_suffix(".json") if outcome.raw else None
            if outcome.kind != kind or not outcome.completed or path is None or not path.exists():
                continue
            done = compare.compare_labels(
                results.load(path), base="base", head="head", threshold=threshold, gate_on=gate_on
            )
            completed += 1
            flagged += bool(done.regressions) or outcome.failed_cells > 0
        if completed:
            lines.append(
                f"  {kind:<7} {flagged}/{completed} flagged ({_percent(rate(flagged, completed))}"
                f"{_interval(flagged, completed)})"
            )
    return [f"re-judged at --threshold {threshold:g} --gate-on {','.join(gate_on)}:", *lines]


def print_summary(args: argparse.Namespace, outcomes: list[Outcome]) -> None:
    """The per-kind lines over the log's outcomes of these settings (others are named, not counted)."""
    mine = [o for o in outcomes if o.settings == settings_of(args)]
    if len(mine) != len(outcomes):
        print(f"({len(outcomes) - len(mine)} logged comparison(s) of other settings not counted)")
    for kind in args.kinds:
        print(summary(kind, [o for o in mine if o.kind == kind], args.slowdown if kind == "slow" else None))
    if mine:
        first, last = min(o.started for o in mine), max(o.started for o in mine)
        print(f"{len(mine)} comparison(s) from {first} to {last} (UTC); log: {', '.join(map(str, args.logs))}")
        counted = collections.Counter(o.commit or "unrecorded" for o in mine)
        print("code: " + ", ".join(f"{commit} ({n})" for commit, n in counted.items()))
        print("gated margin (log points; > 0 is flagged by the timed rule, see margin()):")
        for threshold in (compare.DEFAULT_THRESHOLD, *[t for t in args.rejudge if t != compare.DEFAULT_THRESHOLD]):
            for kind in ("aa", "slow"):
                if (line := margin_line(kind, [o for o in mine if o.kind == kind], threshold)) is not None:
                    print(line)
        print("\n".join(by_metric(mine)))
        for metrics in args.rejudge_on:
            for threshold in args.rejudge:
                print("\n".join(rejudged(mine, threshold, metrics)))


def _next_kind(args: argparse.Namespace, counts: dict[str, int]) -> str | None:
    """The kind to run next: the least-run one, in --which order (so kinds interleave and a resumed log is
    filled evenly); None when each has --repeats."""
    due = [k for k in args.kinds if counts[k] < args.repeats]
    return min(due, key=lambda k: counts[k]) if due else None


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # A script started in the background inherits SIGINT ignored (DESIGN.md); SIGTERM too should stop cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"command: {shlex.join(['python', *sys.argv])}")
    print(f"machine: {_machine()}")
    logged = [o for log in args.logs for o in read_log(log)]
    if args.summary:
        print_summary(args, logged)
        return 0
    print(f"each comparison: {shlex.join(['bench', *ab_command(args, 'ab.json')[len(_bench()) :]])}")
    print("  (run in the head copy, ../base beside it; exit 1 = the gate flags a regression)")
    mine = [o for o in logged if o.settings == settings_of(args)]
    counts = {kind: sum(o.kind == kind for o in mine) for kind in args.kinds}
    if mine:
        print(f"resuming from {args.log}: {', '.join(f'{k} {n}' for k, n in counts.items())} already there")
    raw_dir = args.log.with_name(args.log.name + ".d")
    raw_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.stop_after * 60 if args.stop_after else None
    try:
        with tempfile.TemporaryDirectory(prefix="dbbench-gate-quality-") as tmp:
            workdir = Path(tmp)
            while (kind := _next_kind(args, counts)) is not None:
                if deadline is not None and time.monotonic() > deadline:
                    print(f"--stop-after {args.stop_after:g}: no further comparison started")
                    break
                number = len(mine) + 1
                raw = raw_dir / f"{number:03d}-{kind}.txt"
                outcome = compare_once(kind, args, workdir, raw)
                append_log(args.log, outcome)
                mine.append(outcome)
                counts[kind] += 1
                print(_describe(outcome, counts[kind]), flush=True)
    except KeyboardInterrupt:
        print("interrupted: the comparison under way is not counted", file=sys.stderr)
        print()
        print_summary(args, read_log(args.log))
        return 130
    print()
    print_summary(args, read_log(args.log))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
