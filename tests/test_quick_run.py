"""The quick run's pure parts: the tables' noise rule (reports.fmt), when a server or a load process is shared."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.results import Cell, Results
from reports import fmt, markdown, summary


def cell(variant: str, trial: int, rps: float, scenario: str = "db") -> Cell:
    return Cell(variant, scenario, 32, trial, status="ok", duration_s=1.0, requests=round(rps), errors={})


def results(rates: dict[str, list[float]]) -> Results:
    out = Results()
    out.metadata = {"config": {"variants": list(rates), "scenarios": {"db": {}}, "users": [32], "trials": 3}}
    out.cells = [cell(variant, trial, rps) for variant, each in rates.items() for trial, rps in enumerate(each, 1)]
    return out


def test_the_interval_is_students_paired_t_on_log_ratios() -> None:
    pairs = [(100.0, 110.0), (100.0, 120.0), (100.0, 130.0)]
    logs = [math.log(h / b) for b, h in pairs]
    mean, sd = sum(logs) / 3, (sum((x - sum(logs) / 3) ** 2 for x in logs) / 2) ** 0.5
    low, high = fmt.paired_ratio_ci(pairs) or (0.0, 0.0)
    assert low == pytest.approx(math.exp(mean - 4.303 * sd / math.sqrt(3)))
    assert high == pytest.approx(math.exp(mean + 4.303 * sd / math.sqrt(3)))
    assert fmt.paired_ratio_ci(pairs[:1]) is None  # one pair: no interval


def test_a_steady_difference_is_a_ranking_and_a_wobbling_one_is_noise() -> None:
    loaded = results({
        "pooled": [1000.0, 1010.0, 990.0],
        "sync": [500.0, 510.0, 495.0],  # half as fast in every round: a real difference
        "databases": [1100.0, 900.0, 1020.0],  # above, below, above: within the noise
    })  # fmt: skip
    rows = summary.rows(loaded)
    noise = fmt.Noise(loaded)
    by_variant = {row.variant: noise.ratio(row, rows) for row in rows}
    assert by_variant["pooled"] == fmt.Ratio(1.0, None)
    assert by_variant["sync"] is not None and not by_variant["sync"].within_noise
    assert by_variant["sync"].text() == "0.50"
    assert by_variant["databases"] is not None and by_variant["databases"].within_noise
    assert by_variant["databases"].text().startswith(fmt.NOISE_MARK)
    text = markdown.render(loaded)
    assert "| databases | " in text and f"| {fmt.NOISE_MARK}1.02 |" in text and "| 0.50 |" in text
    assert fmt.NOISE_LEGEND in text


def test_the_json_report_carries_the_tables_ratio_and_noise_mark() -> None:
    """A review finding of 2026-12-01: the JSON rows had neither; they now come from the tables' own rule."""
    import json

    from reports import jsonreport

    loaded = results({
        "pooled": [1000.0, 1010.0, 990.0],
        "sync": [500.0, 510.0, 495.0],
        "databases": [1100.0, 900.0, 1020.0],
    })  # fmt: skip
    rows = {row["variant"]: row for row in json.loads(jsonreport.render(loaded))}
    assert {v: (r["base"], r["within_noise"]) for v, r in rows.items()} == {
        "pooled": ("pooled", False),
        "sync": ("pooled", False),
        "databases": ("pooled", True),  # the Markdown table's ≈ (test above)
    }
    assert rows["pooled"]["ratio_to_base"] == 1.0 and rows["pooled"]["ratio_to_base_ci"] is None
    low, high = rows["databases"]["ratio_to_base_ci"]
    assert low <= 1.0 <= high and f"{rows['databases']['ratio_to_base']:.2f}" == "1.02"
    assert rows["sync"]["ratio_to_base_ci"][1] < 1.0 and f"{rows['sync']['ratio_to_base']:.2f}" == "0.50"

    # A failed base: the tables print "-" for every ratio, the JSON null.
    failed = results({"pooled": [1000.0], "sync": [500.0]})
    failed.cells[0].status, failed.cells[0].reason = "failed", "boom"
    rows = {row["variant"]: row for row in json.loads(jsonreport.render(failed))}
    assert (rows["sync"]["base"], rows["sync"]["ratio_to_base"]) == (None, None)
    assert rows["sync"]["within_noise"] is None and rows["pooled"]["rps"] is None


