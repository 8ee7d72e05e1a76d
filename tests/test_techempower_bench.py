"""benchmarks/techempower.py's pure parts (wrk's summary, the shape check, the alternation, py-spy's stacks)
and benchmarks/techempower_app.py's own rules (query count, fortunes page) without a server."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from benchmark_scripts import load

from bench.check import rules

ROOT = Path(__file__).resolve().parent.parent


tfb = load("techempower")
tfb_app = load("techempower_app")

WRK_OK = """Running 10s test @ http://127.0.0.1:40001/db
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     8.12ms    2.01ms  30.00ms   80.00%
    Req/Sec     3.95k   200.00     4.20k    70.00%
  39321 requests in 10.01s, 5.40MB read
Requests/sec:   3928.37
Transfer/sec:    552.00KB
"""

WRK_FAILING = """Running 1m test @ http://127.0.0.1:40001/updates?queries=20
  1 threads and 32 connections
  1200 requests in 1.00m, 1.40MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 200
Requests/sec:     20.00
"""


def test_wrk_summary_counts_only_successful_responses_as_throughput() -> None:
    ok = tfb.parse_wrk(WRK_OK)
    assert (ok.requests, ok.seconds, ok.failed) == (39321, 10.01, 0)
    assert ok.ok_rps == pytest.approx(39321 / 10.01)
    failing = tfb.parse_wrk(WRK_FAILING)
    assert (failing.seconds, failing.non_2xx, failing.socket_errors) == (60.0, 200, 6)
    # wrk's own Requests/sec (20.00) counts the 500s; ours does not.
    assert failing.ok_rps == pytest.approx(1000 / 60)


def test_wrk_output_without_a_summary_is_an_error_not_zero() -> None:
    with pytest.raises(ValueError, match="requests in"):
        tfb.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_paths_and_alternating_order() -> None:
    assert tfb.path_of("db", 20) == "/db"
    assert tfb.path_of("fortunes", 20) == "/fortunes"
    assert tfb.path_of("queries", 20) == "/queries?queries=20"
    assert tfb.path_of("updates", 5) == "/updates?queries=5"
    assert tfb.order_of(1, ["pooled", "tfb"]) == ["pooled", "tfb"]
    assert tfb.order_of(2, ["pooled", "tfb"]) == ["tfb", "pooled"]
    assert tfb.median_ratio([0.9, 1.2, 1.0]) == 1.0


def test_shape_check_accepts_the_contract_and_names_the_first_fault() -> None:
    world = {"id": 3, "randomNumber": 77}
    assert tfb.shape_faults("db", orjson.dumps(world), 20) == []
    assert tfb.shape_faults("queries", orjson.dumps([world] * 2), 2) == []
    assert tfb.shape_faults("queries", orjson.dumps([world]), 2) == [
        'expected a list of 2 worlds, got [{"id": 3, "randomNumber": 77}]'
    ]
    assert tfb.shape_faults("updates", orjson.dumps([{"id": 3}, {"id": 0}]), 2)[0].startswith("expected")
    assert tfb.shape_faults("db", b"<html>", 1)[0].startswith("not JSON")


def test_the_recreated_app_renders_a_contract_fortunes_page_equal_to_pooleds_rows() -> None:
    stored = [(1, "fortune: No such file or directory"), (2, '<script>alert("x")</script>'), (3, "It's")]
    rows = [*(tfb_app.Fortune(*row) for row in stored), tfb_app.ADDED_FORTUNE]
    rows.sort(key=tfb_app.by_message)
    page = tfb_app.FORTUNES_TEMPLATE.render(fortunes=rows).encode()
    assert rules.fortunes_shape_fault(page.decode()) is None
    assert tfb.shape_faults("fortunes", page, 1) == []
    from targets.common.contract import render_fortunes

    # Jinja escapes ' as &#39;, html.escape as &#x27;: the rows are compared unescaped.
    assert tfb.fortune_rows(page) == tfb.fortune_rows(render_fortunes(stored).encode())
    assert ("2", '<script>alert("x")</script>') in tfb.fortune_rows(page)


@pytest.mark.parametrize(("raw", "n"), [(None, 1), ("", 1), ("foo", 1), ("0", 1), ("20", 20), ("501", 500)])
def test_the_recreated_app_clamps_queries_as_techempower_does(raw: str | None, n: int) -> None:
    assert tfb_app.query_count(raw) == n


def test_top_frames_counts_own_and_inclusive_samples_once_per_stack() -> None:
    collapsed = [
        "main (a.py:1);loop (a.py:2);handler (b.py:3) 6\n",
        "main (a.py:1);loop (a.py:2);handler (b.py:3);reset (c.py:4) 3\n",
        "main (a.py:1);recurse (d.py:1);recurse (d.py:1) 1\n",
        "garbage\n",
    ]
    total, frames = tfb.top_frames(collapsed, 2)
    assert total == 10
    assert frames == [("handler (b.py:3)", 6, 9), ("reset (c.py:4)", 3, 3)]
    _, everything = tfb.top_frames(collapsed, 10)
    assert ("recurse (d.py:1)", 1, 1) in everything


def test_pooled_without_the_reset_query_still_hands_out_connections_outside_any_transaction(pg_dsn: str) -> None:
    """targets.pooled skips asyncpg's reset query on release; asyncpg's own rollback of an open transaction
    must still happen, so a request that failed mid-transaction cannot leak it into the next one."""
    import asyncio

    from targets import pooled
    from targets.common.settings import TargetSpec

    async def scenario() -> tuple[bool, int]:
        async with pooled.open_pool(TargetSpec(pg_dsn, pool_size=1), None) as pool:
            await pool.execute("CREATE TABLE reset_probe (id int PRIMARY KEY, n int NOT NULL)")
            try:
                await pool.execute("INSERT INTO reset_probe VALUES (1, 1)")
                async with pool.acquire() as conn:
                    # asyncpg logs "Resetting connection with an active transaction" here, as it should.
                    await conn.execute("BEGIN")
                    await conn.execute("UPDATE reset_probe SET n = -1 WHERE id = 1")
                async with pool.acquire() as conn:
                    return conn.is_in_transaction(), await conn.fetchval("SELECT n FROM reset_probe WHERE id = 1")
            finally:
                await pool.execute("DROP TABLE reset_probe")

    in_transaction, number = asyncio.run(scenario())
    assert not in_transaction
    assert number == 1


def test_tree_cpu_counts_a_backend_that_exits_between_the_readings_by_what_the_root_reaped() -> None:
    # The postmaster (1) and two backends at the first edge; backend 3 exits (the postmaster reaps its
    # whole 5.0 s, of which 4.0 s were already there), backend 4 starts, backend 5 starts and exits inside.
    before = tfb.TreeCpu({(1, 0.0): 1.0, (2, 0.0): 10.0, (3, 0.0): 4.0}, reaped_s=100.0)
    after = tfb.TreeCpu({(1, 0.0): 1.5, (2, 0.0): 12.0, (4, 9.0): 0.25}, reaped_s=100.0 + 5.0 + 0.75)
    # 0.5 + 2.0 (alive at both) + 0.25 (started) + (5.75 - 4.0) (reaped less what 3 had at the first edge)
    assert tfb.tree_cpu_used(before, after) == pytest.approx(4.5)


def test_tree_cpu_never_goes_negative_when_the_reaped_ticks_round_below_the_exact_time() -> None:
    # schedstat is exact, the reaped figure whole 10 ms ticks: a backend that had 4.004 s and exited having
    # done nothing more can be reaped as 4.00 s. Summing live processes alone gave "+-2552 µs" per request.
    before = tfb.TreeCpu({(1, 0.0): 1.0, (3, 0.0): 4.004}, reaped_s=0.0)
    after = tfb.TreeCpu({(1, 0.0): 1.001}, reaped_s=4.0)
    assert tfb.tree_cpu_used(before, after) == pytest.approx(0.001)


def test_a_pid_reused_by_a_new_process_is_another_process() -> None:
    before = tfb.TreeCpu({(7, 1.0): 3.0}, reaped_s=0.0)
    after = tfb.TreeCpu({(7, 2.0): 0.5}, reaped_s=3.25)
    assert tfb.tree_cpu_used(before, after) == pytest.approx(0.75)


def test_tree_cpu_reads_this_process_tree() -> None:
    reading = tfb.tree_cpu(os.getpid())
    assert any(pid == os.getpid() for pid, _ in reading.live) and reading.reaped_s >= 0
    assert tfb.tree_cpu_used(reading, tfb.tree_cpu(os.getpid())) >= 0
