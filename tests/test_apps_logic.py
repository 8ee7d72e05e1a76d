"""Pure logic of `--app` and `bench ab`: parsing the options, the URL each driver gets, the app check's verdict,
and the side-by-side table (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import hist
from bench.apps import ab, spec
from bench.apps import check as app_check
from bench.apps.databases import app_url
from bench.errors import BenchError
from bench.results import Cell, EndpointStats, Results


def test_app_defaults_to_the_current_directory_and_detects_asyncpg(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("fastapi\nsqlalchemy[asyncio]\nasyncpg\n")
    config = spec.parse(["shop.main:app"], [], cwd=tmp_path)
    (app,) = config.apps
    assert (app.label, app.target, app.directory) == ("shop", "shop.main:app", tmp_path.resolve())
    assert (app.url_style, app.style_source) == ("asyncpg", "detected: requirements.txt names asyncpg")
    assert config.db_env == "DATABASE_URL" and config.server_workers == 1


def test_labelled_apps_take_their_own_directories(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    config = spec.parse(
        ["base=shop.main:app", "head=shop.main:app"], ["base=a", "head=b"], url_style="libpq", cwd=tmp_path
    )
    assert [(a.label, a.directory.name, a.url_style) for a in config.apps] == [
        ("base", "a", "libpq"),
        ("head", "b", "libpq"),
    ]


@pytest.mark.parametrize(
    ("apps", "dirs", "extra", "message"),
    [
        (["shop.main"], [], {}, "--app takes [LABEL=]MODULE:ATTR"),
        (["shop.main:app", "shop.main:app"], [], {}, "two apps are labelled 'shop'"),
        (["shop.main:app"], ["nowhere"], {}, "is not a directory"),
        (["shop.main:app"], ["x=."], {}, "--app-dir names 'x'"),
        (["shop.main:app"], [], {"url_style": "jdbc"}, "--db-url-style takes libpq, asyncpg, psycopg"),
        (["shop.main:app"], [], {"env": ["NOVALUE"]}, "--app-env takes KEY=VALUE"),
        (["shop.main:app"], [], {"env": ["DATABASE_URL=x"]}, "dbbench sets DATABASE_URL itself"),
        (["shop.main:app"], [], {"db_env": "1BAD"}, "--db-env takes an environment variable's name"),
        (["shop.main:app"], [], {"setup": ["'unclosed"]}, "--setup"),
        (["shop.main:app"], [], {"python": "/no/such/python"}, "--python /no/such/python is not an executable"),
        (["shop.main:app"], [], {"server_workers": 0}, "--server-workers must be >= 1"),
    ],
)
def test_bad_app_options_are_one_line(
    tmp_path: Path, apps: list[str], dirs: list[str], extra: dict[str, object], message: str
) -> None:
    with pytest.raises(BenchError) as raised:
        spec.parse(apps, dirs, cwd=tmp_path, **extra)  # type: ignore[arg-type]
    assert message in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("dsn", "style", "url"),
    [
        ("postgresql://postgres@127.0.0.1:5432/db", "libpq", "postgresql://postgres@127.0.0.1:5432/db"),
        ("postgres://u:p%40ss@h:5/db", "asyncpg", "postgresql+asyncpg://u:p%40ss@h:5/db"),
        ("host=h port=5 dbname=db user=u", "psycopg", "postgresql+psycopg://u@h:5/db"),
        ("postgresql:///db?host=/run/pg&sslmode=disable", "libpq", "postgresql:///db?host=%2Frun%2Fpg&sslmode=disable"),
    ],
)
def test_the_database_url_in_the_form_the_apps_driver_expects(dsn: str, style: str, url: str) -> None:
    assert app_url(dsn, style) == url


def test_a_parameter_sqlalchemys_asyncpg_dialect_would_choke_on_is_refused() -> None:
    with pytest.raises(BenchError, match="'sslmode' has no place in a postgresql\\+asyncpg URL"):
        app_url("postgresql://u:secret@h/db?sslmode=require", "asyncpg")


def _sample(errors: dict[str, int], samples: dict[str, str] | None = None) -> dict[str, object]:
    return {
        "requests": 10,
        "errors": errors,
        "error_samples": samples or {},
        "endpoints": {"/items/[id]": {"requests": 10, "errors": sum(errors.values()), "histogram": ""}},
    }


def test_the_check_refuses_5xx_and_connection_errors_with_the_apps_traceback() -> None:
    log = (
        "Traceback (most recent call last):\n  File 'x'\n"
        "ZeroDivisionError: division by zero (postgresql://u:hunter22@h/db)\n"
    )
    report = app_check.report(
        _sample({"HTTP 500 GET /items/[id]": 4}, {"HTTP 500 GET /items/[id]": "Internal Server Error"}),
        log,
        ("postgresql://u:hunter22@h/db",),
    )
    assert not report.ok
    assert report.problems[0] == (
        "HTTP 500 GET /items/[id]: 4 of the warm-up's requests failed; body: Internal Server Error"
    )
    assert report.problems[1].startswith("the app logged: ZeroDivisionError: division by zero")
    assert "hunter22" not in repr(report)
    assert not app_check.report(_sample({"ConnectionResetError GET /items/[id]: reset": 1}), "").ok


def test_the_check_lets_4xx_through_to_the_error_rate() -> None:
    report = app_check.report(_sample({"HTTP 404 GET /items/[id]": 2}), "")
    assert report.ok and report.info["endpoints"] == {"/items/[id]": 10}


def _cell(variant: str, trial: int, requests: int) -> Cell:
    histogram = hist.new()
    histogram.record_value(1000 * (2 if variant == "head" else 1))
    encoded = hist.encode(histogram)
    return Cell(
        variant,
        "shop",
        4,
        trial,
        "ok",
        duration_s=1.0,
        requests=requests,
        histogram=encoded,
        endpoints={"/items/[id]": EndpointStats(requests, 0, encoded)},
    )


def test_side_by_side_pairs_trials_and_keys_endpoints_by_name() -> None:
    results = Results(cells=[_cell("base", 1, 100), _cell("head", 1, 90), _cell("head", 2, 110), _cell("base", 2, 100)])
    overall, items = ab.rows(results, "base", "head")
    assert (overall.endpoint, overall.pairs, overall.trial_ratios) == (ab.ALL, 2, (0.9, 1.1))
    assert overall.ratio == pytest.approx((0.9 * 1.1) ** 0.5)  # geometric mean of the pairs, as bench compare's
    assert items.endpoint == "/items/[id]" and items.base_rps == pytest.approx(100)
    assert items.head_rps == pytest.approx((90 * 110) ** 0.5)
    assert (items.base_p99_ms, items.head_p99_ms) == (1.0, 2.0)


def test_the_github_actions_example_runs_bench_ab_with_options_that_exist() -> None:
    import shlex

    import typer.main

    import cli

    workflow = (Path(__file__).resolve().parent.parent / "examples" / "github-actions" / "bench-ab.yml").read_text()
    command = workflow.split("bench ab ", 1)[1].split("\n      - ", 1)[0].replace("\\\n", " ")
    group = typer.main.get_command(cli.app)
    ab_command = group.commands["ab"]  # type: ignore[attr-defined]
    context = ab_command.make_context("ab", shlex.split(command))
    assert context.params["trials"] == 10 and context.params["base"] == Path("../base")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--app", "a.main:app", "--app", "b.main:app", "--base", ".", "--head", "."], "takes one --app"),
        (["--app", "a.main:app", "--base", "/nonexistent-base", "--head", "."], "--base /nonexistent-base"),
        (["--app", "a.main:app", "--base", ".", "--head", "/nonexistent-head"], "--head /nonexistent-head"),
    ],
)
def test_bench_ab_refuses_two_apps_and_missing_checkouts_in_one_line(extra: list[str], expected: str) -> None:
    # Before: a second --app silently replaced the first, and a missing --base was named "--app-dir … (for base)".
    from typer.testing import CliRunner

    import cli

    result = CliRunner().invoke(cli.app, ["ab", *extra, "--scenarios", "perf/locustfile.py"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.output


def test_reports_never_claim_a_pool_or_cache_for_an_app() -> None:
    # Before: every --app run's footer said "pool size ? (max_overflow ?, threadpool ?) · cache memory".
    from reports import markdown
    from reports.terminal import footer

    results = Results(metadata={"pool": {"note": "the app's own (not set by dbbench)"}, "database": {"kind": "x"}})
    text = footer(results).plain
    assert "pool: the app's own (not set by dbbench)" in text
    assert "cache" not in text and "?" not in text
    assert "pool: the app's own" in markdown.render(results)


def test_a_check_that_did_not_run_is_never_shown_as_passed() -> None:
    from rich.console import Console

    from bench.results import VariantCheck
    from reports.live import LiveObserver

    console = Console(record=True, width=120)
    LiveObserver(console).checked(VariantCheck("shop", True, [], {"check": "not run (--no-check)"}))
    shown = console.export_text()
    assert "not run (--no-check)" in shown and "passed" not in shown
