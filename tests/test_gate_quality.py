"""benchmarks/gate_quality.py's pure parts: the edited copies of examples/shop differ from it exactly where
intended, and the rates are counted from completed comparisons only."""

from __future__ import annotations

import ast
import difflib
import json
import math
from pathlib import Path
from types import ModuleType

import pytest
from benchmark_scripts import load

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop"


gq = load("gate_quality")


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def _changed(before: str, after: str) -> tuple[list[str], list[str]]:
    """(removed lines, added lines) of a diff."""
    diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0))
    body = [line for line in diff if not line.startswith(("---", "+++", "@@"))]
    return [line[1:] for line in body if line.startswith("-")], [line[1:] for line in body if line.startswith("+")]


def _function(source: str, name: str) -> str:
    node = next(
        n
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef) and n.name == name
    )
    return ast.get_source_segment(source, node) or ""


def test_a_plain_copy_is_the_shop(tmp_path: Path) -> None:
    copy = gq.copy_shop(tmp_path / "base")
    assert _files(copy) == _files(SHOP)


def test_the_slowdown_copy_only_adds_a_cpu_burn_called_by_the_session_dependency(tmp_path: Path) -> None:
    copy = gq.copy_shop(tmp_path / "head")
    gq.inject_slowdown(copy, 0.1)
    original, edited = _files(SHOP), _files(copy)
    assert {name for name in original if original[name] != edited[name]} == {"shop/main.py"}
    assert original.keys() == edited.keys()
    removed, added = _changed(original["shop/main.py"], edited["shop/main.py"])
    assert removed == []  # nothing of the shop's own code changes
    assert "import time" in added and "    _burn()" in added
    assert any(line.startswith("BURN_SHARE = 0.1  # gate_quality.py") for line in added)
    source = edited["shop/main.py"]
    compile(source, "main.py", "exec")
    assert _function(source, "session").splitlines()[1] == "    _burn()"  # first thing in every session
    burn = _function(source, "_burn")
    assert "time.thread_time()" in burn  # CPU time, not wall time
    assert "time.process_time()" in burn  # sized from the process's own CPU, as dbbench measures it


def _burn_module(tmp_path: Path, share: float, window: int) -> ModuleType:
    """The slowdown copy's _burn and its globals, without the app: the lines inject_slowdown adds, run alone."""
    copy = gq.copy_shop(tmp_path / "head")
    gq.inject_slowdown(copy, share, window)
    source = (copy / "shop" / "main.py").read_text(encoding="utf-8")
    start = source.index("BURN_SHARE =")
    end = source.index("async def session(")
    module = ModuleType("burn")
    module.__file__ = str(copy / "shop" / "main.py")
    exec("import json, os, time\nfrom pathlib import Path\n" + source[start:end], module.__dict__)
    return module


def test_the_burn_sizes_itself_to_the_share_of_the_process_own_cpu_per_request(tmp_path: Path) -> None:
    import time

    burn = _burn_module(tmp_path, 0.5, 20)

    def request() -> None:  # 2 ms of CPU: the app's own work
        end = time.thread_time() + 0.002
        while time.thread_time() < end:
            pass

    for _ in range(61):
        burn._burn()
        request()
    share, own_ms = gq.burn_figures(tmp_path / "head")
    rows = [json.loads(line) for line in (tmp_path / "head" / "shop" / gq.BURN_LOG).read_text().splitlines()]
    assert len(rows) == 3 and rows[0]["burn_s"] == 0.0  # the first window burns nothing: nothing measured yet
    assert rows[1]["own_s"] == pytest.approx(0.002, rel=0.25)  # the burn itself is not counted as its own
    assert rows[2]["burn_s"] == pytest.approx(0.001, rel=0.25)
    assert own_ms == pytest.approx(2.0, rel=0.25)
    assert share == pytest.approx(0.5 * 2 / 3, rel=0.25)  # two windows of three burnt at the aim


