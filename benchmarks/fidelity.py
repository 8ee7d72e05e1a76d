"""How close does dbbench's load generator come to wrk, and does it rank the variants as wrk does?

    python benchmarks/fidelity.py [--rounds 3] [--duration 6] [--warmup 2] [--users 32] [--variants all]
        [--modes unpinned,pinned]

Serves every variant at once (each its own uvicorn, one embedded PostgreSQL, seeded), then ``--rounds``
times measures every variant's ``/db`` with wrk (1 thread, ``--users`` connections) and with ``bench run
--url`` (``--users`` Locust users), same duration, in every mode: so drift on a noisy machine hits every
variant, tool and mode alike (single rounds here vary by ±30 %; only ratios measured side by side count).
Each measurement starts after ``--warmup`` seconds of the same tool's unmeasured load (bench's own warm-up,
an extra wrk run for wrk), so both tools measure the same state of each variant's pool and cache.

Modes: ``pinned`` is bench's default CPU split (bench.topology): the servers and PostgreSQL on the server
CPUs, wrk (taskset) and bench's Locust (its own --cpus) on the load CPUs. ``unpinned`` widens every server
process back to all CPUs and runs both tools with no affinity (bench --no-pin): what a 2-core box measured
before the split. The stack is started once, under the split (so PostgreSQL's backends inherit it from the
postmaster as in a run); a mode switch re-pins every live process of each server's tree.

Prints per mode and variant the medians over rounds of: both tools' req/s, bench/wrk, each tool's ratio to
``pooled`` (computed per round, then the median) and how far bench's ratio is from wrk's, plus whether bench
flagged the cell generator-bound. Goal: bench/wrk >= 0.95 on pooled, every ratio to pooled within ±10 % of wrk's.
Needs wrk and taskset on PATH (Debian: apt-get install wrk util-linux).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import pg, results, seed, topology  # noqa: E402
from bench.procs import Supervisor  # noqa: E402
from bench.target import Target, TargetConfig, serve  # noqa: E402
from reports import summary  # noqa: E402
from targets import VARIANTS  # noqa: E402

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
MODES = ("unpinned", "pinned")
BASE = "pooled"
GOAL_FIDELITY = 0.95  # bench/wrk req/s on the base variant
GOAL_RATIO_GAP = 0.10  # |bench's ratio to base / wrk's - 1|


def pin_tree(pid: int, cpus: set[int]) -> None:
    """Hold a process and every live descendant to ``cpus`` (PostgreSQL forks new backends from the postmaster,
    which passes it on; the ones already open are re-pinned here)."""
    process = psutil.Process(pid)
    for each in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):  # a backend that closed meanwhile
            each.cpu_affinity(sorted(cpus))


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk(url: str, users: int, duration: int, cpus: tuple[int, ...]) -> tuple[float, float]:
    """req/s of answered requests (non-2xx/3xx and socket errors taken out: a failed request is never
    throughput) and wrk's own CPU µs per request (rusage of the finished child).

    ``--timeout 30s``: wrk's default 2 s counts a slow request as a "timeout" error on every check while it
    is outstanding, yet still counts its response when it comes; Locust waits up to 60 s. Timeouts are
    therefore not subtracted (they would be counted twice)."""
    before = children_cpu_s()
    out = subprocess.run(
        [*topology.taskset(cpus), "wrk", "-t1", f"-c{users}", f"-d{duration}s", "--timeout", "30s", f"{url}/db"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    assert found is not None, out
    requests, seconds = (
        int(found.group(1)),
        float(found.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[found.group(3)],
    )
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout \d+", out)
    failed = (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return (requests - failed) / seconds, (children_cpu_s() - before) / max(requests, 1) * 1e6


def warmed_wrk(url: str, users: int, warmup: int, duration: int, cpus: tuple[int, ...]) -> tuple[float, float]:
    """``wrk`` after an unmeasured wrk run of ``warmup`` seconds, as bench measures after its own warm-up of
    the same length: both tools then start their window from the same state. Without it wrk's window began
    cold wherever the variant keeps state that expires between a round's visits (cached's 60 s TTL), and
    bench read ~2x wrk on cached."""
    if warmup:
        wrk(url, users, warmup, cpus)
    return wrk(url, users, duration, cpus)


def bench(
    url: str, users: int, warmup: int, duration: int, out: Path, plan: topology.CpuPlan
) -> tuple[float, float, bool]:
    """req/s, the load process's CPU µs per request, and whether bench flagged the cell generator-bound."""
    cpus = ["--cpus", f"{topology.format_cpus(plan.load)}:{topology.format_cpus(plan.server)}"]
    subprocess.run(
        [sys.executable, "-m", "bench", "run", "--url", url, "--no-check", "--no-calibrate",
         "--scenarios", "db", "--users", str(users), "--warmup", str(warmup), "--duration", str(duration),
         *(cpus if plan.pinned else ["--no-pin"]), "-o", str(out), "--force", "--no-html"],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    loaded = results.load(out)
    (row,) = summary.rows(loaded)
    (cell,) = loaded.cells
    return row.rps, cell.load_cpu_s / max(cell.requests, 1) * 1e6, row.generator_bound


def place(targets: list[Target], database_pid: int | None, plan: topology.CpuPlan) -> None:
    """Every server process (uvicorn trees, the postmaster and its backends) on ``plan``'s server CPUs, or
    on all of them when the plan is unpinned."""
    cpus = set(plan.server or plan.available)
    for target in targets:
        pin_tree(target.child.pid, cpus)
    if database_pid:
        pin_tree(database_pid, cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument(
        "--warmup", type=int, default=2,
        help="seconds of unmeasured load before every measurement, the same for wrk and bench",
    )  # fmt: skip
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--variants", default="all", help="comma list, or all; pooled is always included")
    parser.add_argument("--modes", default=",".join(MODES), help="unpinned, pinned, or both (the default)")
    args = parser.parse_args()
    if min(args.rounds, args.duration, args.users) < 1 or args.warmup < 0:
        print("--rounds, --duration and --users must be at least 1, --warmup at least 0", file=sys.stderr)
        return 2
    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in MODES for m in modes):
        print(f"--modes takes {' or '.join(MODES)} or both, comma separated; got {args.modes!r}", file=sys.stderr)
        return 2
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (Debian: apt-get install wrk util-linux)", file=sys.stderr)
            return 2
    pinned = topology.plan(topology.available())
    if "pinned" in modes and not pinned.pinned:
        print(f"pinned mode needs at least 2 CPUs ({pinned.reason})", file=sys.stderr)
        return 2
    plans = {"pinned": pinned, "unpinned": topology.plan(topology.available(), pin=False)}
    names = [v.name for v in VARIANTS] if args.variants == "all" else args.variants.split(",")
    variants = [VARIANTS.get(name) for name in dict.fromkeys([BASE, *names])]
    # (mode, variant) -> per-round figures
    figures: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    flagged: dict[tuple[str, str], int] = defaultdict(int)
    with (
        Supervisor(cpu_plan=pinned) as supervisor,
        tempfile.TemporaryDirectory() as tmp,
        pg.embedded(supervisor) as database,
    ):
        seed.apply_schema(database.dsn)
        seed.seed(database.dsn)
        config = TargetConfig(database.dsn, 10)
        targets = []
        with contextlib.ExitStack() as stack:
            for variant in variants:
                log = Path(tmp) / f"{variant.name}.log"
                targets.append(stack.enter_context(serve(supervisor, variant.name, variant.app, config, log)))
            for target in targets:  # warm every pool and cache before the first round
                wrk(target.url, args.users, 2, ())
            print(f"/db, {args.users} connections/users, {args.duration} s per measurement, {args.rounds} round(s); "
                  f"split: {topology.label(pinned.describe())}")  # fmt: skip
            for round_ in range(1, args.rounds + 1):
                for mode in modes if round_ % 2 else reversed(modes):
                    plan = plans[mode]
                    place(targets, database.server_pid, plan)
                    for index, target in enumerate(targets if round_ % 2 else reversed(targets)):
                        tools = ("wrk", "bench") if (round_ + index) % 2 else ("bench", "wrk")
                        slot = figures[(mode, target.variant)]
                        for tool in tools:
                            if tool == "wrk":
                                rps, cpu = warmed_wrk(target.url, args.users, args.warmup, args.duration, plan.load)
                                slot["wrk"].append(rps)
                                slot["wrk_cpu"].append(cpu)
                            else:
                                out = Path(tmp) / "bench.json"
                                rps, cpu, bound = bench(target.url, args.users, args.warmup, args.duration, out, plan)
                                slot["bench"].append(rps)
                                slot["bench_cpu"].append(cpu)
                                flagged[(mode, target.variant)] += bound
                        print(f"round {round_} {mode:>8} {target.variant:>9}: wrk {slot['wrk'][-1]:>7,.0f}"
                              f"  bench {slot['bench'][-1]:>7,.0f} req/s", flush=True)  # fmt: skip
    report(figures, flagged, modes, [v.name for v in variants], args.rounds)
    return 0


def report(
    figures: dict[tuple[str, str], dict[str, list[float]]],
    flagged: dict[tuple[str, str], int],
    modes: list[str],
    variants: list[str],
    rounds: int,
) -> None:
    for mode in modes:
        base = figures[(mode, BASE)]
        print(f"\n{mode}: medians over {rounds} round(s)")
        print(f"{'variant':>10} {'wrk req/s':>10} {'bench req/s':>12} {'bench/wrk':>10} {'wrk ×pooled':>12}"
              f" {'bench ×pooled':>14} {'gap':>7} {'wrk µs/req':>11} {'bench µs/req':>13} {'flagged':>8}")  # fmt: skip
        for name in variants:
            slot = figures[(mode, name)]
            fidelity = statistics.median(b / w for b, w in zip(slot["bench"], slot["wrk"], strict=True))
            wrk_ratio = statistics.median(v / b for v, b in zip(slot["wrk"], base["wrk"], strict=True))
            bench_ratio = statistics.median(v / b for v, b in zip(slot["bench"], base["bench"], strict=True))
            gap = statistics.median(
                (bv / bb) / (wv / wb) - 1
                for bv, bb, wv, wb in zip(slot["bench"], base["bench"], slot["wrk"], base["wrk"], strict=True)
            )
            print(f"{name:>10} {statistics.median(slot['wrk']):>10,.0f} {statistics.median(slot['bench']):>12,.0f}"
                  f" {fidelity:>10.2f} {wrk_ratio:>12.2f} {bench_ratio:>14.2f} {gap:>+7.0%}"
                  f" {statistics.median(slot['wrk_cpu']):>11.0f} {statistics.median(slot['bench_cpu']):>13.0f}"
                  f" {flagged[(mode, name)]:>4}/{rounds}")  # fmt: skip
        fidelity_base = statistics.median(b / w for b, w in zip(base["bench"], base["wrk"], strict=True))
        gaps = {
            name: statistics.median(
                (bv / bb) / (wv / wb) - 1
                for bv, bb, wv, wb in zip(
                    figures[(mode, name)]["bench"], base["bench"], figures[(mode, name)]["wrk"], base["wrk"],
                    strict=True,
                )
            )
            for name in variants
            if name != BASE
        }  # fmt: skip
        worst = max(gaps.items(), key=lambda item: abs(item[1]), default=(BASE, 0.0))
        print(f"goal bench/wrk >= {GOAL_FIDELITY} on {BASE}: {fidelity_base:.2f} "
              f"({'met' if fidelity_base >= GOAL_FIDELITY else 'not met'}); ratios within ±{GOAL_RATIO_GAP:.0%} of "
              f"wrk's: worst {worst[0]} {worst[1]:+.0%} "
              f"({'met' if abs(worst[1]) <= GOAL_RATIO_GAP else 'not met'})")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
