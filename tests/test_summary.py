"""Pure shaping of results into rows: medians, merged percentiles, intervals, sweeps, flags."""

from __future__ import annotations

import statistics

import pytest

from bench import calibration, hist
from bench.results import Cell, Results, VariantCheck
from reports import jsonreport, markdown, summary, terminal


def encoded(values: list[int]) -> str:
    h = hist.new()
    for value in values:
        h.record_value(value)
    return hist.encode(h)


def cell(variant: str, users: int, trial: int, requests: int, latencies_us: list[int], **extra: object) -> Cell:
    return Cell(
        variant,
        "db",
        users,
        trial,
        "ok",
        duration_s=10.0,
        requests=requests,
        histogram=encoded(latencies_us),
        load_cpu_s=2.0,
        **extra,
    )  # type: ignore[arg-type]


def make(cells: list[Cell], checks: list[VariantCheck] | None = None, rps_ceiling: float = 10_000) -> Results:
    meta = {
        "config": {"variants": ["sync", "pooled"], "scenarios": {"db": "x"}, "users": [8, 32]},
        "calibration": {"rps": rps_ceiling},
    }
    return Results(meta, checks or [], cells)


def test_trials_pool_into_one_row_with_median_and_merged_percentiles() -> None:
    cells = [cell("pooled", 8, t, n, [1000] * 99 + [50_000]) for t, n in [(1, 30_000), (2, 31_000), (3, 50_000)]]
    (row,) = summary.rows(make(cells))
    assert row.trials == 3 and row.rps == 3100.0 and (row.rps_min, row.rps_max) == (3000.0, 5000.0)
    assert row.p50_ms == 1.0 and row.p999_ms == pytest.approx(50.0, rel=0.001)  # HDR: 3 significant digits
    assert row.rps_ci is not None and row.rps_ci[0] <= row.rps <= row.rps_ci[1]
    assert row.p99_ci is not None


def test_bootstrap_ci_is_deterministic_and_needs_two_samples() -> None:
    assert summary.bootstrap_ci([5.0], statistics.median) is None
    values = [10.0, 11.0, 12.0, 30.0]
    first = summary.bootstrap_ci(values, statistics.median)
    assert first == summary.bootstrap_ci(values, statistics.median)
    assert first is not None and 10.0 <= first[0] <= first[1] <= 30.0


def test_generator_bound_near_the_ceiling_or_when_locust_is_saturated() -> None:
    assert calibration.generator_bound(9_000, 0.5, 10_000)
    assert not calibration.generator_bound(5_000, 0.5, 10_000)
    assert calibration.generator_bound(100, 0.95, 10_000)
    assert not calibration.generator_bound(100, 0.2, None)
    (row,) = summary.rows(make([cell("pooled", 8, 1, 90_000, [100])], rps_ceiling=10_000))
    assert row.generator_bound


def test_a_calibration_locust_did_not_limit_is_no_ceiling() -> None:
    # A fresh-eyes run at load 8-23: 263 req/s with Locust at 3 % of a core was the starved target's rate.
    assert calibration.locust_limited(1.0, None) and calibration.locust_limited(0.03, 0.95)
    assert not calibration.locust_limited(0.03, 0.2) and not calibration.locust_limited(0.03, None)
    starved = {"rps": 263.0, "load_cpu_share": 0.03, "locust_limited": False}
    assert calibration.ceiling(starved) is None
    assert calibration.ceiling({**starved, "locust_limited": True}) == 263.0
    assert calibration.ceiling({"rps": 263.0, "load_cpu_share": 0.03}) == 263.0  # older files: as before
    results = make([cell("pooled", 8, 1, 90_000, [100])], rps_ceiling=100)
    results.metadata["calibration"]["locust_limited"] = False
    (row,) = summary.rows(results)
    assert not row.generator_bound
    assert "no load generator ceiling (Locust was not the limit)" in terminal.footer(results).plain


def test_sweep_peak_and_knee() -> None:
    cells = [cell("pooled", users, 1, n, [1000]) for users, n in [(8, 20_000), (32, 29_000), (128, 30_000)]]
    (curve,) = summary.curves(summary.rows(make(cells)))
    assert curve.peak.users == 128
    assert curve.knee.users == 32  # 2,900 ≥ 90 % of 3,000: past it more users buy latency, not throughput


