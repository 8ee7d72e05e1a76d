"""The end of a run: EXPLAIN (ANALYZE, BUFFERS) of its heaviest statements, on the run's own database.

Once, or once per search-index state when the run compared them (the point is the two plans side by side),
with the parameters the targets recorded where their statement timing was on (else derived from the tables:
see bench.pgstats.explain).
"""

from __future__ import annotations

from typing import Any

from bench import pgstats, seed
from bench.pg import Database
from bench.recorder import Recorder
from bench.results import Cell


def explain_run(recorder: Recorder, database: Database) -> None:
    """Append the plans of the run's heaviest statements to its results (pg_stat_statements must be usable)."""
    cells = recorder.results.cells
    states = sorted({cell.settings["index"] for cell in cells if "index" in cell.settings})
    for state in states:
        seed.set_search_index(database.dsn, state == "on")
        _explain_cells(recorder, database, [c for c in cells if c.settings.get("index") == state], f"index {state}")
    if states:
        seed.set_search_index(database.dsn, True)  # back to the schema's default for the rest
    _explain_cells(recorder, database, [c for c in cells if "index" not in c.settings], None)


def _explain_cells(recorder: Recorder, database: Database, cells: list[Cell], setting: str | None) -> None:
    totals: dict[str, pgstats.StatementStat] = {}
    samples: dict[str, Any] = {}
    for cell in cells:
        for raw in cell.pg_statements or []:
            stat = pgstats.StatementStat.from_dict(raw)
            seen = totals.get(stat.fingerprint)
            totals[stat.fingerprint] = stat if seen is None else stat.merged_with(seen)
        for statement in (cell.target_stats or {}).get("statements", []):
            if statement.get("sample_params") is not None:
                samples.setdefault(statement["fingerprint"], statement["sample_params"])
    if not totals:
        return
    recorder.observer.phase(f"explaining the heaviest statements{f' ({setting})' if setting else ''}")
    seed.seed(database.dsn)
    plans = pgstats.capture_top_explains(database.dsn, list(totals.values()), samples)
    recorder.results.explains.extend({**plan.to_dict(), "setting": setting} for plan in plans)
    recorder.save()
