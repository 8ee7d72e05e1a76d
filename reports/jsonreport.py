"""JSON report: the flat summary, a list of rows (one per variant x scenario x load point), each with its
ratio to its table's base and whether that ratio is within the run's noise, as the terminal, Markdown and
HTML tables show them (``reports.fmt.Noise``: one rule for every format)."""

from __future__ import annotations

import json

from bench.results import Results
from reports import summary
from reports.base import Renderer
from reports.fmt import Noise


def render(results: Results) -> str:
    rows = summary.rows(results)
    noise = Noise(results)
    # The tables' groups (scenario x load point) decide each row's base: computed per group, listed in row order.
    ratios = {id(row): noise.fields(row, items) for items in summary.by_scenario(rows).values() for row in items}
    return json.dumps([{**row.to_dict(), **ratios[id(row)]} for row in rows], indent=2, ensure_ascii=False)


class JSONRenderer(Renderer):
    name = "json"
    extension = ".json"

    def render(self, results: Results) -> str:
        return render(results)
