"""``pooled`` against TechEmpower's own FastAPI app, side by side on one database, measured by wrk.

    python benchmarks/techempower.py [--rounds 3] [--duration 10] [--connections 32] [--queries 20]
        [--endpoints db,queries,fortunes,updates] [--instrument default|on|off] [--pin] [--profile-dir DIR]

Starts the embedded PostgreSQL (bench.pg), seeds it, serves ``pooled`` (bench.target, the run's own way) and
benchmarks/techempower_app.py (a re-creation of TechEmpower's app: raw asyncpg pool, prepared statements,
orjson) under uvicorn, one worker each, the same pool size, both up for the whole run. Before any load it
checks that both answer every measured endpoint with the contract's shapes (bench.check.rules) and the same
fortunes. Then, per round and endpoint, it runs wrk against each app in turn (which goes first alternates
with the round, so drift hits both) and prints per endpoint the median ratio pooled/TFB of req/s with each
round's ratio, and each app's CPU time per request (the uvicorn process's CPU time over the wrk run) plus
PostgreSQL's (the postmaster's tree, backends that exited during the run included: ``tree_cpu_used``): a
gap there is per-request work one app does and the other does not.

``--pin`` measures on bench's default CPU split (bench.topology: both apps and PostgreSQL on the server CPUs,
wrk under ``taskset`` on the load CPUs; on 2 CPUs, CPU 0 and CPU 1), as ``bench run`` measures the variants;
without it every process may run on every CPU. The two can rank the apps differently: on one server CPU a
round trip per request more (TechEmpower's app sends asyncpg's reset query on every release, ``pooled`` does
not: targets.pooled.keep_session) costs throughput, while across CPUs the garbage collector's share weighs more.

Only 2xx responses count as throughput; a round where either app answered anything else is flagged.
``--profile-dir`` then records each app under load with py-spy (pip install py-spy) into collapsed-stack
files and prints the functions each one spends most samples in (own time and time below).
Needs wrk on PATH (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import html
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import pg, seed, topology  # noqa: E402
from bench.check import rules  # noqa: E402
from bench.procs import Supervisor, interrupts_as_exceptions  # noqa: E402
from bench.target import Target, TargetConfig, serve  # noqa: E402
from targets import VARIANTS  # noqa: E402

ENDPOINTS = ("db", "queries", "fortunes", "updates")
TFB_APP = "benchmarks.techempower_app:app"
INSTRUMENT = {"default": None, "on": True, "off": False}
_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class WrkRun:
    """What one wrk run saw: ``requests`` completed responses (2xx or not) in ``seconds``; ``non_2xx`` of them
    failed, and ``socket_errors`` requests never got a response (connect, read, write, timeout)."""

    requests: int
    seconds: float
    non_2xx: int = 0
    socket_errors: int = 0

    @property
    def ok_rps(self) -> float:
        """Successful responses per second: a failed request is never throughput."""
        return (self.requests - self.non_2xx) / self.seconds

    @property
    def failed(self) -> int:
        return self.non_2xx + self.socket_errors


def parse_wrk(out: str) -> WrkRun:
    """Read wrk's summary; raises ValueError when the ``N requests in T`` line is missing."""
    found = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    if found is None:
        raise ValueError(f"no 'requests in' line in wrk's output: {out.strip()[-200:]!r}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkRun(
        requests=int(found.group(1)),
        seconds=float(found.group(2)) * _UNITS_S[found.group(3)],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(map(int, sockets.groups())) if sockets else 0,
    )


def path_of(endpoint: str, queries: int) -> str:
    """The URL path wrk requests for ``endpoint``; /queries and /updates ask for ``queries`` rows."""
    return f"/{endpoint}?queries={queries}" if endpoint in ("queries", "updates") else f"/{endpoint}"


def order_of(round_: int, names: Sequence[str]) -> list[str]:
    """Who goes first alternates with the round (1-based), so a drift in the machine's load hits both."""
    return list(names) if round_ % 2 else list(reversed(names))


