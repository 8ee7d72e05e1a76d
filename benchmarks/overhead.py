"""What the per-statement timing hooks cost: req/s with hooks on vs off, per variant, in one run.

    python benchmarks/overhead.py [--duration 5] [--warmup 2] [--pairs 3] [--users 32] [--variants pooled,sync]

One embedded PostgreSQL, seeded once (the /db scenario only reads). For each pair and variant the target
is started twice, once with DBBENCH_INSTRUMENT=1 and once with =0, and loaded with the same Locust
scenario. The order inside a pair alternates (on/off, then off/on, ...), so a slow drift of the machine
(another job, thermal) does not always penalise the same side. Both windows of a pair start from the same
state: a variant with a cache (/_bench/info names one) has every world read into it before the warm-up,
so neither window is the one that happened to start colder. Each pair gives a ratio off/on; the
median ratio and its loss (1 - on/off) are printed per variant. The budget is 5 % (targets.common.instrument).

Throughput on a shared 2-core machine moves by tens of percent between identical windows, far more
than the hooks can cost, so the target's own CPU per request (read from the OS at the window's edges)
is printed beside it: the hooks' cost is CPU spent in the target, and CPU time barely depends on
what the neighbours do. The verdict uses the CPU figure when both are shown.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import pg  # noqa: E402
from bench.load import LoadFailed, LoadSpec, run_load  # noqa: E402
from bench.procs import Supervisor, interrupts_as_exceptions  # noqa: E402
from bench.seed import apply_schema, seed  # noqa: E402
from bench.target import TargetConfig, TargetFailed, serve  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402
from targets import VARIANTS  # noqa: E402
from targets.common.schema import WORLD_ROWS  # noqa: E402

BUDGET_LOSS = 0.05
ATTEMPTS = 2  # a shared machine can stall one cell; retry it once rather than lose the whole run


def measure(
    supervisor: Supervisor, dsn: str, variant: str, hooks: bool, args: argparse.Namespace, workdir: Path
) -> tuple[float, float, str]:
    """(req/s, target CPU µs per request, the hook /_bench/info names) of one window."""
    config = TargetConfig(dsn, args.pool_size, instrument=hooks)
    label = f"{variant}-{'on' if hooks else 'off'}"
    with serve(supervisor, variant, VARIANTS.get(variant).app, config, workdir / f"{label}.log") as target:
        info = target.info()
        if info.get("instrumented") is not hooks:
            raise SystemExit(f"{variant}: asked for hooks {'on' if hooks else 'off'}, /_bench/info says {info}")
        if info.get("cache") is not None:
            # A fresh process starts with an empty cache, and how full a short warm-up leaves it depends on
            # the throughput it happened to get on a shared machine: one window of a pair then serves mostly
            # hits, the other mostly queries (cached read +42.7 % "hook cost" that way). Every window of a
            # cached variant starts instead from a full cache, filled by reading each world once.
            asyncio.run(prime(target.url, args.users))
            entries = (target.info().get("cache") or {}).get("entries")
            if entries is not None and entries < WORLD_ROWS:
                raise SystemExit(f"{variant}: the cache holds {entries} of {WORLD_ROWS} worlds after priming")
        spec = LoadSpec(
            SCENARIOS.get(args.scenario).path,
            target.url,
            args.users,
            args.warmup,
            args.duration,
            target_pid=target.child.pid,
        )
        result = run_load(supervisor, spec, workdir)
    requests = float(result["requests"])
    return requests / float(result["duration_s"]), float(result["target_cpu_s"]) / requests * 1e6, str(info["hook"])


async def prime(url: str, connections: int) -> None:
    """GET /worlds/{id} for every world id, ``connections`` at a time: a cache-aside variant then holds every
    row (its TTL, 60 s, outlasts the prime, warm-up and window at the default lengths)."""
    ids = iter(range(1, WORLD_ROWS + 1))  # shared by the workers: each id is read once
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def worker() -> None:
            for world_id in ids:
                (await client.get(f"/worlds/{world_id}")).raise_for_status()

        await asyncio.gather(*(worker() for _ in range(connections)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--scenario", default="db")
    parser.add_argument("--variants", default=",".join(VARIANTS.names))
    args = parser.parse_args()
    variants = [VARIANTS.get(name).name for name in args.variants.split(",")]
    rps: dict[str, dict[bool, list[float]]] = {v: {True: [], False: []} for v in variants}
    cpu: dict[str, dict[bool, list[float]]] = {v: {True: [], False: []} for v in variants}

    with interrupts_as_exceptions(), Supervisor() as supervisor, pg.embedded(supervisor) as database:
        apply_schema(database.dsn)
        seed(database.dsn)
        with tempfile.TemporaryDirectory(prefix="dbbench-overhead-") as tmp:
            for pair in range(args.pairs):
                for variant in variants:
                    for hooks in (True, False) if pair % 2 == 0 else (False, True):
                        for attempt in range(ATTEMPTS):
                            try:
                                value, cpu_us, hook = measure(supervisor, database.dsn, variant, hooks, args, Path(tmp))
                                break
                            except (LoadFailed, TargetFailed) as error:
                                print(f"{variant} hooks {hooks}: attempt {attempt + 1}: {error}", file=sys.stderr)
                        else:
                            raise SystemExit(f"{variant}: no measurement after {ATTEMPTS} attempts")
                        rps[variant][hooks].append(value)
                        cpu[variant][hooks].append(cpu_us)
                        print(
                            f"pair {pair + 1} {variant:<10} hooks {'on ' if hooks else 'off'} {value:>8,.0f} req/s"
                            f" {cpu_us:>7.0f} µs CPU/req  hook: {hook}",
                            file=sys.stderr,
                            flush=True,
                        )

    print(f"\n{args.scenario} · {args.users} users · {args.pairs} interleaved pairs · {args.duration:g} s windows")
    print(
        f"{'variant':<12}{'on req/s':>10}{'off req/s':>11}{'loss':>8}   {'on µs CPU':>10}{'off µs CPU':>11}"
        f"{'CPU cost':>9}  per-pair CPU on/off"
    )
    over_budget = []
    for variant in variants:
        on, off = rps[variant][True], rps[variant][False]
        loss = 1 - statistics.median([a / b for a, b in zip(on, off, strict=True)])
        cpu_ratios = [a / b for a, b in zip(cpu[variant][True], cpu[variant][False], strict=True)]
        cost = statistics.median(cpu_ratios) - 1
        if cost > BUDGET_LOSS:
            over_budget.append(variant)
        print(
            f"{variant:<12}{statistics.median(on):>10,.0f}{statistics.median(off):>11,.0f}{loss:>8.1%}   "
            f"{statistics.median(cpu[variant][True]):>10.0f}{statistics.median(cpu[variant][False]):>11.0f}"
            f"{cost:>9.1%}  {' '.join(f'{r:.3f}' for r in cpu_ratios)}"
        )
    print(f"\nCPU cost over the {BUDGET_LOSS:.0%} budget: {', '.join(over_budget) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
