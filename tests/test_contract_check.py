"""bench.check reports each contract fault as one line; targets.common.contract's pure rules.

Server tests use the fixtures described at the top of tests/test_targets.py (``pg_dsn``, ``run_target``).
"""

from __future__ import annotations

import socket
from typing import Any

import orjson
import pytest
from starlette.responses import Response

from bench.check.expected import expected_fortunes_html
from bench.check.rules import authors_difference, authors_shape_fault, fortunes_shape_fault
from bench.check.server_log import ServerLog, last_exception
from bench.check.variant import check_variant
from bench.seed import apply_schema, seed, world_snapshot
from targets.common.contract import assign_new_values, batch_update_args, parse_queries, render_fortunes
from targets.common.responses import OrjsonResponse
from targets.common.schema import FORTUNES, seeded_authors_json
from targets.common.settings import TargetSpec


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, 1),
        ("", 1),
        ("foo", 1),
        ("1.5", 1),
        ("-3", 1),
        ("0", 1),
        ("1", 1),
        ("20", 20),
        ("500", 500),
        ("501", 500),
        ("99999999999999999999", 500),
    ],
)
def test_parse_queries(raw: str | None, expected: int) -> None:
    assert parse_queries(raw) == expected


def test_render_fortunes_matches_the_independent_expectation() -> None:
    assert render_fortunes(FORTUNES) == expected_fortunes_html()


def test_render_fortunes_escapes_sorts_and_adds_the_request_time_row() -> None:
    page = render_fortunes([(2, "b <b>&"), (1, "a"), (3, "フ")])
    assert page == (
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
        "<tr><th>id</th><th>message</th></tr>"
        "<tr><td>0</td><td>Additional fortune added at request time.</td></tr>"
        "<tr><td>1</td><td>a</td></tr>"
        "<tr><td>2</td><td>b &lt;b&gt;&amp;</td></tr>"
        "<tr><td>3</td><td>フ</td></tr>"
        "</table></body></html>"
    )


@pytest.mark.parametrize(
    ("content", "kwargs"),
    [
        ({"id": 1, "randomNumber": 2}, {}),
        ([{"id": 1, "randomNumber": 2}] * 3, {}),
        ({"status": "accepted"}, {"status_code": 202}),
        ({"detail": "not found"}, {"status_code": 404}),
        ({"status": "ok"}, {"headers": {"X-Dbbench-Variant": "pooled"}}),
        (None, {"status_code": 204}),
        ({"a": 1}, {"media_type": "application/problem+json"}),
    ],
)
def test_the_json_responses_fast_path_sets_what_starlette_would(content: object, kwargs: dict[str, Any]) -> None:
    """OrjsonResponse skips Response.__init__ in the common case: the same status, body and headers, in order,
    as the class it was before (Starlette's own __init__ around orjson)."""

    class StarlettePath(Response):
        media_type = "application/json"

        def render(self, content: Any) -> bytes:
            return orjson.dumps(content)

    ours, theirs = OrjsonResponse(content, **kwargs), StarlettePath(content, **kwargs)
    assert (ours.status_code, ours.body, ours.raw_headers) == (theirs.status_code, theirs.body, theirs.raw_headers)
    assert ours.background is None


def test_new_values_are_one_per_distinct_id_and_written_in_id_order() -> None:
    new_values = assign_new_values([7, 3, 7, 9, 3])
    assert list(new_values) == [7, 3, 9]
    assert all(1 <= value <= 10_000 for value in new_values.values())
    assert batch_update_args(new_values) == ([3, 7, 9], [new_values[3], new_values[7], new_values[9]])


