"""Pure logic of the load side: the one load spec, scenario identity, and the rules that refuse a
locustfile whose meaning a run could not keep (field cases: tests/data/field_cases, README there)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from bench import locustfiles
from bench.errors import BenchError
from bench.loadspec import ENV, WORKER_OPTION, LoadSpec, file_sha256, worker_args
from reports.fmt import flags
from scenarios import HERE, SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
FIELD = Path(__file__).resolve().parent / "data" / "field_cases"


def full_spec(tmp_path: Path) -> LoadSpec:
    return LoadSpec(
        SCENARIOS.get("db").path,
        "http://127.0.0.1:8000",
        16,
        1.5,
        4.0,
        rate=200.0,
        target_pid=123,
        db_pid=456,
        target_stats=True,
        max_requests=10,
        workers=2,
        remote_workers=1,
        master_bind="192.0.2.1",  # only what the spec carries: nothing binds here
        master_port=5557,
        pg_dsn="postgresql://bench:s3cret@127.0.0.1:5432/db",
        out=tmp_path / "load.json",
    )


def test_the_spec_round_trips_through_the_environment(tmp_path: Path) -> None:
    spec = full_spec(tmp_path)
    env = spec.to_env()
    assert list(env) == [ENV]  # one variable carries every setting
    assert LoadSpec.from_env(env) == spec
    assert LoadSpec.from_env({}) is None  # a worker: its spec comes from the master
    with pytest.raises(ValueError, match="unknown load spec fields: surprise"):
        LoadSpec.from_json(spec.to_json()[:-1] + ', "surprise": 1}')


def test_users_are_given_to_locust_once_and_from_the_spec(tmp_path: Path) -> None:
    args = full_spec(tmp_path).locust_args()
    assert args.count("-u") == 1 and args[args.index("-u") + 1] == "16"
    assert args[args.index("--expect-workers") + 1] == "3"  # 2 local + 1 remote
    assert args[args.index("--master-bind-port") + 1] == "5557"
    closed = LoadSpec(SCENARIOS.get("db").path, "http://h", 4, 0, 1)
    assert "--master" not in closed.locust_args()
    with pytest.raises(ValueError, match="master_port"):
        dataclasses.replace(closed, workers=2).locust_args()


def test_workers_get_pacing_and_the_files_identity_but_no_secret(tmp_path: Path) -> None:
    spec = full_spec(tmp_path)
    shipped = spec.for_workers()
    assert (shipped.rate, shipped.users, shipped.max_requests) == (200.0, 16, 10)
    assert shipped.locustfile_sha256 == file_sha256(spec.locustfile)
    assert shipped.pg_dsn is None and shipped.target_pid is None and shipped.db_pid is None and shipped.out is None
    assert "s3cret" not in shipped.to_json()
    assert LoadSpec.from_json(shipped.to_json()) == shipped
    assert WORKER_OPTION.startswith("dbbench_")  # Locust forwards only options its own parser does not define
    # A remote worker downloads the master's file; local ones read it from disk.
    assert worker_args("10.0.0.1", 5557)[:2] == ["-f", "-"]
    assert worker_args("127.0.0.1", 5557, spec.locustfile)[:2] == ["-f", str(spec.locustfile)]


def test_only_dbbench_own_scenarios_may_drop_locust_statistics(tmp_path: Path) -> None:
    assert LoadSpec(SCENARIOS.get("db").path, "http://h", 1, 0, 1).own_scenario
    assert not LoadSpec(FIELD / "quitting_gate.py", "http://h", 1, 0, 1).own_scenario


def test_no_load_setting_is_spelled_outside_the_spec_module() -> None:
    for module in ("bench/load.py", "bench/locust_entry.py", "bench/calibration.py", "bench/profiles.py", "cli.py"):
        text = (ROOT / module).read_text(encoding="utf-8")
        assert not re.search(r"DBBENCH_(USERS|RATE|WARMUP|DURATION|OUT|TARGET|DB_PID|PG_DSN|MAX_REQ)", text), module


# --- scenario identity (field case: same_stem/read + same_stem/write, and a user file named db.py) ---


def test_two_files_with_one_name_never_merge(tmp_path: Path) -> None:
    read, write = FIELD / "same_stem" / "read" / "locustfile.py", FIELD / "same_stem" / "write" / "locustfile.py"
    picked = SCENARIOS.select([str(read), str(write)])
    assert [s.name for s in picked] == ["locustfile.py (read)", "locustfile.py (write)"]
    assert all("/" not in s.name for s in picked)  # names become log file names too
    deeper = [tmp_path / a / "x" / "locustfile.py" for a in ("a", "b")]
    for path in deeper:
        path.parent.mkdir(parents=True)
        path.write_text(read.read_text())
    assert [s.name for s in SCENARIOS.select([str(p) for p in deeper])] == [
        "locustfile.py (a-x)",
        "locustfile.py (b-x)",
    ]


def test_a_users_file_named_like_a_builtin_scenario_stays_apart(tmp_path: Path) -> None:
    mine = tmp_path / "db.py"
    mine.write_text((FIELD / "same_stem" / "read" / "locustfile.py").read_text())
    picked = SCENARIOS.select(["db", str(mine)])
    assert [s.name for s in picked] == ["db", "db.py"]
    assert picked[0].path.parent == HERE and picked[1].path == mine.resolve()
    # The built-in file given by its path is the built-in scenario, not a second one.
    assert [s.name for s in SCENARIOS.select(["db", str(HERE / "db.py")])] == ["db"]


# --- the rules, on descriptions as bench.locust_describe writes them ---


def user(name: str = "Reader", kind: str = "FastHttpUser", wait: str = "constant(0)", **extra: object) -> dict:
    return {
        "name": name,
        "kind": kind,
        "weight": 1,
        "fixed_count": 0,
        "wait_time": {"text": wait, "zero": wait == "constant(0)"},
        "tasksets": [],
        **extra,
    }


def test_a_load_shape_is_refused_in_one_line_with_or_without_rate() -> None:
    shaped = {"users": [user()], "shape": "Steps"}
    for rated in (False, True):
        reason = locustfiles.refusal("stages_shape.py", shaped, rated)
        assert reason and "LoadTestShape (Steps)" in reason and "\n" not in reason


def test_think_time_is_refused_under_rate_only() -> None:
    browse = {"name": "Browse", "wait_time": {"text": "between(0.5, 1)", "zero": False}}
    file = {"users": [user("Visitor", tasksets=[browse])], "shape": None}
    reason = locustfiles.refusal("taskset_think.py", file, rated=True)
    assert reason and "Browse.wait_time = between(0.5, 1)" in reason and reason.startswith("--rate")
    assert locustfiles.refusal("taskset_think.py", file, rated=False) is None
    pacing = {"users": [user("Refresh", wait="constant_pacing(1)")], "shape": None}
    assert "Refresh.wait_time = constant_pacing(1)" in str(locustfiles.refusal("f.py", pacing, rated=True))
    plain = {"users": [user("Grpc", kind="User")], "shape": None}
    assert "plain User" in str(locustfiles.refusal("f.py", plain, rated=True))
    assert locustfiles.refusal("f.py", plain, rated=False) is None


def test_broken_or_empty_files_are_named_in_one_line() -> None:
    assert locustfiles.refusal("x.py", {"error": "SyntaxError: bad (line 3)"}, False) == (
        "locustfile x.py cannot be loaded: SyntaxError: bad (line 3)"
    )
    assert "defines no User class" in str(locustfiles.refusal("x.py", {"users": [], "shape": None}, False))


def test_the_summary_describes_the_file_as_it_is() -> None:
    browse = {"name": "Browse", "wait_time": {"text": "between(0.5, 1)", "zero": False}}
    text = locustfiles.summary({"users": [user("Visitor", tasksets=[browse]), user("Admin", kind="HttpUser")]})
    assert text == (
        "Visitor (FastHttpUser, wait constant(0); TaskSet Browse, wait between(0.5, 1)), "
        "Admin (HttpUser, wait constant(0))"
    )


def test_inspect_raises_the_first_refusal_as_a_bench_error(monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = SCENARIOS.select([str(FIELD / "stages_shape.py")])[0]
    monkeypatch.setattr(locustfiles, "describe", lambda paths: {str(scenario.path): {"users": [user()], "shape": "S"}})
    with pytest.raises(BenchError, match=r"locustfile stages_shape\.py defines a LoadTestShape \(S\)"):
        locustfiles.inspect([scenario], rated=False)


def test_rates_off_target_either_way_are_flagged() -> None:
    from reports.summary import Row

    fields = {f.name: None for f in dataclasses.fields(Row)}
    row = Row(**{**fields, "generator_bound": False, "late": 0, "achieved_share": 1.3})  # type: ignore[arg-type]
    assert "achieved 130% of target rate" in flags(row)
    assert not flags(dataclasses.replace(row, achieved_share=1.0))
    assert "achieved 80% of target rate" in flags(dataclasses.replace(row, achieved_share=0.8))
