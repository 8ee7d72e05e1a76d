"""What the README promises about the commands' options, kept (issue 9, section 7).

The option parsing is tested through the real Typer app with the engine replaced by a recorder of the
RunConfig it would run (pure logic: what a command line asks for); the refusals run the real ``bench``
process; ``bench serve``'s exit code runs a real server.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
from processes import survivors
from typer.testing import CliRunner

import cli
from bench import profiles
from bench.errors import BenchError
from bench.plan import Setting, plan_parts
from bench.runner import RunConfig, validate_config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def planned(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[RunConfig, str]:
    """The RunConfig ``bench ARGS`` would run (validated as the engine validates it), and its stderr."""
    seen: list[RunConfig] = []
    monkeypatch.setattr(cli, "_execute", lambda config, html=True: (validate_config(config), seen.append(config)))
    result = CliRunner().invoke(cli.app, list(args))
    assert result.exit_code == 0 and len(seen) == 1, result.output
    return seen[0], result.stderr


def cells(config: RunConfig) -> Counter[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """(variant, scenario, settings) of one trial's cells."""
    keys = plan_parts(config.variants, config.plan_parts(), config.load_points(), 1)
    return Counter(
        (k.variant.name, k.scenario.name, tuple(sorted((k.setting or Setting()).labels().items()))) for k in keys
    )


def loads(config: RunConfig) -> set[tuple[str, str, int, int]]:
    """(variant, scenario, users, pool size it runs with) of one trial's cells."""
    keys = plan_parts(config.variants, config.plan_parts(), config.load_points(), 1)
    return {
        (k.variant.name, k.scenario.name, k.users, (k.setting or Setting()).pool_size or config.pool_size) for k in keys
    }


def one_line_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


