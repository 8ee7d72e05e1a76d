"""Latency histograms: HDR at microsecond resolution, stored encoded, merged (never averaged).

Locust's own percentiles are 1 ms buckets (sub-millisecond requests round to 0), so the load
process records every sample here instead; these helpers are what everything else reads.
"""

from __future__ import annotations

import binascii
import ctypes
import functools
import zlib
from collections.abc import Iterable, Sequence

import numpy as np
from hdrh.codec import HdrCookieException, HdrHistogramEncoder, HdrLengthException, PayloadHeader
from hdrh.histogram import HdrHistogram
from numpy.typing import NDArray

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
    problem = _problem(encoded)
    if problem:
        raise ValueError(problem)


@functools.lru_cache(maxsize=8192)
def _problem(encoded: str) -> str | None:
    """What ``check`` says of ``encoded``, cached: a one-endpoint cell holds its histogram twice (the cell's
    and the endpoint's), so a file's histograms are each checked once."""
    try:
        _check_uncached(encoded)
    except ValueError as exc:
        return str(exc)
    return None


def _check_uncached(encoded: str) -> None:
    """``check`` uncached: raises ``ValueError`` saying what is wrong."""
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
# A histogram's used slots (the non-zero ones) answer the same questions exactly; numpy finds them, adds
# trials slot by slot and searches the cumulative counts in C (a byte scan and list operations in Python
# cost ~0.6 s on a 1,000-cell file). Same slots, same rounding as hdrh (``get_value_at_percentile``), so the
# figures do not change.

Ints = NDArray[np.int64]
Segment = tuple[Ints, Ints]  # the non-zero slots' indices (ascending) and their counts


@functools.cache
def _layout() -> HdrHistogram:
    """The one layout every histogram here has (``new()``): it converts a slot index to microseconds."""
    return new()


def _empty() -> Segment:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)


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
    # The counts are a ctypes array of unsigned words in the machine's order (hdrh's payload_counter_ctype).
    counts = np.frombuffer(histogram.counts, dtype=f"=u{histogram.word_size}", count=size)
    used = np.flatnonzero(counts)
    return used.astype(np.int64), counts[used].astype(np.int64)


def _payload_segment(encoded: str) -> Segment | None:
    """``segment(decode(encoded))`` read straight from the encoded payload, or None when it is not the plain
    case (another layout, an index offset, a count of 2^56 or more, anything malformed): decode it then.

    The payload (HdrHistogram's V2 encoding, which hdrh's C decoder reads) is a zlib-compressed run of
    ZigZag LEB128 varints after a 40-byte header: a value >= 0 is the count of the next slot, a negative
    one skips that many empty slots. Building an HdrHistogram (its Python set-up, an 18,432-slot array)
    and scanning it cost ~0.15 ms a histogram, the varints in numpy ~0.02 ms.
    """
    try:
        payload = HdrHistogramEncoder.decode(encoded)
    except (ValueError, TypeError, zlib.error, HdrCookieException, HdrLengthException):
        return None
    header = payload.payload
    settings = (header.lowest_trackable_value, header.highest_trackable_value, header.significant_figures)
    start = ctypes.sizeof(PayloadHeader)
    data = np.frombuffer(payload._data, dtype=np.uint8)[start:]  # the decompressed bytes hdrh decodes from
    if settings != (LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS) or header.normalizing_index_offset:
        return None
    if header.payload_len != len(data) or not len(data) or data[-1] >= 0x80:
        return None
    ends = np.flatnonzero(data < 0x80)  # a varint's last byte has its high bit clear
    if len(ends) == len(data):  # every varint one byte (counts and skips below 64): the usual case
        raw = data.astype(np.int64)
    else:
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        lengths = ends - starts + 1
        if int(lengths.max()) > 8:  # a 9-byte varint carries 8 bits in its last byte: leave it to hdrh
            return None
        shifts = (np.arange(len(data)) - np.repeat(starts, lengths)) * 7
        # At most 8 groups of 7 bits: 56 bits, so int64 holds them; the groups do not overlap (sum = OR).
        raw = np.add.reduceat((data & 0x7F).astype(np.int64) << shifts, starts)
    values = (raw >> 1) ^ -(raw & 1)  # ZigZag
    steps = np.where(values < 0, -values, 1)
    slots = np.cumsum(steps) - steps  # the slot each value starts at
    used = values > 0
    indices, counts = slots[used], values[used]
    if len(indices) and int(indices[-1]) >= _layout().counts_len:
        return None
    return indices, counts


@functools.lru_cache(maxsize=8192)
def decoded_segment(encoded: str) -> Segment:
    """``segment`` of an encoded histogram ("" -> empty), cached: a report reads each several times
    (a row, its only endpoint, the HTML's latency chart). Read-only arrays: the result is shared."""
    found = (_payload_segment(encoded) or segment(decode(encoded))) if encoded else _empty()
    for array in found:
        array.flags.writeable = False
    return found


