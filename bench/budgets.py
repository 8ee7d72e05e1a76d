"""``bench check``: a run's figures against the budgets a team wrote down (k6's thresholds, as a TOML file).

The file (or ``[tool.dbbench.budgets]`` in a pyproject.toml) has a table per scenario, ``["*"]`` for every
scenario; its keys are the summary's field names (``reports.summary.Row``) with a comparison, and a
sub-table per endpoint whose keys are the endpoint figures (``rps``, ``p50_ms``, ``p99_ms``, ``error_rate``,
``requests``, ``errors``, ``bytes_per_request``: response bytes per successful request, in files that record
them per endpoint)::

    [db]
    p99_ms = "< 50"
    rps = ">= 800"
    [db."/db"]
    p99_ms = "< 20"
    bytes_per_request = "<= 2000"
    ["*"]
    error_rate = "< 0.001"

Every budget is checked on every row of its scenario (each variant, load point and setting). A row that
failed, or a figure the run did not measure, is a breach: a budget never passes silently. An unknown
scenario, endpoint or field, or a comparison that does not parse, is bad input (``BenchError``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import operator
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.results import Results
from reports.summary import Row, rows

EVERY = "*"
ENDPOINT_FIELDS = ("rps", "p50_ms", "p99_ms", "error_rate", "requests", "errors", "bytes_per_request")
_NOT_NUMBERS = {"variant", "scenario", "setting", "status", "reason", "generator_bound"}
ROW_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(Row)
    if f.name not in _NOT_NUMBERS and str(f.type).split(" |")[0] in ("float", "int")
)
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "==": operator.eq,
}
_RULE = re.compile(r"^\s*(<=|>=|<|>|==)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Budget:
    scenario: str  # a scenario name or "*"
    endpoint: str  # "" for the scenario's own figures
    field: str
    rule: str  # as written: "< 50"
    op: str
    limit: float


@dataclass(frozen=True)
class Outcome:
    """One budget on one row: ``ok`` or a breach, with the measured value (None: failed or not measured)."""

    budget: Budget
    where: str  # "db · /db · 8 users · pooled"
    measured: float | None
    ok: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "field": self.budget.field,
            "rule": self.budget.rule,
            "measured": self.measured,
            "ok": self.ok,
            "message": self.message,
        }


def load(path: Path | None, *, pyproject: Path = Path("pyproject.toml")) -> list[Budget]:
    """The budgets of ``path`` (a TOML file), or of ``[tool.dbbench.budgets]`` in ``pyproject`` when None.

    Raises ``BenchError`` for a missing or unreadable file, no budgets, or a rule that does not parse.
    """
    source = path or pyproject
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = "" if path else " (no --budget given); pass --budget FILE or add [tool.dbbench.budgets]"
        raise BenchError(f"budget file {source} does not exist{hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"cannot read budget file {source}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{source} is not valid TOML: {exc}") from None
    if path is None or source.name == "pyproject.toml":  # a pyproject's budgets are its [tool.dbbench.budgets]
        data = _pyproject_budgets(data, source)
        prefix = "tool.dbbench.budgets."
    else:
        prefix = ""
    if not data:
        raise BenchError(f'no budgets in {source}; add a table per scenario, e.g. [{prefix}db] p99_ms = "< 50"')
    return parse(data, str(source), prefix=prefix)


def _pyproject_budgets(data: dict[str, Any], source: Path) -> dict[str, Any]:
    """``[tool.dbbench.budgets]`` of a parsed pyproject.toml ({} when absent). Raises ``BenchError`` when
    ``tool``, ``tool.dbbench`` or ``tool.dbbench.budgets`` is there but not a table (``budgets = "x"``)."""
    found: Any = data
    for depth, key in enumerate(("tool", "dbbench", "budgets"), start=1):
        found = found.get(key, {})
        if not isinstance(found, dict):
            name = ".".join(("tool", "dbbench", "budgets")[:depth])
            raise BenchError(
                f"{source}: {name} must be a table, e.g. [tool.dbbench.budgets.db], not {type(found).__name__}"
            )
    return dict(found)


def _toml_key(name: str) -> str:
    """``name`` as a TOML table key: bare when TOML allows it (db), quoted otherwise ("*", "/db")."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def parse(data: Mapping[str, Any], source: str, *, prefix: str = "") -> list[Budget]:
    """Budgets from parsed TOML (tables per scenario, sub-tables per endpoint); ``prefix`` is the tables' path
    in the file ("tool.dbbench.budgets." in a pyproject), for the hints. Raises ``BenchError`` for a budget
    outside a table or a table (or sub-table) without a budget: a gate that checks nothing would pass whatever
    the run measured."""
    budgets: list[Budget] = []
    for scenario, table in data.items():
        if not isinstance(table, dict):
            if scenario in ROW_FIELDS:  # a budget written above any table: a field, not a scenario
                raise BenchError(
                    f"{source}: {scenario} = {table!r} is outside a scenario's table; put it under one, "
                    f'e.g. [{prefix}db] {scenario} = "< 50", or [{prefix}"*"] for every scenario'
                )
            raise BenchError(
                f"{source}: {_toml_key(scenario)} = ... must be a table of budgets, "
                f'e.g. [{prefix}{_toml_key(scenario)}] p99_ms = "< 50"'
            )
        if not table:
            raise BenchError(
                f'{source}: [{prefix}{_toml_key(scenario)}] holds no budget; add one, e.g. p99_ms = "< 50", '
                "or remove it"
            )
        if scenario == "tool" and not prefix and isinstance(table.get("dbbench"), dict):
            raise BenchError(
                f"{source}: [tool.dbbench...] is a pyproject.toml's table; name the file pyproject.toml, or write "
                "the scenarios' tables at the top level ([db], not [tool.dbbench.budgets.db])"
            )
        for key, value in table.items():
            if isinstance(value, dict):
                if not value:
                    raise BenchError(
                        f"{source}: [{prefix}{_toml_key(scenario)}.{_toml_key(key)}] holds no budget; "
                        "add one or remove the table"
                    )
                budgets.extend(_budget(source, scenario, key, name, rule, prefix) for name, rule in value.items())
            else:
                budgets.append(_budget(source, scenario, "", key, value, prefix))
    if not budgets:
        raise BenchError(f'no budgets in {source}; add a table per scenario, e.g. [db] p99_ms = "< 50"')
    return budgets