def test_the_nplus1_copy_only_changes_the_category_listing(tmp_path: Path) -> None:
    copy = gq.copy_shop(tmp_path / "head")
    gq.inject_nplus1(copy)
    original, edited = _files(SHOP), _files(copy)
    assert {name for name in original if original[name] != edited[name]} == {"shop/main.py"}
    before, after = original["shop/main.py"], edited["shop/main.py"]
    compile(after, "main.py", "exec")
    functions = {n.name for n in ast.walk(ast.parse(before)) if isinstance(n, ast.AsyncFunctionDef)}
    changed = {name for name in functions if _function(before, name) != _function(after, name)}
    assert changed == {"list_items"}
    listing = _function(after, "list_items")
    assert ".join(Category)" not in listing
    loop = listing[listing.index("for i in items") :]
    assert "await db.execute(select(Category.name)" in loop  # one query per listed row


def test_an_edit_that_does_not_match_once_is_refused() -> None:
    with pytest.raises(ValueError, match="found 0"):
        gq.edit("a\n", "b\n", "c\n")
    with pytest.raises(ValueError, match="found 2"):
        gq.edit("b\nb\n", "b\n", "c\n")
    assert gq.edit("a\nb\n", "b\n", "c\n") == "a\nc\n"


def test_results_and_bytecode_are_not_copied(tmp_path: Path) -> None:
    source = tmp_path / "shop"
    (source / "__pycache__").mkdir(parents=True)
    (source / "__pycache__" / "x.pyc").write_bytes(b"")
    (source / "ab.json").write_text("{}")
    (source / "ab.html").write_text("")
    (source / "seed.py").write_text("")
    copy = gq.copy_shop(tmp_path / "copy", source)
    assert sorted(p.name for p in copy.rglob("*")) == ["seed.py"]


def test_rates_count_completed_comparisons_only() -> None:
    assert gq.rate(0, 0) is None
    assert gq.rate(1, 20) == 0.05
    outcomes = [
        gq.Outcome("aa", 0, 100.0),
        gq.Outcome("aa", 1, 120.0, slower=["rps"]),
        gq.Outcome("aa", 2, 5.0, error="bad input"),
        gq.Outcome("aa", 0, 110.0),
    ]
    line = gq.summary("aa", outcomes, None)
    assert line.startswith("A/A false alarms   1/3 (33%, 95 % CI 6%..79% (Wilson))")
    assert "1 comparison(s) ended in error (not counted)" in line
    assert "median 105 s, max 120 s" in line


def test_the_slowdown_summary_shows_the_measured_injected_share() -> None:
    outcomes = [gq.Outcome("slow", 1, 200.0, cpu_change=0.08), gq.Outcome("slow", 0, 200.0, cpu_change=0.12)]
    line = gq.summary("slow", outcomes, 0.10)
    assert line.startswith("slowdown detected  1/2 (50%, 95 % CI 9%..91% (Wilson))")
    assert "injected CPU per request measured +10.0% median (+8.0%..+12.0%), aimed at +10%" in line


def test_the_comparison_is_bench_ab_as_the_ci_example_runs_it() -> None:
    args = gq.parse([])
    command = gq.ab_command(args, "ab.json")
    tail = command[command.index("ab") :]
    assert tail == [
        "ab", "--app", "shop.main:app", "--base", "../base", "--head", ".", "--scenarios", "perf/locustfile.py",
        "--setup", "python migrate.py", "--setup", "python seed.py", "--trials", "10", "--users", "8",
        "--warmup", "1", "--duration", "4", "--no-calibrate", "--no-html", "-o", "ab.json",
    ]  # fmt: skip
    workflow = (ROOT / "examples" / "github-actions" / "bench-ab.yml").read_text(encoding="utf-8")
    assert "--trials 10 --users 8" in workflow and "--warmup 1 --duration 4 --no-calibrate --no-html" in workflow


@pytest.mark.parametrize("argv", [["--which", "aa,bogus"], ["--repeats", "0"], ["--slowdown", "10"]])
def test_bad_options_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        gq.parse(argv)
    assert exc.value.code == 2
    assert "error: " in capsys.readouterr().err.strip().splitlines()[-1]  # one line saying what is wrong


