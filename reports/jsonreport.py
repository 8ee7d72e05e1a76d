"""JSON report: the flat summary, a list of rows (one per variant x scenario x users)."""

from __future__ import annotations

import json

from bench.results import Results
from reports import summary
from reports.base import Renderer


def render(results: Results) -> str:
    return json.dumps([row.to_dict() for row in summary.rows(results)], indent=2, ensure_ascii=False)


class JSONRenderer(Renderer):
    name = "json"
    extension = ".json"

    def render(self, results: Results) -> str:
        return render(results)
