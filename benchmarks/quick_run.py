"""How long `bench run --quick` takes, and whether its tables present noise as a ranking (issue 13, items 1 and 6).

Runs `bench run --quick` N times as it is (``quiet``: whatever else the machine runs), then N times beside a
competing CPU load (``loaded``: one busy-loop process, about one core of this 2-core machine), and prints:

- the wall time of every run (median, min, max per condition) and the CPU time of its processes;
- where each run's time went, from the timeline its results file keeps (bench.timeline): the process's start,
  each step before the first cell, the cells' parts summed over the run, what follows the last cell, and the
  rest of the wall time (the report printed at the end, the interpreter's exit);
- per scenario and pair of variants, how often the pair's order flipped against the order most runs gave,
  and how many of those flips the table did *not* mark as within noise. A pair's noise is judged by the
  tables' own rule (reports.fmt.paired_ratio_ci: the paired trials' 95 % t-interval of the ratio includes 1);
  the tables print it for each variant against the base, and ``all pairs`` applies the same rule to every pair.

    python benchmarks/quick_run.py --repeats 5 --out /tmp/quick-runs
    python benchmarks/quick_run.py --analyse-only --out /tmp/quick-runs   # re-read the files, run nothing

Extra arguments after ``--`` go to `bench run` (e.g. ``-- --scenarios db,fortunes`` for a shorter probe), and
``--bench`` names another checkout's cli.py to time (e.g. the main branch's, for a before/after).
Absolute figures depend on what else the machine runs; record ``uptime`` beside them.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import results as results_io  # noqa: E402
from reports import fmt, summary  # noqa: E402

CONDITIONS = ("quiet", "loaded")
BUSY_LOOP = "while True: pass"


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def run_once(bench: list[str], output: Path, extra: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds of one `bench run --quick` and the CPU seconds its process tree used (user + system of the
    processes it waited for: itself, the servers, Locust, PostgreSQL), which depends less on what else the
    machine runs. Exit 1 (a failed cell) still counts: its file is kept."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(
        [*bench, "run", "--quick", "--no-html", "--force", "-o", str(output), *extra],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"bench run exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(args: argparse.Namespace) -> None:
    bench = [sys.executable, str(Path(args.bench).resolve())] if args.bench else [sys.executable, "-m", "bench"]
    cwd = Path(args.bench).resolve().parent if args.bench else ROOT
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "walls.tsv"
    for condition in args.conditions:
        for index in range(1, args.repeats + 1):
            busy = (
                subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdin=subprocess.DEVNULL)
                if condition == "loaded"
                else None
            )
            try:
                before = load_average()
                wall, cpu = run_once(bench, args.out / f"{condition}-{index}.json", args.extra, cwd)
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
            line = f"{condition}\t{index}\t{wall:.1f}\t{cpu:.1f}\t{before}\t{load_average()}"
            print(line, flush=True)
            with log.open("a", encoding="utf-8") as out:
                out.write(line + "\n")


def orders(path: Path) -> dict[tuple[str, str, str], tuple[bool, bool, bool]]:
    """Per (scenario, a, b) with a before b in the run's variant order: (a faster than b, the pair within
    noise by the tables' rule, b or a is the table's base)."""
    loaded = results_io.load(path)
    noise = fmt.Noise(loaded)
    found = {}
    for (scenario, _load), items in summary.by_scenario(summary.rows(loaded)).items():
        ok = [row for row in items if row.status == "ok"]
        for a, b in itertools.combinations(ok, 2):
            mine, theirs = noise.trial_rates(b), noise.trial_rates(a)
            ci = fmt.paired_ratio_ci([(theirs[t], mine[t]) for t in sorted(mine.keys() & theirs.keys())])
            within = ci is not None and ci[0] <= 1.0 <= ci[1]  # no interval: the table says nothing
            found[(scenario, a.label, b.label)] = (a.rps > b.rps, within, fmt.BASELINE in (a.variant, b.variant))
    return found


def where_time_went(path: Path, wall: float | None) -> dict[str, float]:
    """Seconds per part of one run (see bench.timeline): ``start`` (process start to the run), one entry per step
    before the first cell (``before: ...``), one per cell part summed over the cells (``cells: ...``), ``after``
    (steps after the last cell) and ``exit`` (wall minus all that: the printed report, the interpreter's exit).
    Empty for a file without a timeline."""
    timeline = results_io.load(path).metadata.get("timeline")
    if not timeline or timeline.get("first_cell_s") is None:
        return {}
    parts: dict[str, float] = {"start": float(timeline["process_start_to_run_s"])}
    first, last = float(timeline["first_cell_s"]), float(timeline["last_cell_end_s"])
    for step in timeline["steps"]:
        where = "before" if step["start_s"] < first else "after"
        parts[f"{where}: {step['step']}"] = parts.get(f"{where}: {step['step']}", 0.0) + float(step["s"])
    cells = timeline["cells"]
    for index, name in enumerate(cells["parts"]):
        parts[f"cells: {name}"] = sum(float(cell[index]) for cell in cells["s"])
    end = last + sum(v for k, v in parts.items() if k.startswith("after: "))
    if wall is not None:
        parts["exit"] = wall - end
    # The steps before the first cell do not cover it all: what is left is the run's own set-up between them.
    covered = parts["start"] + sum(v for k, v in parts.items() if k.startswith("before: "))
    parts["before: (between steps)"] = first - covered
    return parts


def print_time_went(files: list[Path], walls: list[float]) -> None:
    """The median of each part over ``files`` (``walls`` in the same order, when known), largest groups first."""
    runs = [where_time_went(path, walls[i] if i < len(walls) else None) for i, path in enumerate(files)]
    runs = [run for run in runs if run]
    if not runs:
        return
    names = list(dict.fromkeys(name for run in runs for name in run))
    print(f"where the time went (median s over {len(runs)} run(s)):")
    for group in ("start", "before", "cells", "after", "exit"):
        members = [n for n in names if n == group or n.startswith(f"{group}: ")]
        totals = [sum(run.get(n, 0.0) for n in members) for run in runs]
        if not members:
            continue
        print(f"  {group:8} {statistics.median(totals):7.1f}")
        for name in members:
            if name != group:
                print(f"    {name.split(': ', 1)[1]:58} {statistics.median([run.get(name, 0.0) for run in runs]):7.2f}")


def analyse(out: Path, conditions: list[str]) -> None:
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    log = out / "walls.tsv"
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            condition, _, wall, cpu, *_ = line.split("\t")
            walls.setdefault(condition, []).append(float(wall))
            cpus.setdefault(condition, []).append(float(cpu))
    for condition in conditions:
        files = sorted(out.glob(f"{condition}-*.json"))
        if not files:
            continue
        seen = [orders(path) for path in files]
        times = walls.get(condition, [])
        if times:
            cpu = cpus[condition]
            print(f"\n{condition}: {len(files)} run(s); wall s median {statistics.median(times):.1f}, "
                  f"min {min(times):.1f}, max {max(times):.1f}; CPU s of the run's processes median "
                  f"{statistics.median(cpu):.1f}")  # fmt: skip
        else:
            print(f"\n{condition}: {len(files)} run(s)")
        print_time_went(files, times)
        totals: Counter[str] = Counter()
        print(f"{'scenario':10} {'pair':28} {'runs':>4} {'ranked':>6} {'flips':>5} {'ranked flips':>12}")
        for key in sorted({k for run in seen for k in run}):
            present = [run[key] for run in seen if key in run]
            majority = Counter(faster for faster, _, _ in present).most_common(1)[0][0]
            flips = [(faster, within) for faster, within, _ in present if faster != majority]
            unmarked = sum(not within for _, within, _ in present)
            bad = sum(not within for _, within in flips)
            with_base = present[0][2]
            scope = "base" if with_base else "other"
            totals[f"{scope} pairs"] += len(present)
            totals[f"{scope} unmarked"] += unmarked
            totals[f"{scope} flips"] += len(flips)
            totals[f"{scope} unmarked flips"] += bad
            scenario, a, b = key
            label = f"{a} vs {b}" + (" *" if with_base else "")
            print(f"{scenario:10} {label:28} {len(present):4} {unmarked:6} {len(flips):5} {bad:12}")
        for scope in ("base", "other"):
            print(f"  {scope} pairs: {totals[f'{scope} pairs']} pair-runs, {totals[f'{scope} unmarked']} not within "
                  f"noise, {totals[f'{scope} flips']} flipped, {totals[f'{scope} unmarked flips']} of them not "
                  "marked within noise")  # fmt: skip
    print("\nranked: runs whose table did not say 'within noise' for the pair; flips: runs whose order differs from")
    print("most runs' order; * = a pair with the table's base (the tables print exactly this judgement); other")
    print("pairs: the same rule applied to the pair.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS))
    parser.add_argument("--bench", help="another checkout's cli.py to time instead of this one")
    parser.add_argument("--analyse-only", action="store_true")
    parser.add_argument("extra", nargs="*", help="after --: more `bench run` arguments")
    args = parser.parse_args()
    print(f"uptime load average before: {load_average()}", flush=True)
    if not args.analyse_only:
        measure(args)
    analyse(args.out, args.conditions)
    print(f"uptime load average after: {load_average()}")


if __name__ == "__main__":
    main()
