"""Results files users brought (tests/data/field_cases), read through the real ``bench report`` command.

Expected behaviour from the field cases' table: a field this version does not know is ignored; a damaged
file is exit 2 and one line naming the file, the cell and the field, with no traceback and the file untouched.
Each case is one short ``python -m bench report`` (no database, no server): the fast tier.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import results

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "data" / "field_cases"


def report(path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", "report", str(path), *options],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("case", "options", "expected"),
    [
        ("version_as_string.json", (), "field 'version' must be an integer, got a string"),
        (
            "histogram_cut.json",
            (),
            "cells[0] (sync/db): field 'histogram' is not an encoded HDR histogram dbbench can read: cut or corrupted",
        ),
        ("histogram_cut.json", ("--format", "json"), "cells[0] (sync/db): field 'histogram'"),
        ("histogram_cut.json", ("--format", "md"), "cells[0] (sync/db): field 'histogram'"),
        ("cells_as_object.json", ("--format", "md"), "field 'cells' must be a list, got an object"),
    ],
)
def test_a_damaged_results_file_is_exit_2_and_one_line(case: str, options: tuple[str, ...], expected: str) -> None:
    path = CASES / case
    before = path.read_bytes()
    proc = report(path, *options)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: damaged results file {path}: "), lines[0]
    assert expected in lines[0], lines[0]
    assert proc.stdout == ""
    assert path.read_bytes() == before


def test_a_field_from_a_newer_dbbench_is_ignored_when_read_and_kept_when_rewritten(tmp_path: Path) -> None:
    path = CASES / "unknown_field.json"
    proc = report(path, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert {row["variant"] for row in json.loads(proc.stdout)} >= {"pooled", "sync"}
    # The rewrite path (load, then dump) keeps the newer fields where they were; it may add this version's
    # fields the file lacked (at their defaults), but changes and drops nothing.
    rewritten = tmp_path / "rewritten.json"
    results.dump(results.load(path), rewritten)
    original = json.loads(path.read_text())
    assert "notes_from_a_newer_version" in original["cells"][0] and "added_later" in original["metadata"]
    assert _kept(original, json.loads(rewritten.read_text()))


def _kept(original: object, rewritten: object) -> bool:
    """Every value of ``original`` is in ``rewritten``, at the same place."""
    if isinstance(original, dict):
        return isinstance(rewritten, dict) and all(
            key in rewritten and _kept(value, rewritten[key]) for key, value in original.items()
        )
    if isinstance(original, list):
        return (
            isinstance(rewritten, list)
            and len(original) == len(rewritten)
            and all(_kept(a, b) for a, b in zip(original, rewritten, strict=True))
        )
    return original == rewritten
