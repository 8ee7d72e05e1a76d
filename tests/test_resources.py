"""A process tree's memory (bench.resources): pages its processes share are counted once, not once per process
(a review finding of 2026-12-01: the target's RSS was the sum of its processes' RSS, so uvicorn's workers
counted the interpreter and its libraries once each: +33 % with 2 workers)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from bench.procs import Supervisor
from bench.resources import ProcessTree, tree_rss

MB = 1024 * 1024


def test_one_process_is_its_rss_and_shared_pages_count_once() -> None:
    one = SimpleNamespace(rss=50 * MB, shared=20 * MB)
    assert tree_rss([one]) == 50 * MB
    workers = [SimpleNamespace(rss=50 * MB, shared=20 * MB), SimpleNamespace(rss=45 * MB, shared=18 * MB)]
    assert tree_rss(workers) == (30 + 27 + 20) * MB  # each private part, the largest shared part once
    assert tree_rss([SimpleNamespace(rss=7), SimpleNamespace(rss=5)]) == 12  # no "shared" (not Linux): the sum
    assert tree_rss([]) == 0


# A parent and two children, each mapping the same file and reading every page of it: the file's pages are
# resident once on the machine, and were counted three times by a sum of RSS.
_MAPPER = """
import mmap, subprocess, sys, time
path, children = sys.argv[1], int(sys.argv[2])
kids = [subprocess.Popen([sys.executable, "-c", sys.argv[3], path, "0", sys.argv[3]]) for _ in range(children)]
with open(path, "rb") as handle:
    view = mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ)
    sum(view[i] for i in range(0, len(view), mmap.PAGESIZE))  # every page resident
    print("mapped", flush=True)
    time.sleep(120)
"""


@pytest.mark.e2e
def test_a_tree_sharing_a_mapped_file_counts_its_pages_once(tmp_path: Path) -> None:
    mapped = tmp_path / "shared.bin"
    size = 64 * MB
    mapped.write_bytes(b"\1" * size)
    log = tmp_path / "mapper.log"
    with Supervisor() as supervisor:
        child = supervisor.start("mapper", [sys.executable, "-c", _MAPPER, str(mapped), "2", _MAPPER], log_path=log)
        root = psutil.Process(child.pid)
        deadline = time.monotonic() + 60
        # Ready when all three processes have the whole file resident.
        while True:
            procs = [root, *root.children(recursive=True)]
            infos = [p.memory_info() for p in procs]
            if len(procs) == 3 and all(info.shared >= size for info in infos):
                break
            assert child.alive() and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        counted = ProcessTree(child.pid).sample_rss()
    summed = sum(info.rss for info in infos)
    largest = max(info.rss for info in infos)
    assert summed >= 3 * size  # what the sum of RSS claimed
    # The file once, plus three small interpreters' private pages (each well under 32 MB).
    assert largest <= counted < size + 3 * 32 * MB, (counted / MB, summed / MB)
