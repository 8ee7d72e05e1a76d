"""bench.timeline: where a run's wall time goes, as the results file keeps it (pure logic, a fake clock)."""

from __future__ import annotations

from bench.timeline import CELL_PARTS, Timeline


class FakeClock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def test_steps_and_cell_parts_add_up_to_the_run() -> None:
    clock = FakeClock()
    timeline = Timeline(origin=9.0, created=9.5, clock=clock)
    timeline.phase("provisioning PostgreSQL")
    clock.now = 12.0
    with timeline.step("overlapping"):
        clock.now = 12.5
    timeline.phase("checking")
    clock.now = 14.0
    for _ in range(2):
        timeline.cell_started()
        clock.now += 0.1
        timeline.mark("seed")
        clock.now += 0.01
        timeline.mark("target")
        clock.now += 0.02
        timeline.mark("sampler")
        clock.now += 1.2  # the load's round trip: 0.3 s warm-up, 0.5 s window, 0.4 s of its own
        timeline.mark("load")
        timeline.load_reported(0.3, 0.5)
        clock.now += 0.05
    timeline.phase("stopping")
    clock.now += 1.0
    timeline.finish()
    found = timeline.to_dict()
    assert found["process_start_to_run_s"] == 0.5
    assert [(s["step"], s["start_s"], s["s"]) for s in found["steps"]] == [
        ("provisioning PostgreSQL", 1.0, 2.5),
        ("overlapping", 3.0, 0.5),
        ("checking", 3.5, 1.5),
        ("stopping", 7.76, 1.0),
    ]
    assert found["cells"]["parts"] == list(CELL_PARTS)
    assert found["cells"]["s"] == [[0.1, 0.01, 0.02, 0.3, 0.5, 0.4, 0.05]] * 2
    assert (found["first_cell_s"], found["last_cell_end_s"]) == (5.0, 7.76)


def test_a_cell_whose_target_failed_has_only_the_parts_it_reached() -> None:
    clock = FakeClock()
    timeline = Timeline(origin=10.0, created=10.0, clock=clock)
    timeline.cell_started()
    clock.now += 0.2
    timeline.mark("seed")
    clock.now += 1.0  # the target did not come up: the rest of the cell counts as "after"
    timeline.cell_started()
    timeline.finish()
    assert timeline.to_dict()["cells"]["s"] == [[0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], [0.0] * 7]
