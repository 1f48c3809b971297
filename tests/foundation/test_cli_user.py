"""The CLI as a person uses it (issue 21): a demo store, typos, pipes, plans, output.

Every test drives ``tsfleet`` through its command line (``main`` or a subprocess) and
checks exit codes and what is printed, on a small demo store built once by ``demo``.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.foundation.cli_support import run
from tsfleet import Fleet
from tsfleet.cli import COMMANDS, build_parser, main
from tsfleet.power.cli import consistent

WIDTH = 120
T = datetime(2026, 7, 1, 12)




DEMO_OUT: list[str] = []   # what ``tsfleet demo`` printed (stdout), kept by the fixture


@pytest.fixture(scope="module")
def demo(demo_build, tmp_path_factory):
    """A copy of the shared demo store (60 devices, 20 days, seed 7) for this module."""
    built, printed = demo_build
    DEMO_OUT[:] = printed
    return shutil.copy(built, tmp_path_factory.mktemp("demo") / "demo.duckdb")


def test_the_demo_fits_120_columns_and_shows_only_the_one_plan(demo, capsys):
    """Every demo line fits 120 columns; no domain prints a schedule of its own, and the
    plan line's visits, items and per-domain counts are those of ``workorders``."""
    assert DEMO_OUT and all(len(line) <= WIDTH for line in DEMO_OUT)
    text = "\n".join(DEMO_OUT)
    assert "replacement plan:" not in text and "to recalibrate in" not in text
    plan = [line for line in DEMO_OUT if line.startswith("  plan as of ")]
    assert len(plan) == 1
    code, out, _ = run(capsys, "--db", demo, "workorders", "--format", "json", "--no-plan")
    rows = json.loads(out)
    assert code == 0 and rows
    whole = " ".join(line.strip() for line in DEMO_OUT[DEMO_OUT.index(plan[0]):])
    assert f"{len({r['workorder_id'] for r in rows})} site visit" in whole
    with Fleet(demo, read_only=True) as f:
        parts = f.query("select domain, count(*) as n from work_order_items group by 1")
        n_items = f.query("select count(*) as n from work_order_items")[0]["n"]
    assert f"{n_items} item" in whole
    for p in parts:
        assert f"{p['domain']} {p['n']:,}" in whole


def _end_of_data(path) -> datetime:
    with Fleet(path, read_only=True) as f:
        return f.query("select max(observed_at) as t from readings")[0]["t"]


# -- 1. commands that read never create a store ------------------------------------------
@pytest.mark.parametrize("argv", [
    ["sql", "select count(*) from readings"], ["power", "plan"], ["alerts", "list"],
    ["workorders"], ["firmware", "inventory"], ["info"], ["device", "px-1"],
    ["calibration", "schedule"], ["network", "load"],
])
def test_a_typo_in_db_is_one_line_exit_2_and_creates_nothing(tmp_path, capsys, argv):
    typo = tmp_path / "stoer.duckdb"
    code, out, err = run(capsys, "--db", typo, *argv)
    assert code == 2 and out == ""
    assert err.splitlines() == [err.strip()] and err.startswith(f"tsfleet: error: no store at "
                                                                f"{typo}")
    assert not typo.exists() and not Path(str(typo) + ".wal").exists()
    some_csv = tmp_path / "some.csv"
    some_csv.write_text("device_id,observed_at,metric,value\n")
    code, _, err = run(capsys, *argv, "--db", some_csv)
    assert code == 2 and "is not a DuckDB store" in err and len(err.splitlines()) == 1
    assert some_csv.read_text() == "device_id,observed_at,metric,value\n"


