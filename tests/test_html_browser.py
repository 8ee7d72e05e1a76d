"""The HTML report of a real short run, opened in headless Chromium: it draws, offline, without errors.

Debian's chromium (.ci/run installs it): ``--dump-dom`` gives the page after its scripts ran (virtual time,
so the charts finish drawing), ``--enable-logging=stderr`` prints every console message as a CONSOLE line.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("pooled", "sync")
SCENARIO = "db"

pytestmark = pytest.mark.e2e


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("no chromium on PATH: install Debian's chromium (apt-get install chromium), as .ci/run does")


def open_in_browser(page: Path, profile: Path) -> tuple[str, str]:
    """The DOM after the page's scripts ran, and the browser's log (console messages among it)."""
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=20000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def test_the_report_of_a_real_run_draws_every_chart_without_console_errors(tmp_path: Path) -> None:
    output = tmp_path / "run.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--variants", ",".join(VARIANTS), "--scenarios", SCENARIO,
         "--users", "2,4", "--warmup", "0.5", "--duration", "1", "--no-calibrate", "-o", str(output)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    page = tmp_path / "run.html"
    assert page.is_file(), run.stdout[-2000:]
    assert f"report: {page}" in run.stdout
    assert page.stat().st_size < 5_000_000

    dom, log = open_in_browser(page, tmp_path / "chromium-profile")
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert console == [], console

    charts = re.findall(r'data-chart="([^"]+)"', dom)
    # Per load point a throughput and a latency chart, and the sweep's two (throughput vs load, p99 vs req/s).
    assert len(charts) == 2 * 2 + 2, charts
    for chart in charts:
        start = dom.index(f'id="{chart}"')
        drawn = dom[start : dom.index("</figure>", start)]
        size = re.search(r'<svg[^>]* width="(\d+)" height="(\d+)"', drawn)
        assert size and int(size.group(1)) > 100 and int(size.group(2)) > 20, (chart, drawn[:300])
        assert re.search(r'class="mark-(rect|line|symbol|rule)', drawn), (chart, drawn[:300])
    text = re.sub(r"<[^>]+>", " ", dom)
    for name in (*VARIANTS, SCENARIO, "2 users", "4 users"):
        assert re.search(rf"\b{name}\b", text), name
