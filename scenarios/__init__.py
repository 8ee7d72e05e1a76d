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


def is_builtin(path: Path) -> bool:
    """One of dbbench's own locustfiles (this folder), as opposed to a user's."""
    return path.resolve().parent == HERE


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
        """Names, locustfile paths and group names (each group expands to its scenarios, in order).

        A user's file is named by its file name (``mine.py``: the ``.py`` keeps it apart from every
        built-in scenario, so a file called ``db.py`` never merges with ``db``); two files with the same
        name get as many parent folders as tell them apart (``locustfile.py (read)``). Names never
        contain a path separator: they name log files too."""
        picked: dict[str, Scenario] = {}
        for name in names:
            for each in self.groups.get(name, [name]):
                scenario = self.get(each)
                picked.setdefault(str(scenario.path), scenario)
        return _distinct([*picked.values()])

    def get(self, name: str) -> Scenario:
        if name in self._items:
            return self._items[name]
        path = Path(name)
        if path.suffix == ".py":
            if path.is_file() and is_builtin(path) and path.stem in self._items:
                return self._items[path.stem]  # a built-in scenario, given by its path
            if not path.is_file():
                raise BenchError(
                    f"locustfile {name} does not exist; pass a path to a locustfile or one of {', '.join(self._items)}"
                )
            return Scenario(path.name, path.resolve())
        choices = ", ".join([*self._items, *self.groups])
        raise BenchError(f"unknown scenario {name!r}; choose from {choices} or pass a locustfile path")


def _distinct(scenarios: list[Scenario]) -> list[Scenario]:
    """Rename users' files whose names clash: add the nearest parent folders that differ."""
    files = [s for s in scenarios if not is_builtin(s.path)]
    renamed: dict[Path, str] = {}
    for scenario in files:
        clashing = [s.path for s in files if s.name == scenario.name]
        if len(clashing) < 2:
            continue
        depth = 1
        while depth < len(scenario.path.parts) and len({p.parts[-depth - 1 : -1] for p in clashing}) < len(clashing):
            depth += 1
        renamed[scenario.path] = f"{scenario.name} ({'-'.join(scenario.path.parts[-depth - 1 : -1])})"
    return [Scenario(renamed[s.path], s.path) if s.path in renamed else s for s in scenarios]


# "core": the TechEmpower four and the N+1 pair (the default); "advice": the workloads behind the common
# FastAPI performance advice (index, cache, background refresh, writes), each meant for its own option.
CORE = ["db", "queries", "fortunes", "updates", "nplus1"]
ADVICE = ["search", "hot", "uniform", "mixed", "report", "report_refresh"]
SCENARIOS = ScenarioRegistry([*CORE, *ADVICE], {"core": CORE, "advice": ADVICE, "all": [*CORE, *ADVICE]})
# The built-in scenarios whose requests change the server's data: `bench run --url` runs them only with
# --allow-writes (a server dbbench did not start is left as it was found).
WRITING = frozenset({"updates", "mixed", "report_refresh"})
