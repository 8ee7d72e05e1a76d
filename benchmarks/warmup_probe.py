"""Does a server that is already warm need the quick run's full 0.5 s warm-up? (issue 13 item 1 (c))

A quick run measures each (variant, scenario) three times, interleaved; only the first trial meets a server that
has not served that scenario yet. This probe reproduces a later trial: it warms each variant's server on a scenario
with one full cell (0.5 s warm-up + 0.5 s), then measures rounds of cells with each warm-up arm (order rotated per
round), each with fresh users against the same server, in one load session, as the run does. An arm is a fixed
warm-up in seconds (``0.1``), or ``eX``: the evidence-based warm-up the run uses (bench.load.with_evidence: every
user has completed EVIDENCE_RESPONSES requests and EVIDENCE_FLOOR_S has passed), capped at X seconds; ``eX/K``
asks for K responses per user instead. A second fixed arm spelled differently (``0.50``) is an A/A pair: how far
two identical warm-ups differ on this machine, the yardstick for every other arm.
Per arm it prints the median over rounds of throughput and p99 relative to the fixed 0.5 s cell of the same round
(paired, so drift on this noisy machine hits every arm alike), the medians themselves, and the median warm-up the
arm actually used.

    python benchmarks/warmup_probe.py --rounds 6 --variants pooled,sync,async_orm --scenarios db,fortunes
    python benchmarks/warmup_probe.py --warmups e0.5,e0.5/4,0.50,0.5 --variants pooled,nopool --scenarios db,queries

Record ``uptime`` beside the figures: on a loaded machine they move.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import hist, seed, topology  # noqa: E402
from bench.load import LoadSession, LoadSpec, with_evidence  # noqa: E402
from bench.pg import provision  # noqa: E402
from bench.procs import Supervisor  # noqa: E402
from bench.target import TargetConfig  # noqa: E402
from bench.target_pool import TargetPool  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402
from targets import VARIANTS  # noqa: E402

FULL_S = 0.5
WINDOW_S = 0.5


def cell(session: LoadSession, url: str, pid: int, path: Path, users: int, arm: str) -> tuple[float, float, float]:
    """(req/s, p99 ms, warm-up s used) of one cell with the warm-up ``arm``: seconds, or ``eX`` (evidence, X s cap),
    or ``eX/K`` (evidence with K responses per user instead of EVIDENCE_RESPONSES)."""
    cap, _, responses = arm.removeprefix("e").partition("/")
    spec = LoadSpec(path, url, users, float(cap), WINDOW_S, target_pid=pid)
    if arm.startswith("e"):
        spec = with_evidence(spec)
        if responses:
            spec = dataclasses.replace(spec, warmup_responses=int(responses))
    sample = session.run(spec)
    p99 = hist.percentile_ms(hist.decode(sample["histogram"]), 99.0) or 0.0
    used = float(sample.get("warmup_s", spec.warmup_s))
    return int(sample["requests"]) / float(sample["duration_s"]), p99, used


def median(values: list[float]) -> float:
    """The median, or nan when no cell gave a figure (a slow variant may finish no request in 0.5 s)."""
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--variants", default="pooled,databases,async_orm,sync")
    parser.add_argument("--scenarios", default="db,fortunes,queries")
    parser.add_argument("--warmups", default="e0.5,0.1,0.5", help="arms: seconds, or eX (evidence, X s cap)")
    parser.add_argument("--users", type=int, default=32)
    args = parser.parse_args()
    warmups = args.warmups.split(",")
    if str(FULL_S) not in warmups:
        warmups.append(str(FULL_S))  # the reference every arm is paired with
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
                      f"{'rps':>8} {'p99 ms':>8} {'used s':>6}")  # fmt: skip
                for scenario_name in args.scenarios.split(","):
                    path = SCENARIOS.get(scenario_name).path
                    session = sessions.setdefault(scenario_name, LoadSession(supervisor, workdir, scenario_name))
                    for variant in variants:
                        with pool.use(variant, config) as target:
                            pid = target.child.pid
                            cell(session, target.url, pid, path, args.users, str(FULL_S))  # what trial 1 does
                            seen: dict[str, list[tuple[float, float, float]]] = {w: [] for w in warmups}
                            for r in range(args.rounds):
                                order = warmups[r % len(warmups) :] + warmups[: r % len(warmups)]
                                for warmup in order:
                                    seen[warmup].append(cell(session, target.url, pid, path, args.users, warmup))
                        full = seen[str(FULL_S)]
                        for warmup in warmups:
                            rows = seen[warmup]
                            pairs = list(zip(rows, full, strict=True))
                            rps_ratio = median([a[0] / b[0] for a, b in pairs if b[0]])
                            p99_ratio = median([a[1] / b[1] for a, b in pairs if b[1] and a[1]])
                            rps = median([a[0] for a in rows])
                            p99 = median([a[1] for a in rows])
                            used = median([a[2] for a in rows])
                            print(f"{variant.name:10} {scenario_name:9} {warmup:>7} {rps_ratio:8.2f} "
                                  f"{p99_ratio:8.2f} {rps:8.0f} {p99:8.1f} {used:6.3f}", flush=True)  # fmt: skip
            finally:
                for session in sessions.values():
                    session.close()
                pool.close()
    print(f"uptime load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
