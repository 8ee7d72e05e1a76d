"""What statement timing costs the app's own code per request, measured in-process without a server or load tool.

    python benchmarks/hook_cost.py [--variants pooled,cached,databases] [--path /db] [--requests 3000]
        [--rounds 5] [--concurrency 32]

benchmarks/overhead.py measures the hooks under real uvicorn and Locust, where the load generator shares the
two CPUs and moves req/s by tens of percent between identical windows. This script takes out everything but
the app: each variant is built twice in one process (DBBENCH_INSTRUMENT=1 and =0, each app with its own pool
on one embedded PostgreSQL), and each round sends ``--requests`` ASGI requests to each app, ``--concurrency``
at a time, straight into the app callable (no HTTP parsing, no sockets on the client side). The figure is this
process's CPU time per request (``time.process_time``: PostgreSQL's work is in other processes), hooks on vs
off, alternating which goes first per round; the median per-round ratio is printed per variant.

What it leaves out is the same for both sides (uvicorn's HTTP work), so the ratio here overstates the share the
hooks take of a real request's CPU: use it to compare implementations of the hooks, and overhead.py for the
budget. At a load average of 5-10 even these CPU times move by ±10 % between rounds, more than a hook change;
count CPU instructions instead, which the load cannot move: benchmarks/instructions.py (valgrind's cachegrind
around one process serving N requests, for two N, hooks on and off, every variant but cached).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import pg  # noqa: E402
from bench.procs import Supervisor, interrupts_as_exceptions  # noqa: E402
from bench.seed import apply_schema, seed  # noqa: E402
from targets import VARIANTS  # noqa: E402
from targets.common import settings  # noqa: E402
from targets.common.schema import WORLD_ROWS  # noqa: E402


def build(variant: str, hooks: bool) -> Any:
    """A fresh app of ``variant`` with hooks on or off: the switch is read when the app is built (at import)."""
    module_name, _, attribute = VARIANTS.get(variant).app.partition(":")
    os.environ[settings.INSTRUMENT] = "1" if hooks else "0"
    module = importlib.reload(importlib.import_module(module_name))
    return getattr(module, attribute)


def scope_of(path: str) -> dict[str, Any]:
    raw, _, query = path.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": raw,
        "raw_path": raw.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def request(app: Any, path: str) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope_of(path), receive, send)
    return status


async def drive(app: Any, paths: list[str], concurrency: int) -> float:
    """CPU seconds this process spent serving ``paths``, ``concurrency`` requests at a time."""
    queue = iter(paths)

    async def worker() -> None:
        for path in queue:
            if (status := await request(app, path)) != 200:
                raise RuntimeError(f"{path}: HTTP {status}")

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - started


@contextlib.asynccontextmanager
async def running(app: Any) -> AsyncIterator[None]:
    async with app.router.lifespan_context(app):
        yield


async def compare(variant: str, args: argparse.Namespace) -> tuple[list[float], list[float]]:
    apps = {hooks: build(variant, hooks) for hooks in (True, False)}
    on: list[float] = []
    off: list[float] = []
    async with running(apps[True]), running(apps[False]):
        for app in apps.values():  # warm: prepared statements, caches, type introspection
            await drive(app, [f"/worlds/{i}" for i in range(1, WORLD_ROWS + 1)] if variant == "cached" else [], 32)
            await drive(app, [args.path] * 500, args.concurrency)
        for round_ in range(args.rounds):
            for hooks in (True, False) if round_ % 2 == 0 else (False, True):
                cpu = await drive(apps[hooks], [args.path] * args.requests, args.concurrency)
                (on if hooks else off).append(cpu / args.requests * 1e6)
    return on, off


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="pooled,cached,databases")
    parser.add_argument("--path", default="/db")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--pool-size", type=int, default=10)
    args = parser.parse_args()
    variants = [VARIANTS.get(name).name for name in args.variants.split(",")]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with interrupts_as_exceptions(), Supervisor() as supervisor, pg.embedded(supervisor) as database:
        apply_schema(database.dsn)
        seed(database.dsn)
        os.environ[settings.DSN] = database.dsn
        os.environ[settings.POOL_SIZE] = str(args.pool_size)
        print(f"{args.path} · {args.requests} requests × {args.rounds} rounds · {args.concurrency} at a time")
        print(f"{'variant':<12}{'on µs':>8}{'off µs':>8}{'cost':>8}  per-round on/off")
        for variant in variants:
            on, off = asyncio.run(compare(variant, args))
            ratios = [a / b for a, b in zip(on, off, strict=True)]
            print(
                f"{variant:<12}{statistics.median(on):>8.1f}{statistics.median(off):>8.1f}"
                f"{statistics.median(ratios) - 1:>8.1%}  {' '.join(f'{r:.3f}' for r in ratios)}",
                flush=True,
            )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
