"""How close does dbbench's load generator come to wrk? Side by side, alternating, in one run.

    python benchmarks/fidelity.py [--rounds 5] [--duration 10] [--users 32] [--variant pooled] [--pin]

Starts one variant (embedded PostgreSQL, seeded) and then, ``--rounds`` times, measures its ``/db``
with wrk (1 thread, ``--users`` connections) and with ``bench run --url`` (``--users`` Locust users),
same duration, alternating so drift hits both. Prints each round, the median ratio bench/wrk for
req/s, and both tools' p50: ours must have sub-millisecond resolution (no whole-ms rounding).

Unpinned, both tools share the machine's cores with the server they measure, so the ratio also says how
much CPU each tool takes from it (Locust: ~100-250 µs per request, wrk a fraction of that). ``--pin`` puts
uvicorn + PostgreSQL on the first CPU and the load tool on the rest, so the ratio compares what the two
tools measure of the same server, which is the fidelity question; run it both ways.
Needs wrk on PATH (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import pg, results, seed  # noqa: E402
from bench.procs import Supervisor  # noqa: E402
from bench.target import TargetConfig, serve  # noqa: E402
from reports import summary  # noqa: E402
from targets import VARIANTS  # noqa: E402

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def pin_tree(pid: int, cpus: set[int]) -> None:
    """Pin a process and its children (PostgreSQL backends fork from the postmaster and inherit it)."""
    process = psutil.Process(pid)
    for each in [process, *process.children(recursive=True)]:
        each.cpu_affinity(sorted(cpus))


def taskset(cpus: set[int] | None) -> list[str]:
    return ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if cpus else []


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk(url: str, users: int, duration: int, cpus: set[int] | None = None) -> tuple[float, float, float]:
    """req/s, p50 ms, and wrk's own CPU µs per request (from the rusage of the finished child)."""
    before = children_cpu_s()
    out = subprocess.run(
        [*taskset(cpus), "wrk", "-t1", f"-c{users}", f"-d{duration}s", "--latency", f"{url}/db"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rps, float(value) * _UNITS_MS[unit], (children_cpu_s() - before) / requests * 1e6


def bench(url: str, users: int, duration: int, out: Path, cpus: set[int] | None = None) -> tuple[float, float, float]:
    """req/s, p50 ms, and the load process's CPU µs per request (measured by the load process itself)."""
    subprocess.run(
        [*taskset(cpus), sys.executable, "-m", "bench", "run", "--url", url, "--no-check", "--no-calibrate",
         "--scenarios", "db", "--users", str(users), "--warmup", "2", "--duration", str(duration),
         "-o", str(out), "--force"],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    loaded = results.load(out)
    (row,) = summary.rows(loaded)
    (cell,) = loaded.cells
    return row.rps, row.p50_ms or 0.0, cell.load_cpu_s / cell.requests * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--variant", default="pooled")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="system under test (uvicorn + PostgreSQL) on the first CPU, the load tool on the others, so neither "
        "tool's own CPU use is taken from the server it measures",
    )
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if args.pin and len(cpus) < 2:
        print("--pin needs at least 2 CPUs", file=sys.stderr)
        return 2
    server_cpus, load_cpus = ({cpus[0]}, set(cpus[1:])) if args.pin else (None, None)
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    variant = VARIANTS.get(args.variant)
    ratios, ours_p50, wrk_p50, ours_cpu, wrk_cpu = [], [], [], [], []
    with Supervisor() as supervisor, tempfile.TemporaryDirectory() as tmp, pg.embedded(supervisor) as database:
        seed.apply_schema(database.dsn)
        seed.seed(database.dsn)
        config = TargetConfig(database.dsn, 10)
        with serve(supervisor, variant.name, variant.app, config, Path(tmp) / "target.log") as target:
            if server_cpus and database.server_pid:
                pin_tree(target.child.pid, server_cpus)
                pin_tree(database.server_pid, server_cpus)
                load_on = sorted(load_cpus or ())
                print(f"pinned: uvicorn + PostgreSQL on CPU {sorted(server_cpus)}, load tools on {load_on}")
            wrk(target.url, args.users, 3, load_cpus)  # warm the target's pool and caches before the first round
            print(f"{variant.name} /db, {args.users} connections/users, {args.duration} s per measurement")
            print(f"{'round':>5} {'wrk req/s':>10} {'bench req/s':>12} {'ratio':>6} {'wrk p50':>9} {'bench p50':>10}"
                  f" {'wrk µs CPU/req':>15} {'bench µs CPU/req':>17}")  # fmt: skip
            for round_ in range(1, args.rounds + 1):
                w_rps, w_p50, w_cpu = wrk(target.url, args.users, args.duration, load_cpus)
                b_rps, b_p50, b_cpu = bench(target.url, args.users, args.duration, Path(tmp) / "bench.json", load_cpus)
                ratios.append(b_rps / w_rps)
                ours_p50.append(b_p50)
                wrk_p50.append(w_p50)
                ours_cpu.append(b_cpu)
                wrk_cpu.append(w_cpu)
                print(f"{round_:>5} {w_rps:>10,.0f} {b_rps:>12,.0f} {b_rps / w_rps:>6.2f} {w_p50:>7.3f}ms"
                      f" {b_p50:>8.3f}ms {w_cpu:>15.0f} {b_cpu:>17.0f}")  # fmt: skip
    print(f"median ratio bench/wrk (req/s): {statistics.median(ratios):.2f}")
    print(f"median p50: wrk {statistics.median(wrk_p50):.3f} ms, bench {statistics.median(ours_p50):.3f} ms")
    # Unpinned, every µs a tool spends per request is taken from the server it measures.
    print(f"median load-tool CPU per request: wrk {statistics.median(wrk_cpu):.0f} µs, "
          f"bench (Locust) {statistics.median(ours_cpu):.0f} µs")  # fmt: skip
    whole_ms = all(p == int(p) for p in ours_p50)
    print(f"bench p50 resolution: {'WHOLE MILLISECONDS (bad)' if whole_ms else 'sub-millisecond'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