def test_each_comparison_is_one_line_with_its_exit_code_and_why() -> None:
    flagged = gq.Outcome("nplus1", 1, 181.4, slower=["rps", "p99_ms /categories/[id]/items"], cpu_change=0.31)
    assert gq._describe(flagged, 2) == (
        "nplus1 #2: exit 1 (regression), 181 s, CPU per request +31.0%, slower: rps, p99_ms /categories/[id]/items"
    )
    failed = gq.Outcome("aa", 1, 90.0, failed_cells=1)
    assert gq._describe(failed, 1) == "aa     #1: exit 1 (regression), 90 s, slower: -, failed cells: 1"
    broken = gq.Outcome("slow", 2, 3.0, error="--base ../base is not a directory")
    assert gq._describe(broken, 1) == "slow   #1: exit 2 (error: --base ../base is not a directory), 3 s"


def test_the_wilson_interval_is_scipys() -> None:
    assert gq.wilson(0, 0) is None
    low, high = gq.wilson(0, 20)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-4)  # 0 false alarms in 20: still up to 16 %
    low, high = gq.wilson(19, 20)
    assert low == pytest.approx(0.7639, abs=1e-4) and high == pytest.approx(0.9911, abs=1e-4)


def test_the_log_round_trips_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    log = tmp_path / "gate.jsonl"
    assert gq.read_log(log) == []
    first = gq.Outcome(
        "slow", 1, 201.5, slower=["rps"], cpu_change=0.1, cpu_ci=(0.07, 0.13), base_cpu_ms=1.1, head_cpu_ms=1.21,
        burn_share=0.1, head_own_cpu_ms=1.1, load_before=(1.0, 0.5, 0.2), load_after=(2.0, 1.0, 0.5),
        started="2026-12-01T01:00:00+00:00",
        settings=gq.settings_of(gq.parse([])),
    )  # fmt: skip
    gq.append_log(log, first)
    with log.open("a") as f:
        f.write('{"kind": "aa", "exit_co')  # killed while writing
    assert gq.read_log(log) == [first]


def test_a_resumed_run_fills_the_least_run_kind_first_and_stops_at_repeats() -> None:
    args = gq.parse(["--repeats", "2"])
    assert gq._next_kind(args, {"aa": 0, "slow": 0, "nplus1": 0}) == "aa"
    assert gq._next_kind(args, {"aa": 1, "slow": 0, "nplus1": 0}) == "slow"
    assert gq._next_kind(args, {"aa": 2, "slow": 1, "nplus1": 2}) == "slow"
    assert gq._next_kind(args, {"aa": 2, "slow": 2, "nplus1": 2}) is None


def test_only_outcomes_of_the_same_settings_are_summarised(capsys: pytest.CaptureFixture[str]) -> None:
    args = gq.parse(["--which", "aa"])
    other = gq.parse(["--which", "aa", "--trials", "6"])
    outcomes = [
        gq.Outcome("aa", 0, 100.0, settings=gq.settings_of(args), started="a"),
        gq.Outcome("aa", 1, 100.0, settings=gq.settings_of(other), started="b"),
    ]
    gq.print_summary(args, outcomes)
    out = capsys.readouterr().out
    assert "(1 logged comparison(s) of other settings not counted)" in out
    assert "A/A false alarms   0/1 (0%" in out


def test_a_slowdown_line_shows_the_share_measured_by_its_own_trials_and_the_load() -> None:
    slow = gq.Outcome(
        "slow", 1, 400.2, slower=["cpu_ms_per_request"], cpu_change=0.101, cpu_ci=(0.05, 0.15), base_cpu_ms=1.8,
        head_cpu_ms=1.98, burn_share=0.099, head_own_cpu_ms=1.80, load_before=(11.09, 1.0, 1.0),
        load_after=(10.14, 1.0, 1.0),
        queries="1.08 -> 1.08 (exact, pg_stat_statements per scenario: no change)",
    )  # fmt: skip
    assert gq._describe(slow, 3) == (
        "slow   #3: exit 1 (regression), 400 s, load 11.09->10.14, CPU per request +10.1% [+5.0%..+15.0%]"
        " (head burnt 9.9% of its own 1.800 ms), queries per request 1.08 -> 1.08 (exact, pg_stat_statements per"
        " scenario: no change), slower: cpu_ms_per_request"
    )


