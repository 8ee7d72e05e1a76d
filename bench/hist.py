"""Latency histograms: HDR at microsecond resolution, stored encoded, merged (never averaged).

Locust's own percentiles are 1 ms buckets (sub-millisecond requests round to 0), so the load
process records every sample here instead; these helpers are what everything else reads.
"""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 120_000_000  # two minutes: anything slower is an error, not a latency
SIGNIFICANT_DIGITS = 3


def new() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def encode(histogram: HdrHistogram) -> str:
    return bytes(histogram.encode()).decode("ascii")


def decode(encoded: str) -> HdrHistogram:
    histogram = HdrHistogram.decode(encoded)
    assert isinstance(histogram, HdrHistogram)
    return histogram


def merge(encoded: Iterable[str]) -> HdrHistogram:
    total = new()
    for item in encoded:
        if item:
            total.add(decode(item))
    return total


def percentile_ms(histogram: HdrHistogram, percentile: float) -> float | None:
    """The value at ``percentile`` (0-100) in milliseconds, or None for an empty histogram."""
    if histogram.get_total_count() == 0:
        return None
    return float(histogram.get_value_at_percentile(percentile)) / 1000.0


def count(histogram: HdrHistogram) -> int:
    return int(histogram.get_total_count())
