"""HTML report: one self-contained file (charts, evidence, environment) that opens offline.

Shape: results -> summary rows (reports/summary.py) -> chart specs (reports/charts.py) and evidence ->
``templates/report.html.j2`` (jinja2, autoescape on: SQL, labels and the user's scenario and variant names
are text, never markup). The charting library is inlined once (reports/vega.py), each chart's spec sits
in a ``<script type="application/json">`` block with ``<`` escaped, so no name can close the script.
A comparison view (``bench compare --format html``) is meant to be a second template extending the same
``base.html.j2`` with its own context builder beside ``context`` here.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from bench.results import Results
from reports import advice, charts, summary
from reports.base import Renderer
from reports.fmt import (
    NOISE_LEGEND,
    Noise,
    cpus_label,
    database_label,
    errors_text,
    failure_lines,
    flags,
    ms,
    rps_text,
    untimed,
)

TEMPLATE = "report.html.j2"


def _slug(text: str, seen: set[str]) -> str:
    """An id for an anchor or a chart, unique in the page (user names may repeat once slugged)."""
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"
    slug, n = base, 1
    while slug in seen:
        n += 1
        slug = f"{base}-{n}"
    seen.add(slug)
    return slug


def spec_json(spec: dict[str, Any]) -> str:
    """JSON safe inside <script>: "<" as \\u003c, so "</script>" in a label cannot end the block."""
    return json.dumps(spec, separators=(",", ":"), ensure_ascii=False, allow_nan=False).replace("<", "\\u003c")


def _row_view(row: summary.Row, ratio: str) -> dict[str, Any]:
    return {
        "row": row,
        "label": row.label,
        "rps": rps_text(row) if row.status == "ok" else row.status,
        "ratio": ratio if row.status == "ok" else "",
        "p50": ms(row.p50_ms),
        "p90": ms(row.p90_ms),
        "p99": ms(row.p99_ms),
        "errors": errors_text(row),
        "flags": flags(row),
        "queries": _queries(row),
        "db_share": "-" if row.db_time_share is None else f"{row.db_time_share:.0%}",
        "cpu": "-" if row.cpu_s_per_request is None else f"{row.cpu_s_per_request * 1000:.2f}",
        "has_evidence": bool(
            row.top_statements or row.pg_top_statements or row.error_kinds or row.findings or len(row.endpoints) > 1
        ),
    }


def _queries(row: summary.Row) -> str:
    """Queries per request, marked "(pg)" when pg_stat_statements counted them (the target ran without hooks)."""
    if row.queries_per_request is None:
        return "-"
    marker = " (pg)" if row.statements_source == "pg_stat_statements" else ""
    return f"{row.queries_per_request:.1f}{marker}"


def context(results: Results) -> dict[str, Any]:
    """Everything the template shows, computed once (charts as JSON strings, rows as display strings)."""
    rows = summary.rows(results)
    noise = Noise(results)
    merged = charts.histograms(results)
    seen: set[str] = set()
    sections = []
    for (scenario, load), items in summary.by_scenario(rows).items():
        slug = _slug(f"{scenario}-{load}", seen)
        title = f"{scenario} · {load}"
        found = [charts.throughput(f"rps-{slug}", f"{title}: throughput", items),
                 charts.spectrum(f"lat-{slug}", f"{title}: latency by percentile", items, merged)]  # fmt: skip
        sections.append({
            "id": slug, "scenario": scenario, "load": load,
            "charts": [chart for chart in found if chart is not None],
            "rows": [_row_view(row, noise.text(row, items)) for row in items],
        })  # fmt: skip
    curves = summary.curves(rows)
    sweep_charts = []
    for scenario in dict.fromkeys(curve.scenario for curve in curves):
        sweep_charts += charts.sweeps(f"sweep-{_slug(scenario, seen)}", scenario,
                                      [c for c in curves if c.scenario == scenario])  # fmt: skip
    advice_charts = [
        (charts.curve if found.kind == "curve" else charts.paired)(f"advice-{_slug(found.title, seen)}", found)
        for found in advice.paired(rows)
    ]
    meta = results.metadata
    failed = failure_lines(rows, results)
    return {
        "meta": meta,
        "machine": meta.get("machine", {}),
        "cpus": cpus_label(meta),
        "git": meta.get("git") if isinstance(meta.get("git"), dict) else {},
        "config": meta.get("config", {}),
        "database": database_label(meta.get("database", {})),
        "sections": sections,
        "sweeps": sweep_charts,
        "sweep_rows": curves,
        "advice_charts": advice_charts,
        "advice_tables": advice.tables(rows),
        "failed": failed,
        "interrupted": summary.interrupted(results),
        # The ratio column's mark, explained wherever it can appear (as in the terminal and Markdown reports).
        "noise_legend": NOISE_LEGEND if any(row.trials > 1 for row in rows) else None,
        "threshold": f"{summary.max_error_rate(results):.0%}",
        "failed_checks": summary.failed_checks(results),
        "skipped": [(c.variant, c.skipped) for c in results.checks if c.skipped],
        "untimed": untimed(results),
        "explains": results.explains,
        "profiles": results.profiles,
        "variants": list(dict.fromkeys(row.variant for row in rows)),
        "scenarios": list(dict.fromkeys(row.scenario for row in rows)),
        "environment": json.dumps(meta, indent=1, ensure_ascii=False, sort_keys=True, default=str),
    }


def _environment() -> Any:
    import jinja2

    # select_autoescape would leave ".j2" unescaped: escaping is on for every template here, unconditionally.
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["ms"] = ms
    env.filters["spec_json"] = spec_json
    env.filters["pct"] = lambda value: "-" if value is None else f"{value:.0%}"
    return env


def _load_template(name: str) -> str:
    return resources.files("reports").joinpath("templates", name).read_text(encoding="utf-8")


class HTMLRenderer(Renderer):
    name = "html"
    extension = ".html"

    def render(self, results: Results) -> str:
        from reports import vega

        page = _environment().get_template(TEMPLATE)
        return str(page.render(**context(results), vega_js=vega.bundle()))