def _ab_file(path: Path, head_speed: float) -> Path:
    """A bench ab results file (cells labelled base and head, paired by trial) from test_compare's golden run."""
    from test_compare import golden

    data = golden(variant="base")
    data["cells"] += golden(variant="head", speed=head_speed)["cells"]
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_the_summary_rejudges_the_kept_results_files_per_metric_and_threshold(tmp_path: Path) -> None:
    same = _ab_file(tmp_path / "001-aa.json", 1.0)
    slower = _ab_file(tmp_path / "002-slow.json", 1 / 1.07)  # CPU per request +7 %, throughput -6.5 %
    outcomes = [
        gq.Outcome("aa", 0, 1.0, raw=str(same.with_suffix(".txt"))),
        gq.Outcome("slow", 0, 1.0, raw=str(slower.with_suffix(".txt"))),
        gq.Outcome("nplus1", 2, 1.0, raw=str(tmp_path / "003-nplus1.txt")),  # no results file: left out
    ]
    assert gq.rejudged(outcomes, 0.10)[1:] == [
        "  aa      0/1 flagged (0%, 95 % CI 0%..79% (Wilson))",
        "  slow    0/1 flagged (0%, 95 % CI 0%..79% (Wilson))",  # +7 % is inside a 10 % threshold
    ]
    assert gq.rejudged(outcomes, 0.05)[2] == "  slow    1/1 flagged (100%, 95 % CI 21%..100% (Wilson))"
    table = gq.by_metric(outcomes)
    assert len(table) == 3 and table[1].split()[0] == "aa" and table[2].split()[0] == "slow"
    # judged at the default threshold (5 %): +7 % is beyond it; CPU per request is the last column
    assert table[2].rstrip().endswith("1/1 slower, +7.0%, CI 0% wide")
    assert gq.parse(["--rejudge", "0.05,0.1"]).rejudge == [0.05, 0.1]
    assert gq.rejudged(outcomes, 0.05, ("rps",))[0] == "re-judged at --threshold 0.05 --gate-on rps:"
    assert gq.parse(["--rejudge-on", "rps;cpu_ms_per_request_net"]).rejudge_on == [
        ("rps",),
        ("cpu_ms_per_request_net",),
    ]


def test_a_line_shows_the_net_cpu_change_the_gate_decides_on() -> None:
    outcome = gq.Outcome("aa", 0, 200.0, cpu_change=0.05, cpu_ci=(-0.02, 0.12), net_change=0.01, net_ci=(-0.03, 0.05))
    assert gq._describe(outcome, 1) == (
        "aa     #1: exit 0 (pass), 200 s, CPU per request +5.0% [-2.0%..+12.0%], net +1.0% [-3.0%..+5.0%], slower: -"
    )
    assert gq.Outcome.from_dict(json.loads(outcome.to_json())) == outcome


def test_the_margin_is_how_far_the_timed_rule_was_from_flagging() -> None:
    # +6 % with its interval above 0: flagged at 5 % by the nearer of the two conditions (the estimate, +1 point)
    flagged = gq.Outcome("slow", 1, 1.0, cpu_change=0.06, cpu_ci=(0.02, 0.10))
    assert gq.margin(flagged, 0.05) == pytest.approx(math.log1p(0.06) - math.log1p(0.05))
    # +8 % whose interval reaches below 0: not significant, the interval's low end decides
    wide = gq.Outcome("slow", 0, 1.0, cpu_change=0.08, cpu_ci=(-0.01, 0.17))
    assert gq.margin(wide, 0.05) == pytest.approx(math.log1p(-0.01))
    # either gated metric fails the gate, so the larger margin is the comparison's
    both = gq.Outcome("aa", 0, 1.0, cpu_change=0.0, cpu_ci=(-0.03, 0.03), net_change=0.04, net_ci=(0.01, 0.07))
    assert gq.margin(both, 0.05) == pytest.approx(math.log1p(0.04) - math.log1p(0.05))
    assert gq.margin(both, 0.05, ("cpu_ms_per_request",)) == pytest.approx(-math.log1p(0.05))
    assert gq.margin(gq.Outcome("aa", 2, 1.0), 0.05) is None  # nothing measured


