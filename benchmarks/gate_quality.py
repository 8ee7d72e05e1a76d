"""How far a CI job can trust `bench ab`'s verdict on this machine: false alarms, detections, wall time.

    python benchmarks/gate_quality.py [--repeats 10] [--which aa,slow,nplus1] [--trials 10] [--users 8]
                                      [--warmup 2] [--duration 5] [--slowdown 0.10]

Each comparison is one `bench ab` run exactly as the example CI workflow (examples/github-actions/bench-ab.yml)
runs it on examples/shop: `--trials 10 --users 8 --warmup 2 --duration 5` by default, every other option at
its default (the check, the load generator's calibration, the HTML report), its exit code read as a CI job
reads it (1: a regression, the job fails). Three kinds of comparison, each between two temporary copies of
examples/shop (base: the copy as shipped; head: an edited copy; nothing shipped is switched):

- aa:     head is an unedited copy too. A regression verdict here is a false alarm.
- slow:   head burns extra CPU in every request (in the `session` dependency every measured endpoint uses),
          calibrated to --slowdown (default 10 %) of the CPU per request the app's process spent in a first
          `bench run` of the copy (the results' target CPU per request). The share really injected is
          printed from each comparison's own figures (head / base CPU per request).
- nplus1: head's GET /categories/{id}/items fetches each listed item's category name with one query per row
          instead of the one joined query (20 rows: 1 -> 21 queries per request on that endpoint).

Printed: per comparison its exit code, wall time and the metrics that were found slower; then the false-alarm
rate (aa), the detection rates (slow, nplus1), the wall time per comparison, the command line and the machine.
A comparison that ends with neither 0 nor 1 (bad input, a failed set-up) is counted apart, never as a pass.

It takes long: each comparison runs 2 x trials cells of warm-up + duration (140 s of load with the defaults)
plus each copy's set-up, its check and the load generator's calibration, and the defaults run 30 comparisons
(10 repeats of 3 kinds) after a calibration run: well over an hour. The issue's goal (<= 5 % false alarms,
>= 95 % of 10 % slowdowns caught) needs ~20 or more repeats per kind before a rate can show it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import compare, metadata, results  # noqa: E402

SHOP = ROOT / "examples" / "shop"
APP = "shop.main:app"
KINDS = ("aa", "slow", "nplus1")
SETUP = ("python migrate.py", "python seed.py")
CALIBRATION_TRIALS = 2
# Copied with the app, never its products: results, reports, bytecode.
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.json", "*.html", "*.profiles", "results")

# The edits, each applied to exactly one place of the copy's shop/main.py (edit() refuses otherwise, so a change
# to examples/shop that moves these lines fails loudly instead of measuring an unedited copy).
_BURN_IMPORT = ("from __future__ import annotations\n", "from __future__ import annotations\n\nimport time\n")
_BURN_DEFINITION = (
    'app = FastAPI(title="shop", lifespan=lifespan)\n',
    'app = FastAPI(title="shop", lifespan=lifespan)\n'
    "BURN_S = {burn_s!r}  # gate_quality.py: CPU seconds burnt per request (an injected slowdown)\n"
    "\n"
    "\n"
    "def _burn() -> None:\n"
    "    # CPU time, not wall time: the same cost per request however busy the machine is.\n"
    "    end = time.thread_time() + BURN_S\n"
    "    while time.thread_time() < end:\n"
    "        pass\n",
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


def inject_slowdown(app_dir: Path, burn_s: float) -> None:
    """Make the copy at ``app_dir`` burn ``burn_s`` CPU seconds in every request that opens a session."""
    main = app_dir / "shop" / "main.py"
    text = main.read_text(encoding="utf-8")
    old, new = _BURN_DEFINITION
    for before, after in (_BURN_IMPORT, (old, new.format(burn_s=burn_s)), _BURN_CALL):
        text = edit(text, before, after)
    main.write_text(text, encoding="utf-8")


def inject_nplus1(app_dir: Path) -> None:
    """Make the copy's category listing fetch each row's category with its own query (an N+1)."""
    main = app_dir / "shop" / "main.py"
    main.write_text(edit(main.read_text(encoding="utf-8"), _ONE_QUERY, _QUERY_PER_ROW), encoding="utf-8")


def rate(hits: int, completed: int) -> float | None:
    """hits / completed, None when nothing completed (no rate, rather than 0 %)."""
    return hits / completed if completed else None


@dataclass
class Outcome:
    """One comparison: ``bench ab``'s exit code (0 pass, 1 regression, else an error) and what it found."""

    kind: str
    exit_code: int
    wall_s: float
    slower: list[str] = field(default_factory=list)  # "metric endpoint" of each slower verdict
    cpu_change: float | None = None  # head / base - 1 of the target's CPU per request (scenario-wide)
    failed_cells: int = 0  # cells that failed (bench ab exits 1 for them too: a CI job fails either way)
    error: str = ""

    @property
    def flagged(self) -> bool:
        return self.exit_code == 1

    @property
    def completed(self) -> bool:
        return self.exit_code in (0, 1)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def summary(kind: str, outcomes: list[Outcome], target_share: float | None) -> str:
    """One line per kind: the rate (false alarms for aa, detections otherwise), errors, wall time."""
    done = [o for o in outcomes if o.completed]
    hits = sum(o.flagged for o in done)
    name = {"aa": "A/A false alarms", "slow": "slowdown detected", "nplus1": "N+1 detected"}[kind]
    line = f"{name:<18} {hits}/{len(done)} ({_percent(rate(hits, len(done)))})"
    errors = len(outcomes) - len(done)
    if errors:
        line += f", {errors} comparison(s) ended in error (not counted)"
    walls = [o.wall_s for o in outcomes]
    if walls:
        line += f"; wall time per comparison median {statistics.median(walls):.0f} s, max {max(walls):.0f} s"
    shares = [o.cpu_change for o in done if o.cpu_change is not None]
    if kind == "slow" and shares:
        line += (
            f"; injected CPU per request measured +{statistics.median(shares):.1%} median"
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
        "-o",
        output,
    ]


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def cpu_per_request_s(path: Path) -> float:
    """The app process's CPU seconds per successful request over a results file's measured cells."""
    cells = [c for c in results.load(path).cells if c.ok and c.target_cpu_s is not None and c.successes]
    if not cells:
        raise SystemExit(f"{path}: no measured cell with the target's CPU time; cannot calibrate the slowdown")
    return sum(c.target_cpu_s or 0.0 for c in cells) / sum(c.successes for c in cells)


