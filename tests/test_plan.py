"""Run planning is pure: the interleaved order and the input validation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.plan import plan
from bench.runner import RunConfig, validate_config
from scenarios import SCENARIOS
from targets import VARIANTS


def test_plan_interleaves_and_rotates_variants_between_trials() -> None:
    variants = list(VARIANTS)[:3]
    scenarios = [SCENARIOS.get("db"), SCENARIOS.get("fortunes")]
    keys = plan(variants, scenarios, [(8, None), (32, None)], trials=3)
    assert len(keys) == 3 * 2 * 2 * 3
    assert Counter((k.variant.name, k.scenario.name, k.users) for k in keys) == {
        (v.name, s.name, u): 3 for v in variants for s in scenarios for u in (8, 32)
    }
    first = [k.variant.name for k in keys[:3]]
    second_trial = [k.variant.name for k in keys if k.trial == 2][:3]
    assert first == [v.name for v in variants]
    assert second_trial == first[1:] + first[:1]
    # Every trial finishes all its cells before the next trial starts.
    assert [k.trial for k in keys] == sorted(k.trial for k in keys)


def config(**overrides: object) -> RunConfig:
    base: dict[str, object] = dict(
        variants=list(VARIANTS),
        scenarios=list(SCENARIOS),
        users=[8],
        duration_s=1.0,
        warmup_s=0.0,
        trials=1,
        pool_size=10,
        output=Path("x.json"),
    )
    base.update(overrides)
    return RunConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"variants": []}, "no variants"),
        ({"duration_s": 0.0}, "--duration"),
        ({"trials": 0}, "--trials"),
        ({"pool_size": 0}, "--pool-size"),
        ({"warmup_s": -1.0}, "--warmup"),
    ],
)
def test_validate_config_rejects_bad_values(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(BenchError, match=message):
        validate_config(config(**overrides))


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(BenchError, match="unknown scenario 'nope'; choose from db, queries"):
        SCENARIOS.get("nope")
    with pytest.raises(ValueError, match="pooled"):
        VARIANTS.get("nope")
