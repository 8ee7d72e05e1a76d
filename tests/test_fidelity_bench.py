"""benchmarks/fidelity.py's pure parts: wrk measures after a warm-up of the same length as bench's, and bad
options are refused before anything starts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from benchmark_scripts import load

ROOT = Path(__file__).resolve().parent.parent


fidelity = load("fidelity")


def test_wrk_measures_only_after_an_unmeasured_warm_up_of_the_given_length(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int, int, tuple[int, ...]]] = []

    def fake_wrk(url: str, users: int, duration: int, cpus: tuple[int, ...]) -> tuple[float, float]:
        calls.append((url, users, duration, cpus))
        return float(len(calls)), 1.0

    monkeypatch.setattr(fidelity, "wrk", fake_wrk)
    assert fidelity.warmed_wrk("http://x", 32, 2, 6, (1,)) == (2.0, 1.0)  # the second run's figures
    assert calls == [("http://x", 32, 2, (1,)), ("http://x", 32, 6, (1,))]
    calls.clear()
    assert fidelity.warmed_wrk("http://x", 32, 0, 6, ()) == (1.0, 1.0)
    assert calls == [("http://x", 32, 6, ())]


@pytest.mark.parametrize("argv", [["--warmup", "-1"], ["--duration", "0"], ["--rounds", "0"]])
def test_bad_numbers_are_refused_with_exit_code_2(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["fidelity.py", *argv])
    assert fidelity.main() == 2
    assert "at least" in capsys.readouterr().err
