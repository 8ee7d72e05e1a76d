"""Response bytes per request per endpoint in ``bench compare`` and ``bench check`` (issue 11, scope 2).

Golden files: tests/data/shop-aa-bytes.json is a real ``bench ab`` A/A of examples/shop (the same app as base and
head, 6 interleaved pairs of 1 + 2 s, 4 users, 2-vCPU AMD EPYC, load average 6.6-7.7), whose cells record bytes
per endpoint; tests/data/results-v1.json (through test_compare's builders) is a file from before they existed.
Pure logic and the CLI in-process: no server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from junitparser import Failure, JUnitXml
from test_compare import bench, golden, results, write
from test_gate_review import _mixed

from bench.budgets import check, parse
from bench.compare import (
    ALL,
    ENDPOINT_BYTES_METHOD,
    EXACT,
    MIX_METHOD,
    NO_CHANGE,
    SLOWER,
    Verdict,
    compare_files,
    compare_labels,
)
from bench.results import Results
from reports.fmt import md_cell

SHOP_AA = Path(__file__).parent / "data" / "shop-aa-bytes.json"
LISTING = "/categories/[id]/items"


def shop_aa() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SHOP_AA.read_text(encoding="utf-8"))
    return data


def _bytes(verdicts: list[Verdict]) -> dict[str, Verdict]:
    return {v.endpoint: v for v in verdicts if v.metric == "bytes_per_request"}


def _grown(data: dict[str, Any], endpoint: str, factor: float) -> dict[str, Any]:
    """Head's responses of ``endpoint`` ``factor`` times the size, in every window."""
    for cell in data["cells"]:
        if cell["variant"] == "head":
            part = cell["endpoints"][endpoint]
            part["bytes_received"] = round(part["bytes_received"] * factor)
    return data


def _sized(data: dict[str, Any], endpoint: str, size: int) -> dict[str, Any]:
    """Every one of head's successful responses of ``endpoint`` ``size`` bytes."""
    for cell in data["cells"]:
        if cell["variant"] == "head":
            part = cell["endpoints"][endpoint]
            part["bytes_received"] = (part["requests"] - part["errors"]) * size
    return data


def test_the_golden_a_a_file_holds_bytes_per_endpoint_and_its_old_sibling_does_not() -> None:
    new = results(shop_aa())
    assert all(part.bytes_received for cell in new.cells for part in cell.endpoints.values())
    old = results(golden())
    assert all(part.bytes_received is None for cell in old.cells for part in cell.endpoints.values())
    # Rewritten, an old file keeps saying "not recorded" (null), never 0 bytes.
    again = Results.from_dict(json.loads(json.dumps(old.to_dict())))
    assert all(part.bytes_received is None for cell in again.cells for part in cell.endpoints.values())


def test_the_golden_a_a_endpoints_window_means_spread_as_bench_compare_says() -> None:
    """The figures _endpoint_bytes' docstring quotes for examples/shop: every window mean within 0.3 % of its
    side's mean (/orders: -0.26..+0.11 %; the others within 0.06 %); the scenario's figure, a mean over the
    random mix, moved +2 % from base to head."""
    run = results(shop_aa())
    for label in ("base", "head"):
        cells = [c for c in run.cells if c.variant == label]
        for name in cells[0].endpoints:
            means = [(c.endpoints[name].bytes_received or 0) / c.endpoints[name].requests for c in cells]
            middle = sum(means) / len(means)
            assert max(abs(m / middle - 1) for m in means) < (0.003 if name == "/orders" else 0.0007), (label, name)


def test_an_unchanged_mixed_scenario_is_no_change_on_every_endpoint() -> None:
    done = compare_labels(results(shop_aa()), base="base", head="head", threshold=0.05)
    shown = _bytes(done.verdicts)
    assert set(shown) == {"/items/[id]", LISTING, "/orders"}  # no scenario-wide figure beside them
    for verdict in shown.values():
        assert (verdict.verdict, verdict.method) == (NO_CHANGE, ENDPOINT_BYTES_METHOD), verdict
        assert verdict.change is not None and abs(verdict.change) < 0.01  # measured: within 0.3 %
    assert shown[LISTING].base == pytest.approx(1768, abs=1)


def test_a_mix_that_moved_the_scenario_figure_13_percent_is_no_change_per_endpoint() -> None:
    """test_gate_review's case (the same responses, another random mix per window: the scenario's bytes per
    request +13 %), now with bytes per endpoint recorded: each endpoint's size is what it was."""

    def recorded(data: dict[str, Any], sizes: tuple[int, int]) -> dict[str, Any]:
        for cell in data["cells"]:
            for name, size in zip(("/small", "/big"), sizes, strict=True):
                part = cell["endpoints"][name]
                part["bytes_received"] = (part["requests"] - part["errors"]) * size
        return data

    shares = (0.10, 0.30, 0.15, 0.25, 0.12, 0.20), (0.30, 0.18, 0.28, 0.22, 0.35, 0.25)
    base, head = (recorded(_mixed(golden(), mix, (400, 2000)), (400, 2000)) for mix in shares)
    done = compare_files(results(base), results(head), base_name="b", head_name="h", threshold=0.10)
    assert {name: v.verdict for name, v in _bytes(done.verdicts).items()} == {"/small": NO_CHANGE, "/big": NO_CHANGE}
    bigger = recorded(_mixed(golden(), shares[1], (400, 4000)), (400, 4000))
    done = compare_files(results(base), results(bigger), base_name="b", head_name="h", threshold=0.10)
    shown = _bytes(done.verdicts)
    assert (shown["/small"].verdict, shown["/big"].verdict) == (NO_CHANGE, SLOWER)
    assert shown["/big"].evidence == ["/big: 2,000 → 4,000 bytes per request"]


