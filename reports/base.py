"""The renderers' shared base and their registry (pyinstrument's shape: one module per format).

A renderer turns a results file into one document (``render``) and knows how to show it (``show``: to
stdout, or to a file). The registry maps a format name to the module that implements it, imported only
when that format is asked for, so ``bench --help`` never loads jinja2, Altair or Rich tables.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import ClassVar, TextIO

from bench.errors import BenchError
from bench.results import Results


class Renderer:
    """Base of every format: ``render`` is the one thing a format must define."""

    name: ClassVar[str] = ""
    extension: ClassVar[str] = ".txt"  # of a file written with ``-o``

    def render(self, results: Results) -> str:
        raise NotImplementedError

    def show(self, results: Results, out: TextIO | None = None) -> None:
        text = self.render(results)
        (out or sys.stdout).write(text if text.endswith("\n") else text + "\n")

    def write(self, results: Results, path: Path) -> Path:
        """Write the document to ``path`` (see ``write_text``)."""
        return write_text(self.render(results), path)


def write_text(text: str, path: Path) -> Path:
    """Write ``text`` to ``path``: a regular file atomically (temp file + rename, so a reader never sees half a
    report); anything else that exists (/dev/null, a pipe) is written to as it is."""
    refuse_results(path, "-o")
    try:
        if path.exists() and not path.is_file():
            path.write_text(text, encoding="utf-8")
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise BenchError(f"cannot write {path}: {exc.strerror}; choose another -o") from None
    return path


# format name -> "module:class"; the order is the order --help lists them in.
FORMATS: dict[str, str] = {
    "terminal": "reports.terminal:TerminalRenderer",
    "json": "reports.jsonreport:JSONRenderer",
    "md": "reports.markdown:MarkdownRenderer",
    "html": "reports.html:HTMLRenderer",
}


def renderer(name: str) -> Renderer:
    """The renderer registered as ``name``. Raises BenchError (one line, the choices) for an unknown name."""
    if name not in FORMATS:
        raise BenchError(f"unknown --format {name!r}; choose from {', '.join(FORMATS)}")
    module, _, cls = FORMATS[name].partition(":")
    made = getattr(importlib.import_module(module), cls)()
    assert isinstance(made, Renderer)
    return made


def refuse_results(path: Path, option: str) -> None:
    """Raise ``BenchError`` (one line naming ``option``) when ``path`` holds a results file (``holds_results``):
    every file a report writes, whatever the option that named it (-o, --junit), goes through this."""
    if holds_results(path):
        raise BenchError(
            f"{path} is a dbbench results file: a report never replaces measurements; choose another {option}"
        )


def holds_results(path: Path) -> bool:
    """Whether ``path`` is a results file of ``bench run`` (its first bytes name the format): the one kind of
    file a report's -o must not overwrite, e.g. ``bench report run.json -f md -o run.json``."""
    try:
        with path.open("rb") as handle:
            head = handle.read(256)
    except OSError:  # missing, a directory, unreadable: not a results file (writing it says what is wrong)
        return False
    return b'"format"' in head and b'"dbbench-results"' in head
