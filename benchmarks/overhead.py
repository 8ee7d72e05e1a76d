"""What the per-statement timing hooks cost: req/s with hooks on vs off, per variant, in one run.

    python benchmarks/overhead.py [--duration 5] [--warmup 2] [--pairs 6] [--users 32] [--variants pooled,sync]

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

CPU per request moves too, mostly with the garbage collector: it took ~20 % of ``pooled``'s CPU per /db
request here, two thirds of that in full collections of ~25 ms that come ~0.7 times per 1,000 requests, so
how many a window happens to hold moves its CPU per request by several per cent (targets.common.gcclock).
So each window's collections and their CPU time are read from the target's /_bench/stats (``gc``) and
printed per request beside the CPU, and the CPU cost comes with a distribution-free 95 % interval of the
median per-pair ratio (``scipy.stats.quantile_test``: order statistics, no assumption about the noise's
shape). The verdict: within the budget when the interval's upper end is, over it when its lower end is,
and not settled otherwise (more or longer pairs narrow it). The cost outside the collector (CPU minus GC
time per request, on over off) is printed as well: far less noisy, but it leaves out what the hooks' own
allocations add to the collector's work, so it is a diagnostic, never the verdict.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import pg, topology  # noqa: E402
from bench.load import LoadFailed, LoadSpec, run_load  # noqa: E402
from bench.procs import Supervisor, interrupts_as_exceptions  # noqa: E402
from bench.seed import apply_schema, seed  # noqa: E402
from bench.target import TargetConfig, TargetFailed, serve  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402
from targets import VARIANTS  # noqa: E402
from targets.common.instrument import HOOK_BUDGET  # noqa: E402
from targets.common.schema import WORLD_ROWS  # noqa: E402

BUDGET_LOSS = HOOK_BUDGET  # one budget for the hooks, set in targets.common.instrument

CONFIDENCE = 0.95
# The fewest pairs with a distribution-free 95 % interval of the median: min..max of n pairs covers it with
# probability 1 - 2 / 2**n (order statistics), 93.75 % at 5 and 96.9 % at 6; below 6 quantile_test's ends are nan.
MIN_PAIRS = 6
ATTEMPTS = 2  # a shared machine can stall one cell; retry it once rather than lose the whole run


@dataclass(frozen=True)
class Window:
    """One measured window: req/s, the target's CPU µs per request, the part of it spent in the garbage
    collector (µs per request), its collections per 1,000 requests (generations 0, 1, 2), and the hook
    /_bench/info names."""

    rps: float
    cpu_us: float
    gc_us: float
    collections: tuple[float, ...]
    hook: str


def measure(
    supervisor: Supervisor, dsn: str, variant: str, hooks: bool, args: argparse.Namespace, workdir: Path
) -> Window:
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
            target_stats=True,  # for the window's garbage collections (targets.common.gcclock)
        )
        result = run_load(supervisor, spec, workdir)
    requests = float(result["requests"])
    gc = (result.get("target_stats") or {}).get("gc")
    if gc is None:
        raise SystemExit(f"{variant}: /_bench/stats served no garbage-collector counts")
    return Window(
        rps=requests / float(result["duration_s"]),
        cpu_us=float(result["target_cpu_s"]) / requests * 1e6,
        gc_us=sum(gc["seconds"]) / requests * 1e6,
        collections=tuple(count * 1e3 / requests for count in gc["collections"]),
        hook=str(info["hook"]),
    )


async def prime(url: str, connections: int) -> None:
    """GET /worlds/{id} for every world id, ``connections`` at a time: a cache-aside variant then holds every
    row (its TTL, 60 s, outlasts the prime, warm-up and window at the default lengths)."""
    ids = iter(range(1, WORLD_ROWS + 1))  # shared by the workers: each id is read once
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def worker() -> None:
            for world_id in ids:
                (await client.get(f"/worlds/{world_id}")).raise_for_status()

        await asyncio.gather(*(worker() for _ in range(connections)))


@dataclass(frozen=True)
class Cost:
    """The hooks' CPU cost over a variant's pairs: median per-pair ratio on/off minus 1, its distribution-free
    95 % interval (``scipy.stats.quantile_test`` on the median: order statistics), and the verdict against
    ``budget`` ("within" only when the upper end is at or under it, "over" only when the lower end is over)."""

    median: float
    low: float
    high: float
    verdict: str

    @classmethod
    def of(cls, ratios: list[float], budget: float = BUDGET_LOSS) -> Cost:
        interval = stats.quantile_test(ratios, q=1.0, p=0.5).confidence_interval(CONFIDENCE)
        low, high = float(interval.low) - 1, float(interval.high) - 1
        # With too few pairs for a 95 % interval (< MIN_PAIRS: even min..max covers less), the ends are nan.
        if math.isnan(low) or math.isnan(high):
            verdict = "too few pairs"
        else:
            verdict = "within" if high <= budget else "over" if low > budget else "not settled"
        return cls(statistics.median(ratios) - 1, low, high, verdict)

    @property
    def text(self) -> str:
        """ "+5.1% [-3.3%, +15.2%]", or the median alone when there are too few pairs for an interval."""
        if self.verdict == "too few pairs":
            return f"{self.median:+.1%} [needs >= {MIN_PAIRS} pairs]"
        return f"{self.median:+.1%} [{self.low:+.1%}, {self.high:+.1%}]"


def med(values: list[Window], attribute: str) -> float:
    """The median of one figure over a variant's windows."""
    return float(statistics.median(getattr(w, attribute) for w in values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--pairs", type=int, default=MIN_PAIRS, help=f"on/off pairs per variant (>= {MIN_PAIRS} for an interval)"
    )
    parser.add_argument("--no-pin", action="store_true", help="every process on every CPU (default: bench's split)")
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--scenario", default="db")
    parser.add_argument("--variants", default=",".join(VARIANTS.names))
    args = parser.parse_args()
    variants = [VARIANTS.get(name).name for name in args.variants.split(",")]
    windows: dict[str, dict[bool, list[Window]]] = {v: {True: [], False: []} for v in variants}

    if args.pairs < MIN_PAIRS:
        print(f"{args.pairs} pair(s): too few for a 95 % interval (>= {MIN_PAIRS}); no verdict", file=sys.stderr)
    # bench's default CPU split, as a run measures the variants: the target and PostgreSQL on the server CPUs,
    # Locust on the load CPUs (bench.topology); how often the garbage collector runs depends on it.
    plan = topology.plan(topology.available(), pin=not args.no_pin)
    print(
        f"CPUs: target and PostgreSQL on {topology.format_cpus(plan.server)},"
        f" Locust on {topology.format_cpus(plan.load)}"
        if plan.pinned
        else f"CPUs: every process on every CPU ({plan.reason})",
        file=sys.stderr,
    )
    with interrupts_as_exceptions(), Supervisor(cpu_plan=plan) as supervisor, pg.embedded(supervisor) as database:
        apply_schema(database.dsn)
        seed(database.dsn)
        with tempfile.TemporaryDirectory(prefix="dbbench-overhead-") as tmp:
            for pair in range(args.pairs):
                for variant in variants:
                    for hooks in (True, False) if pair % 2 == 0 else (False, True):
                        for attempt in range(ATTEMPTS):
                            try:
                                window = measure(supervisor, database.dsn, variant, hooks, args, Path(tmp))
                                break
                            except (LoadFailed, TargetFailed) as error:
                                print(f"{variant} hooks {hooks}: attempt {attempt + 1}: {error}", file=sys.stderr)
                        else:
                            raise SystemExit(f"{variant}: no measurement after {ATTEMPTS} attempts")
                        windows[variant][hooks].append(window)
                        print(
                            f"pair {pair + 1} {variant:<10} hooks {'on ' if hooks else 'off'} {window.rps:>8,.0f} req/s"
                            f" {window.cpu_us:>7.0f} µs CPU/req, {window.gc_us:>5.1f} of it in GC"
                            f" (per 1,000 requests {'/'.join(f'{n:.1f}' for n in window.collections)} collections"
                            f" of generations 0/1/2)  hook: {window.hook}",
                            file=sys.stderr,
                            flush=True,
                        )

    print(f"\n{args.scenario} · {args.users} users · {args.pairs} interleaved pairs · {args.duration:g} s windows")
    print(
        f"{'variant':<11}{'on req/s':>9}{'off req/s':>10}{'loss':>7}  {'on µs CPU':>9}{'off':>6}"
        f"  {'of it GC':>8}{'off':>6}  {'CPU cost [95 % interval]':<27}{'verdict':<13}{'outside GC':>10}"
        "  per-pair CPU on/off"
    )
    over_budget, unsettled = [], []
    for variant in variants:
        on, off = windows[variant][True], windows[variant][False]
        loss = 1 - statistics.median([a.rps / b.rps for a, b in zip(on, off, strict=True)])
        cpu_ratios = [a.cpu_us / b.cpu_us for a, b in zip(on, off, strict=True)]
        cost = Cost.of(cpu_ratios)
        outside_gc = (
            statistics.median([(a.cpu_us - a.gc_us) / (b.cpu_us - b.gc_us) for a, b in zip(on, off, strict=True)]) - 1
        )
        if cost.verdict == "over":
            over_budget.append(variant)
        elif cost.verdict != "within":
            unsettled.append(variant)

        print(
            f"{variant:<11}{med(on, 'rps'):>9,.0f}{med(off, 'rps'):>10,.0f}{loss:>7.1%}  "
            f"{med(on, 'cpu_us'):>9.0f}{med(off, 'cpu_us'):>6.0f}  {med(on, 'gc_us'):>8.1f}{med(off, 'gc_us'):>6.1f}  "
            f"{cost.text:<27}{cost.verdict:<13}{outside_gc:>+10.1%}  "
            f"{' '.join(f'{r:.3f}' for r in cpu_ratios)}"
        )
    print(
        f"\nCPU cost over the {BUDGET_LOSS:.0%} budget: {', '.join(over_budget) or 'none'}; "
        f"not settled at this noise or number of pairs: {', '.join(unsettled) or 'none'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