def median_ratio(ratios: Sequence[float]) -> float:
    return statistics.median(ratios)


def shape_faults(endpoint: str, body: bytes, queries: int) -> list[str]:
    """Why ``body`` is not the contract's answer to ``path_of(endpoint, queries)``; empty when it is."""
    if endpoint == "fortunes":
        fault = rules.fortunes_shape_fault(body.decode("utf-8"))
        return [fault] if fault else []
    try:
        payload = json.loads(body)
    except ValueError:
        return [f"not JSON: {body[:80]!r}"]
    items = [payload] if endpoint == "db" else payload
    if endpoint != "db" and (not isinstance(payload, list) or len(payload) != queries):
        return [f"expected a list of {queries} worlds, got {rules.short(payload)}"]
    return [fault for item in items if (fault := rules.world_fault(item)) is not None][:1]


def fortune_rows(body: bytes) -> list[tuple[str, str]]:
    """The (id, message) rows of a fortunes page, unescaped (escapers differ: ``&#39;`` or ``&#x27;``), whitespace
    between tags ignored (as the check does)."""
    page = re.sub(r">\s+<", "><", body.decode("utf-8"))
    return [(i, html.unescape(m)) for i, m in re.findall(r"<tr><td>(-?\d+)</td><td>([^<]*)</td></tr>", page)]


