"""Does a server that is already warm need the quick run's full 0.5 s warm-up? (issue 13 item 1 (c))

A quick run measures each (variant, scenario) three times, interleaved; only the first trial meets a server that
has not served that scenario yet. This probe reproduces a later trial: it warms each variant's server on a scenario
with one full cell (0.5 s warm-up + 0.5 s), then measures rounds of cells with warm-ups of 0.1, 0.2 and 0.5 s
(order rotated per round), each with fresh users against the same server, in one load session, as the run does.
Per warm-up it prints the median over rounds of throughput and p99 relative to the 0.5 s cell of the same round
(paired, so drift on this noisy machine hits all three alike), and the medians themselves.

    python benchmarks/warmup_probe.py --rounds 6 --variants pooled,sync,async_orm --scenarios db,fortunes

Record ``uptime`` beside the figures: on a loaded machine they move.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import hist, seed, topology  # noqa: E402
from bench.load import LoadSession, LoadSpec  # noqa: E402
from bench.pg import provision  # noqa: E402
from bench.procs import Supervisor  # noqa: E402
from bench.target import TargetConfig  # noqa: E402
from bench.target_pool import TargetPool  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402
from targets import VARIANTS  # noqa: E402

FULL_S = 0.5
WINDOW_S = 0.5


def cell(session: LoadSession, url: str, pid: int, path: Path, users: int, warmup: float) -> tuple[float, float]:
    """(req/s, p99 ms) of one cell with ``warmup`` seconds of warm-up."""
    sample = session.run(LoadSpec(path, url, users, warmup, WINDOW_S, target_pid=pid))
    p99 = hist.percentile_ms(hist.decode(sample["histogram"]), 99.0) or 0.0
    return int(sample["requests"]) / float(sample["duration_s"]), p99


def median(values: list[float]) -> float:
    """The median, or nan when no cell gave a figure (a slow variant may finish no request in 0.5 s)."""
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--variants", default="pooled,databases,async_orm,sync")
    parser.add_argument("--scenarios", default="db,fortunes,queries")
    parser.add_argument("--warmups", default="0.1,0.2,0.5")
    parser.add_argument("--users", type=int, default=32)
    args = parser.parse_args()
    warmups = [float(w) for w in args.warmups.split(",")]
    print(f"uptime load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    plan = topology.plan(topology.available())
    with Supervisor(cpu_plan=plan) as supervisor, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with provision(supervisor, None) as database:
            seed.apply_schema(database.dsn)
            seed.seed(database.dsn)
            pool = TargetPool(supervisor, lambda variant, n: workdir / f"{variant.name}-{n}.log")
            config = TargetConfig(database.dsn, 10)
            variants = [VARIANTS.get(name) for name in args.variants.split(",")]
            pool.start(variants, config)
            sessions: dict[str, LoadSession] = {}
            try:
                print(f"{'variant':10} {'scenario':9} {'warm-up':>7} {'rps/full':>8} {'p99/full':>8} "
                      f"{'rps':>8} {'p99 ms':>8}")  # fmt: skip
                for scenario_name in args.scenarios.split(","):
                    path = SCENARIOS.get(scenario_name).path
                    session = sessions.setdefault(scenario_name, LoadSession(supervisor, workdir, scenario_name))
                    for variant in variants:
                        with pool.use(variant, config) as target:
                            pid = target.child.pid
                            cell(session, target.url, pid, path, args.users, FULL_S)  # what trial 1 does
                            seen: dict[float, list[tuple[float, float]]] = {w: [] for w in warmups}
                            for r in range(args.rounds):
                                order = warmups[r % len(warmups) :] + warmups[: r % len(warmups)]
                                for warmup in order:
                                    seen[warmup].append(cell(session, target.url, pid, path, args.users, warmup))
                        full = seen[FULL_S] if FULL_S in seen else seen[max(warmups)]
                        for warmup in warmups:
                            rows = seen[warmup]
                            pairs = list(zip(rows, full, strict=True))
                            rps_ratio = median([a[0] / b[0] for a, b in pairs if b[0]])
                            p99_ratio = median([a[1] / b[1] for a, b in pairs if b[1] and a[1]])
                            rps = median([a[0] for a in rows])
                            p99 = median([a[1] for a in rows])
                            print(f"{variant.name:10} {scenario_name:9} {warmup:7.1f} {rps_ratio:8.2f} "
                                  f"{p99_ratio:8.2f} {rps:8.0f} {p99:8.1f}", flush=True)  # fmt: skip
            finally:
                for session in sessions.values():
                    session.close()
                pool.close()
    print(f"uptime load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
