"""Latency histograms: HDR at microsecond resolution, stored encoded, merged (never averaged).

Locust's own percentiles are 1 ms buckets (sub-millisecond requests round to 0), so the load
process records every sample here instead; these helpers are what everything else reads.
"""

from __future__ import annotations

import functools
import itertools
import operator
from bisect import bisect_left
from collections.abc import Iterable, Sequence

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


# -- sparse counts: what reports compute with ---------------------------------------------------------------
# hdrh walks its whole counts array (~18,000 slots at this range and precision) in Python for every
# percentile, and merging decodes every part again: a 1,000-cell report spent ~90 % of its time there.
# A histogram's non-zero slots (a few hundred) answer the same questions exactly, and merging them is a
# dict sum. Same slots, same rounding as hdrh (``get_value_at_percentile``), so the figures do not change.

Buckets = dict[int, int]  # counts index -> count, non-zero slots only


@functools.cache
def _layout() -> HdrHistogram:
    """The one layout every histogram here has (``new()``): it converts a slot index to microseconds."""
    return new()


def _same_layout(histogram: HdrHistogram) -> bool:
    reference = _layout()
    return bool(
        histogram.unit_magnitude == reference.unit_magnitude
        and histogram.sub_bucket_count == reference.sub_bucket_count
        and histogram.counts_len == reference.counts_len
    )


def buckets(histogram: HdrHistogram) -> Buckets:
    """The histogram's non-zero slots; one of another layout is re-recorded into ours first."""
    if not _same_layout(histogram):
        converted = new()
        converted.add(histogram)
        histogram = converted
    # A decoded histogram may carry a shorter counts array than its layout; past it every count is 0.
    size = min(histogram.counts_len, histogram.encoder.payload.counts_len)
    counts = histogram.counts[:size]
    return {index: counts[index] for index in itertools.compress(range(size), counts)}


@functools.lru_cache(maxsize=8192)
def decoded_buckets(encoded: str) -> Buckets:
    """``buckets`` of an encoded histogram ("" -> empty), cached: a report reads each several times.
    Treat the result as read-only (it is shared)."""
    return buckets(decode(encoded)) if encoded else {}


def merge_buckets(parts: Iterable[Buckets]) -> Buckets:
    total: Buckets = {}
    for part in parts:
        for index, value in part.items():
            total[index] = total.get(index, 0) + value
    return total


def bucket_count(merged: Buckets) -> int:
    return sum(merged.values())


def percentiles_of(merged: Buckets, percentiles: Sequence[float]) -> list[float | None]:
    """Values at ``percentiles`` (0-100) in milliseconds, as hdrh's get_value_at_percentile computes them
    (the slot where the cumulative count first reaches round(p x total), its highest equivalent value);
    None for every percentile of an empty histogram."""
    indices = sorted(merged)
    return _values(indices, list(itertools.accumulate(merged[index] for index in indices)), percentiles)


def _values(indices: Sequence[int], cumulative: Sequence[int], percentiles: Sequence[float]) -> list[float | None]:
    if not cumulative or not cumulative[-1]:
        return [None for _ in percentiles]
    total = cumulative[-1]
    layout = _layout()
    out: list[float | None] = []
    for percentile in percentiles:
        target = max(int((min(percentile, 100.0) * total / 100) + 0.5), 1)
        value = layout.get_value_from_index(indices[bisect_left(cumulative, target)])
        exact = layout.get_highest_equivalent_value(value) if percentile else layout.get_lowest_equivalent_value(value)
        out.append(float(exact) / 1000.0)
    return out


class Trials:
    """Several trials' histograms laid on the union of their slots, so the percentiles of any multiset of
    them (a bootstrap resample such as trials (0, 0, 2)) cost two C-level passes over a few thousand
    counts instead of a dict merge. Each multiset's cumulative counts are kept: a report asks p50 and p99."""

    def __init__(self, parts: Sequence[Buckets]) -> None:
        self.indices = sorted(set().union(*parts))
        self.rows = [[part.get(index, 0) for index in self.indices] for part in parts]
        self._cumulative: dict[tuple[int, ...], list[int]] = {}

    def percentiles(self, picks: Sequence[int], percentiles: Sequence[float]) -> list[float | None]:
        """Of the trials at ``picks`` (indices into the parts, repeats allowed) merged."""
        key = tuple(sorted(picks))
        cumulative = self._cumulative.get(key)
        if cumulative is None:
            counts = self.rows[key[0]] if key else []
            for pick in key[1:]:
                counts = list(map(operator.add, counts, self.rows[pick]))
            cumulative = self._cumulative[key] = list(itertools.accumulate(counts))
        return _values(self.indices, cumulative, percentiles)


@functools.lru_cache(maxsize=1024)
def trials_of(encoded: tuple[str, ...]) -> Trials:
    """``Trials`` of encoded histograms, cached: a row and its only endpoint hold the same ones."""
    return Trials([decoded_buckets(item) for item in encoded])


def max_ms(slots: Iterable[int]) -> float | None:
    """The highest recorded value (of the non-zero ``slots``: a Buckets or ``Trials.indices``) as hdrh's
    get_max_value gives it (its highest equivalent), in ms; None when there are none."""
    last = max(slots, default=None)
    if last is None:
        return None
    layout = _layout()
    return float(layout.get_highest_equivalent_value(layout.get_value_from_index(last))) / 1000.0
