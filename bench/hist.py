"""Latency histograms: HDR at microsecond resolution, stored encoded, merged (never averaged).

Locust's own percentiles are 1 ms buckets (sub-millisecond requests round to 0), so the load
process records every sample here instead; these helpers are what everything else reads.
"""

from __future__ import annotations

import binascii
import functools
import itertools
import operator
import zlib
from bisect import bisect_left
from collections.abc import Iterable, Sequence

from hdrh.codec import HdrCookieException, HdrHistogramEncoder, HdrLengthException
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


def check(encoded: str) -> None:
    """Raise ``ValueError`` saying what is wrong unless ``encoded`` would decode; builds no histogram.

    The checks ``decode`` makes short of allocating the counts (hdrh's own): base64, both headers'
    cookies and lengths, zlib's checksum over the payload, the settings' ranges; and a range ``merge`` can
    take. About a fifth of ``decode``'s time (360 histograms of a 120-cell file: 12 ms against 64 ms), so a
    results file can check every histogram when it is read and a cut or corrupted one is refused then, not
    deep inside a report.
    """
    try:
        payload = HdrHistogramEncoder.decode(encoded).payload
    except binascii.Error as exc:
        raise ValueError(f"cut or corrupted, not base64 ({exc})") from None
    except (ValueError, TypeError, zlib.error, HdrCookieException, HdrLengthException) as exc:
        raise ValueError(f"cut or corrupted ({type(exc).__name__}{f': {exc}' if str(exc) else ''})") from None
    lowest, highest = payload.lowest_trackable_value, payload.highest_trackable_value
    if not (1 <= payload.significant_figures <= 5 and lowest >= 1 and highest >= 2 * lowest):
        raise ValueError(f"settings out of range (digits {payload.significant_figures}, {lowest}..{highest})")
    if highest > HIGHEST_US:  # its values might not fit the histograms ``merge`` adds them to
        raise ValueError(f"range up to {highest} µs, beyond the {HIGHEST_US} µs dbbench records")


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


# -- counts as reports compute with them ---------------------------------------------------------------------
# hdrh walks its whole counts array (~18,000 slots at this range and precision) in Python for every
# percentile, and merging decodes every part again: a 1,000-cell report spent ~90 % of its time there.
# A histogram's used stretch of slots (first to last non-zero) answers the same questions exactly, and
# merging, accumulating and searching it are C-level list operations. Same slots, same rounding as hdrh
# (``get_value_at_percentile``), so the figures do not change.

Segment = tuple[list[int], list[int]]  # the non-zero slots' indices (ascending) and their counts
EMPTY: Segment = ([], [])


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
        and histogram.word_size == reference.word_size
    )


def segment(histogram: HdrHistogram) -> Segment:
    """The histogram's used slots; one of another layout is re-recorded into ours first."""
    if not _same_layout(histogram):
        converted = new()
        converted.add(histogram)
        histogram = converted
    # A decoded histogram may carry a shorter counts array than its layout; past it every count is 0.
    size = min(histogram.counts_len, histogram.encoder.payload.counts_len)
    word = histogram.word_size
    raw = bytes(histogram.counts)[: size * word]
    # Leading and trailing zero bytes, found in C; a count is one word, so whole words are skipped.
    first = (len(raw) - len(raw.lstrip(b"\0"))) // word
    last = (len(raw.rstrip(b"\0")) - 1) // word
    if last < first:
        return EMPTY
    dense = histogram.counts[first : last + 1]
    # compress() keeps the used slots (~1,000 of the stretch) in C: their indices, and their counts.
    return (list(itertools.compress(range(first, last + 1), dense)), list(itertools.compress(dense, dense)))


@functools.lru_cache(maxsize=2048)
def decoded_segment(encoded: str) -> Segment:
    """``segment`` of an encoded histogram ("" -> empty), cached: a report reads each several times
    (a row, its only endpoint, the HTML's latency chart). Treat the result as read-only (it is shared)."""
    return segment(decode(encoded)) if encoded else EMPTY


def _value_ms(index: int, percentile: float) -> float:
    layout = _layout()
    value = layout.get_value_from_index(index)
    exact = layout.get_highest_equivalent_value(value) if percentile else layout.get_lowest_equivalent_value(value)
    return float(exact) / 1000.0


class Trials:
    """Several trials' histograms laid on the union of their used slots, so the percentiles of any multiset of
    them (a bootstrap resample such as trials (0, 0, 2)) cost a few C-level passes over those slots.
    Each multiset's cumulative counts are kept: a report asks p50 and p99 of the same resamples."""

    def __init__(self, parts: Sequence[Segment]) -> None:
        self.indices = sorted(set().union(*(indices for indices, _ in parts)))
        position = {index: k for k, index in enumerate(self.indices)}
        # Every trial's counts on the union of the used slots, so trials add up slot by slot.
        self.rows = []
        for indices, counts in parts:
            if indices == self.indices:
                self.rows.append(counts)
                continue
            row = [0] * len(self.indices)
            for index, count in zip(indices, counts, strict=True):
                row[position[index]] = count
            self.rows.append(row)
        self.size = len(parts)
        self.count = sum(sum(counts) for _, counts in parts)
        self._cumulative: dict[tuple[int, ...], list[int]] = {}

    def percentiles(self, picks: Iterable[int], percentiles: Sequence[float]) -> list[float | None]:
        """Values at ``percentiles`` (0-100) in ms of the trials at ``picks`` (repeats allowed) merged, as
        hdrh computes them (the slot where the cumulative count first reaches round(p x total), its highest
        equivalent value); None for every percentile when those trials hold no sample."""
        key = tuple(sorted(picks))
        cumulative = self._cumulative.get(key)
        if cumulative is None:
            counts = self.rows[key[0]] if key else []
            for pick in key[1:]:
                counts = list(map(operator.add, counts, self.rows[pick]))
            cumulative = self._cumulative[key] = list(itertools.accumulate(counts))
        if not cumulative or not cumulative[-1]:
            return [None for _ in percentiles]
        total = cumulative[-1]
        return [
            _value_ms(self.indices[bisect_left(cumulative, max(int((min(p, 100.0) * total / 100) + 0.5), 1))], p)
            for p in percentiles
        ]

    def max_ms(self) -> float | None:
        """The highest recorded value as hdrh's get_max_value gives it (its highest equivalent), in ms."""
        return _value_ms(self.indices[-1], 100.0) if self.indices else None


@functools.lru_cache(maxsize=64)
def trials_of(encoded: tuple[str, ...]) -> Trials:
    """``Trials`` of encoded histograms, cached: a row and its only endpoint hold the same ones."""
    return Trials([decoded_segment(item) for item in encoded])