def test_the_tail_model_is_a_normal_fit_with_a_bootstrap_upper_bound() -> None:
    from scipy import stats

    margins = [float(x) for x in stats.norm.ppf([(i + 0.5) / 40 for i in range(40)], loc=-0.05, scale=0.02)]
    model = gq.tail_model(margins, "aa")
    assert model is not None and model.n == 40
    assert model.rate == pytest.approx(stats.norm.sf(0.0, loc=model.mean, scale=model.sd))
    assert model.rate < model.upper < 0.05  # the bound lies above the estimate
    assert model.normality_p > 0.5  # these are normal quantiles
    miss = gq.tail_model([-m for m in margins], "slow")
    assert miss is not None and miss.rate == pytest.approx(model.rate)  # a miss is margin <= 0
    assert gq.tail_model(margins[: gq.MIN_MODEL - 1], "aa") is None
    assert gq.tail_model([0.01] * 10, "aa") is None  # no spread, no fit


def test_the_margin_line_names_the_closest_comparison_and_the_rare_event() -> None:
    aa = [gq.Outcome("aa", 0, 1.0, cpu_change=c / 100, cpu_ci=(c / 100 - 0.03, c / 100 + 0.03)) for c in range(-4, 5)]
    line = gq.margin_line("aa", aa, 0.05)
    assert line is not None and line.startswith("  aa      margin at 5%: closest -1.0, median -4.9 log points over 9")
    assert "P(false alarm)" in line and "95 % upper bound" in line
    few = gq.margin_line("slow", [gq.Outcome("slow", 1, 1.0, cpu_change=0.1, cpu_ci=(0.07, 0.13))], 0.05)
    assert few is not None and few.endswith(f"over 1 (a normal fit needs {gq.MIN_MODEL})")
    assert gq.margin_line("aa", [gq.Outcome("aa", 2, 1.0)], 0.05) is None
    # a positive margin that bench ab passed: the signed-rank condition, which the margin leaves out
    ranks = gq.Outcome("slow", 0, 1.0, cpu_change=0.095, cpu_ci=(0.006, 0.179))
    line = gq.margin_line("slow", [ranks], gq.compare.DEFAULT_THRESHOLD)
    assert line is not None and "over 1 (1 above 0 passed, 0 at or below 0 flagged)" in line


def test_the_summary_reads_several_logs_and_a_run_appends_to_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = gq.settings_of(gq.parse([]))
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    gq.append_log(first, gq.Outcome("aa", 0, 100.0, settings=settings, started="1", commit="a43e526"))
    gq.append_log(second, gq.Outcome("aa", 1, 100.0, settings=settings, started="2", commit="b000000"))
    assert gq.main(["--summary", "--which", "aa", "--log", str(first), "--log", str(second)]) == 0
    out = capsys.readouterr().out
    assert "A/A false alarms   1/2" in out and "code: a43e526 (1), b000000 (1)" in out
    with pytest.raises(SystemExit) as exc:
        gq.parse(["--log", str(first), "--log", str(second)])
    assert exc.value.code == 2


def test_each_comparison_records_the_commit_that_ran_it() -> None:
    commit = gq.code_commit()
    assert commit == "" or commit.split("-")[0].isalnum()
    outcome = gq.Outcome("aa", 0, 1.0, commit="a43e526-dirty")
    assert gq.Outcome.from_dict(json.loads(outcome.to_json())).commit == "a43e526-dirty"


def test_the_kept_campaign_logs_read_back_and_say_what_the_readme_says() -> None:
    logs = sorted((ROOT / "benchmarks" / "campaigns" / "gate_quality").glob("*.jsonl"))
    assert logs, "the campaigns behind the README's gate figures are kept in the repository"
    outcomes = [o for log in logs for o in gq.read_log(log)]
    assert all(o.commit and o.settings == gq.settings_of(gq.parse([])) for o in outcomes)
    first = gq.read_log(ROOT / "benchmarks/campaigns/gate_quality/2026-12-01-a43e526.jsonl")
    aa = [o for o in first if o.kind == "aa"]
    slow = [o for o in first if o.kind == "slow"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    claim = f"A/A {sum(o.flagged for o in aa)}/{len(aa)} flagged (Wilson 0–11 %), +10 % slowdowns "
    assert claim + f"{sum(o.flagged for o in slow)}/{len(slow)}\ncaught" in readme
