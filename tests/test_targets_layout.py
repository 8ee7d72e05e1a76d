"""targets/ layout (issue 13 item 7): variants at the top, their shared harness in targets.common, no circles.

Read from the sources with ``ast`` (every import, including those inside functions, which is where a circle
hides from a plain ``import``), so this is fast-tier pure logic and starts no interpreter.
"""

from __future__ import annotations

import ast
from pathlib import Path

import targets
from targets import VARIANTS

ROOT = Path(targets.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The targets modules ``path`` imports anywhere in its body (``from targets.common import x`` names x)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in modules:
                found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules)
    return found


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in ROOT.rglob("*.py")}
    modules = set(paths)
    # A package's __init__ is imported by every submodule anyway: edges into it are not circles of ours.
    return {name: _imports(path, modules) - {"targets", "targets.common"} for name, path in paths.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_variants_alone_at_the_top_and_the_harness_in_common() -> None:
    top = {path.stem for path in ROOT.glob("*.py")} - {"__init__"}
    assert top == {variant.module.rpartition(".")[2] for variant in VARIANTS}
    assert (ROOT / "common" / "contract.py").is_file()


def test_no_import_circle_among_targets_modules() -> None:
    assert _cycle(_graph()) is None


def test_the_two_named_circles_are_gone() -> None:
    graph = _graph()
    assert "targets.common.contract" not in graph["targets.common.instrument"]
    assert "targets.encode_databases" not in graph["targets.common.databases_sqlite"]
    assert "targets.common.databases_sqlite" in graph["targets.encode_databases"]


def test_common_never_imports_a_variant() -> None:
    variants = {variant.module for variant in VARIANTS}
    for name, imported in _graph().items():
        if name.startswith("targets.common"):
            assert not imported & variants, name


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
