"""How long the report renderers take on a big results file: 1,000 cells (3 trials each) by default.

    python benchmarks/report_scale.py SOURCE.json [--cells 1000] [--trials 3] [--out big.json]
                                      [--repeats 3] [--before DIR] [--profile FORMAT]

The big file is built from a real run's cells (SOURCE, e.g. a `bench run --quick` results file): its ok
cells are replicated under new variant names ("pooled-0007"), ``--trials`` trials each, until there are
``--cells`` cells, so the histograms, statement statistics and plans are real ones (every histogram made
distinct, so a cache of decoded histograms helps no more than on a real file). Each format is then rendered
``--repeats`` times in a fresh process (``bench report BIG --format F -o /dev/null``, what a user waits for)
and the median and minimum wall and CPU times printed, with the renderer alone (in this process, the file
already loaded) beside them. ``--before DIR``: the same commands run from another checkout of dbbench (e.g.
``git archive main | tar -x -C DIR``), interleaved with this one's, so the two are measured side by side
under the same load. The goal (issue 12) is <= 2 s per format on the project's 2-core machine.
``--profile FORMAT`` prints pyinstrument's view of that one render instead, to find where the time goes.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import hist, results  # noqa: E402
from reports.base import FORMATS, renderer  # noqa: E402


def distinct(encoded: str, salt: int) -> str:
    """The same histogram plus one sample, so no two cells share an encoded string (as in a real file:
    a renderer that decodes each distinct string once must not look faster here than on real data)."""
    if not encoded:
        return encoded
    histogram = hist.decode(encoded)
    histogram.record_value(1000 + salt)
    return hist.encode(histogram)


def distinct_cell(cell: dict[str, Any], salt: int) -> None:
    """Every histogram of ``cell`` made distinct; an endpoint that held the cell's own histogram (a
    one-endpoint scenario) keeps holding it, as the load process writes it."""
    original = cell["histogram"]
    cell["histogram"] = distinct(original, salt)
    for number, endpoint in enumerate(cell.get("endpoints", {}).values()):
        same = endpoint["histogram"] == original
        endpoint["histogram"] = cell["histogram"] if same else distinct(endpoint["histogram"], salt * 16 + number)
    if cell.get("service_histogram"):
        cell["service_histogram"] = distinct(cell["service_histogram"], salt)


def build(source: Path, cells: int, trials: int) -> dict[str, object]:
    data = json.loads(source.read_text(encoding="utf-8"))
    # One trial per (variant, scenario, load, setting): the copies get exactly ``trials`` trials each.
    firsts: dict[tuple[object, ...], dict[str, object]] = {}
    for cell in data["cells"]:
        key = (cell["variant"], cell["scenario"], cell["users"], cell.get("rate"), json.dumps(cell.get("settings")))
        if cell["status"] == "ok":
            firsts.setdefault(key, cell)
    ok = list(firsts.values())
    if not ok:
        raise SystemExit(f"{source} has no ok cell to replicate")
    out: list[dict[str, object]] = []
    copy_index = 0
    while len(out) < cells:
        for cell in ok:
            for trial in range(1, trials + 1):
                if len(out) >= cells:
                    break
                made: dict[str, Any] = copy.deepcopy(cell)
                made["variant"] = f"{cell['variant']}-{copy_index:04d}"
                made["trial"] = trial
                distinct_cell(made, len(out))
                out.append(made)
        copy_index += 1
    variants = sorted({str(cell["variant"]) for cell in out})
    checks = [{"variant": name, "ok": True, "problems": [], "info": {}} for name in variants]
    metadata = copy.deepcopy(data["metadata"])
    metadata.setdefault("config", {})["variants"] = variants
    metadata["config"]["trials"] = trials
    return {**data, "metadata": metadata, "checks": checks, "cells": out}


def timed_report(code: Path, path: Path, name: str) -> tuple[float, float]:
    """Wall and CPU seconds of ``bench report PATH --format NAME -o /dev/null`` run from checkout ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench", "report", str(path), "--format", name, "-o", "/dev/null"],
                   check=True, cwd=code, stdout=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def figures(samples: list[float]) -> str:
    return f"{statistics.median(samples):5.2f} ({min(samples):4.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("/tmp/report-scale-1000.json"))
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per format (default 3)")
    parser.add_argument("--before", type=Path, help="another checkout of dbbench to time side by side")
    parser.add_argument("--profile", choices=list(FORMATS))
    args = parser.parse_args()
    args.out.write_text(json.dumps(build(args.source, args.cells, args.trials)), encoding="utf-8")
    size_mb = args.out.stat().st_size / 1e6
    started = time.perf_counter()
    loaded = results.load(args.out)
    load_s = time.perf_counter() - started
    print(f"{args.out}: {len(loaded.cells)} cells, {size_mb:.1f} MB; results.load {load_s:.2f} s")
    if args.profile:
        from pyinstrument import Profiler

        with Profiler() as profiler:
            renderer(args.profile).render(loaded)
        print(profiler.output_text(color=False, show_all=False))
        return
    renderer("html").render(loaded)  # warm the Vega bundle cache (a one-off ~5 s per vl-convert version)
    codes = {"this": ROOT} | ({"before": args.before.resolve()} if args.before else {})
    # Wall time moves with whatever else the machine runs; CPU time is the renderer's own cost.
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"bench report, {args.repeats} fresh processes each: median (min) seconds")  # fmt: skip
    header = "".join(f"{f'{code}: wall':>16}{'CPU':>14}" for code in codes)
    print(f"{'format':<9}{header}{'render only: CPU':>18}{'output':>10}")
    for name in FORMATS:
        walls: dict[str, list[float]] = {code: [] for code in codes}
        cpus: dict[str, list[float]] = {code: [] for code in codes}
        for _ in range(args.repeats):
            for code, where in codes.items():  # interleaved: both checkouts see the same load
                wall, cpu = timed_report(where, args.out, name)
                walls[code].append(wall)
                cpus[code].append(cpu)
        hist.decoded_segment.cache_clear()  # each format pays for its own decoding, as in its own process
        hist.trials_of.cache_clear()
        cpu_started = time.process_time()
        text = renderer(name).render(loaded)
        render_cpu = time.process_time() - cpu_started
        row = "".join(f"{figures(walls[code]):>16}{figures(cpus[code]):>14}" for code in codes)
        print(f"{name:<9}{row}{render_cpu:>16.2f} s{len(text) / 1e6:>7.2f} MB")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