def test_trials_pair_by_number_and_a_single_trial_is_unmarked() -> None:
    one = results({"pooled": [1000.0], "sync": [990.0]})
    rows = summary.rows(one)
    ratio = fmt.Noise(one).ratio(rows[1], rows)
    assert ratio is not None and ratio.ci is None and ratio.text() == "0.99"
    assert fmt.NOISE_LEGEND not in markdown.render(one)  # no trials to judge noise by: no legend either


def test_the_cached_server_is_replaced_only_after_a_cell_that_used_its_cache() -> None:
    from bench.runner import _cache_used

    def window(before: int, after: int) -> dict[str, object]:
        edge = lambda n: {"cache": {"hits": n, "misses": 0}}  # noqa: E731
        return {"target_window": {"open": edge(before), "close": edge(after)}}

    assert _cache_used(window(5, 9)) and not _cache_used(window(5, 5))
    assert _cache_used({})  # the window does not say: assume it did


def test_only_dbbench_s_own_closed_model_scenarios_share_a_load_process(tmp_path: object) -> None:
    from pathlib import Path

    from bench.load import LoadSpec, sessions_serve
    from scenarios import SCENARIOS

    own = LoadSpec(SCENARIOS.get("db").path, "http://127.0.0.1:1", 4, 0.5, 0.5)
    assert sessions_serve(own)
    assert not sessions_serve(LoadSpec(Path(__file__), "http://127.0.0.1:1", 4, 0.5, 0.5))  # a user's file
    assert not sessions_serve(LoadSpec(own.locustfile, own.host, 4, 0.5, 0.5, rate=100.0))
    assert not sessions_serve(LoadSpec(own.locustfile, own.host, 4, 0.5, 0.5, workers=2))
    # Started ahead of its first cell (bench.load.LoadSession.start): no user, and a spawn rate Locust accepts.
    standby = LoadSpec(own.locustfile, own.host, 0, 0.5, 0.5, session=Path("/tmp/s"))
    assert standby.standby and not own.standby
    assert standby.locust_args()[standby.locust_args().index("-u") : standby.locust_args().index("-u") + 4] == [
        "-u",
        "0",
        "-r",
        "1",
    ]
    session = LoadSpec(own.locustfile, own.host, 4, 0.5, 0.5, session=Path("/tmp/s"))
    assert LoadSpec.from_json(session.to_json()) == session
    assert "--run-time" not in session.locust_args() and "--run-time" in own.locust_args()


def test_only_a_short_warm_up_ends_on_evidence() -> None:
    from bench import load
    from scenarios import SCENARIOS

    quick = load.with_evidence(load.LoadSpec(SCENARIOS.get("db").path, "http://127.0.0.1:1", 4, 0.5, 0.5))
    assert (quick.warmup_responses, quick.warmup_floor_s) == (load.EVIDENCE_RESPONSES, load.EVIDENCE_FLOOR_S)
    assert load.LoadSpec.from_json(quick.to_json()) == quick  # the load process reads what was sent
    full = load.LoadSpec(quick.locustfile, quick.host, 4, 3.0, 10.0)
    assert load.with_evidence(full) == full  # a full run's 3 s also covers the server's own warm state
    assert load.with_evidence(full, warm_server=True) == full
    # A server that already served the scenario: one response per user is evidence enough (warmup_probe.py).
    warm = load.with_evidence(quick, warm_server=True)
    assert (warm.warmup_responses, warm.warmup_floor_s, warm.warmup_s) == (1, load.EVIDENCE_FLOOR_S, 0.5)


def test_a_server_is_warm_for_what_it_served_under_the_same_load_and_settings() -> None:
    from contextlib import ExitStack
    from types import SimpleNamespace

    from bench import target_pool
    from bench.plan import CellKey, Setting
    from bench.runner import _served_as
    from scenarios import SCENARIOS
    from targets import VARIANTS

    pool = target_pool.TargetPool(supervisor=None, log_path=lambda variant, n: Path("/dev/null"))  # type: ignore[arg-type]
    one, other = (SimpleNamespace(child=SimpleNamespace(pid=pid, alive=lambda: True)) for pid in (1, 2))
    for name, target in (("pooled", one), ("sync", other)):
        pool.running[(name, None, 1)] = target_pool._Running(target, ExitStack(), Path("/dev/null"))  # type: ignore[arg-type]
    pooled, db = VARIANTS.get("pooled"), SCENARIOS.get("db")
    trial = [CellKey(pooled, db, 32, n) for n in (1, 2)]
    assert _served_as(trial[0]) == _served_as(trial[1])  # the trial number is no part of what warms a server
    assert not pool.served(one, _served_as(trial[0])) and pool.served(one, _served_as(trial[1]))  # type: ignore[arg-type]
    assert not pool.served(other, _served_as(trial[0]))  # type: ignore[arg-type]
    for different in (
        CellKey(pooled, SCENARIOS.get("queries"), 32, 1),
        CellKey(pooled, db, 16, 1),
        CellKey(pooled, db, 32, 1, setting=Setting(pool_size=20)),
    ):
        assert not pool.served(one, _served_as(different))  # type: ignore[arg-type]
    assert not pool.served(SimpleNamespace(), "anything")  # type: ignore[arg-type]  # not one of the pool's


