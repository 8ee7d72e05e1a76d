"""The load process's bookkeeping, with a fake clock: only the measured window counts."""

from __future__ import annotations

from bench import hist
from bench.sampling import Window


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
    window.on_request("GET", "/db", 3.0, 0, exception=RuntimeError("500 Server Error"))
    clock.now = 3.0
    window.close()
    window.on_request("GET", "/db", 1.0, 10)  # after the window: dropped
    data = window.to_dict()
    assert data["requests"] == 3
    assert data["errors"] == {"RuntimeError: 500 Server Error": 1}
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