def test_broken_target_faults_are_each_reported_once(pg_dsn, run_target) -> None:
    apply_schema(pg_dsn)
    seed(pg_dsn)
    base_url = run_target("tests.broken_target:app", TargetSpec(pg_dsn, 4).to_env())

    report = check_variant(base_url, pg_dsn)

    assert not report.ok
    # /_bench/info is broken, but the target is instrumented: its query counts were checked.
    assert report.info["query_counts"] == "checked"
    assert report.info["queries_per_request"]["/db"] == 2
    # Its "eager" endpoint is really lazy: flagged as an N+1 (a finding, listed apart from the problems).
    suspects = {entry["endpoint"]: entry for entry in report.info["nplus1_suspects"]}
    assert set(suspects) == {"/authors/lazy", "/authors/eager"}
    assert suspects["/authors/eager"]["message"] == "N+1 suspected: 21 similar statements per request"
    expected = [
        "/_bench/info: invalid JSON",
        "/db: randomNumber differs from the seed for",
        "/queries?queries=0: expected 1 objects, got 0",
        "/queries?queries=501: expected 500 objects, got 501",
        "/queries?queries=foo: HTTP 500, expected 200",
        "/queries?queries=: HTTP 500, expected 200",
        "/fortunes: fortune 11 is not HTML-escaped",
        "/updates?queries=20: returned values differ from the database for",  # 19 of 19 when an id repeats
        "/updates?queries=20: no stored value changed",
        "/db: expected 1 query per request, saw 2",
        "/authors/lazy?limit=5: author 1: books not sorted by id",
        "/authors/lazy: author 1: books not sorted by id",
    ]
    for prefix in expected:
        assert sum(line.startswith(prefix) for line in report.problems) == 1, (prefix, report.problems)
    # Faults the broken target does not have must not be reported.
    assert not any(
        line.startswith(("/queries?queries=1:", "/queries?queries=20:", "/queries:")) for line in report.problems
    )
    assert not any(line.startswith("/authors/eager") for line in report.problems)  # right bytes, wrong way
    assert all("\n" not in line for line in report.problems)


def test_unreachable_target_is_one_problem_not_a_traceback(pg_dsn) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused

        report = check_variant(f"http://127.0.0.1:{port}", pg_dsn)

    assert not report.ok
    assert len(report.problems) == 1
    assert report.problems[0].startswith("/_bench/info: ConnectError")
    assert report.problems[0].endswith("remaining checks skipped")


def test_query_counts_are_skipped_not_failed_without_instrumentation(pg_dsn, run_target) -> None:
    apply_schema(pg_dsn)
    seed(pg_dsn)
    env = TargetSpec(pg_dsn, 4, instrument=False).to_env()
    base_url = run_target("targets.pooled:app", env)

    report = check_variant(base_url, pg_dsn)

    assert report.problems == [] and report.ok
    assert report.info["instrumented"] is False
    assert report.info["query_counts"].startswith("not checked")
    assert "queries_per_request" not in report.info and "nplus1_suspects" not in report.info


@pytest.mark.parametrize(
    ("got", "message"),
    [
        ({"x": 1}, 'expected a JSON list, got {"x": 1}'),
        ([], "expected 2 authors, got 0"),
        (
            [{"id": 1, "name": "a", "books": [{"id": 3, "title": "c"}, {"id": 2, "title": "b"}]}, {}],
            "author 1: books not sorted by id ([3, 2])",
        ),
    ],
)
def test_authors_difference_names_the_first_fault(got, message) -> None:
    want = [
        {"id": 1, "name": "a", "books": [{"id": 2, "title": "b"}, {"id": 3, "title": "c"}]},
        {"id": 2, "name": "b", "books": []},
    ]
    assert authors_difference(got, want) == message


# --- without the seeded database (--url): the rules any right answer obeys ----------------------------


def test_the_seeded_answers_obey_the_shape_rules() -> None:
    assert fortunes_shape_fault(expected_fortunes_html()) is None
    assert authors_shape_fault(seeded_authors_json(20), 20) is None
    page = render_fortunes([(5, "zebra <b>"), (6, "apple")])
    assert fortunes_shape_fault(page) is None  # other fortunes than the seed's: still a right answer
    # A template's page (TechEmpower's own FastAPI app: Jinja2, newlines between tags, &#39; escapes).
    templated = "\n".join(
        ["<!DOCTYPE html>", "<html>", "<head><title>Fortunes</title></head>", "<body>", "<table>",
         "<tr><th>id</th><th>message</th></tr>",
         "<tr><td>0</td><td>Additional fortune added at request time.</td></tr>",
         "<tr><td>7</td><td>it&#39;s &lt;b&gt;</td></tr>", "</table>", "</body>", "</html>", ""]
    )  # fmt: skip
    assert fortunes_shape_fault(templated) is None


