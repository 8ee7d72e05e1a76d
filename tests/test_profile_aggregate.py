"""Pure logic of the profile aggregation (targets.common.profiling.aggregate): the call tree survives, the bulk goes."""

from __future__ import annotations

from pyinstrument.renderers import SpeedscopeRenderer
from pyinstrument.session import Session

from targets.common.profiling import aggregate

ROOT = ["MainThread\x00<thread>\x001", "run\x00/x/asyncio/runners.py\x0086"]
ROUTE = [*ROOT, "db\x00/app/targets/common/contract.py\x00267"]
DRIVER = [*ROUTE, "fetchrow\x00/venv/asyncpg/connection.py\x00746"]
OTHER = [*ROOT, "send\x00/venv/uvicorn/protocols/http/httptools_impl.py\x00463"]


def request(start: float) -> Session:
    # One request's samples, as its own profiler saw them: interleaving them is what fragmented the tree.
    records = [(DRIVER, 0.0002)] * 5 + [(OTHER, 0.0002)] * 3 + [(ROUTE, 0.0002)]
    return Session(
        frame_records=[(list(stack), time) for stack, time in records],
        start_time=start,
        min_interval=0.0002,
        max_interval=0.0002,
        duration=0.002,
        sample_count=len(records),
        start_call_stack=ROOT,
        target_description="test",
        cpu_time=0.001,
        sys_path=["/venv"],
        sys_prefixes=["/venv"],
    )


def test_aggregate_keeps_times_and_counts_with_one_record_per_stack() -> None:
    sessions = [request(100.0 + i) for i in range(300)]
    combined = aggregate(sessions)
    assert len(combined.frame_records) == 3
    assert combined.sample_count == 300 * 9
    assert abs(sum(time for _, time in combined.frame_records) - 300 * 9 * 0.0002) < 1e-9
    assert combined.start_time == 100.0 and abs(combined.duration - 0.6) < 1e-9
    driver_time = dict((tuple(stack), time) for stack, time in combined.frame_records)[tuple(DRIVER)]
    assert abs(driver_time - 300 * 5 * 0.0002) < 1e-9
    assert aggregate([combined]).frame_records == combined.frame_records  # idempotent


def test_speedscope_of_an_aggregate_shows_the_driver_frame() -> None:
    # Concatenated, 300 interleaved requests make 300 sibling subtrees of < 1 % each: the renderer's
    # threshold drops them all. Aggregated, the driver's frame is one node with 5/9 of the time.
    text = SpeedscopeRenderer().render(aggregate([request(100.0 + i) for i in range(300)]))
    assert "/venv/asyncpg/connection.py" in text and "/app/targets/common/contract.py" in text
