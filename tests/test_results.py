"""The results format: round-trips, refuses to overwrite, refuses what it cannot read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

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
    path.write_bytes(b"\x89PNG\xff")
    with pytest.raises(BenchError, match="not UTF-8 text"):
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


def test_unknown_fields_at_every_level_are_ignored_when_read_and_kept_when_rewritten(tmp_path: Path) -> None:
    # What a newer dbbench might add: a key on the file, its metadata, a check, a cell and an endpoint.
    data = sample_results().to_dict()
    data["baselines"] = [{"name": "main"}]
    data["metadata"]["runner_os"] = "linux"
    data["checks"][0]["duration_s"] = 0.4
    data["cells"][0]["failure_histogram"] = ""
    data["cells"][0]["endpoints"]["/db"]["p99_target_ms"] = 5
    path = tmp_path / "newer.json"
    path.write_text(json.dumps(data))
    loaded = results.load(path)
    # Read as if the new keys were not there; they wait in unknown_fields for a rewrite.
    sample = sample_results()
    assert (loaded.cells, loaded.checks) == (sample.cells, sample.checks)
    assert loaded.cells[0].unknown_fields == {"failure_histogram": ""}
    rewritten = tmp_path / "rewritten.json"
    results.dump(loaded, rewritten)
    assert json.loads(rewritten.read_text()) == data


def _mutations() -> dict[str, tuple[Callable[[dict[str, Any]], object], str]]:
    cut = histogram([800, 900, 1000])[:30]
    return {
        "version as a string": (lambda d: d.update(version="2"), "field 'version' must be an integer, got a string"),
        "version missing": (lambda d: d.pop("version"), "field 'version' is missing (expected an integer)"),
        "cells as an object": (
            lambda d: d.update(cells={"0": d["cells"][0]}),
            "field 'cells' must be a list, got an object (keys '0')",
        ),
        "metadata as a list": (lambda d: d.update(metadata=[]), "field 'metadata' must be an object, got a list"),
        "a cell that is not an object": (lambda d: d["cells"].append(7), "cells[1]: must be an object, got an integer"),
        "a required field missing": (
            lambda d: d["cells"][0].pop("users"),
            "cells[0] (pooled/db): field 'users' is missing (expected an integer)",
        ),
        "a count as a string": (
            lambda d: d["cells"][0].update(requests="6"),
            "cells[0] (pooled/db): field 'requests' must be an integer, got a string ('6')",
        ),
        "a count as a boolean": (
            lambda d: d["cells"][0].update(late=True),
            "field 'late' must be an integer, got a boolean (True)",
        ),
        "a negative count": (
            lambda d: d["cells"][0].update(requests=-6),
            "cells[0] (pooled/db): field 'requests' must not be negative",
        ),
        "a negative error count": (
            lambda d: d["cells"][0]["errors"].update({"HTTPError: 500": -1}),
            """field 'errors["HTTPError: 500"]' must not be negative""",
        ),
        "an optional number as a string": (
            lambda d: d["cells"][0].update(rate="fast"),
            "field 'rate' must be a number or null, got a string ('fast')",
        ),
        "duration 0 with requests": (
            lambda d: d["cells"][0].update(duration_s=0),
            "cells[0] (pooled/db): field 'duration_s' is 0 with 6 requests",
        ),
        "a cut histogram": (
            lambda d: d["cells"][0].update(histogram=cut),
            "cells[0] (pooled/db): field 'histogram' is not an encoded HDR histogram dbbench can read: cut",
        ),
        "a cut endpoint histogram": (
            lambda d: d["cells"][0]["endpoints"]["/db"].update(histogram=cut),
            """cells[0] (pooled/db): field 'endpoints["/db"].histogram' is not an encoded HDR histogram""",
        ),
        "a histogram over a wider range than dbbench records": (
            lambda d: d["cells"][0].update(histogram=hist.encode(HdrHistogram(1, 10**12, 2))),
            "field 'histogram' is not an encoded HDR histogram dbbench can read: range up to",
        ),
        "not base64 at all": (
            lambda d: d["cells"][0].update(service_histogram="not a histogram"),
            "field 'service_histogram' is not an encoded HDR histogram dbbench can read: cut or corrupted",
        ),
        # The free-form parts: what the reports read in them is checked too.
        "metadata's config as null": (
            lambda d: d["metadata"].update(config=None),
            "field 'metadata.config' must be an object, got null",
        ),
        "a config list of the wrong kind": (
            lambda d: d["metadata"]["config"].update(users=["16"]),
            "field 'metadata.config.users[0]' must be an integer, got a string",
        ),
        "target statistics of the wrong kind": (
            lambda d: d["cells"][0].update(target_stats={"endpoints": {"/db": {"requests": "x"}}}),
            """cells[0] (pooled/db): field 'target_stats.endpoints["/db"].requests' must be an integer""",
        ),
        "a window edge of the wrong kind": (
            lambda d: d["cells"][0].update(target_window={"open": {"refresh": {"durations_ms": "x"}}}),
            "field 'target_window.open.refresh.durations_ms' must be a list or null, got a string",
        ),
        "a pg_stat_statements row without its query": (
            lambda d: d["cells"][0].update(pg_statements=[{"calls": 1}]),
            "cells[0] (pooled/db): field 'pg_statements[0].query' is missing (expected a string)",
        ),
        "an n+1 suspect without its message": (
            lambda d: d["checks"][0].update(info={"nplus1_suspects": [{"endpoint": "/db"}]}),
            "checks[0] (broken): field 'info.nplus1_suspects[0].message' is missing",
        ),
        "a profile with neither frames nor an error": (
            lambda d: d.update(profiles=[{"scenario": "db", "variant": "pooled"}]),
            "field 'profiles[0].top_frames' is missing",
        ),
        "a check's flag as a string": (
            lambda d: d["checks"][0].update(ok="no"),
            "checks[0] (broken): field 'ok' must be true or false, got a string ('no')",
        ),
    }


@pytest.mark.parametrize("case", list(_mutations()))
def test_a_damaged_file_is_one_line_naming_the_file_the_cell_and_the_field(tmp_path: Path, case: str) -> None:
    damage, expected = _mutations()[case]
    data = sample_results().to_dict()
    damage(data)
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(data))
    before = path.read_bytes()
    with pytest.raises(BenchError) as raised:
        results.load(path)
    message = str(raised.value)
    assert message.startswith(f"damaged results file {path}: "), message
    assert expected in message, message
    assert "\n" not in message
    assert path.read_bytes() == before


def test_the_file_is_what_to_dict_says_unknown_fields_and_all() -> None:
    # results.encode writes with orjson, one dataclass level at a time (a run saves after every cell).
    cell = Cell("pooled", "db", 32, 1, status="ok", duration_s=0.5, requests=10, errors={})
    cell.endpoints = {"/db": EndpointStats(10, 0, "HISTFAKE")}
    cell.unknown_fields = {"written_by_a_newer_dbbench": [1, 2]}
    loaded = Results(metadata={"config": {"trials": 3}, "by_number": {1: "one"}}, cells=[cell])
    loaded.unknown_fields = {"newer": {"kept": True}}
    assert json.loads(results.encode(loaded)) == json.loads(json.dumps(loaded.to_dict()))
