"""CPU instructions per request of each variant's own process, counted by valgrind: the figure the load cannot move.

    python benchmarks/instructions.py [--variants sync,async_orm,databases,pooled,nopool] [--paths /db,...]
        [--requests 300,1300] [--concurrency 8] [--pool-size 10] [--no-techempower] [--served] [--keep DIR]

What it counts: every user-space instruction of one Python process (``valgrind --tool=cachegrind
--cache-sim=no``, the "I refs" total) that builds a variant's app, opens its store through the app's lifespan
and sends it requests straight into the ASGI callable on uvloop's event loop (as uvicorn picks it),
``--concurrency`` at a time, with no server and no sockets on the client side. With ``--served`` the process
is a uvicorn instead (one worker, as bench starts a target), sent the same requests over HTTP keep-alive
connections from this script, outside valgrind. Each (variant, path, hooks on/off) is run twice, with the
two ``--requests`` counts; start-up, imports, the warm-up of the first requests (prepared statements, type
introspection) and shutdown are the same in both runs, so (I2 - I1) / (N2 - N1) is what one more request
costs. The concurrency stays at or under the pool's size, so no request waits in ``acquire()`` (how often a
waiter is woken would depend on timing). Ids are drawn from ``random`` seeded with 0 and
``PYTHONHASHSEED=0``, so two runs of one cell send the same requests.

Per variant and path it prints instructions per request with DBBENCH_INSTRUMENT=1 and =0 and the hooks'
share (on / off - 1: statement timing plus the per-request statistics, instrument.RequestTiming; the budget
being 5 %, targets.common.instrument), and, unless ``--no-techempower``, benchmarks/techempower_app.py (TechEmpower's
FastAPI app re-created) on the same paths beside ``pooled`` with hooks on, as benchmarks/techempower.py
runs both: TechEmpower's instructions / pooled's is the ratio techempower.py reports as a throughput ratio.

What it leaves out: in-process, uvicorn's HTTP work (parsing, the transport, the socket wake-ups: ~135k
instructions of pooled's ~565k served /db request, 2026-12-01), for both sides alike, so a share in-process
overstates the share of a served request; always, the kernel's work (system calls are not instructions
valgrind sees), PostgreSQL (another process), and the cost of an instruction (cache misses, branch
mispredictions: instructions are not time). How far a count repeats (2-vCPU AMD EPYC, 2026-12-01, pooled
/db, ``--requests 200,700``): in-process within ~±2k instructions per request (±0.5 %), served within ~±5k
(±1 %: how many requests one turn of the event loop serves varies); a larger second count narrows both.
benchmarks/overhead.py and benchmarks/techempower.py measure CPU time served, which moves by ±5 % between
windows on this shared 2-core machine.

Where the instructions go: ``--keep DIR`` keeps each run's cachegrind output (named app.path.on|off|te.N[.served]),
for ``cg_annotate`` (per C function: Python code shows as ``_PyEval_EvalFrameDefault``) or ``cg_diff`` of a
hooks-off run against the same run with hooks on.

Not measured: ``cached``. Its /db and /queries answer from a cache whose 60 s TTL runs on the wall
clock, and under valgrind (~50x slower) the share of hits then depends on how long the run took.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from targets import VARIANTS  # noqa: E402
from targets.common import settings  # noqa: E402
from targets.common.instrument import HOOK_BUDGET  # noqa: E402

TECHEMPOWER = "techempower"
TECHEMPOWER_APP = "benchmarks.techempower_app:app"
UNMEASURABLE = {"cached": "its cache's 60 s TTL runs on the wall clock, ~50x slower under valgrind"}
DEFAULT_VARIANTS = [name for name in VARIANTS.names if name not in UNMEASURABLE]
DEFAULT_PATHS = ["/db", "/queries?queries=20"]
_SUMMARY = re.compile(r"^summary:\s+(\d+)", re.MULTILINE)


class BadInput(ValueError):
    """An option the script refuses (one line, exit 2)."""


@dataclass(frozen=True)
class Cell:
    """One thing counted: an app (a variant's, with hooks on or off, or TechEmpower's) on one path."""

    app: str  # a variant's name, or TECHEMPOWER
    path: str
    hooks: bool | None  # None: the app has no hooks to switch (TechEmpower's)

    @property
    def import_string(self) -> str:
        return TECHEMPOWER_APP if self.app == TECHEMPOWER else VARIANTS.get(self.app).app

    def env(self, dsn: str, pool_size: int) -> dict[str, str]:
        env = {settings.DSN: dsn, settings.POOL_SIZE: str(pool_size), "PYTHONHASHSEED": "0"}
        if self.hooks is not None:
            env[settings.INSTRUMENT] = "1" if self.hooks else "0"
        return env


def summary_instructions(cachegrind_out: str) -> int:
    """The total instructions ("I refs") in a cachegrind output file's ``summary:`` line (its first event,
    Ir, is the only one with ``--cache-sim=no``). ValueError if the file has no such line."""
    match = _SUMMARY.search(cachegrind_out)
    if match is None:
        raise ValueError("no 'summary:' line in the cachegrind output")
    return int(match.group(1))


def per_request(counts: Sequence[tuple[int, int]]) -> float:
    """Instructions one more request costs, from two runs ``(requests, instructions)`` that differ only in
    their request count: (I2 - I1) / (N2 - N1), so start-up and shutdown cancel out."""
    (n1, i1), (n2, i2) = counts
    if n1 == n2:
        raise ValueError("the two runs need different request counts")
    return (i2 - i1) / (n2 - n1)


def parse_requests(raw: str) -> tuple[int, int]:
    """``--requests`` "300,1300" → (300, 1300); BadInput unless two increasing counts ≥ 1."""
    try:
        first, second = (int(part) for part in raw.split(","))
    except ValueError:
        raise BadInput(f"--requests takes two counts like 300,1300, not {raw!r}") from None
    if not 1 <= first < second:
        raise BadInput(f"--requests needs 1 <= first < second, got {raw!r}")
    return first, second


def parse_variants(raw: str) -> list[str]:
    """``--variants`` names, checked against the registry; BadInput for unknown or unmeasurable ones."""
    names = [name.strip() for name in raw.split(",") if name.strip()]
    if not names:
        raise BadInput("--variants names no variant")
    for name in names:
        if name in UNMEASURABLE:
            raise BadInput(f"--variants: {name} cannot be counted here: {UNMEASURABLE[name]}")
        try:
            VARIANTS.get(name)
        except ValueError as error:
            raise BadInput(f"--variants: {error}") from None
    return names


def parse_paths(raw: str) -> list[str]:
    paths = [path.strip() for path in raw.split(",") if path.strip()]
    if not paths or not all(path.startswith("/") for path in paths):
        raise BadInput(f"--paths takes paths starting with /, comma-separated, not {raw!r}")
    return paths


def share(on: float, off: float) -> float:
    """The hooks' share of a request's instructions: on / off - 1."""
    return on / off - 1


# --- the counted process --------------------------------------------------------------------------------


def _scope(path: str, state: dict[str, Any]) -> dict[str, Any]:
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
        "state": state.copy(),  # as uvicorn passes it: a copy of what the lifespan yielded, per request
    }


async def _serve(app: Any, state: dict[str, Any], path: str, requests: int, concurrency: int) -> None:
    """Send ``requests`` GETs of ``path`` into ``app``, ``concurrency`` at a time; SystemExit on any non-200."""
    remaining = iter(range(requests))

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def worker() -> None:
        status = [0]

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]

        for _ in remaining:
            await app(_scope(path, state), receive, send)
            if status[0] != 200:
                raise SystemExit(f"{path}: HTTP {status[0]}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed, as uvicorn picks it (``--loop auto``), else asyncio's default."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


@asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
    """The app's lifespan (its store, its pool) as uvicorn runs it; yields the state it gives each request.
    Both kinds of app are FastAPI apps, whose router holds the lifespan."""
    async with app.router.lifespan_context(app) as state:
        yield dict(state or {})


async def _child(import_string: str, path: str, requests: int, concurrency: int) -> None:
    module_name, _, attribute = import_string.partition(":")
    app = getattr(importlib.import_module(module_name), attribute)
    async with _lifespan(app) as state:
        await _serve(app, state, path, requests, concurrency)


# --- the parent: PostgreSQL, the runs under valgrind, the table --------------------------------------------


def count(cell: Cell, requests: int, args: argparse.Namespace, dsn: str, workdir: Path) -> int:
    """Instructions of one process serving ``requests`` of ``cell`` under cachegrind: in-process (this script
    as the child) or, with ``--served``, a uvicorn sent the requests over HTTP from this process."""
    out = workdir / f"cachegrind.{os.getpid()}.out"
    if args.keep is not None:  # named after the cell, for cg_annotate / cg_diff
        hooks = "te" if cell.hooks is None else ("on" if cell.hooks else "off")
        where = re.sub(r"[^\w]+", "_", cell.path).strip("_")
        out = args.keep / f"{cell.app}.{where}.{hooks}.{requests}{'.served' if args.served else ''}.cachegrind"
    valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}"]
    env = {**os.environ, **cell.env(dsn, args.pool_size)}
    if args.served:
        _count_served(cell, requests, args, valgrind, env, workdir)
    else:
        child = [sys.executable, str(Path(__file__).resolve()), "--child", cell.import_string, "--paths", cell.path]
        # The child reads the first count; the second only satisfies the parser.
        child += ["--requests", f"{requests},{requests + 1}", "--concurrency", str(args.concurrency)]
        done = subprocess.run([*valgrind, *child], env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{cell}: the counted process failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    try:
        return summary_instructions(out.read_text())
    finally:
        if args.keep is None:
            out.unlink(missing_ok=True)


def _count_served(
    cell: Cell, requests: int, args: argparse.Namespace, valgrind: list[str], env: dict[str, str], workdir: Path
) -> None:
    """uvicorn (as bench runs a target: one worker, uvloop and httptools when installed) under ``valgrind``,
    sent ``requests`` GETs over ``--concurrency`` keep-alive connections, then stopped with SIGINT (a
    graceful shutdown, after which valgrind writes its counts). Readiness is read from uvicorn's log, not
    polled, so no request but the counted ones reaches it."""
    from bench.net import LOOPBACK, free_port
    from bench.target import uvicorn_argv

    port = free_port()
    argv = uvicorn_argv(cell.import_string, port, 1)
    argv[argv.index("--log-level") + 1] = "info"  # its "running on" line (after the bind) says it is ready
    log = workdir / "uvicorn.log"
    with log.open("w") as sink:
        server = subprocess.Popen([*valgrind, *argv], env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while "Uvicorn running on" not in log.read_text():
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{cell}: uvicorn did not start: {log.read_text().strip()[-800:]}")
                time.sleep(0.2)
            asyncio.run(_send_http(f"http://{LOOPBACK}:{port}", cell.path, requests, args.concurrency))
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=120)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    if server.returncode != 0:
        raise SystemExit(f"{cell}: uvicorn exited with {server.returncode}: {log.read_text().strip()[-800:]}")


async def _send_http(url: str, path: str, requests: int, concurrency: int) -> None:
    """``requests`` GETs of ``path``, ``concurrency`` connections each sending one after another; SystemExit on
    any non-200. (This client runs outside valgrind: what it costs is not counted.)"""
    import httpx

    remaining = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def worker() -> None:
            for _ in remaining:
                response = await client.get(path)
                if response.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {response.status_code}")

        try:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        except httpx.HTTPError as error:
            raise SystemExit(f"{url}{path}: {type(error).__name__}: {error}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    parser.add_argument("--paths", default=",".join(DEFAULT_PATHS))
    parser.add_argument("--requests", default="300,1300", help="the two request counts, e.g. 300,1300")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--no-techempower", action="store_true", help="skip TechEmpower's app")
    parser.add_argument("--served", action="store_true", help="count a uvicorn sent requests over HTTP instead")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep each run's cachegrind output in DIR (for cg_annotate, cg_diff)"
    )
    parser.add_argument("--child", metavar="APP", help=argparse.SUPPRESS)  # the counted process (internal)
    args = parser.parse_args(argv)
    try:
        requests = parse_requests(args.requests)
        paths = parse_paths(args.paths)
        if args.child is not None:
            random.seed(0)
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(_child(args.child, paths[0], requests[0], args.concurrency))
            return 0
        variants = parse_variants(args.variants)
        if args.keep is not None and not args.keep.is_dir():
            raise BadInput(f"--keep {args.keep}: not a directory")
        if not 1 <= args.concurrency <= args.pool_size:
            raise BadInput("--concurrency must be between 1 and --pool-size (no request may wait for a connection)")
    except BadInput as error:
        print(f"instructions.py: {error}", file=sys.stderr)
        return 2

    from bench import pg
    from bench.procs import Supervisor, interrupts_as_exceptions
    from bench.seed import apply_schema, seed

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (instructions do not depend on it)")
    how = "uvicorn, over HTTP" if args.served else "in-process ASGI calls"
    print(
        f"{how}, {args.concurrency} at a time, runs of {requests[0]} and {requests[1]} requests; instructions/request"
    )
    with (
        interrupts_as_exceptions(),
        Supervisor() as supervisor,
        pg.embedded(supervisor) as database,
        tempfile.TemporaryDirectory(prefix="dbbench-instructions-") as tmp,
    ):
        apply_schema(database.dsn)
        seed(database.dsn)

        def measure(cell: Cell) -> float:
            return per_request([(n, count(cell, n, args, database.dsn, Path(tmp))) for n in requests])

        print(f"{'app':<12}{'path':<22}{'hooks on':>12}{'hooks off':>12}{'hooks':>8}")
        for path in paths:
            for variant in variants:
                on, off = measure(Cell(variant, path, True)), measure(Cell(variant, path, False))
                flag = "  over budget" if share(on, off) > HOOK_BUDGET else ""
                print(f"{variant:<12}{path:<22}{on:>12,.0f}{off:>12,.0f}{share(on, off):>8.1%}{flag}", flush=True)
                if variant == "pooled" and not args.no_techempower:
                    theirs = measure(Cell(TECHEMPOWER, path, None))
                    print(
                        f"{TECHEMPOWER:<12}{path:<22}{theirs:>12,.0f}{'':>12}{'':>8}"
                        f"  pooled (hooks on) = {theirs / on:.3f}x TechEmpower's app",
                        flush=True,
                    )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
