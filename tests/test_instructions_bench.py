"""benchmarks/instructions.py's pure parts: cachegrind's total, the per-request difference, and bad options
refused with exit code 2 before valgrind or PostgreSQL start."""

from __future__ import annotations

import pytest
from benchmark_scripts import load

instructions = load("instructions")

CACHEGRIND_OUT = """desc: --cache-sim=no
cmd: python benchmarks/instructions.py --child targets.pooled:app
events: Ir
fl=???
fn=0x0000000000001100
0 3
summary: 1234567890
"""


def test_the_total_is_read_from_the_summary_line() -> None:
    assert instructions.summary_instructions(CACHEGRIND_OUT) == 1_234_567_890
    with pytest.raises(ValueError, match="summary"):
        instructions.summary_instructions("events: Ir\n")


def test_start_up_cancels_out_of_the_per_request_figure() -> None:
    start_up, per_request = 900_000_000, 450_000
    runs = [(n, start_up + n * per_request) for n in (200, 700)]
    assert instructions.per_request(runs) == per_request
    with pytest.raises(ValueError):
        instructions.per_request([(200, 1), (200, 2)])


def test_the_hooks_share_is_on_over_off() -> None:
    assert instructions.share(105.0, 100.0) == pytest.approx(0.05)


def test_every_counted_variant_is_a_registered_one_and_cached_says_why_not() -> None:
    assert "cached" not in instructions.DEFAULT_VARIANTS and "pooled" in instructions.DEFAULT_VARIANTS
    assert instructions.parse_variants("pooled,sync") == ["pooled", "sync"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--requests", "700,200"], "first < second"),
        (["--requests", "0,10"], "first < second"),
        (["--requests", "many"], "two counts"),
        (["--variants", "cached"], "wall clock"),
        (["--variants", "nosuch"], "unknown variant"),
        (["--paths", "db"], "starting with /"),
        (["--concurrency", "11", "--pool-size", "10"], "--pool-size"),
        (["--keep", "/nonexistent/dbbench-keep"], "not a directory"),
    ],
)
def test_bad_options_are_one_line_and_exit_code_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert instructions.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
