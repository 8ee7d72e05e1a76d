"""bench.hist's numpy path gives hdrh's own figures: percentiles, maximum, merges, bootstrap resamples."""

from __future__ import annotations

import random

import pytest

from bench import hist
from reports import summary


def recorded(seed: int, size: int) -> str:
    rng = random.Random(seed)
    histogram = hist.new()
    for _ in range(size):
        histogram.record_value(int(rng.lognormvariate(7, 1.2)) + 1)  # ~1 ms, a long tail
    return hist.encode(histogram)


PERCENTILES = (0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0)


@pytest.mark.parametrize("sizes", [(1,), (500,), (300, 2000, 40), (1000, 0, 7)])
def test_trials_match_hdrh_on_the_merged_histogram(sizes: tuple[int, ...]) -> None:
    encoded = tuple(recorded(seed, size) for seed, size in enumerate(sizes))
    merged = hist.merge(encoded)
    trials = hist.Trials([hist.decoded_segment(item) for item in encoded])
    expected = [hist.percentile_ms(merged, p) for p in PERCENTILES]
    assert trials.percentiles(range(len(sizes)), PERCENTILES) == expected
    assert trials.count == hist.count(merged)
    assert trials.max_ms() == merged.get_max_value() / 1000.0


def test_a_resample_counts_a_repeated_trial_twice() -> None:
    encoded = (recorded(1, 400), recorded(2, 50))
    trials = hist.Trials([hist.decoded_segment(item) for item in encoded])
    doubled = hist.merge((encoded[0], encoded[0], encoded[1]))
    assert trials.percentiles((0, 0, 1), PERCENTILES) == [hist.percentile_ms(doubled, p) for p in PERCENTILES]


def test_empty_trials_have_no_percentiles() -> None:
    trials = hist.Trials([hist.decoded_segment(""), hist.decoded_segment(hist.encode(hist.new()))])
    assert trials.percentiles([0, 1], [50.0]) == [None]
    assert trials.resampled([(0, 1), (1, 1)], 50.0) == [None, None]
    assert trials.max_ms() is None and trials.count == 0


@pytest.mark.parametrize("percentile", [50.0, 99.0])
def test_merged_percentile_ci_is_the_generic_bootstrap(percentile: float) -> None:
    encoded = (recorded(3, 800), recorded(4, 900), recorded(5, 20), hist.encode(hist.new()))
    trials = hist.Trials([hist.decoded_segment(item) for item in encoded])

    def statistic(picks: list[int]) -> float:
        return trials.percentiles(picks, [percentile])[0] or 0.0

    assert summary.merged_percentile_ci(trials, percentile) == summary.bootstrap_ci(range(4), statistic)
    assert summary.merged_percentile_ci(hist.Trials([hist.decoded_segment(encoded[0])]), percentile) is None


def test_the_payload_reader_finds_the_slots_hdrh_finds() -> None:
    """Counts from 1 to 2^40 (varints of 1 to 6 bytes), values up to the top of the range; and the cases left
    to hdrh (a 9-byte varint, another layout, an empty payload) give the same segment through it."""
    from hdrh.histogram import HdrHistogram

    rng = random.Random(7)
    cases = []
    for _ in range(60):
        histogram = hist.new()
        for _ in range(rng.randrange(1, 400)):
            value = min(int(rng.lognormvariate(rng.uniform(2, 14), 1.5)) + 1, hist.HIGHEST_US)
            histogram.record_value(value, rng.choice([1, 3, 200, 70_000, 2**40]))
        cases.append(hist.encode(histogram))
    huge, other = hist.new(), HdrHistogram(1, 1_000_000, 2)
    huge.record_value(5, 2**57)
    other.record_value(123)
    cases += [hist.encode(huge), hist.encode(other), hist.encode(hist.new())]
    for encoded in cases:
        indices, counts = hist.decoded_segment(encoded)
        expected_indices, expected_counts = hist.segment(hist.decode(encoded))
        assert indices.tolist() == expected_indices.tolist() and counts.tolist() == expected_counts.tolist()
    assert all(hist._payload_segment(encoded) is not None for encoded in cases[:60])