def test_an_idle_server_s_ports_are_read_once_until_it_serves_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # Reading a server's ports parses the system's whole TCP table: 0.23 s a cell for five idle servers.
    from contextlib import ExitStack
    from types import SimpleNamespace

    from bench import target_pool
    from targets import VARIANTS

    reads: list[int] = []
    monkeypatch.setattr(target_pool, "local_ports", lambda pids: reads.extend(pids) or [1000 + p for p in pids])
    pool = target_pool.TargetPool(supervisor=None, log_path=lambda variant, n: Path("/dev/null"))  # type: ignore[arg-type]
    targets = {}
    for pid, name in ((1, "sync"), (2, "pooled"), (3, "nopool")):
        targets[name] = target = SimpleNamespace(child=SimpleNamespace(pid=pid, alive=lambda: True))
        pool.running[(name, None, 1)] = target_pool._Running(target, ExitStack(), Path("/dev/null"))  # type: ignore[arg-type]
    assert sorted(pool.idle_ports(but=targets["sync"])) == [1002, 1003] and reads == [2, 3]
    with pool.use(VARIANTS.get("pooled"), None) as measured:  # type: ignore[arg-type]
        assert sorted(pool.idle_ports(but=measured)) == [1001, 1003] and reads == [2, 3, 1]
    assert sorted(pool.idle_ports(but=targets["sync"])) == [1002, 1003] and reads == [2, 3, 1, 2]  # it served


def test_a_tainted_cached_server_gets_an_empty_cache_not_a_new_process(pg_dsn: str, tmp_path: Path) -> None:
    # The quick run used to replace the cached variant's server after every cell that used its cache (~0.9 s
    # each, 15 times); the pool now empties the cache in place, and the next cell still starts from empty.
    import httpx

    from bench.procs import Supervisor
    from bench.seed import apply_schema, seed
    from bench.target import TargetConfig
    from bench.target_pool import TargetPool
    from targets import VARIANTS

    apply_schema(pg_dsn)
    seed(pg_dsn)
    cached = VARIANTS.get("cached")
    config = TargetConfig(pg_dsn, 4)
    with Supervisor() as supervisor:
        pool = TargetPool(supervisor, lambda variant, n: tmp_path / f"{variant.name}-{n}.log")
        try:
            with pool.use(cached, config) as target:
                pid = target.child.pid
                httpx.get(f"{target.url}/queries?queries=50", timeout=10).raise_for_status()
                assert target.info()["cache"]["entries"] > 0
            pool.taint(cached, config)
            with pool.use(cached, config) as target:
                assert target.child.pid == pid and target.info()["cache"]["entries"] == 0
            with pool.use(cached, config) as target:  # untainted: used as it is
                httpx.get(f"{target.url}/db", timeout=10).raise_for_status()
            pool.taint(cached, config)
            with pool.use(cached, config) as target:
                assert target.info()["cache"]["entries"] == 0
            assert pool.started == 1
        finally:
            pool.close()


def test_the_warmup_probe_reports_no_figure_rather_than_failing_on_an_empty_cell() -> None:
    # benchmarks/warmup_probe.py: a slow variant may finish no request in a 0.5 s window (sync on /queries).
    from benchmark_scripts import load

    probe = load("warmup_probe")
    assert math.isnan(probe.median([])) and probe.median([3.0, 1.0, 2.0]) == 2.0


