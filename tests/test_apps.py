"""`bench run --app` and `bench ab` end to end: the example service (examples/shop) and broken apps, each run
from a copy in a temp dir, against the embedded PostgreSQL, real uvicorn and real Locust (short cells)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.compare import ENDPOINT_BYTES_METHOD

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop"
SHORT = ["--users", "4", "--warmup", "0.5", "--duration", "1", "--no-calibrate"]


def bench(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def shop_copy(tmp_path: Path, name: str = "shop") -> Path:
    target = tmp_path / name
    shutil.copytree(SHOP, target, ignore=shutil.ignore_patterns("__pycache__", "*.json"))
    return target


def results(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def readme_commands() -> list[list[str]]:
    """The bench commands of the README's "Your own service" first ```sh block (its `cd` is the copy's dir)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Your own service", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None
    joined = block.group(1).replace("\\\n", " ")
    return [shlex.split(line)[1:] for line in joined.splitlines() if line.strip().startswith("bench ")]


def test_the_readmes_own_service_commands_measure_the_example_and_ab_alternates(tmp_path: Path) -> None:
    shop = shop_copy(tmp_path)
    run_args, ab_args = readme_commands()
    assert run_args[0] == "run" and ab_args[0] == "ab"

    done = bench(run_args, shop)
    assert done.returncode == 0, done.stdout + done.stderr
    measured = results(shop / "shop.json")
    (check,) = measured["checks"]
    assert check["ok"] and check["variant"] == "shop"
    # Endpoints keyed by Locust's request name, as the locustfile grouped them.
    assert set(check["info"]["endpoints"]["locustfile.py"]) == {"/items/[id]", "/categories/[id]/items", "/orders"}
    (cell,) = measured["cells"]
    assert cell["status"] == "ok" and cell["requests"] > 0
    assert set(cell["endpoints"]) == {"/items/[id]", "/categories/[id]/items", "/orders"}
    assert 0 < cell["target"]["restore_s"] < 30
    app = measured["metadata"]["apps"]["apps"]["shop"]
    assert app["app"] == "shop.main:app" and app["directory"] == str(shop)
    assert app["db_url_style"].startswith("asyncpg (detected")
    assert measured["metadata"]["pool"] == {"note": "the app's own (not set by dbbench)"}

    done = bench(ab_args, shop)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "base vs head" in done.stdout and "/items/[id]" in done.stdout
    # ... and ends as `bench compare` would on its file: paired trials, its verdicts (two pairs of an A/A run
    # can only be inconclusive or no change, never a regression: exit 0 above).
    assert "paired trials (interleaved)" in done.stdout, done.stdout[-2000:]
    ab = results(shop / "aa.json")
    assert ab["metadata"]["apps"]["ab"] == {"base": "base", "head": "head"}
    assert set(ab["metadata"]["apps"]["apps"]) == {"base", "head"}
    cells = sorted(ab["cells"], key=lambda c: c["started_at"])  # ISO times sort; the file's order breaks ties
    assert [(c["variant"], c["trial"]) for c in cells] == [("base", 1), ("head", 1), ("head", 2), ("base", 2)]
    assert all(c["status"] == "ok" for c in cells)


# A locustfile that writes (orders) and, before its users start, fails the cell unless the data is the set-up's:
# no order at all (the check's warm-up and every earlier cell wrote some).
WRITES_ON_FRESH_DATA = '''
"""Orders, on data that must be as the set-up left it."""

import json
import urllib.request

from locust import FastHttpUser, events, task


@events.test_start.add_listener
def data_is_fresh(environment, **_):
    with urllib.request.urlopen(environment.host + "/stats", timeout=5) as response:
        orders = json.load(response)["orders"]
    if orders != 0:
        print(f"stale data: {orders} orders before the cell started", flush=True)
        environment.process_exit_code = 3


class Buyer(FastHttpUser):
    @task
    def order(self):
        self.client.post("/orders", json={"item_id": 7, "quantity": 1}, name="/orders")
'''

COUNT_SETUPS = """
from pathlib import Path

with (Path(__file__).parent / "setups.log").open("a") as log:
    log.write("set up\\n")
"""


