"""How long the report renderers take on a big results file: 1,000 cells (3 trials each) by default.

    python benchmarks/report_scale.py SOURCE.json [--cells 1000] [--trials 3] [--out big.json] [--profile FORMAT]

The big file is built from a real run's cells (SOURCE, e.g. a `bench run --quick` results file): its ok
cells are replicated under new variant names ("pooled-0007"), ``--trials`` trials each, until there are
``--cells`` cells, so the histograms, statement statistics and plans are real ones. Each format is then
rendered in a fresh process (``bench report BIG --format F -o /dev/null``, what a user waits for) and in
this one (the renderer alone, the file already loaded), and the times are printed side by side. The goal
(issue 12) is <= 2 s per format on the project's 2-core machine. ``--profile FORMAT`` prints pyinstrument's
view of that one render instead, to find where the time goes.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

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
                made = copy.deepcopy(cell)
                made["variant"] = f"{cell['variant']}-{copy_index:04d}"
                made["trial"] = trial
                made["histogram"] = distinct(str(cell["histogram"]), len(out))
                out.append(made)
        copy_index += 1
    variants = sorted({str(cell["variant"]) for cell in out})
    checks = [{"variant": name, "ok": True, "problems": [], "info": {}} for name in variants]
    metadata = copy.deepcopy(data["metadata"])
    metadata.setdefault("config", {})["variants"] = variants
    metadata["config"]["trials"] = trials
    return {**data, "metadata": metadata, "checks": checks, "cells": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("/tmp/report-scale-1000.json"))
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
    # Wall time moves with whatever else the machine runs; CPU time is the renderer's own cost.
    print(f"{'format':<9}{'bench report: wall':>20}{'CPU':>9}{'render only: wall':>19}{'CPU':>9}{'output':>10}")
    for name in FORMATS:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bench", "report", str(args.out), "--format", name, "-o", "/dev/null"],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
        process_s = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        process_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        hist.decoded_segment.cache_clear()  # each format pays for its own decoding, as in its own process
        hist.trials_of.cache_clear()
        started, cpu = time.perf_counter(), time.process_time()
        text = renderer(name).render(loaded)
        render_s, render_cpu = time.perf_counter() - started, time.process_time() - cpu
        print(
            f"{name:<9}{process_s:>18.2f} s{process_cpu:>7.2f} s{render_s:>17.2f} s{render_cpu:>7.2f} s"
            f"{len(text) / 1e6:>7.2f} MB"
        )


if __name__ == "__main__":
    main()