def test_a_child_s_ports_are_read_from_its_own_sockets_as_psutil_reads_them() -> None:
    # bench.dbmon asks each socket for its name (under a millisecond) instead of the system's TCP table (35-65 ms
    # under load); psutil's reading stays the reference, and the fallback.
    import subprocess
    import sys

    import psutil

    from bench import dbmon

    holder = (
        "import socket, sys, time\n"
        "listening = socket.socket(); listening.bind(('127.0.0.1', 0)); listening.listen()\n"
        "client = socket.create_connection(listening.getsockname()); accepted = listening.accept()\n"
        "other = socket.socket(socket.AF_UNIX)\n"
        "print(listening.getsockname()[1], client.getsockname()[1], flush=True); sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        try:
            server_port, client_port = map(int, child.stdout.readline().split())
            own = dbmon._own_ports(child.pid)
            reference = [c.laddr.port for c in psutil.Process(child.pid).net_connections(kind="tcp") if c.laddr]
            assert own is not None
            assert sorted(own) == sorted(reference) == sorted([server_port, server_port, client_port])
            assert sorted(dbmon.local_ports({child.pid})) == sorted(reference)
        finally:
            child.kill()
    assert dbmon._own_ports(child.pid) is None  # gone: nothing to borrow


def test_servers_started_without_waiting_are_waited_for_by_their_first_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The contract check of the first variant starts while the others still start (bench.runner._check_all).
    import threading
    import time
    from contextlib import ExitStack
    from types import SimpleNamespace

    from bench import target_pool
    from bench.target import TargetFailed
    from targets import VARIANTS, Variant

    release = threading.Event()

    def start(variant: Variant, config: object, workers: int) -> object:
        if variant.name != "sync":  # the one this test starts by hand, already up
            release.wait(5)
        if variant.name == "nopool":
            return TargetFailed("nopool did not come up")
        target = SimpleNamespace(child=SimpleNamespace(pid=1, alive=lambda: True))
        return target_pool._Running(target, ExitStack(), Path("/dev/null"))  # type: ignore[arg-type]

    pool = target_pool.TargetPool(supervisor=None, log_path=lambda variant, n: Path("/dev/null"))  # type: ignore[arg-type]
    monkeypatch.setattr(pool, "_start", start)
    pooled, nopool = VARIANTS.get("pooled"), VARIANTS.get("nopool")
    started = time.monotonic()
    pool.start([pooled, nopool], None, wait=False)  # type: ignore[arg-type]
    assert time.monotonic() - started < 1 and not pool.running
    pool.start([pooled], None, wait=False)  # type: ignore[arg-type]  # already starting: not started twice
    sync = VARIANTS.get("sync")
    pool.running[("sync", None, 1)] = start(sync, None, 1)  # type: ignore[assignment]  # up before the others
    ready = pool.as_ready([pooled, nopool, sync], None)  # type: ignore[arg-type]
    assert next(ready) is sync  # no waiting for it
    release.set()
    assert {next(ready), next(ready)} == {pooled, nopool}  # then as each start-up ends, failed or not
    with pool.use(pooled, None) as target:  # type: ignore[arg-type]
        assert target.child.pid == 1
    with pytest.raises(TargetFailed, match="did not come up"), pool.use(nopool, None):  # type: ignore[arg-type]
        pass
    pool.close()


def test_quick_run_says_where_each_run_s_time_went(tmp_path: Path) -> None:
    # benchmarks/quick_run.py reads the timeline the run kept (bench.timeline) and adds the wall time it timed.
    from benchmark_scripts import load

    from bench import results as results_io

    quick_run = load("quick_run")
    run = results({"pooled": [100.0]})
    run.metadata["timeline"] = {
        "process_start_to_run_s": 1.0,
        "steps": [
            {"step": "provisioning PostgreSQL", "start_s": 1.5, "s": 2.0},
            {"step": "checking", "start_s": 3.5, "s": 4.0},
            {"step": "stopping", "start_s": 9.0, "s": 0.5},
        ],
        "cells": {"parts": ["seed", "warmup", "window"], "s": [[0.1, 0.3, 0.5], [0.0, 0.1, 0.5]]},
        "first_cell_s": 7.5,
        "last_cell_end_s": 9.0,
    }
    path = tmp_path / "quiet-1.json"
    results_io.dump(run, path)
    parts = quick_run.where_time_went(path, 10.0)
    assert parts == pytest.approx(
        {
            "start": 1.0,
            "before: provisioning PostgreSQL": 2.0,
            "before: checking": 4.0,
            "before: (between steps)": 0.5,
            "cells: seed": 0.1,
            "cells: warmup": 0.4,
            "cells: window": 1.0,
            "after: stopping": 0.5,
            "exit": 0.5,
        }
    )
    assert sum(parts.values()) == pytest.approx(10.0)  # every second of the wall time is somewhere
    run.metadata.pop("timeline")
    results_io.dump(run, path, force=True)
    assert quick_run.where_time_went(path, 10.0) == {}  # a file from before the timeline