def calibrate(args: argparse.Namespace, workdir: Path) -> float:
    """The shipped shop's CPU seconds per request under the comparison's load (a `bench run` of a copy)."""
    app_dir = copy_shop(workdir / "calibration")
    command = [
        *_bench(),
        "run",
        "--app",
        APP,
        "--scenarios",
        "perf/locustfile.py",
        *_setup_args(),
        "--trials",
        str(CALIBRATION_TRIALS),
        *_timing_args(args),
        "--no-check",
        "--no-calibrate",
        "--no-html",
        "-o",
        "calibration.json",
    ]
    done = subprocess.run(command, cwd=app_dir, env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"calibration run failed (exit {done.returncode}): {_last_line(done.stderr or done.stdout)}")
    return cpu_per_request_s(app_dir / "calibration.json")


def _read_verdicts(path: Path) -> tuple[list[str], float | None, int]:
    """The slower verdicts, the CPU per request change and the failed cells of one `bench ab` results file."""
    run = results.load(path)
    done = compare.compare_labels(run, base="base", head="head", threshold=compare.DEFAULT_THRESHOLD)
    slower = [
        f"{v.metric}{' ' + v.endpoint if v.endpoint else ''}" for v in done.verdicts if v.verdict == compare.SLOWER
    ]
    cpu = next(
        (v.change for v in done.verdicts if v.metric == "cpu_ms_per_request" and v.endpoint == compare.ALL), None
    )
    return slower, cpu, sum(not c.ok for c in run.cells)


