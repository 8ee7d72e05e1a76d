"""bench.pgstats against the session's embedded PostgreSQL 15 (pg_stat_statements preloaded), plus the
machine's own server at 127.0.0.1:5432 when one is reachable, as the case without the library."""

from __future__ import annotations

import contextlib

import psycopg
import pytest

from bench import dsn as dsnlib
from bench import pg, seed
from bench.errors import BenchError
from bench.pgstats import (
    NOT_PRELOADED,
    Availability,
    StatementStat,
    availability,
    available,
    capture_top_explains,
    explain,
    fingerprint,
    is_noise,
    reason_for,
    reset,
    snapshot,
)

SELECT_WORLD = "SELECT id, randomnumber FROM world WHERE id = $1"
UPDATE_WORLDS = (
    "UPDATE world SET randomnumber = u.r FROM unnest($1::int[], $2::int[]) AS u(id, r) WHERE world.id = u.id"
)
LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
ASYNCPG_RESET = "SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;"


@pytest.fixture(scope="module")
def dsn(pg_dsn: str) -> str:
    seed.apply_schema(pg_dsn)
    seed.seed(pg_dsn)
    assert availability(pg_dsn) == Availability(True)
    return pg_dsn


def run_lookups(dsn: str, count: int) -> None:
    # psycopg 3 binds server-side, so pg_stat_statements records the $1 text the drivers under test send.
    with psycopg.connect(dsn) as conn:
        for world_id in range(1, count + 1):
            conn.execute("SELECT id, randomnumber FROM world WHERE id = %s", [world_id]).fetchone()