def top_frames(collapsed: Iterable[str], n: int) -> tuple[int, list[tuple[str, int, int]]]:
    """From py-spy's collapsed stacks (``frame;frame;... count`` per line, root first): the total samples and
    the ``n`` frames with most own samples as (frame, own, inclusive); a frame counts once per stack."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    return total, [(frame, samples, inclusive[frame]) for frame, samples in own.most_common(n)]


def cpu_s(pid: int) -> float:
    """Seconds ``pid`` has spent on a CPU so far (uvicorn runs one worker: the app is this process).

    Linux's /proc/PID/schedstat counts nanoseconds; user + system time (psutil) is whole clock ticks per
    process, which loses up to 10 ms per PostgreSQL backend per reading: more than a short run's whole DB time.
    """
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        times = psutil.Process(pid).cpu_times()
        return times.user + times.system


ProcessKey = tuple[int, float]  # (pid, start time): a pid the kernel reuses within a run is another process


@dataclass(frozen=True)
class TreeCpu:
    """A process tree's CPU time at one instant: each live process's own seconds (``cpu_s``), and the
    seconds the root has reaped from children that exited (Linux adds a child's whole CPU time to its
    parent's ``cutime + cstime`` when the parent waits for it; the postmaster waits for its backends)."""

    live: Mapping[ProcessKey, float]
    reaped_s: float


def tree_cpu(pid: int) -> TreeCpu:
    """``pid`` and every process below it (the postmaster and its backends), now."""
    root = psutil.Process(pid)
    live: dict[ProcessKey, float] = {}
    for each in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            live[(each.pid, each.create_time())] = cpu_s(each.pid)
    times = root.cpu_times()
    return TreeCpu(live, times.children_user + times.children_system)


def tree_cpu_used(before: TreeCpu, after: TreeCpu) -> float:
    """CPU seconds the tree spent between two readings, never negative.

    Summing the live processes at each edge and subtracting undercounts every backend that exits in
    between (its time is in ``before`` and nowhere in ``after``): /queries printed "+-2552 µs" per request.
    So: processes alive at both edges count their difference, those started since count all of theirs, and
    those that exited count what the root reaped since ``before`` less what they had at ``before`` (a
    backend that both started and exited in between is wholly in the reaped figure). Reaped time is kept in
    clock ticks (10 ms) while live time is exact, so the exited share is floored at zero rather than let a
    tick's rounding make it negative.
    """
    both = before.live.keys() & after.live.keys()
    used = sum(after.live[key] - before.live[key] for key in both)
    used += sum(after.live[key] for key in after.live.keys() - both)
    exited_before = sum(before.live[key] for key in before.live.keys() - both)
    return used + max(after.reaped_s - before.reaped_s - exited_before, 0.0)


def wrk(url: str, connections: int, duration: int, prefix: Sequence[str] = ()) -> WrkRun:
    """One wrk run; ``prefix`` goes before it (``taskset -c CPUS`` on the load CPUs with ``--pin``)."""
    out = subprocess.run(
        [*prefix, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", url], capture_output=True, text=True, check=True
    ).stdout
    return parse_wrk(out)


@dataclass(frozen=True)
class Measured:
    """One wrk run and the CPU time per request it cost the app's process and PostgreSQL (all of its
    processes: only one app is under load at a time), in µs."""

    run: WrkRun
    cpu_us_per_request: float
    db_us_per_request: float = 0.0

    @property
    def total_us_per_request(self) -> float:
        return self.cpu_us_per_request + self.db_us_per_request


def measure(
    target: Target,
    path: str,
    connections: int,
    duration: int,
    db_pid: int | None = None,
    prefix: Sequence[str] = (),
) -> Measured:
    before, db_before = cpu_s(target.child.pid), tree_cpu(db_pid) if db_pid else None
    run = wrk(target.url + path, connections, duration, prefix)
    used = cpu_s(target.child.pid) - before
    db_used = tree_cpu_used(db_before, tree_cpu(db_pid)) if db_pid and db_before else 0.0
    requests = max(run.requests, 1)
    return Measured(run, used / requests * 1e6, db_used / requests * 1e6)


def verify(targets: dict[str, Target], endpoints: Sequence[str], queries: int) -> list[str]:
    """Every fault of either app's answers before load, as ``app path: fault`` lines; empty when both pass."""
    faults = []
    fortunes: dict[str, list[tuple[str, str]]] = {}
    for name, target in targets.items():
        for endpoint in endpoints:
            path = path_of(endpoint, queries)
            response = httpx.get(target.url + path, timeout=10)
            found = [f"HTTP {response.status_code}"] if response.status_code != 200 else []
            found += [f"no {h} header" for h in ("server", "date", "content-type") if h not in response.headers]
            found += shape_faults(endpoint, response.content, queries)
            faults += [f"{name} {path}: {fault}" for fault in found]
            if endpoint == "fortunes":
                fortunes[name] = fortune_rows(response.content)
    if len(fortunes) == 2 and len({tuple(rows) for rows in fortunes.values()}) != 1:
        faults.append("the two fortunes pages list different rows")
    return faults


@contextlib.contextmanager
def both_apps(
    supervisor: Supervisor, dsn: str, pool_size: int, instrument: bool | None, logs: Path
) -> Iterator[dict[str, Target]]:
    pooled = VARIANTS.get("pooled")
    config = TargetConfig(dsn, pool_size, instrument=instrument)
    with (
        serve(supervisor, pooled.name, pooled.app, config, logs / "pooled.log") as mine,
        serve(supervisor, "tfb", TFB_APP, replace(config, instrument=None), logs / "tfb.log") as theirs,
    ):
        yield {"pooled": mine, "tfb": theirs}


def profile(
    target: Target, path: str, connections: int, duration: int, out: Path, prefix: Sequence[str] = ()
) -> Measured:
    """wrk on ``path`` while py-spy samples the uvicorn process into ``out`` (collapsed stacks, idle frames
    dropped). py-spy pauses the process for each sample: its req/s is lower than the rounds' (not compared),
    but ``--nonblocking`` read torn stacks here (os.environ and ExitStack frames on /db's hot path)."""
    spy = subprocess.Popen(
        ["py-spy", "record", "--pid", str(target.child.pid), "--duration", str(duration), "--rate", "250",
         "--format", "raw", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        measured = measure(target, path, connections, duration, prefix=prefix)
        _, err = spy.communicate(timeout=duration + 30)
        if spy.returncode != 0:
            raise RuntimeError(f"py-spy failed: {err.decode(errors='replace').strip()[-300:]}")
        return measured
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()


def print_profile(name: str, path: str, measured: Measured, collapsed: Path, n: int = 12) -> None:
    with collapsed.open() as lines:
        total, frames = top_frames(lines, n)
    print(f"\n{name} {path}: {measured.run.ok_rps:,.0f} req/s, {measured.cpu_us_per_request:.0f} µs CPU/request, "
          f"{total} samples ({collapsed})")  # fmt: skip
    print(f"{'own %':>6} {'incl %':>7}  frame")
    for frame, own, inclusive in frames:
        print(f"{own / total * 100:>6.1f} {inclusive / total * 100:>7.1f}  {frame[:110]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of wrk per app and endpoint before round 1")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--queries", type=int, default=20, help="rows per /queries and /updates request")
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument(
        "--instrument", choices=sorted(INSTRUMENT), default="default",
        help="pooled's statement timing hooks (DBBENCH_INSTRUMENT); the TFB app has none",
    )  # fmt: skip
    parser.add_argument(
        "--pin", action="store_true",
        help="bench's default CPU split: apps and PostgreSQL on the server CPUs, wrk on the load CPUs",
    )  # fmt: skip
    parser.add_argument("--profile-dir", type=Path, help="after the rounds, profile both apps with py-spy here")
    args = parser.parse_args()
    endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    if unknown := sorted(set(endpoints) - set(ENDPOINTS)):
        print(f"unknown endpoint(s) {', '.join(unknown)}; choose from {', '.join(ENDPOINTS)}", file=sys.stderr)
        return 2
    if min(args.rounds, args.duration, args.connections, args.queries, args.pool_size) < 1 or args.warmup < 0:
        print("--rounds, --duration, --connections, --queries and --pool-size must be at least 1", file=sys.stderr)
        return 2
    for tool in ("wrk", *(["py-spy"] if args.profile_dir else []), *(["taskset"] if args.pin else [])):
        if shutil.which(tool) is None:
            hint = "wrk: apt-get install wrk; taskset: apt-get install util-linux; py-spy: pip install py-spy"
            print(f"{tool} is not on PATH ({hint})", file=sys.stderr)
            return 2
    try:
        with interrupts_as_exceptions():
            return run(args, endpoints)
    except KeyboardInterrupt:
        print("interrupted; everything it started has been stopped", file=sys.stderr)
        return 130


def run(args: argparse.Namespace, endpoints: list[str]) -> int:
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    plan = topology.plan(topology.available(), pin=args.pin)
    if args.pin and not plan.pinned:
        print(f"--pin needs at least 2 CPUs ({plan.reason})", file=sys.stderr)
        return 2
    args.wrk_prefix = topology.taskset(plan.load)
    print(
        f"CPUs: apps and PostgreSQL on {topology.format_cpus(plan.server)}, wrk on {topology.format_cpus(plan.load)}"
        if plan.pinned
        else "CPUs: every process on every CPU"
    )
    with (
        Supervisor(cpu_plan=plan) as supervisor,
        tempfile.TemporaryDirectory() as tmp,
        pg.embedded(supervisor) as database,
    ):
        seed.apply_schema(database.dsn)
        seed.seed(database.dsn)
        instrument = INSTRUMENT[args.instrument]
        with both_apps(supervisor, database.dsn, args.pool_size, instrument, Path(tmp)) as targets:
            info = targets["pooled"].info()
            print(f"pooled: pool {info.get('pool_size')}, statement hooks {'on' if info.get('instrumented') else 'off'}"
                  f"; tfb: pool {args.pool_size}, no hooks; uvicorn 1 worker each; wrk -t1 -c{args.connections}"
                  f" -d{args.duration}s")  # fmt: skip
            if faults := verify(targets, endpoints, args.queries):
                print("the apps do not answer alike; not measuring:\n  " + "\n  ".join(faults), file=sys.stderr)
                return 1
            print("checked: both answer " + ", ".join(path_of(e, args.queries) for e in endpoints) + " alike")
            if args.warmup:
                for endpoint in endpoints:
                    for target in targets.values():
                        path = path_of(endpoint, args.queries)
                        wrk(target.url + path, args.connections, args.warmup, args.wrk_prefix)
            results = rounds(targets, endpoints, args, database.server_pid)
            summarise(endpoints, args.queries, results)
            if args.profile_dir:
                args.profile_dir.mkdir(parents=True, exist_ok=True)
                for endpoint in endpoints:
                    path = path_of(endpoint, args.queries)
                    for name, target in targets.items():
                        out = args.profile_dir / f"{name}-{endpoint}.txt"
                        measured = profile(target, path, args.connections, args.duration, out, args.wrk_prefix)
                        print_profile(name, path, measured, out)
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


Results = dict[str, list[dict[str, Measured]]]  # endpoint → per round, app name → what wrk and psutil saw


def rounds(targets: dict[str, Target], endpoints: list[str], args: argparse.Namespace, db_pid: int | None) -> Results:
    results: Results = {endpoint: [] for endpoint in endpoints}
    for round_ in range(1, args.rounds + 1):
        for endpoint in endpoints:
            path = path_of(endpoint, args.queries)
            seen = {}
            for name in order_of(round_, list(targets)):
                seen[name] = measure(targets[name], path, args.connections, args.duration, db_pid, args.wrk_prefix)
            results[endpoint].append(seen)
            failed = "  FAILED REQUESTS: " + ", ".join(
                f"{name} {m.run.failed}" for name, m in seen.items() if m.run.failed
            )
            mine, theirs = seen["pooled"], seen["tfb"]
            print(f"round {round_} {path:<20} pooled {mine.run.ok_rps:>7,.0f} req/s"
                  f" {mine.cpu_us_per_request:>5.0f}+{mine.db_us_per_request:<4.0f} µs/req"
                  f" | tfb {theirs.run.ok_rps:>7,.0f} req/s"
                  f" {theirs.cpu_us_per_request:>5.0f}+{theirs.db_us_per_request:<4.0f} µs/req"
                  f" | {mine.run.ok_rps / theirs.run.ok_rps:.2f}×"
                  f"{failed if mine.run.failed or theirs.run.failed else ''}", flush=True)  # fmt: skip
    return results


def summarise(endpoints: list[str], queries: int, results: Results) -> None:
    print("\nCPU µs/request = the app's uvicorn process + PostgreSQL's processes, median over rounds")
    print("endpoint               pooled/TFB req/s (median; per round)     CPU µs/request: pooled vs tfb")
    for endpoint in endpoints:
        per_round = results[endpoint]
        ratios = [seen["pooled"].run.ok_rps / seen["tfb"].run.ok_rps for seen in per_round]
        cpu = {name: _median_cpu([seen[name] for seen in per_round]) for name in ("pooled", "tfb")}
        each = ", ".join(f"{r:.2f}" for r in ratios)
        flagged = (
            " (some rounds had failed requests)" if any(m.run.failed for s in per_round for m in s.values()) else ""
        )
        print(f"{path_of(endpoint, queries):<22} {median_ratio(ratios):>5.2f}×  [{each}]{'':<{max(0, 20 - len(each))}}"
              f"{cpu['pooled']:>16} vs {cpu['tfb']}{flagged}")  # fmt: skip


def _median_cpu(runs: list[Measured]) -> str:
    app = statistics.median(m.cpu_us_per_request for m in runs)
    db = statistics.median(m.db_us_per_request for m in runs)
    return f"{app:.0f}+{db:.0f}={statistics.median(m.total_us_per_request for m in runs):.0f}"


if __name__ == "__main__":
    raise SystemExit(main())
