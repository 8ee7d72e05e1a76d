"""Throughput of every variant side by side, as ratios to ``pooled``, measured in one run.

    python benchmarks/variants.py [--duration 10] [--warmup 3] [--users 32] [--trials 3] [--scenarios db]

Runs the real ``bench run`` (embedded PostgreSQL, uvicorn, Locust) into a temporary results file
and prints req/s per variant and scenario with the ratio to the raw asyncpg pool. The ratios, not
the absolute numbers, are what carries over between machines; both depend on this machine's load.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import results  # noqa: E402
from reports import summary  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="10")
    parser.add_argument("--warmup", default="3")
    parser.add_argument("--users", default="32")
    parser.add_argument("--trials", default="3")
    parser.add_argument("--scenarios", default="db")
    parser.add_argument("--keep", type=Path, help="also keep the results file here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp) / "variants.json"
        cmd = [
            sys.executable,
            "-m",
            "bench",
            "run",
            "--duration",
            args.duration,
            "--warmup",
            args.warmup,
            "--users",
            args.users,
            "--trials",
            args.trials,
            "--scenarios",
            args.scenarios,
            "-o",
            str(out),
            "--force",
        ]
        print("$", " ".join(["bench", *cmd[3:]]), flush=True)
        code = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, check=False).returncode
        if code not in (0, 1):
            return code
        loaded = results.load(out)
    machine = loaded.metadata["machine"]
    print(f"machine: {machine['cpu_count']} CPUs, {machine['cpu_model']}, Python {machine['python']}")
    for (scenario, load), rows in summary.by_scenario(summary.rows(loaded)).items():
        base = next((r.rps for r in rows if r.variant == "pooled" and r.status == "ok"), None)
        print(f"\n{scenario} · {load} · median of {args.trials} trials")
        print(f"{'variant':<12}{'req/s':>10}{'min':>9}{'max':>9}{'p99 ms':>9}{'pooled/x':>10}")
        for row in rows:
            if row.status != "ok":
                print(f"{row.variant:<12}{'failed':>10}  {row.reason}")
                continue
            ratio = f"{base / row.rps:.2f}×" if base and row.rps else "-"
            print(
                f"{row.variant:<12}{row.rps:>10,.0f}{row.rps_min:>9,.0f}{row.rps_max:>9,.0f}"
                f"{row.p99_ms or 0:>9.2f}{ratio:>10}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
