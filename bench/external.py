"""``bench run --url``: load a server dbbench did not start.

The server is the user's: no database to provision or seed, no process to watch. dbbench waits for it to
answer, checks shape and range only (never its own seed's values), writes nothing unless ``--allow-writes``,
and asks /_bench/* (in the check and at each window's edges) only of a server that says it is dbbench.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import calibration, load, run_metadata
from bench.cells import fill, load_spec, new_cell, run_cells
from bench.check.server import identify
from bench.check.variant import check_variant
from bench.plan import CellKey
from bench.procs import Supervisor
from bench.recorder import Recorder
from bench.results import Cell
from bench.run_config import RunConfig


def run_external(
    config: RunConfig, recorder: Recorder, supervisor: Supervisor, workdir: Path, locustfiles: dict[str, Any]
) -> None:
    """Measure ``config.url`` (its one "variant" is ``config.variants[0]``, named by --label) into ``recorder``."""
    url = config.url
    assert url is not None
    recorder.observer.phase(f"waiting for {url}")
    server = identify(url, config.ready_timeout_s)
    recorder.results.metadata = run_metadata.describe_external(config, server, locustfiles)
    recorder.save()
    if config.calibrate:
        calibration.calibrate_run(recorder, supervisor, workdir, max(config.users), config.warmup_s, config.duration_s)
    variant = config.variants[0]
    if config.check:
        recorder.observer.phase(f"checking the contract: {url}")
        report = check_variant(url, None, writes=config.allow_writes, private=server.private_ok)
        if not recorder.check(variant.name, report).ok:
            return

    def measure(key: CellKey) -> Cell:
        cell = new_cell(config, key)
        spec = load_spec(config, key, url, pg_dsn=None, target_stats=server.private_ok)
        try:
            sample = load.run_load(supervisor, spec, workdir, on_tick=recorder.observer.tick)
        except load.LoadFailed as exc:
            cell.status, cell.reason = "failed", str(exc)
        else:
            fill(cell, sample)
        return cell

    run_cells(config, recorder, [variant], measure)
