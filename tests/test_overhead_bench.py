"""benchmarks/overhead.py's verdict on the hooks' CPU cost: a median per-pair ratio and its interval."""

from __future__ import annotations

import math

import pytest
from benchmark_scripts import load

overhead = load("overhead")


def test_within_the_budget_only_when_the_whole_interval_is() -> None:
    cost = overhead.Cost.of([1.01, 1.02, 0.98, 1.03, 1.02, 1.03])
    assert cost.median == pytest.approx(0.02)
    # Six pairs: the distribution-free 95 % interval of the median is their min..max (coverage 1 - 2/64).
    assert (cost.low, cost.high) == (pytest.approx(-0.02), pytest.approx(0.03))
    assert cost.verdict == "within"


def test_over_the_budget_only_when_the_whole_interval_is() -> None:
    assert overhead.Cost.of([1.06, 1.09, 1.08, 1.07, 1.12, 1.06]).verdict == "over"


def test_a_median_under_the_budget_with_a_wide_interval_is_not_settled() -> None:
    cost = overhead.Cost.of([1.01, 1.05, 0.98, 1.07, 1.02, 1.03])
    assert cost.median < overhead.BUDGET_LOSS and cost.verdict == "not settled"


@pytest.mark.parametrize("pairs", [3, 5])
def test_too_few_pairs_for_an_interval_settle_nothing(pairs: int) -> None:
    # Five pairs' min..max covers the median with probability 1 - 2/32 = 93.75 %: no 95 % interval below six.
    cost = overhead.Cost.of([1.0, 1.01, 0.99, 1.02, 0.98][:pairs])
    assert math.isnan(cost.low) and math.isnan(cost.high) and cost.verdict == "too few pairs"
    assert cost.text == f"{cost.median:+.1%} [needs >= {overhead.MIN_PAIRS} pairs]"
