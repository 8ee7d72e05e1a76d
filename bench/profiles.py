"""The profiling pass: where each variant's Python time goes, kept apart from the timed cells.

A profiler changes the timings it watches, so profiles come from a separate pass over the same
variants and scenarios: the target runs with pyinstrument on every request (see
targets/common/profiling.py), a fixed number of requests arrive at low concurrency, and on shutdown the
target writes one combined session. Capture once, render many: that session is saved as-is
(.pyisession), rendered to HTML and to speedscope JSON beside the results file, and summarised
as the top frames by self time in the results.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import load, seed
from bench.errors import BenchError
from bench.pg import Database
from bench.procs import Supervisor
from bench.target import TargetConfig, TargetFailed, serve
from scenarios import Scenario
from targets import Variant

SESSION_FILE = "profile.pyisession"
REQUESTS = 400  # enough samples for a stable top-10 at pyinstrument's 0.2 ms interval, ~seconds per cell
USERS = 2  # low concurrency: the profile should show the work per request, not queueing
TOP_FRAMES = 10


def profile_dir_for(results_path: Path) -> Path:
    return results_path.with_name(results_path.stem + ".profiles")


def claim_dir(results_path: Path, *, force: bool) -> Path:
    """The profiles folder of ``results_path``, emptied for this run; called before measuring anything.

    Protected like the results file it belongs to: when it exists, BenchError unless ``force``; with
    ``force`` the earlier run's profiles are removed, so the folder never mixes two runs' files.
    """
    out_dir = profile_dir_for(results_path)
    if out_dir.exists() or out_dir.is_symlink():
        if not force:
            raise BenchError(
                f"{out_dir} already exists (profiles of an earlier run); choose another -o or pass --force"
            )
        if out_dir.is_dir() and not out_dir.is_symlink():
            shutil.rmtree(out_dir)
        else:
            out_dir.unlink()
    return out_dir


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _frames(frame: Any) -> Iterator[Any]:
    yield frame
    for child in frame.children:
        yield from _frames(child)


def top_frames(session: Any, limit: int = TOP_FRAMES) -> list[dict[str, Any]]:
    """Functions by self time (time on CPU in the function itself, not its callees), summed over
    every place they were called from."""
    root = session.root_frame()
    if root is None:
        return []
    totals: dict[tuple[str, str, int], float] = {}
    for frame in _frames(root):
        if frame.is_synthetic or not frame.total_self_time:
            continue
        key = (frame.function or "?", frame.file_path_short or "?", frame.line_no or 0)
        totals[key] = totals.get(key, 0.0) + float(frame.total_self_time)
    duration = float(session.duration) or 1.0
    ranked = sorted(totals.items(), key=lambda item: item[1], reverse=True)[:limit]
    return [
        {"function": fn, "file": path, "line": line, "self_s": seconds, "self_share": seconds / duration}
        for (fn, path, line), seconds in ranked
    ]


def render(session_path: Path, out_dir: Path, stem: str) -> dict[str, Any]:
    """Save the session beside the results and render it to HTML and speedscope JSON.

    The session is aggregated first (targets.common.profiling.aggregate; a no-op on one the target already
    aggregated), so a file of concatenated samples still renders to a few MB and a non-empty tree."""
    from pyinstrument.renderers import HTMLRenderer, SpeedscopeRenderer
    from pyinstrument.session import Session

    from targets.common.profiling import aggregate

    session = aggregate([Session.load(str(session_path))])
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "session": out_dir / f"{stem}.pyisession",
        "html": out_dir / f"{stem}.html",
        "speedscope": out_dir / f"{stem}.speedscope.json",
    }
    session.save(str(files["session"]))
    files["html"].write_text(HTMLRenderer().render(session), encoding="utf-8")
    files["speedscope"].write_text(SpeedscopeRenderer().render(session), encoding="utf-8")
    return {
        "files": {kind: path.name for kind, path in files.items()},
        "samples_s": float(session.duration),
        "cpu_s": float(session.cpu_time),
        "top_frames": top_frames(session),
    }


def profile(
    supervisor: Supervisor,
    database: Database,
    pool_size: int,
    variant: Variant,
    scenario: Scenario,
    workdir: Path,
    out_dir: Path,
    requests: int = REQUESTS,
) -> dict[str, Any]:
    """One profiled cell of ``requests`` requests; returns what the results keep (files, top frames) or an error."""
    stem = _safe(f"{variant.name}-{scenario.name}")
    capture = workdir / f"profile-{stem}"
    shutil.rmtree(capture, ignore_errors=True)
    capture.mkdir(parents=True)
    seed.seed(database.dsn)
    config = TargetConfig(database.dsn, pool_size, profile_dir=str(capture))
    entry: dict[str, Any] = {"variant": variant.name, "scenario": scenario.name, "users": USERS}
    try:
        # Leaving the block stops uvicorn with SIGTERM: its lifespan shutdown writes the session.
        with serve(supervisor, variant.name, variant.app, config, workdir / f"{stem}-profile.log") as target:
            spec = load.LoadSpec(scenario.path, target.url, USERS, 0.5, 120.0, max_requests=requests)
            sample = load.run_load(supervisor, spec, workdir)
            entry["requests"] = int(sample["requests"])
    except (TargetFailed, load.LoadFailed) as exc:
        return {**entry, "error": str(exc)}
    session_path = capture / SESSION_FILE
    if not session_path.exists():
        return {**entry, "error": "the target wrote no profile (was it stopped before its lifespan ended?)"}
    return {**entry, **render(session_path, out_dir, stem)}
