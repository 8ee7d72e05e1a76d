"""``bench ab``'s closing table: base and head side by side per scenario and per endpoint (Locust's request
``name``), from the results file alone. The verdict (is head slower, beyond noise?) is the CI gate's, not this
table's: it shows medians and the head/base ratio of the paired trials.

Pure: reads a Results, returns rows.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass

from bench import hist
from bench.results import Cell, Results

ALL = "(all)"


@dataclass(frozen=True)
class Row:
    """One scenario (``endpoint`` = ALL) or one of its endpoints: medians over each side's ok cells."""

    scenario: str
    endpoint: str
    base_rps: float | None  # median successful req/s over trials
    head_rps: float | None
    base_p99_ms: float | None  # p99 of every successful request of the side's cells
    head_p99_ms: float | None
    pairs: int  # trials where both sides were measured
    trial_ratios: tuple[float, ...] = ()  # head / base req/s of each paired trial (scenario rows only)

    @property
    def ratio(self) -> float | None:
        """head / base throughput (1.00: the same; below 1: head is slower): the median of the paired trials'
        ratios where there are pairs (drift cancels within a pair), else the ratio of the medians."""
        if self.trial_ratios:
            return statistics.median(self.trial_ratios)
        if not self.base_rps or self.head_rps is None:
            return None
        return self.head_rps / self.base_rps


def rows(results: Results, base: str, head: str) -> list[Row]:
    """The table for the apps labelled ``base`` and ``head``, scenarios in the order they were run."""
    out: list[Row] = []
    scenarios = list(dict.fromkeys(c.scenario for c in results.cells))
    for scenario in scenarios:
        sides = {
            label: [c for c in results.cells if c.scenario == scenario and c.variant == label and c.ok]
            for label in (base, head)
        }
        trials = sorted({c.trial for c in sides[base]} & {c.trial for c in sides[head]})
        by_trial = {label: {c.trial: c.rps for c in cells} for label, cells in sides.items()}
        ratios = tuple(by_trial[head][t] / by_trial[base][t] for t in trials if by_trial[base][t] > 0)
        row = _row(scenario, ALL, sides[base], sides[head], len(trials), None)
        out.append(dataclasses.replace(row, trial_ratios=ratios))
        names = list(dict.fromkeys(name for c in sides[base] + sides[head] for name in c.endpoints))
        out.extend(_row(scenario, name, sides[base], sides[head], len(trials), name) for name in names)
    return out


def _row(scenario: str, endpoint: str, base: list[Cell], head: list[Cell], pairs: int, name: str | None) -> Row:
    return Row(scenario, endpoint, _rps(base, name), _rps(head, name), _p99(base, name), _p99(head, name), pairs)


def _rps(cells: list[Cell], name: str | None) -> float | None:
    if not cells:
        return None
    if name is None:
        return statistics.median(c.rps for c in cells)
    values = [
        (e.requests - e.errors) / c.duration_s for c in cells if (e := c.endpoints.get(name)) and c.duration_s > 0
    ]
    return statistics.median(values) if values else None


def _p99(cells: list[Cell], name: str | None) -> float | None:
    encoded = (
        [c.histogram for c in cells]
        if name is None
        else [c.endpoints[name].histogram for c in cells if name in c.endpoints]
    )
    encoded = [e for e in encoded if e]
    if not encoded:
        return None
    return hist.percentile_ms(hist.merge(encoded), 99)
