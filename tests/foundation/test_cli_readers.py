"""What a reading command may do to a store (session 23): a plan previewed as of another
instant stores nothing, and listing commands run beside another process that holds the
store open read-only.

Every test drives ``tsfleet`` through ``main`` on a small demo store built by ``demo``;
the other process is a real one (DuckDB's file lock is per process).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from datetime import timedelta

import pytest

from tests.foundation.cli_support import run
from tsfleet import Fleet


@pytest.fixture
def demo(demo_build, tmp_path):
    """A fresh copy of the shared demo store (every analysis run, a plan stored) for one
    test."""
    return shutil.copy(demo_build[0], tmp_path / "demo.duckdb")


def stored_plan(path) -> tuple[list, list]:
    """The stored plan, whole: every order and every item, with their provenance."""
    with Fleet(path, read_only=True) as f:
        orders = f.con.execute("select * from work_orders order by all").fetchall()
        items = f.con.execute("select * from work_order_items order by all").fetchall()
    return orders, items


def end_of_data(path):
    with Fleet(path, read_only=True) as f:
        return f.query("select max(observed_at) as t from readings")[0]["t"]


# -- 1. a plan as of another instant is a preview ----------------------------------------
@pytest.mark.parametrize("argv", [["workorders"], ["power", "plan"],
                                  ["calibration", "schedule"]])
def test_a_plan_as_of_another_instant_is_printed_and_stores_nothing(demo, capsys, argv):
    before = stored_plan(demo)
    end = end_of_data(demo)
    later = end + timedelta(days=400)
    code, out, err = run(capsys, "--db", demo, *argv, "--as-of", later.isoformat())
    assert code == 0, err
    assert stored_plan(demo) == before
    head = out.splitlines()[0]
    assert f"as of {later:%Y-%m-%d %H:%M} UTC (given)" in head
    assert "preview" in head and len(head) <= 120
    code, out, _ = run(capsys, "--db", demo, *argv, "--as-of", later.isoformat(),
                       "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and rows and all(r["as_of"] == f"{later.isoformat()}Z" for r in rows)
    assert stored_plan(demo) == before
    # The stored plan is still the one printed as stored, with the same ids.
    code, out, _ = run(capsys, "--db", demo, "workorders", "--no-plan", "--format", "json")
    orders = json.loads(out)
    assert code == 0 and {o["as_of"] for o in orders} == {f"{end.isoformat()}Z"}
    assert sorted(o["workorder_id"] for o in orders) == sorted(r[0] for r in before[0])
    code, out, _ = run(capsys, "--db", demo, "workorders", "--no-plan")
    assert out.startswith(f"work orders as of {end:%Y-%m-%d %H:%M} UTC (the stored plan)")


def test_a_preview_uses_the_stored_plans_ids_and_replanning_now_keeps_them(demo, capsys):
    """A preview's visits that share items with stored orders carry their ids; planning
    at the store's own instant (given or not) stores the plan and keeps every id."""
    orders, _ = stored_plan(demo)
    ids = {r[0] for r in orders}
    end = end_of_data(demo)
    code, out, _ = run(capsys, "--db", demo, "workorders", "--as-of",
                       (end + timedelta(days=3)).isoformat(), "--format", "json")
    assert code == 0 and {o["workorder_id"] for o in json.loads(out)} & ids
    code, out, _ = run(capsys, "--db", demo, "workorders", "--as-of", end.isoformat())
    assert code == 0 and "preview" not in out.splitlines()[0]
    assert {r[0] for r in stored_plan(demo)[0]} == ids
    code, _, _ = run(capsys, "--db", demo, "workorders")
    assert code == 0 and {r[0] for r in stored_plan(demo)[0]} == ids


def test_send_refuses_a_preview(demo, capsys):
    """Tickets are the stored plan's: --send with a preview is a one-line error."""
    later = end_of_data(demo) + timedelta(days=40)
    code, out, err = run(capsys, "--db", demo, "workorders", "--as-of", later.isoformat(),
                         "--send", "http://127.0.0.1:9/tickets")
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and "--send" in err
    assert "--as-of" in err


# -- 2. listings beside a reader ---------------------------------------------------------
LISTINGS = [
    ["power", "forecast"], ["power", "forecast", "--soonest", "5"], ["power", "report"],
    ["power", "backtest"],
    ["network", "load"], ["network", "balance"], ["network", "bottlenecks"],
    ["network", "redundancy"], ["network", "spof"], ["network", "down"],
    ["network", "flapping"], ["network", "saturation"], ["network", "findings"],
    ["network", "plan"], ["network", "plan", "--summary", "--max-moves", "3"],
    ["network", "frontier", "--points", "4"],
    ["workorders", "--no-plan"], ["workorders", "--as-of", "2030-01-01"],
    ["power", "plan", "--as-of", "2030-01-01"],
    ["calibration", "schedule", "--as-of", "2030-01-01"],
]


@pytest.fixture
def held(demo, capsys):
    """The demo store with its backtest stored, then held open read-only by another
    process for the test."""
    assert run(capsys, "--db", demo, "power", "backtest")[0] == 0
    hold = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1], "
         "read_only=True); print('ready', flush=True); sys.stdin.read()", str(demo)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert hold.stdout.readline().strip() == "ready"
        yield demo
    finally:
        hold.stdin.close()
        hold.wait(timeout=30)


def test_listings_run_while_another_process_reads_the_store(held, capsys):
    """Every listing prints what it prints alone, and stores nothing, while another
    process holds the store open read-only (no write lock is taken)."""
    failed = []
    for argv in LISTINGS:
        code, out, err = run(capsys, "--db", held, *argv)
        if code != 0 or not out.strip():
            failed.append(f"{' '.join(argv)}: {err.strip()}")
        assert all(len(line) <= 120 for line in out.splitlines()), argv
    assert not failed, "\n".join(failed)


def test_stored_listings_print_what_was_computed(demo, capsys):
    """power forecast, report and backtest print the stored results of the same
    parameters (what a recomputation on unchanged data gives)."""
    with Fleet(demo, read_only=True) as f:
        ids = [r["device_id"] for r in f.query("select device_id from battery_forecast "
                                               "order by device_id")]
        factors = f.query("select count(*) as n from drain_attribution")[0]["n"]
    code, out, _ = run(capsys, "--db", demo, "power", "forecast", "--format", "json")
    assert code == 0 and [r["device_id"] for r in json.loads(out)] == ids
    code, out, _ = run(capsys, "--db", demo, "power", "report", "--format", "json")
    assert code == 0 and len(json.loads(out)["attribution"]) == factors
    code, first, _ = run(capsys, "--db", demo, "power", "backtest", "--format", "json")
    code2, again, _ = run(capsys, "--db", demo, "power", "backtest", "--format", "json")
    assert code == code2 == 0 and json.loads(first) == json.loads(again)
