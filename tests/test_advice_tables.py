"""The advice tables' verdict words from results (pure): a pool size is "best" only when it stands out of the
noise, and the footer names the sizes a sweep measured (fresh-eyes findings of 2026-12-01)."""

from __future__ import annotations

from bench.results import Cell, Results
from reports import advice, fmt, markdown, summary


def sweep(rates: dict[int, list[float]]) -> Results:
    out = Results()
    out.metadata = {
        "config": {"variants": ["pooled"], "scenarios": {"db": {}}, "trials": 3},
        "pool": {"size": 1, "swept": [], "max_overflow": 0, "threadpool_size": 40},
    }
    out.cells = [
        Cell("pooled", "db", 32, t, status="ok", duration_s=1.0, requests=round(rps), errors={},
             settings={"pool": str(size)})
        for size, each in rates.items()
        for t, rps in enumerate(each, 1)
    ]  # fmt: skip
    return out


def best(loaded: Results) -> str:
    table = advice.pool_table(summary.rows(loaded))
    assert table is not None
    return table.rows[0][-1]


def test_a_size_within_the_best_ones_noise_is_named_beside_it() -> None:
    # 5 beats 1 clearly; 10 is 2 % above 5 on the median but their trials overlap.
    assert best(sweep({1: [500, 510, 490], 5: [1000, 1030, 980], 10: [1020, 990, 1040]})) == "5, 10 (within noise)"


def test_a_size_out_of_every_other_ones_noise_stands_alone() -> None:
    assert best(sweep({1: [500, 510, 490], 5: [1000, 1010, 990], 10: [700, 710, 690]})) == "5"


def test_one_trial_names_the_highest_median_alone() -> None:
    assert best(sweep({1: [500], 5: [1000], 10: [1010]})) == "10"


def test_the_footer_names_the_swept_sizes_not_the_configured_one() -> None:
    loaded = sweep({1: [500, 510, 490], 5: [1000, 1010, 990]})
    assert fmt.swept_pool_sizes(loaded) == [1, 5]
    assert "pool sizes 1, 5 (swept; max_overflow 0, threadpool 40)" in markdown.render(loaded)
    single = sweep({10: [1000, 1010, 990]})
    single.metadata["pool"]["size"] = 10
    assert "pool size 10 (max_overflow 0" in markdown.render(single)  # one size: nothing was swept