def test_setup_runs_once_and_every_cell_starts_on_the_setup_data(tmp_path: Path) -> None:
    shop = shop_copy(tmp_path)
    (shop / "perf" / "orders.py").write_text(WRITES_ON_FRESH_DATA)
    (shop / "count_setups.py").write_text(COUNT_SETUPS)
    args = ["run", "--app", "shop.main:app", "--scenarios", "perf/orders.py", "--trials", "3", "-o", "w.json"]
    setup = ["--setup", "python migrate.py", "--setup", "python seed.py", "--setup", "python count_setups.py"]
    done = bench([*args, *setup, *SHORT], shop)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (shop / "setups.log").read_text().splitlines() == ["set up"]
    written = results(shop / "w.json")
    assert [c["status"] for c in written["cells"]] == ["ok", "ok", "ok"]  # each found 0 orders, then wrote
    assert all(c["endpoints"]["/orders"]["requests"] > 0 for c in written["cells"])


BROKEN_IMPORT = "import no_such_module_anywhere\n"
BOOM = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def index():
    return {"ok": True}


@app.get("/boom/{n}")
def boom(n: int):
    return {"ratio": n / 0}
"""
FAILING_SETUP = 'raise RuntimeError("migration 0002_add_index failed: relation item does not exist")\n'
PASSING_SETUP = 'print("migrated")\n'
HITS_BOOM = '''
"""The index and an endpoint that raises."""

import random

from locust import FastHttpUser, task


class Visitor(FastHttpUser):
    @task
    def index(self):
        self.client.get("/")

    @task
    def boom(self):
        self.client.get(f"/boom/{random.randint(1, 9)}", name="/boom/[n]")
'''


def test_broken_apps_are_reported_with_their_own_traceback_and_not_measured(tmp_path: Path) -> None:
    for name, app_source, setup_source in (
        ("imports", BROKEN_IMPORT, PASSING_SETUP),
        ("setup", BOOM, FAILING_SETUP),
        ("boom", BOOM, PASSING_SETUP),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "svc.py").write_text(app_source)
        (tmp_path / name / "migrate.py").write_text(setup_source)
    (tmp_path / "load.py").write_text(HITS_BOOM)
    args = ["run", "--scenarios", "load.py", "--setup", "python migrate.py", "-o", "broken.json", *SHORT]
    for name in ("imports", "setup", "boom"):
        args += ["--app", f"{name}=svc:app", "--app-dir", f"{name}={name}"]
    done = bench(args, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    broken = results(tmp_path / "broken.json")
    assert broken["cells"] == []
    checks = {c["variant"]: c for c in broken["checks"]}
    assert not any(c["ok"] for c in checks.values())
    imports = " ".join(checks["imports"]["problems"])
    assert "ModuleNotFoundError: No module named 'no_such_module_anywhere'" in imports
    setup = " ".join(checks["setup"]["problems"])
    assert "--setup 'python migrate.py' for setup exited with code 1" in setup
    assert "RuntimeError: migration 0002_add_index failed" in setup
    boom = checks["boom"]["problems"]
    assert boom[0].startswith("load.py: HTTP 500 GET /boom/[n]: ")
    assert "ZeroDivisionError: division by zero" in " ".join(boom)
    assert "ZeroDivisionError" in checks["boom"]["info"]["log_tail"]
    assert "GET /boom/[n]" in done.stdout + done.stderr  # the terminal says which endpoint


def test_app_options_are_refused_in_one_line(tmp_path: Path) -> None:
    shop = shop_copy(tmp_path)
    for args, message in (
        (["--app", "shop.main:app", "--scenarios", "db"], "--app loads your app with your locustfile"),
        (["--app", "shop.main", "--scenarios", "perf/locustfile.py"], "--app takes [LABEL=]MODULE:ATTR"),
        (["--app", "shop.main:app", "--scenarios", "perf/locustfile.py", "--url", "http://127.0.0.1:9"], "--url"),
    ):
        done = bench(["run", *args, "-o", "x.json"], shop, timeout=60)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_with_dsn_every_database_made_for_the_app_is_dropped_after(tmp_path: Path, pg_dsn: str) -> None:
    """With --dsn: the app's databases live beside the run's on that server and are all gone afterwards."""
    import psycopg

    shop = shop_copy(tmp_path)
    args = ["run", "--app", "shop.main:app", "--scenarios", "perf/locustfile.py", "--dsn", pg_dsn, "-o", "d.json"]
    done = bench([*args, "--setup", "python migrate.py", "--setup", "python seed.py", *SHORT], shop)
    assert done.returncode == 0, done.stdout + done.stderr
    with psycopg.connect(pg_dsn) as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database")]
    assert not [n for n in names if n.startswith("dbbench_")], names
    assert results(shop / "d.json")["cells"][0]["status"] == "ok"


# Only the category listing: each window loads one endpoint, so its queries are that endpoint's own.
LISTING_ONLY = '''
"""Category listings only."""

import random

from locust import FastHttpUser, task


class Browser(FastHttpUser):
    @task
    def category(self):
        self.client.get(f"/categories/{random.randint(1, 10)}/items", name="/categories/[id]/items")
'''


def _gate_quality() -> Any:
    from benchmark_scripts import load

    return load("gate_quality")


def test_an_apps_n_plus_one_is_gated_exactly_from_pg_stat_statements(tmp_path: Path) -> None:
    """The shop against a copy with gate_quality.py's N+1 (its listing: 1 -> 21 queries), no hooks in either:
    bench compare counts the queries from pg_stat_statements on the database dbbench started, per endpoint
    where a scenario loads one endpoint and per scenario where it mixes three, and fails the gate on them."""
    base, head = shop_copy(tmp_path, "base"), shop_copy(tmp_path, "head")
    _gate_quality().inject_nplus1(head)
    for copy in (base, head):
        (copy / "perf" / "listing.py").write_text(LISTING_ONLY, encoding="utf-8")
    args = ["ab", "--app", "shop.main:app", "--base", "../base", "--head", ".", "--scenarios",
            "perf/locustfile.py,perf/listing.py", "--setup", "python migrate.py", "--setup", "python seed.py",
            "--trials", "2", *SHORT, "--duration", "2", "--no-check", "--no-html", "-o", "ab.json"]  # fmt: skip
    done = bench(args, head)
    assert done.returncode == 1, done.stdout + done.stderr  # a regression: the gate fails
    ab = results(head / "ab.json")
    assert ab["metadata"]["pg_stat_statements"]["available"], ab["metadata"]["pg_stat_statements"]
    done = bench(["compare", "ab.json", "-f", "json"], head)
    assert done.returncode == 1, done.stderr
    verdicts = json.loads(done.stdout)["verdicts"]
    queries = {(v["scenario"], v["endpoint"]): v for v in verdicts if v["metric"] == "queries_per_request"}
    listing = queries[("listing.py", "/categories/[id]/items")]
    assert listing["method"] == "exact, pg_stat_statements per endpoint"
    assert listing["verdict"] == "slower"
    # Exact up to the requests in flight at the window's edges (4 users, tens to hundreds of requests a window).
    assert listing["base"] == pytest.approx(1, abs=0.1) and listing["head"] == pytest.approx(21, abs=1.5)
    mixed = queries[("locustfile.py", "")]
    assert mixed["method"] == "exact, pg_stat_statements per scenario"
    assert mixed["verdict"] == "slower" and mixed["head"] > mixed["base"] + 2
    assert any("from category where category.id = ?" in line for line in mixed["evidence"]), mixed["evidence"]
    new = next(v for v in verdicts if v["scenario"] == "locustfile.py" and "from category" in v["metric"])
    assert (new["verdict"], new["base"]) == ("slower", 0)  # a statement base never ran
    # The N+1 sends the same responses: their bytes, per endpoint, did not change (per scenario, the random mix
    # of the endpoints once moved them +13.2 % and failed such a gate).
    sizes = {(v["scenario"], v["endpoint"]): v for v in verdicts if v["metric"] == "bytes_per_request"}
    assert set(sizes) == {
        ("listing.py", "/categories/[id]/items"),
        *(("locustfile.py", name) for name in ("/items/[id]", "/categories/[id]/items", "/orders")),
    }
    assert all(v["verdict"] == "no change" and v["method"] == ENDPOINT_BYTES_METHOD for v in sizes.values()), sizes


# Writes, and records at each cell's start what a cell must find: no order, item 7's stock as seeded, and (from
# the cell's first order) the order id sequence where the set-up left it.
RECORDS_EACH_START = '''
"""Orders of item 7; each cell's starting data recorded in starts.log beside this file."""

