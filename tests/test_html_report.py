"""The HTML report from results files: structure (golden outline), escaping, failed cells, self-containment.

Regenerate the golden outline after an intended change with DBBENCH_UPDATE_GOLDEN=1 and read the diff.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest
from html_structure import chart_specs, outline
from markupsafe import escape
from typer.testing import CliRunner

import cli
from bench import results
from bench.results import Cell, Results
from reports import fmt
from reports.base import FORMATS, renderer

DATA = Path(__file__).parent / "data"
GOLDEN_RESULTS = DATA / "results-v1.json"
GOLDEN_OUTLINE = DATA / "report-v1.outline.json"
EVIL = "<script>alert(1)</script>"
MAX_BYTES = 5_000_000  # issue 12: a default run's report stays under 5 MB


@pytest.fixture(scope="module")
def golden_html() -> str:
    return renderer("html").render(results.load(GOLDEN_RESULTS))


def test_the_outline_matches_the_golden_file(golden_html: str) -> None:
    found = outline(golden_html)
    if os.environ.get("DBBENCH_UPDATE_GOLDEN"):
        lines = ",\n".join(json.dumps(item, ensure_ascii=False) for item in found)
        GOLDEN_OUTLINE.write_text(f"[\n{lines}\n]\n", encoding="utf-8")
    assert found == json.loads(GOLDEN_OUTLINE.read_text(encoding="utf-8"))


def test_every_scenario_has_a_throughput_and_a_latency_chart(golden_html: str) -> None:
    specs = chart_specs(golden_html)
    assert set(specs) == {"rps-db-8-users", "lat-db-8-users", "rps-fortunes-8-users", "lat-fortunes-8-users"}
    rps = specs["rps-db-8-users"]
    assert [row["variant"] for row in rps["datasets"]["rows"]] == ["pooled", "nopool", "sync"]
    assert all(row["rps"] > 0 for row in rps["datasets"]["rows"])
    latency = specs["lat-db-8-users"]
    assert latency["layer" if "layer" in latency else "encoding"]
    assert latency["encoding"]["x"]["scale"]["type"] == "log"
    points = latency["datasets"]["rows"]
    assert {row["variant"] for row in points} == {"pooled", "nopool", "sync"}
    assert min(row["percentile"] for row in points) == 50.0
    # Nothing past the samples: 1/(1-p) never exceeds the number of requests in the histogram.
    assert all(row["x"] <= 100_000 for row in points)


def test_one_file_that_needs_no_network(golden_html: str) -> None:
    assert len(golden_html.encode()) < MAX_BYTES
    assert not re.search(r"<script[^>]+src=", golden_html)
    assert not re.search(r"<link[^>]+href=", golden_html)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", golden_html)
    assert "window.vegaEmbed" in golden_html  # the charting library is inlined


def evil_results() -> Results:
    """A user's locustfile named like a script, a variant label too, and a statement carrying one."""
    loaded = results.load(GOLDEN_RESULTS)
    cells = []
    for cell in loaded.cells:
        made = copy.deepcopy(cell)
        if made.scenario == "db":
            made.scenario = EVIL
        if made.variant == "sync":
            made.variant = f'sync"><img src=x onerror=alert(2)>{EVIL}'
        cells.append(made)
    cells.append(Cell(EVIL, EVIL, 8, 1, "failed", reason=f"HTTP 500: {EVIL}", requests=10,
                      errors={f"HTTP 500 GET /{EVIL}": 10}, error_samples={f"HTTP 500 GET /{EVIL}": EVIL}))  # fmt: skip
    loaded.cells = cells
    loaded.metadata["config"]["scenarios"] = {EVIL: EVIL, "fortunes": "x"}
    loaded.metadata["locustfiles"] = [{"path": f"/tmp/{EVIL}.py", "user_classes": [EVIL]}]
    loaded.explains = [{"query": f"SELECT '{EVIL}'", "params": [EVIL], "params_source": "given", "plan": {"x": EVIL},
                        "total_ms": 1.0, "planning_ms": 0.1, "node_type": EVIL, "shared_hit": 1, "shared_read": 0,
                        "error": None, "setting": None}]  # fmt: skip
    loaded.profiles = [{"variant": EVIL, "scenario": EVIL, "requests": 1, "directory": f"{EVIL}.profiles",
                        "files": {"html": f"{EVIL}.html"}, "top_frames": [{"function": EVIL, "file": EVIL,
                        "line": 1, "self_s": 1.0, "self_share": 0.5}]}]  # fmt: skip
    return loaded


def test_no_name_a_user_gave_becomes_markup() -> None:
    html = renderer("html").render(evil_results())
    assert EVIL not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text
    # The scripts on the page are the library, the loader and the charts' JSON blocks: nothing else.
    scripts = re.findall(r"<script[^>]*>", html)
    assert len(scripts) == 2 + len(chart_specs(html))
    assert all(tag in ("<script>",) or tag.startswith('<script type="application/json"') for tag in scripts)
    # Inside a chart's JSON, "<" is \u003c, so "</script>" in a label cannot close the block.
    specs = chart_specs(html)
    assert any(EVIL in json.dumps(spec, ensure_ascii=False) for spec in specs.values())


