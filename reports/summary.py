"""Pure shaping: results file -> flat rows, one per (variant, scenario, users), trials pooled.

Throughput is the median of the trials' rates (robust to one disturbed trial); latency
percentiles come from the trials' histograms merged, never from averaging percentiles.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from bench import hist
from bench.results import Cell, Results


@dataclass(frozen=True)
class Row:
    variant: str
    scenario: str
    users: int
    trials: int
    rps: float
    rps_min: float
    rps_max: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None
    requests: int
    errors: int
    error_rate: float
    status: str  # "ok", or "failed" when no trial of the cell succeeded
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _order(results: Results) -> tuple[dict[str, int], dict[str, int]]:
    config = results.metadata.get("config", {})
    variants = {name: i for i, name in enumerate(config.get("variants", []))}
    scenarios = {name: i for i, name in enumerate(config.get("scenarios", {}))}
    return variants, scenarios


def _row(key: tuple[str, str, int], cells: list[Cell]) -> Row:
    ok = [c for c in cells if c.ok]
    if not ok:
        reasons = sorted({c.reason for c in cells})
        return Row(
            *key,
            trials=0,
            rps=0.0,
            rps_min=0.0,
            rps_max=0.0,
            p50_ms=None,
            p90_ms=None,
            p99_ms=None,
            p999_ms=None,
            max_ms=None,
            requests=0,
            errors=0,
            error_rate=0.0,
            status="failed",
            reason="; ".join(reasons),
        )
    merged = hist.merge(c.histogram for c in ok)
    rates = [c.rps for c in ok]
    requests = sum(c.requests for c in ok)
    errors = sum(c.error_count for c in ok)
    failed = len(cells) - len(ok)
    return Row(
        *key,
        trials=len(ok),
        rps=statistics.median(rates),
        rps_min=min(rates),
        rps_max=max(rates),
        p50_ms=hist.percentile_ms(merged, 50.0),
        p90_ms=hist.percentile_ms(merged, 90.0),
        p99_ms=hist.percentile_ms(merged, 99.0),
        p999_ms=hist.percentile_ms(merged, 99.9),
        max_ms=(merged.get_max_value() / 1000.0) if hist.count(merged) else None,
        requests=requests,
        errors=errors,
        error_rate=errors / requests if requests else 0.0,
        status="ok",
        reason=f"{failed} trial(s) failed" if failed else "",
    )


def rows(results: Results) -> list[Row]:
    """Every (variant, scenario, users) the run asked for, including variants that failed their
    contract check (status "failed", the check's first problem as the reason)."""
    groups: dict[tuple[str, str, int], list[Cell]] = {}
    for cell in results.cells:
        groups.setdefault((cell.variant, cell.scenario, cell.users), []).append(cell)
    config = results.metadata.get("config", {})
    for check in results.checks:
        if check.ok:
            continue
        reason = "contract check failed: " + (check.problems[0] if check.problems else "unknown")
        for scenario in config.get("scenarios", {}):
            for users in config.get("users", []):
                groups[(check.variant, scenario, users)] = [
                    Cell(check.variant, scenario, users, 0, status="failed", reason=reason)
                ]
    variants, scenarios = _order(results)
    ordered = sorted(
        groups,
        key=lambda k: (
            scenarios.get(k[1], len(scenarios)),
            k[1],
            k[2],
            variants.get(k[0], len(variants)),
            k[0],
        ),
    )
    return [_row(key, groups[key]) for key in ordered]


def failed_checks(results: Results) -> list[tuple[str, list[str]]]:
    return [(check.variant, check.problems) for check in results.checks if not check.ok]


def by_scenario(items: Iterable[Row]) -> dict[tuple[str, int], list[Row]]:
    grouped: dict[tuple[str, int], list[Row]] = {}
    for row in items:
        grouped.setdefault((row.scenario, row.users), []).append(row)
    return grouped
