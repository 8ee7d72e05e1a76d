"""The coordinated-omission demonstration: one stalling server, loaded closed and open.

    python benchmarks/coordinated_omission.py [--duration 10] [--rate 200] [--users 4]

The target (tests/stall_app.py) blocks its event loop for 200 ms once per second. A closed-model
load (``--users`` users, each waiting for its response before sending again) stops sending while
the server is stalled, so only the few requests in flight see the stall and p99 looks healthy.
An open-model load (``--rate`` requests/s on a fixed schedule) keeps arriving during the stall;
measured from each request's intended send time, p99 shows what users would actually wait.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import hist  # noqa: E402
from bench.load import LoadSpec, run_load  # noqa: E402
from bench.net import LOOPBACK, free_port  # noqa: E402
from bench.procs import Supervisor  # noqa: E402
from bench.target import uvicorn_argv  # noqa: E402
from scenarios import SCENARIOS  # noqa: E402


def describe(name: str, sample: dict[str, object]) -> str:
    latency = hist.decode(str(sample["histogram"]))
    service = hist.decode(str(sample["service_histogram"]))
    rps = int(str(sample["requests"])) / float(str(sample["duration_s"]))
    p = [hist.percentile_ms(latency, q) or 0.0 for q in (50, 99, 99.9)]
    s99 = hist.percentile_ms(service, 99) or 0.0
    return (f"{name:<28} {rps:>7,.0f} req/s   p50 {p[0]:7.2f} ms   p99 {p[1]:7.2f} ms   p99.9 {p[2]:7.2f} ms"
            f"   (send-to-response p99 {s99:7.2f} ms, late {sample['late']})")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--users", type=int, default=4)
    args = parser.parse_args()
    locustfile = SCENARIOS.get("db").path
    with Supervisor() as supervisor, tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        supervisor.start("stall", uvicorn_argv("tests.stall_app:app", port, 1), env=env, cwd=ROOT)
        url = f"http://{LOOPBACK}:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        closed = run_load(supervisor, LoadSpec(locustfile, url, args.users, 2.0, args.duration), Path(tmp))
        spec = LoadSpec(locustfile, url, 16, 2.0, args.duration, rate=args.rate)
        opened = run_load(supervisor, spec, Path(tmp))
    print("target: blocks its event loop for 200 ms once per second")
    print(describe(f"closed, {args.users} users", closed))
    print(describe(f"open, {args.rate:g} req/s (16 conns)", opened))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