# --- --quick and explicit --duration / --warmup ------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "advice"])
def test_an_explicit_duration_or_warmup_wins_over_quick(monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    quick, _ = planned(monkeypatch, command, "--quick")
    assert (quick.duration_s, quick.warmup_s, quick.trials) == (cli.QUICK_DURATION_S, cli.QUICK_WARMUP_S, 3)
    mixed, _ = planned(monkeypatch, command, "--quick", "--duration", "1.5", "--warmup", "0.5", "--trials", "1")
    assert (mixed.duration_s, mixed.warmup_s, mixed.trials) == (1.5, 0.5, 1)
    half, _ = planned(monkeypatch, command, "--quick", "--warmup", "0")
    assert (half.duration_s, half.warmup_s) == (cli.QUICK_DURATION_S, 0.0)
    plain, _ = planned(monkeypatch, command)
    assert (plain.duration_s, plain.warmup_s, plain.trials) == (cli.DURATION_S, cli.WARMUP_S, 1)
    shown = CliRunner().invoke(cli.app, [command, "--help"], env={"COLUMNS": "240", "TERMINAL_WIDTH": "240"})
    assert "an explicit --trials, --warmup or --duration wins" in shown.output


# --- --profile's folder is protected like the results file --------------------------------------------


def test_profile_refuses_an_existing_profiles_folder_before_measuring(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    folder = profiles.profile_dir_for(out)
    folder.mkdir()
    (folder / "pooled-db.html").write_text("an earlier run's profile")
    started = time.monotonic()
    proc = bench("run", "--variants", "pooled", "--scenarios", "db", "--profile", "-o", str(out))
    one_line_error(proc, f"{folder} already exists")
    assert "--force" in proc.stderr
    assert time.monotonic() - started < 30  # refused up front: no database, no cell
    assert (folder / "pooled-db.html").read_text() == "an earlier run's profile"
    assert not out.exists()


def test_force_replaces_the_profiles_folder_so_runs_never_mix(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    folder = profiles.profile_dir_for(out)
    folder.mkdir()
    (folder / "stale.html").write_text("old")
    with pytest.raises(BenchError, match="already exists"):
        profiles.claim_dir(out, force=False)
    assert (folder / "stale.html").exists()
    assert profiles.claim_dir(out, force=True) == folder
    assert not folder.exists()
    assert profiles.claim_dir(tmp_path / "fresh.json", force=False) == tmp_path / "fresh.profiles"


# --- bench advice --redis-url ------------------------------------------------------------------------


def test_advice_redis_url_never_asks_for_a_cache_option_advice_does_not_have(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "redis://127.0.0.1:6379/0"
    config, _ = planned(monkeypatch, "advice", "--claims", "cache", "--redis-url", url)
    assert config.redis_url == url and "redis" in config.caches()
    for narrowing in (["--claims", "pool"], ["--variants", "pooled"], ["--scenarios", "search"]):
        config, stderr = planned(monkeypatch, "advice", *narrowing, "--redis-url", url)
        assert config.redis_url is None, narrowing
        assert "--redis-url is not used" in stderr
        assert "--cache" not in stderr


# --- each advice claim is also one bench run -----------------------------------------------------------

CLAIM_TITLES = {"indexing": "index", "caching": "cache", "background refresh": "refresh", "pooling": "pool"}


def readme_claim_runs() -> dict[str, list[str]]:
    """The README's `bench run ... # <claim>` lines, by claim."""
    found = {}
    for line in README.splitlines():
        match = re.match(r"^bench (run .*?)\s+# (.+)$", line)
        if match and match.group(2).strip() in CLAIM_TITLES:
            found[CLAIM_TITLES[match.group(2).strip()]] = match.group(1).split()
    return found


def test_each_advice_claim_is_the_readme_s_bench_run(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = readme_claim_runs()
    assert set(runs) == set(CLAIM_TITLES.values())
    for claim, args in runs.items():
        run_config, _ = planned(monkeypatch, *args)
        # A --redis-url makes advice plan its Redis cells whether or not redis-server is installed here.
        advice_config, _ = planned(monkeypatch, "advice", "--claims", claim, "--redis-url", "redis://127.0.0.1:1/0")
        assert cells(run_config) == cells(advice_config), claim
        assert loads(run_config) == loads(advice_config), claim


def test_a_cache_sweep_runs_cached_per_backend_and_the_others_once(monkeypatch: pytest.MonkeyPatch) -> None:
    config, _ = planned(
        monkeypatch, "run", "--variants", "cached,pooled", "--scenarios", "hot", "--cache", "memory,redis"
    )
    assert config.caches() == {"memory", "redis"}
    assert cells(config) == {
        ("cached", "hot", (("cache", "memory"),)): 1,
        ("cached", "hot", (("cache", "redis"),)): 1,
        ("pooled", "hot", ()): 1,
    }
    # Crossed with another setting, the others run once per value of that one.
    config, _ = planned(monkeypatch, "run", "--variants", "cached,pooled", "--scenarios", "hot",
                        "--cache", "memory,redis", "--pool-size", "5,10")  # fmt: skip
    assert cells(config)[("pooled", "hot", (("pool", "5"),))] == 1
    assert sum(1 for variant, _, _ in cells(config) if variant == "cached") == 4


def test_nopool_runs_at_every_size_of_a_pool_sweep_in_run_and_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    for args in (["run", "--variants", "nopool", "--scenarios", "db", "--pool-size", "1,20"],
                 ["advice", "--claims", "pool", "--variants", "nopool", "--pool-size", "1,20"]):  # fmt: skip
        config, _ = planned(monkeypatch, *args)
        assert set(cells(config)) == {("nopool", "db", (("pool", "1"),)), ("nopool", "db", (("pool", "20"),))}


def test_a_setting_applies_to_the_variants_it_changes() -> None:
    assert Setting(cache="redis").applied_to("cached") == Setting(cache="redis")
    assert Setting(cache="redis").applied_to("pooled") is None
    assert Setting(pool_size=5, cache="redis").applied_to("sync") == Setting(pool_size=5)
    assert Setting(pool_size=5).applied_to("nopool") == Setting(pool_size=5)


@pytest.mark.parametrize(
    ("cache", "fragment"),
    [
        ("memcached", "--cache takes memory, redis or a comma list"),
        ("memory,memory", "--cache takes"),
        (",", "--cache"),
    ],
)
def test_a_bad_cache_list_is_one_line(cache: str, fragment: str) -> None:
    result = CliRunner().invoke(cli.app, ["run", "--cache", cache])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_url_cannot_sweep_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli.app, ["run", "--url", "http://127.0.0.1:9", "--cache", "memory,redis"])
    assert result.exit_code == 2 and "--url cannot sweep --index, --pool-size or --cache" in result.stderr


# --- bench serve exits 130 when interrupted, like bench run ----------------------------------------------


def _restore_default_sigint() -> None:
    # Ctrl-C in a terminal: SIGINT at its default, whatever the parent of this test ignores.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_exits_130_when_interrupted_and_leaves_no_process(sig: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "serve", "pooled"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_restore_default_sigint,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "pooled serving on http://127.0.0.1:PORT ..." once it is up
        assert "serving on" in line, line + proc.stderr.read() if proc.stderr else line
        children = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        assert children
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in out + err
    assert "stopped" in out
    assert not survivors(children)  # polled for a while: a killed group's exits are not instantaneous


@pytest.mark.e2e
def test_bench_run_compares_cache_backends_in_one_run(tmp_path: Path) -> None:
    # The caching claim as one `bench run` (real PostgreSQL, Redis, uvicorn, Locust); --quick with explicit
    # timings (and one trial instead of its three) also shows end to end which wins.
    out = tmp_path / "cache.json"
    proc = bench("run", "--variants", "cached,pooled", "--scenarios", "hot", "--cache", "memory,redis",
                 "--users", "2", "--quick", "--trials", "1", "--warmup", "0.5", "--duration", "1", "--no-calibrate",
                 "-o", str(out), timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "caching: cached vs pooled" in proc.stdout
    from bench import results

    loaded = results.load(out)
    assert (loaded.metadata["config"]["duration_s"], loaded.metadata["config"]["warmup_s"]) == (1.0, 0.5)
    assert loaded.metadata["cache"]["backend"] == "redis"
    assert loaded.metadata["cache"]["backends"] == ["memory", "redis"]
    seen = Counter((c.variant, c.settings.get("cache")) for c in loaded.cells)
    assert seen == {("cached", "memory"): 1, ("cached", "redis"): 1, ("pooled", None): 1}
    assert all(c.ok and c.requests > 0 for c in loaded.cells), [c.reason for c in loaded.cells]
    backends = {c.settings.get("cache"): (c.target or {}).get("cache") for c in loaded.cells if c.variant == "cached"}
    assert backends["memory"]["backend"] == "memory" and backends["redis"]["backend"] == "redis", backends


@pytest.mark.e2e
def test_explain_params_are_given_where_timing_was_on_and_derived_elsewhere(tmp_path: Path) -> None:
    # What the README says of EXPLAIN: every variant times its statements by default, so a plan runs with a
    # value a request sent; with --no-instrument it runs with a value read from the table.
    from bench import results

    def sources(*args: str) -> dict[str, str]:
        out = tmp_path / f"explain-{len(args)}.json"
        proc = bench("run", "--scenarios", "db", "--users", "2", "--warmup", "0.5", "--duration", "1",
                     "--no-calibrate", "-o", str(out), *args, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        explains = [e for e in results.load(out).explains if "FROM world" in e["query"]]
        # SQLAlchemy qualifies the columns (sync's statement), pooled's hand-written SQL does not.
        return {("sync" if "world.id" in e["query"] else "pooled"): e["params_source"] for e in explains}

    assert sources("--variants", "sync,pooled") == {"sync": "given", "pooled": "given"}
    assert sources("--variants", "pooled", "--no-instrument") == {"pooled": "derived"}