def compare_once(kind: str, args: argparse.Namespace, workdir: Path, burn_s: float) -> Outcome:
    """One `bench ab` between a shipped copy (base) and a copy edited for ``kind`` (head)."""
    base = copy_shop(workdir / "base")
    head = copy_shop(workdir / "head")
    if kind == "slow":
        inject_slowdown(head, burn_s)
    elif kind == "nplus1":
        inject_nplus1(head)
    started = time.monotonic()
    done = subprocess.run(ab_command(args, "ab.json"), cwd=head, env=_env(), capture_output=True, text=True)
    outcome = Outcome(kind, done.returncode, time.monotonic() - started)
    if not outcome.completed:
        outcome.error = _last_line(done.stderr or done.stdout)
    elif (head / "ab.json").exists():
        outcome.slower, outcome.cpu_change, outcome.failed_cells = _read_verdicts(head / "ab.json")
    shutil.rmtree(base)
    shutil.rmtree(head)
    return outcome


def _describe(outcome: Outcome, number: int) -> str:
    verdict = {0: "pass", 1: "regression"}.get(outcome.exit_code, f"error: {outcome.error}")
    line = f"{outcome.kind:<6} #{number}: exit {outcome.exit_code} ({verdict}), {outcome.wall_s:.0f} s"
    if outcome.cpu_change is not None:
        line += f", CPU per request {outcome.cpu_change:+.1%}"
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
    parser.add_argument("--warmup", type=float, default=2.0, help="bench ab --warmup, s (default 2, as the CI example)")
    parser.add_argument(
        "--duration", type=float, default=5.0, help="bench ab --duration, s (default 5, as the CI example)"
    )
    parser.add_argument("--slowdown", type=float, default=0.10, help="injected CPU per request, a share (default 0.10)")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.which.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        parser.error(f"--which takes some of {','.join(KINDS)}; got {args.which!r}")
    if args.repeats < 1 or args.trials < 1 or args.users < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--repeats, --trials, --users and --duration must be positive (--warmup 0 or more)")
    if not 0 < args.slowdown < 1:
        parser.error(f"--slowdown is a share between 0 and 1 (0.10 is 10 %); got {args.slowdown}")
    args.kinds = kinds
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    print(f"command: {shlex.join(['python', *sys.argv])}")
    print(f"machine: {_machine()}")
    print(f"each comparison: {shlex.join(['bench', *ab_command(args, 'ab.json')[len(_bench()) :]])}")
    print("  (run in the head copy, ../base beside it; exit 1 = the gate flags a regression)")
    outcomes: dict[str, list[Outcome]] = {kind: [] for kind in args.kinds}
    burn_s = 0.0
    with tempfile.TemporaryDirectory(prefix="dbbench-gate-quality-") as tmp:
        workdir = Path(tmp)
        if "slow" in args.kinds:
            cpu_s = calibrate(args, workdir)
            burn_s = cpu_s * args.slowdown
            print(
                f"calibration: the shop's CPU per request {cpu_s * 1e3:.3f} ms ({CALIBRATION_TRIALS} trials of "
                f"`bench run`); injected {burn_s * 1e3:.3f} ms per request (+{args.slowdown:.0%})"
            )
        for repeat in range(1, args.repeats + 1):
            for kind in args.kinds:  # kinds interleaved, so a slow hour of the machine hits each alike
                outcome = compare_once(kind, args, workdir, burn_s)
                outcomes[kind].append(outcome)
                print(_describe(outcome, repeat), flush=True)
    print()
    for kind in args.kinds:
        print(summary(kind, outcomes[kind], args.slowdown if kind == "slow" else None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
