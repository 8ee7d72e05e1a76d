"""The load generator's ceiling on this machine, and the rule that flags cells which reach it.

A cell whose throughput is close to what Locust manages against a target that does nothing is
measuring Locust, not the variant. Every run records the ceiling it was measured against.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.load import LoadSession
    from bench.procs import Supervisor
    from bench.recorder import Recorder

# The reports import this module for the generator-bound rule alone: what measures the ceiling (the target's
# supervisor, httpx, the load process's driver) is imported where it is used, so `bench report` stays quick.

APP = "bench.calibration_app:app"
# Within 15 % of the ceiling, or the load process on more than 90 % of a core (Locust itself warns
# there), the generator, not the target, may be what limits the cell.
CEILING_FRACTION = 0.85
LOAD_CPU_LIMIT = 0.90
RUN_CALIBRATION_MAX_S = 5.0  # a run's calibration window: enough for a steady rate, short beside its cells


def calibrate(
    supervisor: Supervisor,
    workdir: Path,
    users: int,
    warmup_s: float,
    duration_s: float,
    session: LoadSession | None = None,
) -> dict[str, Any]:
    """``session``: a load session of the db scenario to measure in (bench.load.LoadSession), as a run's cells are;
    None starts a load process for this calibration alone."""
    from bench import load
    from bench.target import TargetConfig, serve
    from scenarios import SCENARIOS

    config = TargetConfig(dsn="", pool_size=0)
    with serve(supervisor, "calibration", APP, config, workdir / "calibration.log") as target:
        spec = load.with_evidence(load.LoadSpec(SCENARIOS.get("db").path, target.url, users, warmup_s, duration_s))
        sample = load.run_load(supervisor, spec, workdir) if session is None else session.run(spec)
    duration = float(sample["duration_s"]) or 1.0
    successes = int(sample["requests"]) - sum(int(n) for n in sample.get("errors", {}).values())
    share = float(sample["load_cpu_s"]) / duration
    return {
        "rps": successes / duration,  # a failed request is never throughput, here neither
        "load_cpu_share": share,
        "locust_limited": locust_limited(share, sample.get("load_cpus_busy")),
        # Under a CPU split, how busy the load's CPUs were: near 1 with a low share, other work limited it.
        "load_cpus_busy": sample.get("load_cpus_busy"),
        "users": users,
        "duration_s": duration,
        "target": "no-database /db on uvicorn (bench.calibration_app)",
    }


def calibrate_run(
    recorder: Recorder,
    supervisor: Supervisor,
    workdir: Path,
    users: int,
    warmup_s: float,
    duration_s: float,
    session: LoadSession | None = None,
) -> None:
    """The start of a run: its ceiling at its heaviest user count, in its metadata ("error" when the calibration
    target or the load failed: the run goes on, its cells are then never flagged generator-bound). ``session``:
    see ``calibrate``."""
    from bench.load import LoadFailed
    from bench.target import TargetFailed

    recorder.observer.phase("calibrating the load generator")
    try:
        measured = calibrate(
            supervisor, workdir, users, min(warmup_s, 1.0), min(duration_s, RUN_CALIBRATION_MAX_S), session
        )
    except (TargetFailed, LoadFailed) as exc:
        measured = {"error": str(exc)}
    recorder.results.metadata["calibration"] = measured
    recorder.save()
    recorder.observer.calibrated(measured)


# A calibration measures the generator when Locust used at least half a core: unpinned on one shared core it
# is the heavier of the two processes (300-430 us of CPU per request, issue 13, against a no-op app), and
# alone on its CPU it reaches ~100 % (10,789 req/s at 100 % here, `bench run --quick` of 2026-12-01).
LOCUST_LIMITED_SHARE = 0.5


def locust_limited(load_cpu_share: float, load_cpus_busy: float | None) -> bool:
    """Whether a calibration's rate is the load generator's ceiling: Locust used LOCUST_LIMITED_SHARE of a core
    or more, or its CPUs (under a split) were busy past LOAD_CPU_LIMIT. Otherwise something else held the rate
    down (the calibration target starved of CPU by other jobs: a fresh-eyes run of 2026-12-01 "calibrated"
    263 req/s with Locust at 3 % of a core, then measured pooled at 558 req/s and flagged every cell)."""
    return load_cpu_share >= LOCUST_LIMITED_SHARE or (load_cpus_busy or 0.0) >= LOAD_CPU_LIMIT


def ceiling(calibration: dict[str, Any]) -> float | None:
    """The load generator's ceiling (req/s) a run's calibration metadata holds, or None: not calibrated, failed,
    or not limited by Locust (files from before ``locust_limited`` was recorded count as limited)."""
    rps = calibration.get("rps")
    if not rps or calibration.get("locust_limited") is False:
        return None
    return float(rps)


def generator_bound(
    rps: float, load_cpu_share: float, ceiling_rps: float | None, load_cpus_busy: float | None = None
) -> bool:
    """Whether the load generator, not the target, may have limited a cell: its processes used more than
    LOAD_CPU_LIMIT of the cores they could use (``load_cpu_share``: see load_cores), its own CPUs were that
    busy (``load_cpus_busy``, under a CPU split only: its work or anyone else's on them), or the cell came
    within CEILING_FRACTION of the calibrated ceiling."""
    if load_cpu_share >= LOAD_CPU_LIMIT or (load_cpus_busy or 0.0) >= LOAD_CPU_LIMIT:
        return True
    return bool(ceiling_rps) and rps >= CEILING_FRACTION * float(ceiling_rps or 0)


def load_cores(processes: int, load_cpus: int | None) -> int:
    """Cores the load generator's ``processes`` can use at once: one each (a gevent process runs on one core),
    and under a CPU split no more than its ``load_cpus`` (two workers pinned to one CPU share one core)."""
    cores = max(1, processes)
    return min(cores, load_cpus) if load_cpus else cores


def load_cpu_count(metadata: dict[str, Any]) -> int | None:
    """How many CPUs a run's CPU split gave the load generator (metadata "cpus"); None when unpinned."""
    cpus = metadata.get("cpus")
    if not isinstance(cpus, dict) or not cpus.get("pinned"):
        return None
    count = cpus.get("load_cpu_count")
    return int(count) if isinstance(count, int) and count > 0 else None