def test_failed_checks_become_failed_rows_and_reports_render_them() -> None:
    check = VariantCheck("sync", False, ["/fortunes: <script> not escaped"])
    results = make([cell("pooled", 8, 1, 1000, [1000])], [check])
    rows = {(r.variant, r.users): r for r in summary.rows(results)}
    assert rows[("sync", 8)].status == "failed" and "not escaped" in rows[("sync", 8)].reason
    assert rows[("sync", 32)].status == "failed"
    assert '"status": "failed"' in jsonreport.render(results)
    text = markdown.render(results)
    assert "| sync | **failed** |" in text and "\\|" not in text.split("not escaped")[0][-5:]


def test_resource_figures_per_request() -> None:
    row = summary.rows(make([cell("pooled", 8, 1, 1000, [1000], target_cpu_s=2.0, target_rss_mb=80.0,
                                  db_cpu_s=1.0, db_connections=10)]))[0]  # fmt: skip
    assert row.cpu_s_per_request == 0.002 and row.db_cpu_s_per_request == 0.001
    assert row.rss_mb == 80.0 and row.db_connections == 10
    assert row.load_cpu_share == 0.2


def _pg(query: str, calls: int, total_ms: float) -> dict[str, object]:
    return {"queryid": 1, "query": query, "calls": calls, "total_ms": total_ms, "mean_ms": total_ms / calls,
            "stddev_ms": 0.0, "min_ms": 0.1, "max_ms": 1.0, "rows": calls, "shared_blks_hit": calls,
            "shared_blks_read": 0}  # fmt: skip


def test_without_hooks_queries_per_request_come_from_pg_stat_statements_and_say_so() -> None:
    idle = {"instrumented": False, "hook": "none", "window_s": 10.0, "endpoints": {}, "statements": []}
    pg = [_pg("SELECT id, randomnumber FROM world WHERE id = $1", 2000, 90.0), _pg("SELECT 1", 10, 1.0)]
    (row,) = summary.rows(make([cell("pooled", 8, 1, 1000, [1000], target_stats=idle, pg_statements=pg)]))
    assert row.statements_source == "pg_stat_statements" and row.queries_per_request == 2.01
    assert row.db_time_share is None and row.top_statements == []
    assert row.pg_top_statements[0]["query"].startswith("SELECT id")
    # Neither source: no figure, no source.
    (bare,) = summary.rows(make([cell("pooled", 8, 1, 1000, [1000], target_stats=idle)]))
    assert (bare.statements_source, bare.queries_per_request) == (None, None)


def test_with_hooks_the_source_is_the_target() -> None:
    hooked = {"instrumented": True, "hook": "asyncpg connection methods (pool)", "window_s": 10.0,
              "endpoints": {"/db": {"requests": 1000, "queries": 1000, "request_time_s": 2.0, "db_time_s": 1.0}},
              "statements": []}  # fmt: skip
    pg = [_pg("SELECT 1", 5000, 1.0)]
    (row,) = summary.rows(make([cell("pooled", 8, 1, 1000, [1000], target_stats=hooked, pg_statements=pg)]))
    assert (row.statements_source, row.queries_per_request, row.db_time_share) == ("target hooks", 1.0, 0.5)


def test_gc_share_is_the_collections_cpu_over_the_targets_cpu_across_trials() -> None:
    def stats(gc_seconds: list[float]) -> dict[str, object]:
        return {"instrumented": False, "hook": "none", "window_s": 10.0, "endpoints": {}, "statements": [],
                "gc": {"collections": [40, 4, 1], "seconds": gc_seconds, "collected": 0}}  # fmt: skip

    cells = [
        cell("pooled", 8, 1, 1000, [1000], target_cpu_s=1.0, target_stats=stats([0.05, 0.01, 0.04])),
        cell("pooled", 8, 2, 1000, [1000], target_cpu_s=3.0, target_stats=stats([0.1, 0.0, 0.2])),
    ]
    (row,) = summary.rows(make(cells))
    assert row.gc_share == pytest.approx(0.4 / 4.0)
    assert jsonreport.render(make(cells)).count('"gc_share"') == 1
    # A window without the counts (a file from before them, a server that is not dbbench's): no share at all.
    cells[1].target_stats = None
    (row,) = summary.rows(make(cells))
    assert row.gc_share is None