def test_the_markdown_report_shows_user_names_as_text_too() -> None:
    # Markdown lands in $GITHUB_STEP_SUMMARY and on PR pages, where GitHub renders raw HTML: escaped as well.
    text = renderer("md").render(evil_results())
    assert EVIL not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_a_failed_cell_is_marked_failed_never_drawn_as_throughput() -> None:
    html = renderer("html").render(evil_results())
    failed_rows = [
        row
        for spec in chart_specs(html).values()
        for row in spec.get("datasets", {}).get("rows", [])
        if row.get("status") == "failed"
    ]
    assert failed_rows and all(row["rps"] is None and row["low"] is None for row in failed_rows)
    assert "1 failed cell(s)" in html


def test_every_format_is_registered_and_an_unknown_one_is_one_line(tmp_path: Path) -> None:
    assert list(FORMATS) == ["terminal", "json", "md", "html"]
    out = tmp_path / "r.html"
    result = CliRunner().invoke(cli.app, ["report", str(GOLDEN_RESULTS), "--format", "html", "-o", str(out)])
    assert result.exit_code == 0 and out.stat().st_size > 100_000, result.output
    result = CliRunner().invoke(cli.app, ["report", str(GOLDEN_RESULTS), "--format", "pdf"])
    assert result.exit_code == 2
    assert "unknown --format 'pdf'; choose from terminal, json, md, html" in result.output


def test_the_html_file_sits_beside_the_results_file() -> None:
    assert cli.html_path(Path("results/x.json")) == Path("results/x.html")
    assert cli.html_path(Path("out")) == Path("out.html")
    assert cli.html_path(Path("odd.html")) == Path("odd.html.html")  # never the results file itself


def test_templates_are_package_data() -> None:
    from importlib import resources

    templates = resources.files("reports").joinpath("templates")
    assert templates.joinpath("report.html.j2").is_file() and templates.joinpath("base.html.j2").is_file()
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert 'reports = ["templates/*.j2"]' in pyproject


def swept_results() -> Results:
    """results-v1's db cells at three loads, pooled also at three pool sizes and with its index on and off."""
    loaded = results.load(GOLDEN_RESULTS)
    base = [cell for cell in loaded.cells if cell.scenario == "db"]
    cells = []
    for users, share in ((2, 0.5), (8, 1.0), (32, 0.95)):
        for cell in base:
            made = copy.deepcopy(cell)
            made.users, made.requests = users, int(cell.requests * share)
            cells.append(made)
    for size, share in (("1", 0.4), ("5", 0.9), ("10", 1.0)):
        made = copy.deepcopy(base[0])
        made.settings = {"pool": size}
        made.requests = int(made.requests * share)
        cells.append(made)
    for state, share in (("on", 1.0), ("off", 0.2)):
        made = copy.deepcopy(base[0])
        made.scenario, made.settings, made.requests = "search", {"index": state}, int(made.requests * share)
        cells.append(made)
    loaded.cells = cells
    loaded.metadata["config"]["users"] = [2, 8, 32]
    return loaded


def test_sweeps_mark_the_knee_and_the_advice_is_drawn_in_pairs() -> None:
    specs = chart_specs(renderer("html").render(swept_results()))
    load = next(spec for name, spec in specs.items() if name.startswith("sweep-") and name.endswith("-load"))
    rows = load["datasets"]["rows"]
    assert {row["variant"] for row in rows} == {"pooled", "nopool", "sync"}
    # The knee: the lightest load within 90 % of the peak (8 users here; 32 is no better).
    assert {row["load"] for row in rows if row["knee"]} == {8}
    assert any(mark == "point" for mark in [layer["mark"]["type"] for layer in load["layer"]])
    pool = next(spec for name, spec in specs.items() if name.startswith("advice-pooling"))
    assert sorted(row["size"] for row in pool["datasets"]["rows"]) == [1, 5, 10]
    index = next(spec for name, spec in specs.items() if name.startswith("advice-indexing"))
    sides = {row["side"]: row["value"] for row in index["datasets"]["rows"]}
    assert set(sides) == {"index on", "index off"} and sides["index on"] > sides["index off"]


@pytest.mark.parametrize("command", [["run", "--variants", "pooled"], ["advice", "--claims", "pool"]])
def test_run_and_advice_write_the_html_unless_told_not_to(command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    monkeypatch.setattr(cli, "_execute", lambda config, html=True: seen.append(html))
    assert CliRunner().invoke(cli.app, command).exit_code == 0
    assert CliRunner().invoke(cli.app, [*command, "--no-html"]).exit_code == 0
    assert seen == [True, False]


def test_a_ratio_marked_within_noise_is_explained_on_the_page() -> None:
    # Three interleaved trials where databases wobbles around pooled: its ratio carries the mark, and the
    # page says what the mark means (as the terminal and Markdown reports do); one trial: neither.
    def run(trials: int) -> Results:
        out = Results()
        out.metadata = {"config": {"variants": ["pooled", "databases"], "scenarios": {"db": {}}, "trials": trials}}
        rates = {"pooled": [1000.0, 1010.0, 990.0], "databases": [1100.0, 900.0, 1020.0]}
        out.cells = [
            Cell(v, "db", 32, t, status="ok", duration_s=1.0, requests=round(rps), errors={})
            for v, each in rates.items()
            for t, rps in enumerate(each[:trials], 1)
        ]
        return out

    html = renderer("html").render(run(3))
    assert f">{fmt.NOISE_MARK}1.02<" in html
    legend = str(escape(fmt.NOISE_LEGEND))  # the page escapes it as Jinja escapes every text
    assert html.count(legend) == 1
    assert legend not in renderer("html").render(run(1))
