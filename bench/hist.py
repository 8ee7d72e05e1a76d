"""Latency histograms: HDR at microsecond resolution, stored encoded, merged (never averaged).

Locust's own percentiles are 1 ms buckets (sub-millisecond requests round to 0), so the load
process records every sample here instead; these helpers are what everything else reads.
"""

from __future__ import annotations

import binascii
import zlib
from collections.abc import Iterable

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