def make_noise(dsn: str) -> None:
    """What drivers, pools and the seeder send besides the workload."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET application_name = 'noise'")
        conn.execute("SHOW server_version")
        conn.execute(ASYNCPG_RESET)
        conn.execute("DISCARD ALL")
        conn.execute("VACUUM ANALYZE fortune")
        conn.execute("CREATE TEMP TABLE scratch (n integer)")
        conn.execute("TRUNCATE scratch")
        with conn.cursor() as cur, cur.copy("COPY scratch (n) FROM STDIN") as copy:
            copy.write_row([1])
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT 1")


def test_snapshot_shows_the_workload_and_not_the_noise(dsn: str) -> None:
    reset(dsn)
    run_lookups(dsn, 50)
    make_noise(dsn)
    stats = snapshot(dsn)
    by_query = {stat.query: stat for stat in stats}
    lookup = by_query[SELECT_WORLD]
    assert (lookup.calls, lookup.rows) == (50, 50)
    assert lookup.total_ms > 0 and lookup.min_ms <= lookup.mean_ms <= lookup.max_ms
    assert lookup.hit_ratio == 1.0  # 10,000 rows fit in shared_buffers after the seed's VACUUM ANALYZE
    assert lookup.fingerprint == "select id, randomnumber from world where id = ?"
    # Only the workload remains: the rolled-back "SELECT 1" is a real statement, everything else is noise.
    assert set(by_query) == {SELECT_WORLD, "SELECT $1"}
    assert [stat.total_ms for stat in stats] == sorted((stat.total_ms for stat in stats), reverse=True)
    assert snapshot(dsn, limit=1) == stats[:1]
    data = lookup.to_dict()
    assert data["hit_ratio"] == 1.0 and data["query"] == SELECT_WORLD
    assert StatementStat.from_dict(data) == lookup


def test_reset_empties_this_database_only(dsn: str) -> None:
    admin = dsnlib.with_database(dsn, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM pg_class WHERE relname = %s", ["elsewhere"])
    run_lookups(dsn, 3)
    reset(dsn)
    assert snapshot(dsn) == []
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = 'postgres' AND s.query LIKE %s",
            ["%relname = $1%"],
        ).fetchone()
    assert row is not None and row[0] >= 1  # the other database kept its statistics


def test_explain_id_lookup_is_an_index_scan(dsn: str) -> None:
    result = explain(dsn, SELECT_WORLD, [42])
    assert result.error is None
    assert result.node_type == "Index Scan"
    assert result.plan is not None and result.plan["Plan"]["Index Name"] == "world_pkey"
    assert result.plan["Plan"]["Index Cond"] == "(id = 42)"
    assert result.total_ms is not None and result.total_ms > 0
    assert result.planning_ms is not None and result.planning_ms > 0
    assert (result.params, result.params_source) == ([42], "given")
    assert result.shared_hit is not None and result.shared_hit > 0 and result.shared_read == 0
    assert result.to_dict()["plan"] == result.plan


def test_explain_of_a_batch_update_changes_nothing(dsn: str) -> None:
    before = seed.world_snapshot(dsn)
    ids = list(range(1, 21))
    result = explain(dsn, UPDATE_WORLDS, [ids, [before[i] % 10_000 + 1 for i in ids]])
    assert result.error is None
    assert result.node_type == "ModifyTable" and result.plan is not None
    assert result.plan["Plan"]["Operation"] == "Update"
    assert result.plan["Plan"]["Plans"][0]["Actual Rows"] == 20  # the join really found the rows it updated
    assert seed.world_snapshot(dsn) == before


def test_explain_derives_parameters(dsn: str) -> None:
    for params in (None, [1, 2]):  # missing, or not matching the statement's one parameter
        result = explain(dsn, SELECT_WORLD, params)
        assert result.error is None
        assert result.params_source == "derived"
        assert result.params is not None and len(result.params) == 1 and 1 <= result.params[0] <= 10_000
        assert result.node_type == "Index Scan"
    aliased = explain(dsn, "SELECT w.randomnumber FROM world AS w WHERE w.id IN ($1, $2) LIMIT $3", None)
    assert aliased.error is None and aliased.params is not None
    assert len(set(aliased.params[:2])) == 2 and aliased.params[2] == 10
    fortunes = explain(dsn, "SELECT id, message FROM fortune", None)
    assert (fortunes.params, fortunes.params_source, fortunes.node_type) == ([], "none", "Seq Scan")


def test_explain_reports_instead_of_raising(dsn: str) -> None:
    no_sample = explain(dsn, UPDATE_WORLDS, None)
    assert no_sample.plan is None and no_sample.error is not None
    assert no_sample.error.startswith("no plan captured: no sample value for $1 (integer[])")
    assert explain(dsn, "VACUUM world", None).error == "not a query EXPLAIN ANALYZE can run"
    broken = explain(dsn, "SELECT nothing FROM world WHERE id = $1", [1])
    assert broken.plan is None and broken.error == 'column "nothing" does not exist'
    unreachable = explain("postgresql://postgres@127.0.0.1:1/none", SELECT_WORLD, [1])
    assert unreachable.error is not None and unreachable.error.startswith("cannot connect")


def test_capture_top_explains_uses_samples_by_fingerprint(dsn: str) -> None:
    reset(dsn)
    run_lookups(dsn, 10)
    stats = snapshot(dsn)
    # The target's instrumentation keys samples by its own text; the fingerprint joins the two.
    # targets/common/fingerprint.py keeps case and puts "?" for values: that form joins too.
    samples = {"SELECT id, randomnumber FROM world WHERE id = ?": [7]}
    results = capture_top_explains(dsn, stats, samples, top=1)
    assert len(results) == 1
    assert (results[0].query, results[0].params, results[0].params_source) == (SELECT_WORLD, [7], "given")
    assert results[0].node_type == "Index Scan"
    assert capture_top_explains(dsn, [], samples) == []


@pytest.mark.parametrize(
    "query",
    [
        "SELECT id, randomnumber FROM world WHERE id = $1",
        "SELECT id, randomnumber FROM world WHERE id = :id",
        "select id, randomnumber from world where id = 42",
        "select  id,randomnumber\n  FROM world WHERE id=%(id)s; -- trailing comment",
        "/* sqlcommenter */ SELECT id, randomnumber FROM world WHERE id = -7",
        "SELECT id, randomnumber FROM world WHERE id = -?",  # targets/common/fingerprint.py's form of "id = -7"
    ],
)
def test_fingerprint_joins_server_and_driver_text(query: str) -> None:
    # Case is folded: PostgreSQL folds unquoted keywords and identifiers itself.
    assert fingerprint(query) == "select id, randomnumber from world where id = ?"


def test_fingerprint_details() -> None:
    assert fingerprint('SELECT "Foo".x FROM "Foo" WHERE a IS NOT NULL AND b = NULL') == (
        'select "Foo".x from "Foo" where a is not null and b = ?'
    )
    assert fingerprint("SELECT $1::int[], 4-1, E'it\\'s', $$x$$, x = ANY(%s)") == (
        "select ?::int[], ? - ?, ?, ?, x = any(?)"
    )
    assert fingerprint(UPDATE_WORLDS) == (
        "update world set randomnumber = u.r from unnest(?::int[], ?::int[]) as u(id, r) where world.id = u.id"
    )
    # IN-lists of any length are one shape, as in the targets' own fingerprints (targets/common/fingerprint.py).
    assert fingerprint("SELECT 1 WHERE x IN ($1, $2, $3)") == fingerprint("SELECT 1 WHERE x IN (:a::INTEGER)")
    assert fingerprint("SELECT 1 WHERE x IN (1, 2, 3)") == "select ? where x in (?)"


@pytest.mark.parametrize(
    ("query", "noise"),
    [
        ("BEGIN", True),
        ("RESET ALL", True),
        ("SELECT pg_advisory_unlock_all()", True),
        ("/* dbbench:pgstats */ SELECT 1", True),
        ("select pg_stat_statements_reset(0, 0, 0)", True),
        ("COPY world (id, randomnumber) FROM STDIN", True),
        ("SELECT id FROM world WHERE id = $1", False),
        ("REFRESH MATERIALIZED VIEW report", False),
        ("  settle_accounts()", False),
    ],
)
def test_is_noise(query: str, noise: bool) -> None:
    assert is_noise(query) is noise


def test_reason_mapping() -> None:
    # The exact message PostgreSQL 15 gives when reading the view without the library preloaded.
    assert reason_for("55000", 'pg_stat_statements must be loaded via "shared_preload_libraries"') == NOT_PRELOADED
    missing = 'could not open extension control file "/usr/share/postgresql/15/extension/pg_stat_statements.control"'
    assert "not installed" in reason_for("58P01", missing)
    assert reason_for("42501", "permission denied to create extension\nHINT: ...").startswith("the role lacks")
    assert reason_for(None, "something else\nDETAIL: x") == "pg_stat_statements unusable: something else"


def test_availability_never_raises() -> None:
    result = availability("postgresql://postgres@127.0.0.1:1/none")
    assert not result.ok and result.reason is not None and result.reason.startswith("cannot connect")


def test_unavailable_without_preload_on_the_local_server() -> None:
    try:
        with psycopg.connect(LOCAL_SERVER, connect_timeout=2) as conn:
            row = conn.execute("SHOW shared_preload_libraries").fetchone()
    except psycopg.Error:
        pytest.skip("no PostgreSQL reachable at 127.0.0.1:5432 as postgres")
    if row is not None and "pg_stat_statements" in row[0]:
        pytest.skip("the local server preloads pg_stat_statements; test_reason_mapping covers the reason")
    with contextlib.ExitStack() as stack:
        try:
            database = stack.enter_context(pg.external(LOCAL_SERVER))
        except BenchError as exc:
            pytest.skip(f"cannot create a scratch database on the local server: {exc}")
        assert availability(database.dsn) == Availability(False, NOT_PRELOADED)
        assert not available(database.dsn)
        with psycopg.connect(database.dsn) as conn:  # the probe's CREATE EXTENSION was rolled back
            assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone() is None
