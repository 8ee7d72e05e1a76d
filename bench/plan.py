"""The order of a run's cells: pure data, no I/O.

A plan is one or more parts, each a cross product of variants x scenarios x settings x load points
(``bench run`` has one part; ``bench advice`` one per claim it measures). Settings are the factors a
run varies besides load: the pool size, the search index, the cache backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scenarios import Scenario
from targets import Variant

LoadPoint = tuple[int, float | None]  # (users, open-model rate or None)


@dataclass(frozen=True)
class Setting:
    """What a cell runs with besides its load; None everywhere means the run's own options."""

    pool_size: int | None = None  # None: the run's --pool-size
    index: bool | None = None  # None: the search index is left as the schema builds it (present)
    cache: str | None = None  # None: the run's --cache backend

    def labels(self) -> dict[str, str]:
        """The factors this setting fixes; they become part of the cell's identity in the results."""
        out: dict[str, str] = {}
        if self.pool_size is not None:
            out["pool"] = str(self.pool_size)
        if self.index is not None:
            out["index"] = "on" if self.index else "off"
        if self.cache is not None:
            out["cache"] = self.cache
        return out


@dataclass(frozen=True)
class Part:
    """One cross product of the plan. ``variants`` names a subset of the run's variants (empty: all)."""

    scenarios: Sequence[Scenario]
    settings: Sequence[Setting | None] = (None,)
    variants: Sequence[str] = ()
    title: str = ""


@dataclass(frozen=True)
class CellKey:
    variant: Variant
    scenario: Scenario
    users: int
    trial: int
    rate: float | None = None
    setting: Setting | None = None

    @property
    def load(self) -> str:
        return f"{self.rate:g} req/s" if self.rate else f"{self.users} users"

    @property
    def slug(self) -> str:
        extra = "".join(f"-{k}{v}" for k, v in (self.setting.labels() if self.setting else {}).items())
        return f"{self.variant.name}-{self.scenario.name}-{self.load}{extra}-{self.trial}".replace(" ", "")


def plan(
    variants: list[Variant],
    scenarios: list[Scenario],
    points: list[LoadPoint],
    trials: int,
    settings: Sequence[Setting | None] = (None,),
) -> list[CellKey]:
    """A one-part plan (``bench run``)."""
    return plan_parts(variants, [Part(scenarios, settings or (None,))], points, trials)


def plan_parts(variants: list[Variant], parts: list[Part], points: list[LoadPoint], trials: int) -> list[CellKey]:
    """Interleave: each trial runs every variant once per (part, scenario, setting, load point) before
    the next trial starts, and the variant order rotates between trials, so slow drift (thermal, a noisy
    neighbour, table bloat) lands on every variant alike instead of on whichever ran last. Settings
    (index on/off, pool sizes) alternate inside a trial for the same reason."""
    keys: list[CellKey] = []
    for trial in range(1, trials + 1):
        for part in parts:
            chosen = [v for v in variants if not part.variants or v.name in part.variants]
            shift = (trial - 1) % len(chosen) if chosen else 0
            order = chosen[shift:] + chosen[:shift]
            for scenario in part.scenarios:
                for setting in part.settings:
                    for users, rate in points:
                        keys.extend(CellKey(variant, scenario, users, trial, rate, setting) for variant in order)
    return keys
