"""``bench ab``'s closing table: base and head side by side per scenario and per endpoint (Locust's request
``name``), from the results file alone. The verdict (is head slower, beyond noise?) is the CI gate's, not this
table's, but the figures are the ones it judges: each side's geometric mean over its trials (req/s; p99 of each
trial's own requests) and head/base as the geometric mean of the paired trials' ratios, so the table and the
verdicts below it say the same number (``bench compare``'s rps and p99_ms rows). The run table above them shows
medians and a ratio of medians, which one slow trial moves less and a skewed set of trials moves differently.

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
    """One scenario (``endpoint`` = ALL) or one of its endpoints: geometric means over each side's ok cells."""

    scenario: str
    endpoint: str
    base_rps: float | None  # successful req/s, geometric mean over trials
    head_rps: float | None
    base_p99_ms: float | None  # each trial's p99 (of its successful requests), geometric mean over trials
    head_p99_ms: float | None
    pairs: int  # trials where both sides were measured
    trial_ratios: tuple[float, ...] = ()  # head / base req/s of each paired trial (scenario rows only)

    @property
    def ratio(self) -> float | None:
        """head / base throughput (1.00: the same; below 1: head is slower): the geometric mean of the paired
        trials' ratios where there are pairs (drift cancels within a pair; bench compare's rps change + 1),
        else the ratio of the geometric means."""
        if self.trial_ratios:
            return statistics.geometric_mean(self.trial_ratios)
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
        ratios = tuple(
            by_trial[head][t] / by_trial[base][t] for t in trials if by_trial[base][t] > 0 and by_trial[head][t] > 0
        )
        row = _row(scenario, ALL, sides[base], sides[head], len(trials), None)
        out.append(dataclasses.replace(row, trial_ratios=ratios))
        names = list(dict.fromkeys(name for c in sides[base] + sides[head] for name in c.endpoints))
        out.extend(_row(scenario, name, sides[base], sides[head], len(trials), name) for name in names)
    return out


def _row(scenario: str, endpoint: str, base: list[Cell], head: list[Cell], pairs: int, name: str | None) -> Row:
    return Row(scenario, endpoint, _rps(base, name), _rps(head, name), _p99(base, name), _p99(head, name), pairs)


def _typical(values: list[float]) -> float | None:
    """bench.compare's figure of a side: the geometric mean over trials (the median when one is 0)."""
    if not values:
        return None
    return statistics.geometric_mean(values) if all(v > 0 for v in values) else statistics.median(values)


def _rps(cells: list[Cell], name: str | None) -> float | None:
    if name is None:
        return _typical([c.rps for c in cells])
    return _typical(
        [(e.requests - e.errors) / c.duration_s for c in cells if (e := c.endpoints.get(name)) and c.duration_s > 0]
    )


def _p99(cells: list[Cell], name: str | None) -> float | None:
    encoded = (
        [c.histogram for c in cells]
        if name is None
        else [c.endpoints[name].histogram for c in cells if name in c.endpoints]
    )
    # bench.compare's per-trial p99 (hist.trials_of), so the two print the same figure.
    found = [hist.trials_of((e,)).percentiles([0], [99.0])[0] for e in encoded if e]
    return _typical([value for value in found if value is not None])