@pytest.mark.parametrize(
    ("page", "fault"),
    [
        (render_fortunes([(1, "a")]).replace("<td>1</td><td>a</td>", "<td>1</td><td><script>x</script></td>"),
         "a message is not HTML-escaped (<script> appears raw)"),
        (render_fortunes([(1, "z"), (2, "a")]).replace("<td>2</td><td>a</td>", "<td>2</td><td>zz</td>"),
         "rows are not sorted by message"),
        (render_fortunes([]).replace("Additional fortune added at request time.", "x"),
         "the fortune added at request time (id 0) is missing"),
        ("<html></html>", "not the contract's page (doctype, title, table head and end)"),
    ],
)  # fmt: skip
def test_fortunes_shape_faults(page: str, fault: str) -> None:
    assert fortunes_shape_fault(page) == fault


def test_authors_shape_faults() -> None:
    authors = seeded_authors_json(3)
    assert authors_shape_fault(authors, 2) == "expected at most 2 authors, got 3"
    assert authors_shape_fault(list(reversed(authors)), 3) == "authors not ordered by id ([3, 2, 1])"
    unsorted = [{**authors[0], "books": list(reversed(authors[0]["books"]))}]
    assert str(authors_shape_fault(unsorted, 3)).startswith("author 1: books not sorted by id")


# --- the server's exception behind an HTTP 500 ---------------------------------------------------------

ASGI_500 = """\
ERROR:    Exception in ASGI application
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/asyncpg/connection.py", line 1795, in _do_execute
    result, stmt = await executor(stmt, None)
                   ^^^^^^^^^^^^^^^^^^^^^^^^^^
asyncpg.exceptions.InvalidSQLStatementNameError: prepared statement "__asyncpg_stmt_1__" does not exist
HINT:  NOTE: pgbouncer with pool_mode set to "transaction" does not support prepared statements properly.

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/main.py", line 12, in db
    raise RuntimeError("query failed") from error
RuntimeError: query failed for postgresql://app:s3cret@db/app (password=s3cret)
"""

GROUP_500 = """\
  + Exception Group Traceback (most recent call last):
  |   File "/venv/lib/python3.11/site-packages/starlette/middleware/base.py", line 10, in __call__
  | ExceptionGroup: unhandled errors in a TaskGroup (1 sub-exception)
  +-+---------------- 1 ----------------
    | Traceback (most recent call last):
    |   File "/app/main.py", line 3, in db
    |     return await store.read()
    | psycopg.errors.UndefinedTable: relation "world" does not exist
    +------------------------------------
"""


def test_last_exception_is_the_one_that_escaped_without_its_password() -> None:
    # bench.dsn.redact's rule (one implementation): a value runs to the next space, so ")" goes with it.
    assert last_exception(ASGI_500) == "RuntimeError: query failed for postgresql://app:***@db/app (password=***"
    assert last_exception(ASGI_500.split("\n\nThe above")[0]) == (
        'asyncpg.exceptions.InvalidSQLStatementNameError: prepared statement "__asyncpg_stmt_1__" does not exist'
    )
    assert last_exception(GROUP_500) == 'psycopg.errors.UndefinedTable: relation "world" does not exist'
    assert last_exception("INFO:     Started server process\nWARNING:  something\n") is None
    assert last_exception('Traceback (most recent call last):\n  File "x", line 1\n') is None  # still writing


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        # What server_log's own regexes (before it used bench.dsn.redact) left showing: "ss" after a raw "@",
        # "cd" after a comma or a semicolon.
        ("OperationalError: cannot connect to postgresql://app:p@ss@db/app", "ss@db"),
        ("OperationalError: bad conninfo password=ab,cd host=db", ",cd"),
        ("OperationalError: bad conninfo password=ab;cd host=db", ";cd"),
    ],
)
def test_last_exception_masks_a_password_as_bench_dsn_does(message: str, secret: str) -> None:
    found = last_exception(f'Traceback (most recent call last):\n  File "x", line 1\n{message}\n')
    assert found is not None and secret not in found and "***" in found, found