def require_complete(results: Results, name: str) -> None:
    """Raise ``BenchError`` when ``results`` is a run that did not finish (metadata ``completed`` false, e.g.
    Ctrl-C) or measured no cell: a gate must not pass what was not measured, and which cells are missing is
    not known to it (the interrupted run of a fresh-eyes review, 4 of 6 cells, passed both gates in silence).
    A file written before the field existed is taken as complete."""
    planned = results.metadata.get("cells_planned")
    of = f" of {planned}" if isinstance(planned, int) else ""
    if results.metadata.get("completed") is False:
        raise BenchError(
            f"{name} is an interrupted run ({len(results.cells)}{of} cells measured): a gate judges only a "
            "finished run; run it again to the end"
        )
    if not results.cells:
        raise BenchError(f"{name} holds no measured cell: nothing to judge; run the benchmark again")
    for cell in results.cells:
        where = _non_finite(dataclasses.asdict(cell))
        if where is not None:
            raise BenchError(
                f"{name}: a cell ({cell.variant} · {cell.scenario} · trial {cell.trial}) holds {where}: not a "
                "measurement (a damaged or hand-edited file); rerun it"
            )


def _non_finite(value: Any, path: str = "") -> str | None:
    """The first "field = nan" (or inf) in ``value`` (a cell as a dict), None when every number is finite.
    JSON readers accept NaN and Infinity; a gate fed one prints "+nan%" and compares nothing."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path} = {value}"
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def _budget(source: str, scenario: str, endpoint: str, name: str, rule: Any, prefix: str = "") -> Budget:
    where = f"[{prefix}{_toml_key(scenario)}{'.' + _toml_key(endpoint) if endpoint else ''}] {name}"
    known = ENDPOINT_FIELDS if endpoint else ROW_FIELDS
    if name not in known:
        raise BenchError(f"{source}: {where}: unknown field; use one of {', '.join(known)}")
    match = _RULE.match(rule) if isinstance(rule, str) else None
    if match is None:
        raise BenchError(f'{source}: {where} = {rule!r}: write a comparison and a number, e.g. "< 50" or ">= 800"')
    limit = float(match.group(2))
    if not math.isfinite(limit):  # "< 1e400" is float("inf"): refused as "< inf" is
        raise BenchError(f"{source}: {where} = {rule!r}: the number is beyond a float's range; write a finite one")
    return Budget(scenario, endpoint, name, rule.strip(), match.group(1), limit)


def check(results: Results, budgets: list[Budget]) -> list[Outcome]:
    """Every budget on every row of its scenario. Raises ``BenchError`` for a scenario or endpoint the run
    did not measure (a budget that could only pass silently)."""
    table = rows(results)
    if not table:
        raise BenchError("the run holds no measured cell: nothing to check the budgets against")
    scenarios = {row.scenario for row in table}
    outcomes: list[Outcome] = []
    for budget in budgets:
        if budget.scenario != EVERY and budget.scenario not in scenarios:
            raise BenchError(
                f"budget for scenario {budget.scenario!r}, which this run did not measure "
                f"(it ran {', '.join(sorted(scenarios)) or 'none'})"
            )
        chosen = [row for row in table if budget.scenario in (EVERY, row.scenario)]
        if budget.endpoint and not any(budget.endpoint in row.endpoints for row in chosen):
            measured = sorted({name for row in chosen for name in row.endpoints})
            raise BenchError(
                f"budget for endpoint {budget.endpoint!r} of {budget.scenario!r}, which this run did not measure "
                f"(its endpoints, by their locustfile names: {', '.join(measured) or 'none'})"
            )
        outcomes.extend(
            _outcome(budget, row)
            for row in chosen
            if not budget.endpoint or budget.endpoint in row.endpoints or row.status != "ok"
        )
    return outcomes


def _outcome(budget: Budget, row: Row) -> Outcome:
    parts = [row.scenario, budget.endpoint, row.load, row.setting, row.variant]
    where = " · ".join(p for p in parts if p)
    if row.status != "ok":
        return Outcome(budget, where, None, False, f"{budget.field} {budget.rule}: the cell {row.status}: {row.reason}")
    if row.reason:
        # "1 of 3 trials failed: …": the row's figures stand on the other trials only, so a budget on them
        # would pass over a trial that did not (a fresh-eyes run of 2026-12-01 passed `error_rate < 0.001`
        # with a trial that completed no request).
        return Outcome(budget, where, None, False, f"{budget.field} {budget.rule}: {row.reason}")
    figures = row.endpoints.get(budget.endpoint, {}) if budget.endpoint else row.to_dict()
    value = figures.get(budget.field)
    if not isinstance(value, int | float):
        return Outcome(budget, where, None, False, f"{budget.field} {budget.rule}: not measured in this run")
    ok = _OPERATORS[budget.op](float(value), budget.limit)
    verb = "within" if ok else "breached"
    return Outcome(budget, where, float(value), ok, f"{budget.field} = {value:.4g} ({verb} {budget.rule})")
