"""The order of a run's cells: pure data, no I/O.

A plan is one or more parts, each a cross product of variants x scenarios x settings x load points
(``bench run`` has one part; ``bench advice`` one per claim it measures). Settings are the factors a
run varies besides load: the pool size, the search index, the cache backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from scenarios import Scenario
from targets import Variant

LoadPoint = tuple[int, float | None]  # (users, open-model rate or None)

# The variants whose behaviour depends on the cache backend. Any other variant ignores it, so a cache
# setting does not apply to it: it runs once, unlabelled, where a cache sweep runs `cached` per backend.
CACHE_VARIANTS = frozenset({"cached"})


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

    def applied_to(self, variant: str) -> Setting | None:
        """The factors of this setting that change ``variant``'s cells (None: none of them)."""
        kept = self if self.cache is None or variant in CACHE_VARIANTS else replace(self, cache=None)
        return None if kept == Setting() else kept


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
    (index on/off, pool sizes, cache backends) alternate inside a trial for the same reason. A variant
    a setting does not change (see Setting.applied_to) runs once per trial, not once per value."""
    keys: list[CellKey] = []
    for trial in range(1, trials + 1):
        seen: set[tuple[int, int, int, float | None, Setting | None]] = set()
        for part in parts:
            chosen = [v for v in variants if not part.variants or v.name in part.variants]
            shift = (trial - 1) % len(chosen) if chosen else 0
            order = chosen[shift:] + chosen[:shift]
            for scenario in part.scenarios:
                for setting in part.settings:
                    for users, rate in points:
                        for variant in order:
                            applied = setting.applied_to(variant.name) if setting else None
                            identity = (id(variant), id(scenario), users, rate, applied)
                            if identity not in seen:
                                seen.add(identity)
                                keys.append(CellKey(variant, scenario, users, trial, rate, applied))
    return keys