@functools.lru_cache(maxsize=65536)
def _value_ms(index: int, highest: bool) -> float:
    """Slot ``index`` in ms: its highest equivalent value (hdrh's for a percentile above 0), else its lowest."""
    layout = _layout()
    value = layout.get_value_from_index(index)
    exact = layout.get_highest_equivalent_value(value) if highest else layout.get_lowest_equivalent_value(value)
    return float(exact) / 1000.0


def _union(sorted_parts: Sequence[Ints]) -> Ints:
    """The distinct values of ascending arrays, ascending. Not np.unique: its first call imports numpy.ma
    (~0.1 s of a report's start)."""
    if len(sorted_parts) <= 1:
        return sorted_parts[0] if sorted_parts else _empty()[0]
    merged = np.sort(np.concatenate(sorted_parts))
    keep = np.empty(len(merged), dtype=bool)
    keep[:1] = True
    np.not_equal(merged[1:], merged[:-1], out=keep[1:])
    return merged[keep]


class Trials:
    """Several trials' histograms laid on the union of their used slots (a trials x slots matrix), so the
    percentiles of any multiset of them (a bootstrap resample such as trials (0, 0, 2)) cost a sum and a
    search in C. Each multiset's cumulative counts are kept: a report asks p50 and p99 of the same resamples."""

    def __init__(self, parts: Sequence[Segment]) -> None:
        self.indices = _union([indices for indices, _ in parts])
        # Every trial's counts on the union of the used slots, so trials add up slot by slot.
        self.rows = np.zeros((len(parts), len(self.indices)), dtype=np.int64)
        for row, (indices, counts) in zip(self.rows, parts, strict=True):
            row[np.searchsorted(self.indices, indices)] = counts
        self.size = len(parts)
        self.count = int(self.rows.sum())
        self._cumulative: dict[tuple[int, ...], Ints] = {}

    def percentiles(self, picks: Iterable[int], percentiles: Sequence[float]) -> list[float | None]:
        """Values at ``percentiles`` (0-100) in ms of the trials at ``picks`` (repeats allowed) merged, as
        hdrh computes them (the slot where the cumulative count first reaches round(p x total), its highest
        equivalent value); None for every percentile when those trials hold no sample."""
        key = tuple(sorted(picks))
        cumulative = self._cumulative.get(key)
        if cumulative is None:
            # Repeated picks count their trial again (np.add.at would too; bincount weights are the same sum).
            weights = np.bincount(np.asarray(key, dtype=np.intp), minlength=self.size)
            cumulative = self._cumulative[key] = np.cumsum(weights @ self.rows)
        total = int(cumulative[-1]) if len(cumulative) else 0
        if not total:
            return [None for _ in percentiles]
        # hdrh's target count: round(p x total / 100) half up, at least 1 (get_target_count_at_percentile).
        targets = [max(int((min(p, 100.0) * total / 100) + 0.5), 1) for p in percentiles]
        slots = self.indices[np.searchsorted(cumulative, targets, side="left")].tolist()
        return [_value_ms(slot, bool(p)) for slot, p in zip(slots, percentiles, strict=True)]

    def resampled(self, resamples: Sequence[Sequence[int]], percentile: float) -> list[float | None]:
        """``percentiles(picks, [percentile])[0]`` for every ``picks`` in ``resamples`` (a bootstrap's distinct
        multisets of trials), all merged and searched at once: one matrix product, one cumulative sum."""
        if not len(self.indices):
            return [None for _ in resamples]
        weights = np.zeros((len(resamples), self.size), dtype=np.int64)
        for row, picks in zip(weights, resamples, strict=True):
            np.add.at(row, np.asarray(picks, dtype=np.intp), 1)
        cumulative = np.cumsum(weights @ self.rows, axis=1)
        totals = cumulative[:, -1]
        # hdrh's target count, as in ``percentiles``: the same float operations, then truncation.
        targets = np.maximum((min(percentile, 100.0) * totals / 100 + 0.5).astype(np.int64), 1)
        # The first slot whose cumulative count reaches the target: how many fall short of it (bisect_left).
        slots = self.indices[np.minimum((cumulative < targets[:, None]).sum(axis=1), len(self.indices) - 1)]
        return [
            _value_ms(int(slot), bool(percentile)) if total else None
            for slot, total in zip(slots.tolist(), totals.tolist(), strict=True)
        ]

    def max_ms(self) -> float | None:
        """The highest recorded value as hdrh's get_max_value gives it (its highest equivalent), in ms."""
        return _value_ms(int(self.indices[-1]), True) if len(self.indices) else None


@functools.lru_cache(maxsize=4096)
def trials_of(encoded: tuple[str, ...]) -> Trials:
    """``Trials`` of encoded histograms, cached: a row and its only endpoint hold the same ones."""
    return Trials([decoded_segment(item) for item in encoded])