def test_an_endpoint_that_grew_fails_the_gate_with_its_bytes_in_every_output(tmp_path: Path) -> None:
    grown = _sized(shop_aa(), LISTING, 9880)
    done = compare_labels(results(grown), base="base", head="head", threshold=0.05)
    shown = _bytes(done.verdicts)
    assert shown[LISTING].verdict == SLOWER and shown[LISTING] in done.regressions
    line = f"{LISTING}: 1,768 → 9,880 bytes per request"
    assert shown[LISTING].evidence == [line]
    assert shown["/items/[id]"].verdict == shown["/orders"].verdict == NO_CHANGE
    run = write(tmp_path, "ab.json", grown)
    name = f"locustfile.py · {LISTING} · 4 users: bytes_per_request"
    terminal = bench("compare", str(run))
    assert terminal.exit_code == 1, terminal.output
    assert f"FAIL {name}" in terminal.output and line in terminal.output
    markdown = bench("compare", str(run), "-f", "md")
    assert "#### Why" in markdown.output and md_cell(line) in markdown.output  # brackets escaped
    document = json.loads(bench("compare", str(run), "-f", "json").output)
    found = next(v for v in document["verdicts"] if v["metric"] == "bytes_per_request" and v["endpoint"] == LISTING)
    assert found["verdict"] == SLOWER and found["evidence"] == [line] and found["method"] == ENDPOINT_BYTES_METHOD
    junit = tmp_path / "c.xml"
    assert bench("compare", str(run), "--junit", str(junit)).exit_code == 1
    cases = {case.name: case for case in next(iter(JUnitXml.fromfile(str(junit))))}
    failure = cases[name].result[0]
    assert isinstance(failure, Failure) and line in (failure.text or "")


def test_a_small_growth_within_the_threshold_is_no_change_and_one_window_a_side_still_judges() -> None:
    done = compare_labels(results(_grown(shop_aa(), "/orders", 1.03)), base="base", head="head", threshold=0.05)
    assert _bytes(done.verdicts)["/orders"].verdict == NO_CHANGE  # 3 % < 5 %: within the threshold
    one = shop_aa()
    one["cells"] = [c for c in one["cells"] if c["trial"] == 1]
    done = compare_labels(results(_grown(one, "/orders", 1.2)), base="base", head="head", threshold=0.05)
    assert _bytes(done.verdicts)["/orders"].verdict == SLOWER  # no wobble known: the threshold alone


def test_an_old_file_keeps_the_scenario_wide_figure_also_against_a_new_one() -> None:
    old, head = golden(), golden()
    for cell in head["cells"]:
        cell["bytes_received"] = int(cell["bytes_received"] * 1.2)
    done = compare_files(results(old), results(head), base_name="b", head_name="h", threshold=0.10)
    assert {e: (v.verdict, v.method) for e, v in _bytes(done.verdicts).items()} == {ALL: (SLOWER, EXACT)}
    new = golden()  # the same windows, with bytes per endpoint recorded: judged per endpoint
    for cell in new["cells"]:
        for part in cell["endpoints"].values():
            part["bytes_received"] = cell["bytes_received"]
    done = compare_files(results(new), results(new), base_name="b", head_name="h", threshold=0.10)
    assert {e: v.method for e, v in _bytes(done.verdicts).items()} == {"/db": ENDPOINT_BYTES_METHOD}
    # One side old: the other's per-endpoint figures have nothing to meet, so both are judged per scenario.
    done = compare_files(results(old), results(new), base_name="b", head_name="h", threshold=0.10)
    assert {e: v.method for e, v in _bytes(done.verdicts).items()} == {ALL: EXACT}
    mixed = _mixed(golden(), (0.10, 0.30, 0.15, 0.25, 0.12, 0.20), (400, 2000))
    done = compare_files(results(mixed), results(mixed), base_name="b", head_name="h", threshold=0.10)
    assert {e: v.method for e, v in _bytes(done.verdicts).items()} == {ALL: MIX_METHOD}


def test_a_budget_on_an_endpoints_bytes_per_request(tmp_path: Path) -> None:
    run = results(shop_aa())
    rules = parse({"locustfile.py": {LISTING: {"bytes_per_request": "<= 2000"}}}, "b.toml")
    outcomes = check(run, rules)
    assert outcomes and all(o.ok for o in outcomes)
    assert outcomes[0].measured == pytest.approx(1768, abs=1)
    tight = check(run, parse({"locustfile.py": {LISTING: {"bytes_per_request": "< 1000"}}}, "b.toml"))
    assert tight and not any(o.ok for o in tight) and "bytes_per_request = 1768 (breached < 1000)" in tight[0].message
    old = check(results(golden()), parse({"db": {"/db": {"bytes_per_request": "<= 2000"}}}, "b.toml"))
    assert old and not any(o.ok for o in old) and "not measured" in old[0].message
    budget = tmp_path / "b.toml"
    budget.write_text(f'["locustfile.py"."{LISTING}"]\nbytes_per_request = "<= 1000"\n', encoding="utf-8")
    shown = bench("check", str(write(tmp_path, "ab.json", shop_aa())), "--budget", str(budget))
    assert shown.exit_code == 1 and "bytes_per_request" in shown.output, shown.output
    budget.write_text('[db."/db"]\nbytes_per_requests = "<= 1000"\n', encoding="utf-8")
    shown = bench("check", str(write(tmp_path, "old.json", golden())), "--budget", str(budget))
    assert shown.exit_code == 2 and "bytes_per_request" in shown.output  # the field list names it
