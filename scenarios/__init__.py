"""Workloads: plain locustfiles, one per scenario; each module docstring is the scenario's label.

This package never imports its locustfiles (that would import locust, which patches the process
with gevent); the registry reads their docstrings from source instead.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path

    @property
    def label(self) -> str:
        doc = ast.get_docstring(ast.parse(self.path.read_text(encoding="utf-8"))) or ""
        return doc.strip().splitlines()[0] if doc.strip() else self.name


class ScenarioRegistry:
    def __init__(self, names: list[str], groups: dict[str, list[str]] | None = None) -> None:
        self._items = {name: Scenario(name, HERE / f"{name}.py") for name in names}
        self.groups = groups or {}

    def __iter__(self) -> Iterator[Scenario]:
        return iter(self._items.values())

    def names(self) -> list[str]:
        return list(self._items)

    def select(self, names: list[str]) -> list[Scenario]:
        """Names, locustfile paths and group names (each group expands to its scenarios, in order)."""
        picked: dict[str, Scenario] = {}
        for name in names:
            for each in self.groups.get(name, [name]):
                scenario = self.get(each)
                picked.setdefault(str(scenario.path), scenario)
        return list(picked.values())

    def get(self, name: str) -> Scenario:
        if name in self._items:
            return self._items[name]
        path = Path(name)
        if path.suffix == ".py":
            if not path.is_file():
                raise BenchError(
                    f"locustfile {name} does not exist; pass a path to a locustfile or one of {', '.join(self._items)}"
                )
            return Scenario(path.stem, path.resolve())
        choices = ", ".join([*self._items, *self.groups])
        raise BenchError(f"unknown scenario {name!r}; choose from {choices} or pass a locustfile path")


# "core": the TechEmpower four and the N+1 pair (the default); "advice": the workloads behind the common
# FastAPI performance advice (index, cache, background refresh, writes), each meant for its own option.
CORE = ["db", "queries", "fortunes", "updates", "nplus1"]
ADVICE = ["search", "hot", "uniform", "mixed", "report", "report_refresh"]
SCENARIOS = ScenarioRegistry([*CORE, *ADVICE], {"core": CORE, "advice": ADVICE, "all": [*CORE, *ADVICE]})
# The built-in scenarios whose requests change the server's data: `bench run --url` runs them only with
# --allow-writes (a server dbbench did not start is left as it was found).
WRITING = frozenset({"updates", "mixed", "report_refresh"})
