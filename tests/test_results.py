"""The results format: round-trips, refuses to overwrite, refuses what it cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import hist, results
from bench.errors import BenchError
from bench.results import Cell, EndpointStats, Results, VariantCheck


def histogram(values: list[int]) -> str:
    h = hist.new()
    for value in values:
        h.record_value(value)
    return hist.encode(h)


def sample_results() -> Results:
    encoded = histogram([800, 900, 1000, 1500, 25_000])
    cell = Cell(
        "pooled",
        "db",
        16,
        1,
        "ok",
        warmup_s=1.0,
        duration_s=2.0,
        requests=6,
        errors={"HTTPError: 500": 1},
        histogram=encoded,
        endpoints={"/db": EndpointStats(6, 1, encoded)},
        bytes_received=200,
        load_cpu_s=1.5,
    )
    check = VariantCheck("broken", False, ["/fortunes: <script> not escaped"], {"variant": "broken"})
    return Results(
        {"config": {"variants": ["pooled", "broken"], "scenarios": {"db": "x"}, "users": [16]}},
        [check],
        [cell],
    )


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    original = sample_results()
    results.dump(original, path)
    loaded = results.load(path)
    assert loaded == original
    assert loaded.cells[0].rps == 2.5  # successful responses only: 5 of 6 in 2 s
    assert loaded.cells[0].error_count == 1
    assert hist.percentile_ms(hist.decode(loaded.cells[0].histogram), 50) == pytest.approx(1.0, rel=0.01)


def test_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("precious")
    with pytest.raises(BenchError, match="already exists"):
        results.dump(sample_results(), path)
    assert path.read_text() == "precious"
    results.dump(sample_results(), path, force=True)
    assert results.load(path).cells


def test_refuses_newer_versions_and_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    data = sample_results().to_dict()
    data["version"] = results.FORMAT_VERSION + 1
    path.write_text(json.dumps(data))
    with pytest.raises(BenchError, match="newer than this dbbench"):
        results.load(path)
    path.write_text(json.dumps({"benchmarks": []}))
    with pytest.raises(BenchError, match="not a dbbench results file"):
        results.load(path)
    path.write_text("{not json")
    with pytest.raises(BenchError, match="not valid JSON"):
        results.load(path)
    with pytest.raises(BenchError, match="does not exist"):
        results.load(tmp_path / "missing.json")


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "out" / "r.json"
    results.dump(sample_results(), path)
    results.dump(sample_results(), path, force=True)
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]


def test_version_1_files_from_a_real_run_still_load() -> None:
    """Golden file: written by dbbench's first format (3 variants x 2 scenarios, 8 users)."""
    loaded = results.load(Path(__file__).parent / "data" / "results-v1.json")
    assert {(c.variant, c.scenario) for c in loaded.cells} == {
        (v, s) for v in ("pooled", "nopool", "sync") for s in ("db", "fortunes")
    }
    assert all(c.rate is None and c.model == "closed" and c.target_cpu_s is None for c in loaded.cells)
    pooled = next(c for c in loaded.cells if c.variant == "pooled" and c.scenario == "db")
    assert pooled.rps > 0 and hist.count(hist.decode(pooled.histogram)) > 0