def test_server_log_reads_only_what_came_after_the_mark(tmp_path) -> None:
    path = tmp_path / "target.log"
    path.write_text(ASGI_500)
    log = ServerLog(path)
    log.mark()
    assert log.exception_since_mark(wait_s=0.05) is None  # the old traceback belongs to an earlier request
    with path.open("a") as handle:
        handle.write(GROUP_500)
    assert log.exception_since_mark(wait_s=0.05) == 'psycopg.errors.UndefinedTable: relation "world" does not exist'


def test_broken_target_500s_name_the_servers_exception(pg_dsn, run_target, tmp_path) -> None:
    apply_schema(pg_dsn)
    seed(pg_dsn)
    base_url = run_target("tests.broken_target:app", TargetSpec(pg_dsn, 4).to_env())
    log = tmp_path / f"uvicorn-{base_url.rsplit(':', 1)[1]}.log"  # where run_target's uvicorn logs

    report = check_variant(base_url, pg_dsn, server_log=log)

    assert (
        "/queries?queries=foo: HTTP 500, expected 200 "
        "(server: ValueError: invalid literal for int() with base 10: 'foo')" in report.problems
    ), report.problems
    assert (
        "/queries?queries=: HTTP 500, expected 200 (server: ValueError: invalid literal for int() with base 10: '')"
        in (report.problems)
    )


def test_shape_only_check_finds_the_faults_it_can_and_writes_nothing(pg_dsn, run_target) -> None:
    """--url's check of a foreign server: no seed values compared, no writes, no /_bench/*."""
    apply_schema(pg_dsn)
    seed(pg_dsn)
    base_url = run_target("tests.broken_target:app", TargetSpec(pg_dsn, 4).to_env())
    before = world_snapshot(pg_dsn)

    report = check_variant(base_url, None, writes=False, private=False)

    assert world_snapshot(pg_dsn) == before
    for prefix in (
        "/queries?queries=0: expected 1 objects, got 0",
        "/queries?queries=501: expected 500 objects, got 501",
        "/queries?queries=foo: HTTP 500, expected 200",
        "/fortunes: a message is not HTML-escaped",
        "/authors/lazy?limit=5: author 1: books not sorted by id",
    ):
        assert sum(line.startswith(prefix) for line in report.problems) == 1, (prefix, report.problems)
    # Only a comparison with the seed sees its made-up /db values; /_bench/* was not asked; no write was sent.
    assert not any("seed" in line or "/_bench" in line or "/updates" in line for line in report.problems)
    assert report.info["query_counts"].startswith("not checked: not a dbbench server")
    assert report.info["writes"].startswith("not checked")


@pytest.mark.parametrize("writes", [False, True])
def test_a_right_server_passes_the_shape_only_check_every_time(pg_dsn, run_target, writes: bool) -> None:
    apply_schema(pg_dsn)
    seed(pg_dsn)
    env = TargetSpec(pg_dsn, 4, instrument=True).to_env()
    base_url = run_target("targets.pooled:app", env)
    before = world_snapshot(pg_dsn)

    reports = [check_variant(base_url, None, writes=writes) for _ in range(2)]

    assert [(r.ok, r.problems) for r in reports] == [(True, [])] * 2
    assert reports[0].info["query_counts"] == "checked"  # it is dbbench: counted through /_bench/stats
    assert (world_snapshot(pg_dsn) == before) is not writes  # --allow-writes: /updates really wrote
