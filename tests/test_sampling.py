"""The load process's bookkeeping, with a fake clock: only the measured window counts."""

from __future__ import annotations

import pytest

from bench import hist
from bench.sampling import BEHIND_KEY, INTENDED_KEY, Pacer, Window, merge_windows


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_only_requests_completed_inside_the_window_count() -> None:
    clock = FakeClock()
    window = Window(warmup_s=1.0, duration_s=2.0, clock=clock, cpu_clock=clock)
    window.on_request("GET", "/db", 5.0, 10)  # warm-up: dropped
    clock.now = 1.0
    window.open()
    window.on_request("GET", "/db", 0.25, 10)  # 250 µs: sub-millisecond must survive
    window.on_request("GET", "/db", 12.5, 10)
    window.on_request("GET", "/db", 3.0, 0, exception=ConnectionResetError(104, "Connection reset by peer"))
    clock.now = 3.0
    window.close()
    window.on_request("GET", "/db", 1.0, 10)  # after the window: dropped
    data = window.to_dict()
    assert data["requests"] == 3
    assert data["errors"] == {"ConnectionResetError GET /db: [Errno 104] Connection reset by peer": 1}
    assert data["duration_s"] == 2.0
    assert data["bytes_received"] == 20
    merged = hist.decode(data["histogram"])
    assert hist.count(merged) == 2  # errors are counted, not timed
    assert hist.percentile_ms(merged, 0) == 0.25
    assert data["endpoints"]["/db"]["requests"] == 3 and data["endpoints"]["/db"]["errors"] == 1


def test_long_error_messages_are_truncated_to_one_kind() -> None:
    clock = FakeClock()
    window = Window(0, 1, clock=clock, cpu_clock=clock)
    window.open()
    for n in range(3):
        window.on_request("GET", "/db", 1.0, 0, exception=ValueError("x" * 500 + str(n)))
    assert list(window.errors.values()) == [3]


def test_open_model_latency_counts_from_the_intended_send_time() -> None:
    clock = FakeClock()
    window = Window(0, 10, clock=clock, cpu_clock=clock)
    window.open()
    # Intended at t=1.0, but the connection was held until t=1.3; the response came at t=1.31.
    clock.now = 1.31
    window.on_request("GET", "/db", 10.0, 5, context={INTENDED_KEY: 1.0, BEHIND_KEY: True})
    data = window.to_dict()
    assert data["late"] == 1
    assert hist.percentile_ms(hist.decode(data["histogram"]), 100) == pytest.approx(310, rel=0.01)
    assert hist.percentile_ms(hist.decode(data["service_histogram"]), 100) == pytest.approx(10, rel=0.01)


def test_pacer_never_skips_a_slot_and_knows_when_it_is_behind() -> None:
    pacer = Pacer(interval_s=0.1, first_s=0.0)
    assert pacer.advance(now=0.02) == pytest.approx(0.08) and not pacer.behind
    assert pacer.advance(now=0.35) == 0.0 and pacer.behind  # slot 0.2 is late: send at once
    assert pacer.intended == pytest.approx(0.2)
    assert pacer.advance(now=0.36) == 0.0 and pacer.behind  # slot 0.3 too: the backlog drains
    assert pacer.advance(now=0.37) == pytest.approx(0.03) and not pacer.behind


def test_max_requests_closes_the_window_on_the_last_one() -> None:
    clock = FakeClock()
    window = Window(0, 60, clock=clock, cpu_clock=clock, max_requests=2)
    window.open()
    window.on_request("GET", "/db", 1.0, 1)
    assert not window.closed
    clock.now = 0.5
    window.on_request("GET", "/db", 1.0, 1)
    assert window.closed
    window.on_request("GET", "/db", 1.0, 1)
    assert window.to_dict()["requests"] == 2


def test_the_evidence_based_warm_up_ends_once_every_user_has_its_responses_and_the_floor_has_passed() -> None:
    from bench.sampling import WarmupEvidence

    clock, user = FakeClock(), ["a"]
    evidence = WarmupEvidence(users=2, responses=2, floor_s=0.05, who=lambda: user[0], clock=clock)
    evidence.on_request()
    evidence.on_request()  # user a: two responses
    user[0] = "b"
    evidence.on_request()
    clock.now = 1.0
    assert not evidence.done()  # b has one: its first requests would land in the window
    evidence.on_request()
    evidence.on_request()  # a third response does not count b twice
    assert evidence.ready == 2 and evidence.done()
    fast = WarmupEvidence(users=1, responses=1, floor_s=0.05, who=lambda: "a", clock=clock)
    fast.on_request()
    assert not fast.done()  # warm by its responses, but not before the floor
    clock.now = 1.05
    assert fast.done()


def test_response_bytes_are_kept_per_endpoint_and_added_up_across_load_processes() -> None:
    clock = FakeClock()
    windows = []
    for sizes in ((30, 31), (32,)):
        window = Window(0, 1, clock=clock, cpu_clock=clock)
        window.open()
        for size in sizes:
            window.on_request("GET", "/db", 1.0, size)
        window.on_request("GET", "/fortunes", 1.0, 1227)
        window.on_request("GET", "/fortunes", 1.0, 0, exception=ValueError("HTTP 500"))  # a failure: no bytes
        windows.append(window.to_dict())
    assert windows[0]["endpoints"]["/db"]["bytes_received"] == 61
    assert windows[0]["endpoints"]["/fortunes"]["bytes_received"] == 1227
    assert windows[0]["bytes_received"] == 61 + 1227  # the scenario's figure is the endpoints' sum
    merged = merge_windows(windows)
    assert {name: e["bytes_received"] for name, e in merged["endpoints"].items()} == {"/db": 93, "/fortunes": 2454}
    assert merged["bytes_received"] == 93 + 2454
    older = {
        **windows[1],
        "endpoints": {"/db": {k: v for k, v in windows[1]["endpoints"]["/db"].items() if k != "bytes_received"}},
    }
    unknown = merge_windows([windows[0], older])  # a worker of an older dbbench counts no bytes per endpoint
    assert unknown["endpoints"]["/db"]["bytes_received"] is None
    assert unknown["endpoints"]["/fortunes"]["bytes_received"] == 1227