import json
import urllib.request
from pathlib import Path

from locust import FastHttpUser, events, task

LOG = Path(__file__).with_name("starts.log")


def get(host, path):
    with urllib.request.urlopen(host + path, timeout=5) as response:
        return json.load(response)


def post(host, path, body):
    request = urllib.request.Request(
        host + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


@events.test_start.add_listener
def record_start(environment, **_):
    start = {"orders": get(environment.host, "/stats")["orders"], "stock": get(environment.host, "/items/7")["stock"]}
    start["first_order_id"] = post(environment.host, "/orders", {"item_id": 7, "quantity": 1})["id"]
    with LOG.open("a") as log:
        log.write(json.dumps(start) + "\\n")


class Buyer(FastHttpUser):
    @task
    def order(self):
        self.client.post("/orders", json={"item_id": 7, "quantity": 1}, name="/orders")
'''


def test_a_writing_scenario_gets_the_setup_data_back_before_each_next_cell(tmp_path: Path) -> None:
    """Each cell wrote (orders, stock): the next finds the set-up's rows and sequence again, on the same server,
    the rows put back in place (no new clone, no restarted app)."""
    shop = shop_copy(tmp_path)
    (shop / "perf" / "buys.py").write_text(RECORDS_EACH_START)
    args = ["run", "--app", "shop.main:app", "--scenarios", "perf/buys.py", "--trials", "3", "-o", "w.json"]
    done = bench([*args, "--setup", "python migrate.py", "--setup", "python seed.py", *SHORT, "--no-check"], shop)
    assert done.returncode == 0, done.stdout + done.stderr
    starts = [json.loads(line) for line in (shop / "perf" / "starts.log").read_text().splitlines()]
    assert starts == [{"orders": 0, "stock": 1_000_000, "first_order_id": 1}] * 3
    cells = results(shop / "w.json")["cells"]
    assert [c["status"] for c in cells] == ["ok"] * 3
    assert all(c["endpoints"]["/orders"]["requests"] > 0 for c in cells)  # every cell wrote
    assert [c["target"]["restore"] for c in cells] == ["clone", "in place", "in place"]
    assert [c["target"]["server"] for c in cells] == [1, 1, 1]
    assert all(0 < c["target"]["restore_s"] < 30 for c in cells)


def test_cells_that_write_nothing_share_one_server_per_app(tmp_path: Path) -> None:
    """bench ab with a read-only scenario: each app's server is started once and serves all its cells, whose
    figures are still each cell's own (its requests, its target CPU, its statements)."""
    shop = shop_copy(tmp_path)
    (shop / "perf" / "listing.py").write_text(LISTING_ONLY)
    args = ["ab", "--app", "shop.main:app", "--base", ".", "--head", ".", "--scenarios", "perf/listing.py"]
    setup = ["--setup", "python migrate.py", "--setup", "python seed.py"]
    done = bench([*args, *setup, "--trials", "3", "--no-html", "-o", "ro.json", *SHORT], shop)
    assert done.returncode == 0, done.stdout + done.stderr
    cells = results(shop / "ro.json")["cells"]
    assert len(cells) == 6 and all(c["status"] == "ok" for c in cells)
    for side in ("base", "head"):
        mine = sorted((c for c in cells if c["variant"] == side), key=lambda c: c["trial"])
        assert [c["target"]["server"] for c in mine] == [1, 1, 1]
        assert [c["target"]["restore"] for c in mine] == ["clone", "none", "none"]
        # Per-cell figures, not totals since the server started: each window's own statement calls.
        calls = [sum(s["calls"] for s in c["pg_statements"]) for c in mine]
        assert all(0 < n <= 3 * c["requests"] for n, c in zip(calls, mine, strict=True)), calls
        assert all(0 < c["target_cpu_s"] < 2 * c["duration_s"] for c in mine)