# -- 3+4. one clock, one planner ---------------------------------------------------------
def test_one_plan_as_of_one_instant_with_overdue_folded_into_the_next_visit(demo, capsys):
    end = _end_of_data(demo)
    code, out, _ = run(capsys, "--db", demo, "workorders")
    assert code == 0
    assert out.splitlines()[0].startswith(
        f"work orders as of {end:%Y-%m-%d %H:%M} UTC (end of the data; historical store)")
    code, out, _ = run(capsys, "--db", demo, "workorders", "--format", "json")
    orders = json.loads(out)
    assert orders and all(o["as_of"] == f"{end.isoformat()}Z" for o in orders)
    assert all(sum(o["actions"].values()) == o["n_items"] == len(o["items"]) for o in orders)
    # No visit is due before the plan's instant, and a site's visits are distinct dates.
    assert all(datetime.fromisoformat(o["due_at"]) >= end.replace(tzinfo=UTC) for o in orders)
    items = [(o, i) for o in orders for i in o["items"]]
    overdue = [(o, i) for o, i in items if i["is_overdue"]]
    assert overdue, "the demo has overdue work (critical batteries, drifted sensors)"
    assert all(datetime.fromisoformat(i["due_at"]) < end.replace(tzinfo=UTC) for _, i in overdue)
    for o, _ in overdue:   # folded into the site's first visit, due now
        assert o["visit_no"] == 1 and datetime.fromisoformat(o["due_at"]) == end.replace(tzinfo=UTC)
    # power plan and calibration schedule are views of the same plan.
    for domain, argv in (("power", ["power", "plan"]),
                         ("calibration", ["calibration", "schedule"])):
        code, out, _ = run(capsys, "--db", demo, *argv, "--format", "json")
        view = {(r["subject_id"], r["action"]): (r["workorder_id"], r["visit_due_at"])
                for r in json.loads(out)}
        whole = {(i["subject_id"], i["action"]): (o["workorder_id"], o["due_at"])
                 for o, i in items if i["domain"] == domain}
        assert view == whole and view, domain
    # --as-of moves the clock: everything due before it is overdue, in visit 1.
    later = end + timedelta(days=20)
    code, out, _ = run(capsys, "--db", demo, "power", "plan", "--as-of", later.isoformat())
    assert code == 0 and f"as of {later:%Y-%m-%d %H:%M} UTC (given)" in out.splitlines()[0]
    code, out, _ = run(capsys, "--db", demo, "power", "plan", "--format", "csv",
                       "--as-of", later.isoformat())
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and all(r["as_of"] == f"{later.isoformat()}Z" for r in rows)
    assert all(datetime.fromisoformat(r["visit_due_at"]) >= later.replace(tzinfo=UTC) for r in rows)
    code, _, err = run(capsys, "--db", demo, "workorders", "--as-of", "last tuesday")
    assert code == 2 and "--as-of must be an ISO time" in err


