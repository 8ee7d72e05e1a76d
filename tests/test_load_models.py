"""Real Locust against a real uvicorn: the open model sees a stall the closed model hides."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bench import hist
from bench.cells import fill
from bench.load import LoadSpec, run_load
from bench.procs import Supervisor
from bench.results import Cell
from scenarios import SCENARIOS

pytestmark = pytest.mark.e2e  # starts real processes: the slow tier

STALL_MS = 200.0


def p99_ms(sample: dict[str, object], key: str = "histogram") -> float:
    value = hist.percentile_ms(hist.decode(str(sample[key])), 99.0)
    assert value is not None
    return value


@pytest.mark.serial  # p99 against the stall, the achieved rate against the target
def test_open_model_exposes_a_stall_the_closed_model_hides(
    run_target: Callable[[str, dict[str, str]], str], tmp_path: Path
) -> None:
    url = run_target("tests.stall_app:app", {})
    locustfile = SCENARIOS.get("db").path
    with Supervisor() as supervisor:
        closed = run_load(supervisor, LoadSpec(locustfile, url, 4, 1.0, 4.0), tmp_path)
        opened = run_load(supervisor, LoadSpec(locustfile, url, 16, 1.0, 4.0, rate=200.0), tmp_path)
    # Closed: only the 4 requests in flight during each stall are slow, well under 1 % of them.
    assert closed["requests"] > 1000, closed["requests"]
    assert p99_ms(closed) < STALL_MS / 4, p99_ms(closed)
    # Open: every request scheduled during a stall waits for it, counted from its intended send time.
    assert p99_ms(opened) > 0.75 * STALL_MS, p99_ms(opened)
    assert opened["late"] > 0
    # Counting from the intended send time can only add to the send-to-response latency.
    assert p99_ms(opened, "service_histogram") <= p99_ms(opened)
    achieved = opened["requests"] / opened["duration_s"]
    assert 0.8 * 200 < achieved < 1.2 * 200, achieved


def test_max_requests_closes_the_window_early(run_target: Callable[[str, dict[str, str]], str], tmp_path: Path) -> None:
    url = run_target("tests.stall_app:app", {})
    with Supervisor() as supervisor:
        spec = LoadSpec(SCENARIOS.get("db").path, url, 2, 0.0, 30.0, max_requests=50)
        sample = run_load(supervisor, spec, tmp_path)
    assert 50 <= sample["requests"] < 200
    assert sample["duration_s"] < 10


def test_two_local_workers_merge_into_one_result(
    run_target: Callable[[str, dict[str, str]], str], tmp_path: Path
) -> None:
    url = run_target("bench.calibration_app:app", {})
    with Supervisor() as supervisor:
        spec = LoadSpec(SCENARIOS.get("db").path, url, 4, 1.0, 3.0, workers=2)
        sample = run_load(supervisor, spec, tmp_path)
    assert sample["load_processes"] == 2 and sample["workers_reported"] == 2
    per_worker = sample["per_process_requests"]
    assert len(per_worker) == 2 and all(n > 0 for n in per_worker)
    assert sample["requests"] == sum(per_worker)
    assert hist.count(hist.decode(sample["histogram"])) == sample["requests"] - sum(sample["errors"].values())
    # Response bytes per endpoint, added up over the workers as the scenario's are, reach the results' cell.
    db = sample["endpoints"]["/db"]
    assert db["bytes_received"] == sample["bytes_received"] > 0
    cell = Cell("calibration", "db", 4, 1, "ok")
    fill(cell, sample)
    assert cell.endpoints["/db"].bytes_received == db["bytes_received"]
    assert 20 < db["bytes_received"] / (db["requests"] - db["errors"]) < 40  # {"id": 1..10000, "randomNumber": ...}


def test_a_short_warm_up_ends_once_every_user_is_warm(
    run_target: Callable[[str, dict[str, str]], str], tmp_path: Path
) -> None:
    from bench.load import EVIDENCE_FLOOR_S, with_evidence

    url = run_target("bench.calibration_app:app", {})
    with Supervisor() as supervisor:
        spec = with_evidence(LoadSpec(SCENARIOS.get("db").path, url, 8, 1.0, 0.5))
        sample = run_load(supervisor, spec, tmp_path)
    # A no-op app: every user has its two responses within milliseconds, so the floor, not the 1 s cap, ends it.
    assert EVIDENCE_FLOOR_S <= sample["warmup_s"] < 0.9, sample["warmup_s"]
    assert sample["requests"] > 0
