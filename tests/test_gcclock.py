"""targets.common.gcclock: collections and their CPU time per generation, from gc.callbacks."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from targets.common.gcclock import GcClock


@pytest.fixture
def clock() -> Iterator[GcClock]:
    clock = GcClock()
    clock.install()
    clock.install()  # idempotent: each collection is counted once
    yield clock
    clock.uninstall()


def test_counts_each_collection_once_per_generation(clock: GcClock) -> None:
    gc.collect(0)
    gc.collect(2)
    gc.collect(2)
    snapshot = clock.snapshot()
    # Automatic collections may run in between (allocations here): at least what was asked for, per generation.
    assert snapshot["collections"][0] >= 1 and snapshot["collections"][2] >= 2
    assert all(seconds >= 0 for seconds in snapshot["seconds"]) and snapshot["seconds"][2] > 0


def test_counts_the_unreachable_objects_a_collection_frees(clock: GcClock) -> None:
    gc.collect()
    clock.reset()
    for _ in range(100):
        cycle: list[object] = []
        cycle.append(cycle)
    del cycle
    gc.collect()
    assert clock.snapshot()["collected"] >= 100


def test_reset_zeroes_and_uninstall_stops_counting(clock: GcClock) -> None:
    gc.collect()
    clock.reset()
    assert clock.snapshot() == {"collections": [0, 0, 0], "seconds": [0.0, 0.0, 0.0], "collected": 0}
    clock.uninstall()
    gc.collect()
    assert clock.snapshot()["collections"] == [0, 0, 0]