# -- 5. forecast rows are self-consistent ------------------------------------------------
def test_forecast_rows_never_contradict_themselves(demo, capsys):
    code, out, _ = run(capsys, "--db", demo, "power", "forecast", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and len(rows) > 20
    day = timedelta(days=1)
    t = {k: (lambda r, k=k: datetime.fromisoformat(r[k]) if r[k] else None)
         for k in ("as_of", "critical_at", "critical_lo_at", "critical_hi_at", "empty_at",
                   "empty_lo_at", "empty_hi_at")}
    n_critical_now = 0
    for r in rows:
        now = t["as_of"](r)
        if r["level_now_pct"] is not None and r["level_now_pct"] <= r["critical_pct"]:
            n_critical_now += 1
            assert r["days_to_critical"] == 0 and t["critical_at"](r) == now, r["device_id"]
        for what in ("critical", "empty"):
            at = t[f"{what}_at"](r)
            if at is None:
                assert r[f"days_to_{what}"] is None, r["device_id"]
                continue
            assert r[f"days_to_{what}"] >= 0
            assert abs(r[f"days_to_{what}"] - (at - now) / day) < 1e-6
            lo, hi = t[f"{what}_lo_at"](r), t[f"{what}_hi_at"](r)
            assert now <= lo <= at <= hi, r["device_id"]
        if t["critical_at"](r) and t["empty_at"](r):
            assert t["critical_at"](r) <= t["empty_at"](r), r["device_id"]
    assert n_critical_now, "the demo has batteries below their critical level"
    # The state view agrees: never a negative number of days, 0 for a critical battery.
    code, out, _ = run(capsys, "--db", demo, "sql", "--format", "json",
                       "select power_state, days_to_critical from battery_state "
                       "where days_to_critical is not null")
    states = json.loads(out)
    assert all(s["days_to_critical"] >= 0 for s in states)
    assert all(s["days_to_critical"] == 0 for s in states if s["power_state"] == "critical")


def test_the_soonest_batteries_first_and_counts_checked_before_anything_runs(demo, capsys):
    """``power forecast --soonest N``: the N devices that reach critical first, in that order
    (those that reach neither critical nor empty last); a count below 1 is a one-line error
    (exit 2) before the forecast is written, as is ``environment maintenance --limit 0`` (it
    leaked DuckDB's "LIMIT/OFFSET cannot be negative" for -3) and a negative ``power plan
    --horizon-days``."""
    code, out, _ = run(capsys, "--db", demo, "power", "forecast", "--format", "json")
    every = json.loads(out)
    code, out, _ = run(capsys, "--db", demo, "power", "forecast", "--soonest", 5,
                       "--format", "json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 5
    inf = float("inf")
    due = sorted((inf if r["days_to_critical"] is None else r["days_to_critical"],
                  inf if r["days_to_empty"] is None else r["days_to_empty"], r["device_id"])
                 for r in every)
    assert [r["device_id"] for r in rows] == [d for _, _, d in due[:5]]
    # the table names the model each forecast used (a device without its own backtest runs
    # its type's choice, often the line: "holt_winters", the fit's family, read as the model)
    code, out, _ = run(capsys, "--db", demo, "power", "forecast", "--soonest", 5)
    header, _, *lines = out.splitlines()
    assert code == 0 and "chosen_model" in header.split() and "method" not in header.split()
    assert [line.split()[0] for line in lines[:5]] == [r["device_id"] for r in rows]
    assert all(r["chosen_model"] in line for r, line in zip(rows, lines, strict=False))
    assert max(len(line) for line in out.splitlines()) <= 120
    before = json.loads(run(capsys, "--db", demo, "sql", "--format", "json",
                            "select max(computed_at) as t from battery_forecast")[1])
    for argv, text in ((["power", "forecast", "--soonest", 0], "--soonest must be"),
                       (["environment", "maintenance", "--limit", -3], "limit must be"),
                       (["environment", "maintenance", "--limit", 0], "limit must be"),
                       (["power", "plan", "--horizon-days", -5], "--horizon-days must be")):
        code, out, err = run(capsys, "--db", demo, *argv)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, argv
        assert text in err and "Binder" not in err, argv
    after = json.loads(run(capsys, "--db", demo, "sql", "--format", "json",
                           "select max(computed_at) as t from battery_forecast")[1])
    assert after == before


def test_a_typo_in_a_filter_is_an_error_with_the_nearest_name(demo, capsys):
    """``--site`` and ``--rule`` name things the store has: a typo is a one-line error that
    names the nearest one (exit 2), not an empty listing that reads as "nothing to do"."""
    sites = {r["site"] for r in json.loads(run(capsys, "--db", demo, "sql", "--format", "json",
                                               "select distinct site from devices")[1])}
    site = sorted(sites)[0]
    typo = site[:-1] + ("x" if site[-1] != "x" else "y")
    for argv, near in ((["network", "load", "--site", typo], site),
                       (["alerts", "list", "--site", typo], site),
                       (["workorders", "--site", typo], site),
                       (["alerts", "list", "--rule", "BatteryCritcal"], "BatteryCritical")):
        code, out, err = run(capsys, "--db", demo, *argv)
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, argv
        assert f"did you mean {near!r}" in err and len(err.strip()) <= WIDTH, argv
    code, out, err = run(capsys, "--db", demo, "alerts", "list", "--site", "zzzzzzzz")
    assert code == 2 and f"it has: {sorted(sites)[0]}" in err
    # the names themselves still filter
    for argv in (["network", "load", "--site", site], ["alerts", "list", "--site", site],
                 ["alerts", "list", "--rule", "BatteryCritical"]):
        code, out, err = run(capsys, "--db", demo, *argv)
        assert code == 0 and err == "", argv


_when = st.one_of(st.none(), st.integers(-400, 400).map(lambda d: T + timedelta(hours=d)))


@settings(max_examples=300, deadline=None)
@given(level=st.one_of(st.none(), st.floats(-5, 100)), crit=st.floats(0, 30),
       dates=st.tuples(*[_when] * 6))
def test_consistent_holds_for_any_row(level, crit, dates):
    """The same invariants for any row the forecast model might give."""
    names = ("critical_at", "critical_lo_at", "critical_hi_at", "empty_at", "empty_lo_at",
             "empty_hi_at")
    row = dict(zip(names, dates, strict=True), as_of=T, level_now_pct=level, critical_pct=crit,
               days_to_critical=-3.0, days_to_empty=-1.0)
    [r] = consistent([row])
    if level is not None and level <= crit:
        assert r["critical_at"] == T and r["days_to_critical"] == 0
    if level is not None and level <= 0:
        assert r["empty_at"] == T and r["days_to_empty"] == 0
    for what in ("critical", "empty"):
        at = r[f"{what}_at"]
        if at is None:
            assert r[f"days_to_{what}"] is None
            continue
        assert T <= r[f"{what}_lo_at"] <= at <= r[f"{what}_hi_at"]
        assert r[f"days_to_{what}"] == (at - T) / timedelta(days=1) >= 0
    if r["critical_at"] and r["empty_at"]:
        assert r["critical_at"] <= r["empty_at"]


# -- 6. output ---------------------------------------------------------------------------
LISTINGS = [["power", "forecast"], ["power", "plan"], ["power", "report"],
            ["firmware", "inventory"], ["firmware", "findings"], ["firmware", "campaigns"],
            ["firmware", "health"], ["firmware", "consistency"], ["calibration", "drift"],
            ["calibration", "faults"], ["calibration", "schedule"], ["network", "load"],
            ["network", "findings"], ["network", "spof"], ["network", "saturation"],
            ["environment", "maintenance"], ["environment", "effects"], ["alerts", "list"],
            ["alerts", "history"], ["workorders"], ["sql", "select * from fleet_overview"]]


@pytest.mark.parametrize("argv", LISTINGS, ids=" ".join)
def test_listings_fit_120_columns_and_csv_json_carry_the_same_records(demo, capsys, argv):
    code, out, err = run(capsys, "--db", demo, *argv)
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= WIDTH
    if argv == ["power", "report"]:  # two tables: one JSON object of two arrays
        code, out, _ = run(capsys, "--db", demo, *argv, "--format", "json")
        report = json.loads(out)
        assert set(report) == {"discharge", "attribution"} and report["discharge"]
        return
    code, out, _ = run(capsys, "--db", demo, *argv, "--format", "json")
    records = json.loads(out)
    assert isinstance(records, list)
    code, out, _ = run(capsys, "--db", demo, *argv, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(records) or argv == ["workorders"]  # csv: one row per item
    if records and argv != ["workorders"]:
        assert list(rows[0]) == list(records[0])


def test_tables_round_and_escape_but_json_keeps_the_value(tmp_path, capsys):
    db = tmp_path / "f.duckdb"
    evil = "px-1\x1b[2J\r\n\x00"
    with Fleet(db) as f:
        f.ingest("readings", [{"device_id": evil, "observed_at": "2026-03-01T10:00Z",
                               "metric": "battery_pct", "value": 12.3456789}])
    code, out, _ = run(capsys, "--db", db, "sql",
                       "select device_id, value as level_pct, value / 1000 as x from readings")
    assert code == 0 and "\x1b" not in out and "\r" not in out and "\x00" not in out
    assert out.splitlines()[2].split() == ["px-1\\x1b[2J\\r\\n\\x00", "12.3", "0.0123"]
    code, out, _ = run(capsys, "--db", db, "sql", "--format", "json",
                       "select device_id, value from readings")
    assert json.loads(out) == [{"device_id": evil, "value": 12.3456789}]


def test_firmware_report_csv_rows_are_the_json_records(demo, capsys):
    code, out, _ = run(capsys, "--db", demo, "firmware", "report", "--format", "json")
    report = json.loads(out)
    devices = report["non_compliant_devices"]
    assert devices and all(isinstance(d["reasons"], list) for d in devices)
    assert all(isinstance(g["deviating_devices"], list) for g in report["groups"])
    code, out, _ = run(capsys, "--db", demo, "firmware", "report", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["device_id"] for r in rows] == [d["device_id"] for d in devices]
    assert list(rows[0]) == list(devices[0])
    assert [json.loads(r["reasons"]) for r in rows] == [d["reasons"] for d in devices]


def _tsfleet(*argv: str) -> list[str]:
    return [sys.executable, "-m", "tsfleet", *argv]


def test_sql_prints_intervals_booleans_and_huge_numbers_readably(tmp_path, capsys):
    db = tmp_path / "s.duckdb"
    Fleet(str(db)).close()
    q = ("select interval 3 hour as i, interval '1 day 2 minutes' as j, true as b, "
         "1e300 * 10 as big")
    code, out, _ = run(capsys, "--db", db, "sql", q)
    assert code == 0 and out.splitlines()[2].split() == ["PT3H", "P1DT2M", "yes", "1e+301"]
    run(capsys, "--db", db, "sql", q, "--format", "csv")
    code, out, _ = run(capsys, "--db", db, "sql", q, "--format", "csv")
    assert out.splitlines() == ["i,j,b,big", "PT3H,P1DT2M,true,1e+301"]
    code, out, _ = run(capsys, "--db", db, "sql", q, "--format", "json")
    assert json.loads(out) == [{"i": "PT3H", "j": "P1DT2M", "b": True, "big": 1e301}]


def test_sql_streams_and_a_closed_pipe_ends_quietly(tmp_path):
    db = tmp_path / "s.duckdb"
    Fleet(db).close()
    query = "select range as n, range * 2 as m from range({})"
    peak = {}
    for n in (50_000, 500_000):   # memory does not grow with the rows
        out = subprocess.run(
            [sys.executable, "-c", "import resource, sys; from tsfleet.cli import main; "
             "sys.stdout = open('/dev/null', 'w'); code = main(sys.argv[1:]); "
             "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
             "sys.exit(code)", "--db", str(db), "sql", "--format", "csv", query.format(n)],
            capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        peak[n] = int(out.stderr.split()[-1])
    assert peak[500_000] < peak[50_000] * 1.25 + 20_000, peak   # KiB
    p = subprocess.Popen(_tsfleet("--db", str(db), "sql", query.format(5_000_000)),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline().split() == [b"n", b"m"]
    p.stdout.close()
    assert p.wait(timeout=60) == 0
    assert p.stderr.read() == b""


# -- 7. --db everywhere, help everywhere, light start, ingest of folders ----------------
def _parsers(parser, path=()):
    yield path, parser
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_command_takes_db_and_every_option_has_help():
    parser = build_parser()
    seen = 0
    for path, p in _parsers(parser):
        seen += 1
        assert any("--db" in a.option_strings for a in p._actions), path
        for a in p._actions:
            if a.__class__.__name__ != "_SubParsersAction":
                assert a.help, (path, a.dest)
        assert "SUB_DB" not in p.format_help(), path
    assert seen > 50
    # The lines of tsfleet --help are the commands' own help.
    subs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    helps = {c.dest: c.help for c in subs._choices_actions}
    assert {k: helps[k] for k in COMMANDS} == {k: v for k, (_, v) in COMMANDS.items()}


def test_one_meaning_one_option_name_and_old_names_still_run(demo, capsys):
    """An option shows one name in --help, the same on every command where it means the
    same: the views of the plan batch by ``--window-days`` and keep the items due within
    ``--horizon-days``. The names they had before the plan was one (``calibration schedule
    --horizon-days 90 --visit-window-days 14``, docs/calibration.md; ``power plan
    --batch-days``; ``workorders --horizon-days``) still run, left out of --help."""
    for path, p in _parsers(build_parser()):
        for a in p._actions:
            if a.help != "==SUPPRESS==":
                longs = [o for o in a.option_strings if o.startswith("--")]
                assert len(longs) <= 1, (path, a.option_strings)
    views = {"workorders": ["workorders"], "power plan": ["power", "plan"],
             "calibration schedule": ["calibration", "schedule"]}
    helps = {}
    for name, argv in views.items():
        code, out, _ = run(capsys, *argv, "--help")
        assert code == 0 and out.count("--window-days DAYS") == 2, name   # usage, option
        for old in ("--batch-days", "--visit-window-days"):
            assert old not in out, (name, old)
        helps[name] = " ".join(out.split())
    assert "--horizon-days" not in helps["workorders"]
    for name in ("power plan", "calibration schedule"):
        assert ("--horizon-days DAYS only items due within this many days of the plan's "
                "instant") in helps[name], name
    for old, new in (
            (["calibration", "schedule", "--horizon-days", "90", "--visit-window-days", "14"],
             ["calibration", "schedule", "--horizon-days", "90", "--window-days", "14"]),
            (["power", "plan", "--batch-days", "7"], ["power", "plan", "--window-days", "7"]),
            (["workorders", "--horizon-days", "7"], ["workorders", "--window-days", "7"])):
        was = run(capsys, "--db", demo, *old, "--format", "csv")
        now = run(capsys, "--db", demo, *new, "--format", "csv")
        assert was[0] == 0 and was[2] == "" and was == now, old
    # a horizon keeps the items due within it, on both views that take one
    for argv in (["calibration", "schedule"], ["power", "plan"]):
        code, out, _ = run(capsys, "--db", demo, *argv, "--format", "json")
        every = json.loads(out)
        code, out, _ = run(capsys, "--db", demo, *argv, "--horizon-days", "0",
                           "--format", "json")
        due = json.loads(out)
        assert code == 0 and every and due == [r for r in every
                                                if r["due_at"] <= r["as_of"]], argv


@pytest.mark.parametrize("argv, message", [
    (["powr", "plan"], "invalid choice 'powr'; did you mean 'power'?"),
    (["power", "plna"], "invalid choice 'plna'; did you mean 'plan'?"),
    (["power", "plan", "--format", "xml"], "invalid choice 'xml'; choose from table, csv, json"),
    (["zzz"], "COMMAND: invalid choice 'zzz' (see tsfleet --help)"),
    # an option the action does not take points to that action's help, not the top one
    (["calibration", "drift", "--zone", "x"],
     "tsfleet calibration drift: error: unrecognized arguments: --zone x "
     "(see tsfleet calibration drift --help)"),
    (["workorders", "--as-of", "yesterday"], "--as-of must be an ISO time"),
    # an option typed wrong names the nearest option of that command; before the command
    # word it is named, not read as the command ("invalid choice 'x'")
    (["environment", "maintenance", "--limt", "5"],
     "maintenance: error: unrecognized arguments: --limt 5; did you mean '--limit'?"),
    (["sql", "select 1", "--wdie"], "unrecognized arguments: --wdie; did you mean '--wide'?"),
    (["--dbb", "x", "info"], "tsfleet: error: unrecognized arguments: --dbb; did you mean "
                             "'--db'?"),
])
def test_typos_on_the_command_line_are_one_line_exit_2(demo, capsys, argv, message):
    try:
        code = main(["--db", str(demo), *argv])
    except SystemExit as exc:   # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert len(err.strip()) <= WIDTH


def test_db_after_the_action_works_like_before_the_command(demo, capsys):
    a = run(capsys, "--db", demo, "alerts", "list", "--format", "json")
    b = run(capsys, "alerts", "list", "--db", demo, "--format", "json")
    c = run(capsys, "alerts", "--db", demo, "list", "--format", "json")
    assert a == b == c and a[0] == 0 and json.loads(a[1])


def test_help_and_light_commands_import_no_heavy_library(demo):
    probe = ("import sys; from tsfleet.cli import main; code = main(sys.argv[1:]); "
             "heavy = sorted({'pandas', 'statsmodels', 'scipy'} & set(sys.modules)); "
             "print('HEAVY', heavy, file=sys.stderr); sys.exit(code)")
    for argv in (["--help"], ["--db", str(demo), "info"],
                 ["--db", str(demo), "sql", "select 1"],
                 ["--db", str(demo), "alerts", "list"]):
        out = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        if argv != ["--help"]:
            assert "HEAVY []" in out.stderr, (argv, out.stderr)
    # --help exits inside argparse; its imports are checked without it.
    out = subprocess.run([sys.executable, "-c",
                          "import sys; from tsfleet.cli import build_parser; "
                          "build_parser(['--help']); print(sorted({'pandas', 'statsmodels', "
                          "'scipy', 'pyarrow', 'duckdb'} & set(sys.modules)))"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_an_ingest_total_with_many_reasons_fits_120_columns(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)       # the file as a user names it, not pytest's long folder
    path = Path("mixed-quality-export-from-the-north-plant.csv")
    path.write_text("device_id,observed_at,metric,value\n"
                    "pump-1,2026-03-01T10:00Z,battery_pct,87\n"
                    "pump-1,yesterday,battery_pct,87\n"
                    "pump-1,2026-03-01T11:00Z,battery_pct,lots\n"
                    "pump-1,2026-03-01T12:00Z,battery_pct,180\n"
                    "pump-1,2026-03-01T13:00Z,mood_pct,1\n"
                    ",2026-03-01T14:00Z,battery_pct,1\n")
    code, out, _ = run(capsys, "--db", tmp_path / "w.duckdb", "ingest", "readings", path)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 and max(map(len, lines)) <= 120
    assert " ".join(s.strip() for s in lines).endswith(
        ": 6 rows, 1 accepted, 0 duplicates, 5 quarantined (bad_number: 1, bad_timestamp: 1, "
        "missing_field: 1, out_of_range: 1, unknown_metric: 1)")


def unwrapped(out: str) -> list[str]:
    """The CLI's lines with their continuations (wrapped at 120 columns) joined back."""
    lines: list[str] = []
    for line in out.splitlines():
        if line.startswith("  ") and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines


def test_a_file_that_cannot_be_read_is_refused_and_the_others_land(tmp_path, capsys):
    folder = tmp_path / "export"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("device_id,observed_at,metric,value\n"
                                  "pump-1,2026-03-01T10:00Z,battery_pct,87\n")
    (folder / "b.parquet").write_bytes(b"PAR1garbagePAR1")            # a corrupt footer
    (folder / "c.csv").write_text("foo,bar\n1,2\n")                   # not readings
    (folder / "sub" / "d.csv").write_text("device_id,observed_at,metric,value\n"
                                          "pump-2,2026-03-01T10:00Z,battery_pct,86\n")
    code, out, err = run(capsys, "--db", tmp_path / "f.duckdb", "ingest", "readings", folder)
    assert code == 2
    assert unwrapped(out) == ["readings from 4 files: 2 rows, 2 accepted, 0 duplicates, "
                              "0 quarantined"]
    lines = [x for x in unwrapped(err) if not x.startswith("ingest: ")]   # progress, if slow
    assert [line.split(":")[0] for line in lines] == ["refused", "refused", "tsfleet"]
    assert "b.parquet" in lines[0] and "c.csv" in lines[1]
    assert lines[2] == ("tsfleet: error: 2 of 4 files refused (named above); the others were "
                        "ingested")
    with Fleet(str(tmp_path / "f.duckdb")) as f:
        assert f.query("select device_id from readings order by 1") == [
            {"device_id": "pump-1"}, {"device_id": "pump-2"}]


def test_ingest_takes_directories_and_globs_and_prints_one_total(tmp_path, capsys):
    db = tmp_path / "i.duckdb"
    export = tmp_path / "export" / "day=1"
    export.mkdir(parents=True)
    for k in range(3):
        (export / f"part-{k}.csv").write_text(
            "device_id,observed_at,metric,value\n"
            f"pump-{k},2026-03-01T10:00Z,battery_pct,87\n")
    (export / "README.txt").write_text("not data")
    code, out, _ = run(capsys, "--db", db, "ingest", "readings", tmp_path / "export")
    assert code == 0
    assert unwrapped(out) == ["readings from 3 files: 3 rows, 3 accepted, 0 duplicates, "
                                "0 quarantined"]
    code, out, _ = run(capsys, "--db", db, "ingest", "readings", export / "part-0.csv")
    assert unwrapped(out) == [f"readings from {export / 'part-0.csv'}: 1 row, 0 accepted, "
                                "1 duplicate, 0 quarantined"]
    code, out, _ = run(capsys, "--db", db, "ingest", "readings", "-v",
                       str(tmp_path / "export" / "**" / "part-*.csv"))
    lines = unwrapped(out)
    assert code == 0 and len(lines) == 4 and lines[-1].startswith("readings from 3 files")
    assert "3 duplicates" in lines[-1]
    code, _, err = run(capsys, "--db", db, "ingest", "readings", str(tmp_path / "nope*.csv"))
    assert code == 2 and "no files match" in err


# -- 8. demo -----------------------------------------------------------------------------
def test_demo_validates_first_refuses_foreign_stores_and_defaults_to_demo_duckdb(
        demo, tmp_path, capsys, monkeypatch):
    copy = tmp_path / "copy.duckdb"
    shutil.copy(demo, copy)
    before = _end_of_data(copy)
    code, _, err = run(capsys, "demo", "--devices", "5", "--db", copy)
    assert code == 2 and "--devices must be a whole number >= 10, got 5" in err
    with Fleet(copy, read_only=True) as f:
        assert f.query("select count(*) as n from readings")[0]["n"] > 10_000
    assert _end_of_data(copy) == before
    some_csv = tmp_path / "some.csv"
    some_csv.write_text("a,b\n1,2\n")
    code, _, err = run(capsys, "demo", "--db", some_csv)
    assert code == 2 and "not a DuckDB store" in err and some_csv.read_text() == "a,b\n1,2\n"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TSFLEET_DB", raising=False)
    code, out, _ = run(capsys, "demo", "--devices", "10", "--days", "2", "--seed", "3")
    assert code == 0 and (tmp_path / "demo.duckdb").exists()
    assert not (tmp_path / "fleet.duckdb").exists()
    with Fleet(tmp_path / "demo.duckdb", read_only=True) as f:
        n = f.query("select (select count(*) from gateways) as g, "
                    "(select count(*) from devices) as d")[0]
    assert f"from {n['d']} devices and {n['g']} gateway" in out


def test_demo_store_outputs_fit_120_columns(demo, capsys):
    for argv in (["device", "px-00001"], ["info"], ["network", "analyze"],
                 ["environment", "report"]):
        code, out, err = run(capsys, "--db", demo, *argv)
        assert code in (0, 2), err
        assert all(len(line) <= WIDTH for line in out.splitlines()), argv


def test_snapshot_export_and_retention_reports_fit_120_columns(demo, tmp_path, capsys):
    end = _end_of_data(demo).date()
    big = tmp_path / "a-bigger-demo-store-for-retention.duckdb"   # six-digit counts
    assert run(capsys, "demo", "--devices", "200", "--days", "45", "--db", big)[0] == 0
    wide: list[str] = []
    for argv in (["--db", demo, "snapshot", tmp_path / "a-snapshot-for-read-only-readers.duckdb"],
                 ["--db", demo, "export", tmp_path / "an-export-folder-for-the-lake",
                  "--since", end - timedelta(days=2), "--until", end],
                 ["--db", big, "retention", "--raw-days", "5"]):
        code, out, err = run(capsys, *argv)
        assert code == 0 and out, err
        wide += [line for line in out.splitlines() if len(line) > WIDTH]
    assert wide == []


def test_one_day_and_an_empty_store_read_as_english(demo, tmp_path, capsys):
    end = _end_of_data(demo).date()
    code, out, err = run(capsys, "--db", demo, "export", tmp_path / "lake",
                         "--since", end - timedelta(days=1), "--until", end)
    assert code == 0 and ", 1 day, " in " ".join(out.split()), err
    empty = tmp_path / "empty.duckdb"
    Fleet(empty).close()
    code, out, err = run(capsys, "--db", empty, "workorders")
    assert code == 0 and out.startswith("work orders as of "), err
    assert "UTC (now; empty store): 0 visits" in out.splitlines()[0]


# -- issue 28: nothing reaches back into the CLI -----------------------------------------
def test_no_package_imports_tsfleet_cli():
    import ast

    import tsfleet

    root = Path(tsfleet.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name == "tsfleet.cli" and rel != "__main__.py":
                    offenders.append(rel)
                if rel == "cliutil.py" and name.startswith("tsfleet.") and (
                        name.endswith(".cli") or name.split(".")[1] in COMMANDS):
                    offenders.append(f"{rel} -> {name}")
    assert offenders == []


def test_the_device_card_in_json_carries_labels_as_objects(demo, capsys):
    with Fleet(str(demo), read_only=True) as f:
        dev = f.query("select subject_id from alerts where subject_kind = 'device' "
                      "order by subject_id limit 1")[0]["subject_id"]
    code, out, _ = run(capsys, "--db", demo, "device", dev, "--format", "json")
    assert code == 0
    rows = [r for v in json.loads(out).values() if isinstance(v, list) for r in v
            if isinstance(r, dict) and "labels" in r]
    assert rows and all(isinstance(r["labels"], dict) for r in rows)   # not JSON text
    assert {r["labels"].get("subject_id") for r in rows} == {dev}
