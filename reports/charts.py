"""Chart specs for the HTML report: Vega-Lite (via Altair), one spec per chart, data inlined.

Pure shaping from summary rows (and the cells' HDR histograms for the latency spectrum) to JSON-ready
dicts; reports/html.py embeds them and vega-embed draws them in the browser (hover shows the values).
A failed row is drawn as a "failed" mark at zero, never as a bar: a failed request is not throughput.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import altair as alt

from bench import hist
from bench.results import Results
from reports import advice, summary
from reports.summary import Key, Row

WIDTH = 440
BAR_STEP = 22  # pixels per variant in a throughput chart
# The latency spectrum's x axis is 1/(1-p) on a log scale (HdrHistogram's plot): 2 = p50 ... 10^4 = p99.99.
SPECTRUM_STEPS_PER_DECADE = 8
SPECTRUM_LAST = 10_000.0
SPECTRUM_TICKS = (2, 10, 100, 1000, 10000)
PERCENT_LABEL = "format(100 - 100 / datum.value, '.4~f') + ' %'"
FAILED_COLOR = "#c0392b"


@dataclass(frozen=True)
class Chart:
    """One chart: an id unique in the report, a caption, and its Vega-Lite spec."""

    id: str
    title: str
    spec: dict[str, Any]


DATASET = "rows"


def _source() -> alt.Chart:
    """A chart over the dataset ``_spec`` fills in afterwards (Altair validates inline rows one by one:
    seconds for a big report; the report is one file, so the rows travel inside the spec either way)."""
    return alt.Chart(alt.NamedData(name=DATASET))


def _spec(
    chart: alt.TopLevelMixin, values: list[dict[str, Any]], order: dict[str, list[Any]] | None = None
) -> dict[str, Any]:
    """The chart as Vega-Lite JSON with its rows; ``order`` sets each channel's category order (channel ->
    values) here, not through Altair, which checks a sort list item by item (1.4 s for a 1,000-cell report).
    validate=False: the specs are built here from known shapes; schema validation cost ~10 ms a chart."""
    spec: dict[str, Any] = chart.to_dict(validate=False)
    spec["datasets"] = {DATASET: values}
    for layer in spec.get("layer", [spec]):
        for channel, categories in (order or {}).items():
            if channel in layer.get("encoding", {}):
                layer["encoding"][channel]["sort"] = categories
    return spec


def _tips(*fields: str | alt.Tooltip) -> list[alt.Tooltip]:
    """Tooltip channels as objects: Altair parses a plain "field:type" string through a schema lookup that
    costs ~10 ms a call (seconds for a big report); a channel object skips it."""
    return [alt.Tooltip(field) if isinstance(field, str) else field for field in fields]


def throughput(chart_id: str, title: str, items: list[Row]) -> Chart:
    """Median req/s per variant with its 95 % CI whiskers over trials; failed rows marked, not drawn."""
    data = [
        {
            "variant": row.label,
            "status": row.status,
            "rps": round(row.rps, 1) if row.status == "ok" else None,
            "low": round(row.rps_ci[0], 1) if row.rps_ci else None,
            "high": round(row.rps_ci[1], 1) if row.rps_ci else None,
            "p50_ms": row.p50_ms,
            "p99_ms": row.p99_ms,
            "trials": row.trials,
            "error_rate": round(row.error_rate, 4),
            "reason": row.reason[:200],
        }
        for row in items
    ]
    order = [row.label for row in items]
    base = _source().encode(
        y=alt.Y("variant:N", title=None),
    )
    tooltip = _tips("variant:N", "status:N", "rps:Q", "low:Q", "high:Q", "p50_ms:Q", "p99_ms:Q", "trials:Q",
                    "error_rate:Q")  # fmt: skip
    bars = (
        base.transform_filter("datum.status == 'ok'")
        .mark_bar()
        .encode(
            x=alt.X("rps:Q", title="successful responses/s (median of trials, 95 % CI)"),
            color=alt.Color("variant:N", legend=None),  # the latency chart's colours
            tooltip=tooltip,
        )
    )
    whiskers = (
        base.transform_filter("datum.low != null")
        .mark_rule(color="black")
        .encode(x=alt.X("low:Q"), x2=alt.X2("high:Q"), tooltip=tooltip)
    )
    failed = (
        base.transform_filter("datum.status != 'ok'")
        .mark_text(align="left", dx=3, color=FAILED_COLOR, fontWeight="bold")
        .encode(
            x=alt.datum(0),
            text=alt.Text("status:N"),
            tooltip=_tips("variant:N", "status:N", "error_rate:Q", "reason:N"),
        )
    )
    # Only layers with rows: an empty one makes Vega warn about an infinite extent.
    layers = [bars] if any(d["rps"] is not None for d in data) else []
    layers += [whiskers] if any(d["low"] is not None for d in data) else []
    layers += [failed] if any(d["rps"] is None for d in data) else []
    layered = alt.layer(*layers).properties(width=WIDTH, height=alt.Step(BAR_STEP))
    return Chart(chart_id, title, _spec(layered, data, {"y": order, "color": order}))


def spectrum_x() -> list[float]:
    """1/(1-p) from 2 (p50) to 10^4 (p99.99), evenly spaced on a log axis."""
    first = math.log10(2.0)
    steps = round((math.log10(SPECTRUM_LAST) - first) * SPECTRUM_STEPS_PER_DECADE)
    return [10 ** (first + i * (math.log10(SPECTRUM_LAST) - first) / steps) for i in range(steps + 1)]


def histograms(results: Results) -> dict[Key, hist.Trials]:
    """Each row's trials' histograms (successful requests of the trials that stand), ready to merge."""
    threshold = summary.max_error_rate(results)
    encoded: dict[Key, list[str]] = {}
    for cell in results.cells:
        if cell.histogram and summary.judged(cell, threshold).ok:
            key = (cell.variant, cell.scenario, cell.users, cell.rate, cell.setting)
            encoded.setdefault(key, []).append(cell.histogram)
    return {key: hist.trials_of(tuple(items)) for key, items in encoded.items()}


def spectrum(chart_id: str, title: str, items: list[Row], merged: dict[Key, hist.Trials]) -> Chart | None:
    """Latency by percentile, variants overlaid; a percentile is drawn only where the histogram holds at
    least 1/(1-p) samples (p99.99 of 500 requests would be the maximum under another name)."""
    data = []
    xs = spectrum_x()
    percentiles = [100.0 * (1.0 - 1.0 / x) for x in xs]
    for row in items:
        trials = merged.get((row.variant, row.scenario, row.users, row.rate, row.setting))
        if row.status != "ok" or trials is None:
            continue
        values = trials.percentiles(range(trials.size), percentiles)
        for x, percentile, value in zip(xs, percentiles, values, strict=True):
            if x > trials.count:
                break
            data.append({"variant": row.label, "x": x, "percentile": round(percentile, 4), "ms": value})
    if not data:
        return None
    axis = alt.Axis(values=list(SPECTRUM_TICKS), labelExpr=PERCENT_LABEL, title="percentile")
    lines = (
        _source()
        .mark_line(point=True)
        .encode(
            x=alt.X("x:Q", scale=alt.Scale(type="log"), axis=axis),
            y=alt.Y("ms:Q", title="latency ms"),
            color=alt.Color("variant:N"),
            tooltip=_tips("variant:N", alt.Tooltip("percentile:Q", title="percentile %"), "ms:Q"),
        )
    )
    return Chart(
        chart_id, title, _spec(lines.properties(width=WIDTH, height=260), data, {"color": [r.label for r in items]})
    )


def _curve_points(curve: summary.Curve) -> Iterable[dict[str, Any]]:
    knee = curve.knee
    for row in curve.points:
        yield {
            "variant": curve.label,
            "load": row.rate if row.rate else row.users,
            "rps": round(row.rps, 1),
            "p99_ms": row.p99_ms,
            "knee": row is knee,
        }


def sweeps(chart_id: str, scenario: str, found: list[summary.Curve]) -> list[Chart]:
    """Throughput vs load and p99 vs throughput, the knee (90 % of the peak at the lightest load) ringed."""
    data = [point for curve in found for point in _curve_points(curve)]
    open_model = any(curve.points[0].rate for curve in found)
    load_title = "target rate req/s" if open_model else "concurrent users"
    tooltip = _tips("variant:N", "load:Q", "rps:Q", "p99_ms:Q", "knee:N")
    source = _source()
    load_axis = alt.X("load:Q", title=load_title, scale=alt.Scale(type="log"))
    ring = source.transform_filter("datum.knee").mark_point(size=220, shape="diamond", filled=False, color="black")
    line = source.mark_line(point=True).encode(
        x=load_axis, y=alt.Y("rps:Q", title="successful req/s"), color=alt.Color("variant:N"), tooltip=tooltip
    )
    knee = ring.encode(x=load_axis, y=alt.Y("rps:Q"), tooltip=tooltip)
    latency = source.mark_line(point=True).encode(
        x=alt.X("rps:Q", title="successful req/s"), y=alt.Y("p99_ms:Q", title="p99 ms"), color=alt.Color("variant:N"),
        order=alt.Order("load:Q"), tooltip=tooltip,
    )  # fmt: skip
    latency_knee = ring.encode(x=alt.X("rps:Q"), y=alt.Y("p99_ms:Q"), tooltip=tooltip)
    size = {"width": WIDTH // 2 + 40, "height": 240}
    return [
        Chart(f"{chart_id}-load", f"{scenario}: throughput vs load (◇ knee)",
              _spec((line + knee).properties(**size), data)),
        Chart(f"{chart_id}-latency", f"{scenario}: p99 vs throughput (◇ knee)",
              _spec((latency + latency_knee).properties(**size), data)),
    ]  # fmt: skip


def paired(chart_id: str, found: advice.Paired) -> Chart:
    """One advice comparison as grouped bars: each pair's sides next to each other, failed sides marked."""
    data = [
        {"pair": p.pair, "side": p.side, "value": p.value, "status": p.status, "note": p.note} for p in found.points
    ]
    base = _source().encode(
        y=alt.Y("pair:N", title=None),
        yOffset=alt.YOffset("side:N"),
    )
    tooltip = _tips("pair:N", "side:N", alt.Tooltip("value:Q", title=found.measure), "status:N", "note:N")
    bars = (
        base.transform_filter("datum.value != null")
        .mark_bar()
        .encode(
            x=alt.X("value:Q", title=found.measure),
            color=alt.Color("side:N", title=None),
            tooltip=tooltip,
        )
    )
    failed = (
        base.transform_filter("datum.value == null")
        .mark_text(align="left", dx=3, color=FAILED_COLOR, fontWeight="bold")
        .encode(x=alt.datum(0), text=alt.Text("status:N"), tooltip=tooltip)
    )
    layers = [bars] if any(d["value"] is not None for d in data) else []
    layers += [failed] if any(d["value"] is None for d in data) else []
    layered = alt.layer(*layers).properties(width=WIDTH, height=alt.Step(BAR_STEP * len(found.sides)))
    pairs = list(dict.fromkeys(p.pair for p in found.points))
    sides = list(found.sides)
    return Chart(chart_id, found.title, _spec(layered, data, {"y": pairs, "yOffset": sides, "color": sides}))


def curve(chart_id: str, found: advice.Paired) -> Chart:
    """A pool-size sweep: throughput by pool size, one line per variant and load; failed sizes left out."""
    data = [
        {"pair": p.pair, "size": p.x, "value": p.value, "note": p.note} for p in found.points if p.value is not None
    ]
    lines = (
        _source()
        .mark_line(point=True)
        .encode(
            x=alt.X("size:Q", title="pool size", scale=alt.Scale(type="log", base=2)),
            y=alt.Y("value:Q", title=found.measure),
            color=alt.Color("pair:N", title=None),
            tooltip=_tips("pair:N", "size:Q", alt.Tooltip("value:Q", title=found.measure), "note:N"),
        )
    )
    return Chart(chart_id, found.title, _spec(lines.properties(width=WIDTH, height=260), data))
