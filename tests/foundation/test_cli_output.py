"""What ``--format json`` and ``csv`` say a time is, the device card's times and numbers,
and the summaries of the commands that run an analysis (session 24's output audit).

The store's times are naive UTC; an output that prints them without an offset is read as
local time. Every test drives ``tsfleet`` through ``main`` on a copy of the shared demo.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from tests.foundation.cli_support import run
from tsfleet import Fleet

#: The one form of a time in JSON and CSV: ISO 8601, seconds, UTC as ``Z``.
ISO_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
#: A string that is a time of some form (a sentence that names one is prose, not a time).
TIMEISH = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d\d(:?\d\d)?|Z)?")


@pytest.fixture(scope="module")
def demo(demo_build, tmp_path_factory):
    """A copy of the shared demo store (60 devices, 20 days, seed 7) for this module."""
    return shutil.copy(demo_build[0], tmp_path_factory.mktemp("demo") / "demo.duckdb")


def times_in(value: object, path: str = "") -> list[tuple[str, str]]:
    """(where, text) of every string in a JSON document that is a time."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in times_in(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [t for i, v in enumerate(value) for t in times_in(v, f"{path}[{i}]")]
    return [(path, value)] if isinstance(value, str) and TIMEISH.fullmatch(value) else []


def utc(text: str) -> datetime:
    """A time the output wrote, as the naive UTC the store holds; an error unless it says
    it is UTC."""
    t = datetime.fromisoformat(text)
    assert t.utcoffset() == timedelta(0), f"{text!r} does not say it is UTC"
    return t.replace(tzinfo=None)


# -- 1. JSON and CSV times say they are UTC ----------------------------------------------
def test_sql_writes_times_with_their_utc_offset_in_json_and_csv(demo, capsys):
    """The streamed renderer: a naive timestamp (UTC, as stored) and an aware one (two
    hours east) are the same instant, written the same way; a day stays a day."""
    query = ("select timestamp '2026-07-30 23:36:34' as t, "
             "timestamptz '2026-07-31 01:36:34.5+02' as tz, date '2026-07-30' as d")
    code, out, err = run(capsys, "--db", demo, "sql", query, "--format", "json")
    assert code == 0, err
    assert json.loads(out) == [{"t": "2026-07-30T23:36:34Z", "tz": "2026-07-30T23:36:34.500000Z",
                                "d": "2026-07-30"}]
    code, out, err = run(capsys, "--db", demo, "sql", query, "--format", "csv")
    assert code == 0, err
    assert out.splitlines() == ["t,tz,d", "2026-07-30T23:36:34Z,2026-07-30T23:36:34.500000Z,"
                                          "2026-07-30"]


def test_a_plans_times_in_json_and_csv_are_the_stored_utc_instants(demo, capsys):
    """``workorders`` (its own JSON document) and ``calibration schedule`` (the shared row
    renderer, CSV): each time parses to the stored instant and says it is UTC."""
    code, out, _ = run(capsys, "--db", demo, "calibration", "schedule", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))        # the plan, replanned and stored
    assert code == 0 and rows
    with Fleet(demo, read_only=True) as f:
        stored = {r["workorder_id"]: (r["due_at"], r["computed_at"]) for r in f.query(
            "select workorder_id, due_at, computed_at from work_orders")}
    assert {(r["workorder_id"], utc(r["visit_due_at"])) for r in rows} <= {
        (w, due) for w, (due, _) in stored.items()}
    code, out, _ = run(capsys, "--db", demo, "workorders", "--no-plan", "--format", "json")
    orders = json.loads(out)
    assert code == 0 and orders and len(orders) == len(stored)
    for o in orders:
        assert (utc(o["due_at"]), utc(o["as_of"])) == stored[o["workorder_id"]]


def test_the_firmware_report_says_when_it_was_made_in_utc(demo, capsys):
    before = datetime.now(UTC).replace(tzinfo=None)
    code, out, _ = run(capsys, "--db", demo, "firmware", "report", "--format", "json")
    report = json.loads(out)
    assert code == 0
    assert before - timedelta(seconds=1) <= utc(report["generated_at"]) \
        <= datetime.now(UTC).replace(tzinfo=None)
    assert utc(report["as_of"]) and report["non_compliant_devices"]
    assert all(utc(d["as_of"]) == utc(report["as_of"]) for d in report["non_compliant_devices"])


@pytest.mark.parametrize("argv", [
    ["alerts", "list"], ["firmware", "inventory"], ["firmware", "events"],
    ["power", "forecast"], ["power", "plan"], ["calibration", "faults"],
    ["network", "down"], ["environment", "effects"], ["firmware", "campaigns"],
])
def test_every_time_a_json_listing_prints_is_iso_utc(demo, capsys, argv):
    code, out, err = run(capsys, "--db", demo, *argv, "--format", "json")
    assert code == 0, err
    found = times_in(json.loads(out))
    assert found, "a listing with times"
    assert [(where, t) for where, t in found if not ISO_Z.fullmatch(t)] == []



def test_a_table_says_its_times_are_utc_once(demo, capsys):
    """A table prints times to the minute, without an offset: a line under it (the card:
    its first line; info: each time) says they are UTC. A table without a time shown has
    no such line."""
    code, out, _ = run(capsys, "--db", demo, "sql", "select timestamp '2026-07-30 23:36:34' "
                       "as t, 1 as n")
    assert code == 0 and out.splitlines() == ["t                 n", "----------------  -",
                                              "2026-07-30 23:36  1", "(times are UTC)"]
    code, out, _ = run(capsys, "--db", demo, "sql", "select 1 as n")
    assert code == 0 and "UTC" not in out
    code, out, _ = run(capsys, "--db", demo, "sql", "select date '2026-07-30' as due, 1 as n")
    assert code == 0 and out.splitlines() == ["due         n", "----------  -", "2026-07-30  1",
                                              "(dates are UTC days)"]
    code, out, _ = run(capsys, "--db", demo, "calibration", "faults")
    assert code == 0 and out.splitlines()[-1] == "(times are UTC)"
    code, out, _ = run(capsys, "--db", demo, "device", card_devices(demo)[0])
    assert code == 0 and out.splitlines()[0].endswith(" (times are UTC)")
    assert out.count("UTC") == 1
    code, out, _ = run(capsys, "--db", demo, "info")
    with Fleet(demo, read_only=True) as f:
        [[first, last]] = f.con.execute("select min(observed_at), max(observed_at) "
                                        "from readings").fetchall()
    assert code == 0 and f"readings from       {first:%Y-%m-%d %H:%M} UTC" in out.splitlines()
    assert f"readings to         {last:%Y-%m-%d %H:%M} UTC" in out.splitlines()

# -- 2. the device card: one form of a time ----------------------------------------------
def card_devices(path) -> list[str]:
    """Devices whose card has every state section: a battery and a firmware state."""
    with Fleet(path, read_only=True) as f:
        return [r["device_id"] for r in f.query(
            "select device_id from battery_state join firmware_device_status using (device_id) "
            "where observed_at is not null order by device_id limit 3")]


def test_the_cards_state_sections_are_the_views_rows_times_as_times(demo):
    """The card reads a state from the copy the analysis run made (JSON); the section is
    the view's row, its times times, not the text "2026-07-30 23:36:34"."""
    devices = card_devices(demo)
    assert devices
    with Fleet(demo, read_only=True) as f:
        for device in devices:
            card = f.device(device)
            for section, view in (("battery_state", "battery_state"),
                                  ("firmware_state", "firmware_device_status")):
                [row] = f.query(f"select * from {view} where device_id = ?", [device])
                assert card[section] == row, (device, section)
                assert isinstance(card[section]["device_id"], str)
            assert isinstance(card["battery_state"]["observed_at"], datetime)


def test_every_time_of_the_card_is_one_form_in_json_and_in_the_table(demo, capsys):
    for device in card_devices(demo):
        code, out, err = run(capsys, "--db", demo, "device", device, "--format", "json")
        assert code == 0, err
        card = json.loads(out)
        found = times_in(card)
        assert {re.split(r"[.[]", where)[1] for where, _ in found} >= {
            "last_seen", "latest", "battery_state", "battery_forecast", "firmware_state"}
        assert [(where, t) for where, t in found if not ISO_Z.fullmatch(t)] == []
        with Fleet(demo, read_only=True) as f:
            [state] = f.query("select observed_at, critical_at from battery_state "
                              "where device_id = ?", [device])
        assert utc(card["battery_state"]["observed_at"]) == state["observed_at"]
        code, out, err = run(capsys, "--db", demo, "device", device)
        assert code == 0, err
        shown = re.findall(r"\d{4}-\d{2}-\d{2}[ T][\d:.]+", out)
        assert shown and all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", t) for t in shown)
        assert f"{state['observed_at']:%Y-%m-%d %H:%M}" in out


# -- 3. the card's numbers keep their meaningful digits ----------------------------------
def test_a_voltage_on_the_card_keeps_its_millivolts(demo_build, tmp_path, capsys):
    """1.995 V is not "2": a value is rounded by its metric (volts to 0.001), without
    float noise; a coefficient per degree is not rounded as a temperature."""
    db = shutil.copy(demo_build[0], tmp_path / "demo.duckdb")
    with Fleet(db) as f:
        [(device, coef)] = f.con.execute(
            "select device_id, temp_coef_per_c from device_latest join battery_forecast "
            "using (device_id) where metric = 'battery_voltage_v' and temp_coef_per_c <> 0 "
            "order by abs(temp_coef_per_c) desc limit 1").fetchall()
        [[end]] = f.con.execute("select max(observed_at) from readings").fetchall()
        f.ingest("readings", [{"device_id": device, "metric": "battery_voltage_v",
                               "observed_at": end + timedelta(minutes=1), "value": 1.995},
                              {"device_id": device, "metric": "temperature_c",
                               "observed_at": end + timedelta(minutes=1), "value": 21.04}])
    code, out, err = run(capsys, "--db", db, "device", device)
    assert code == 0, err
    latest = dict(re.findall(r"^(battery_voltage_v|temperature_c)\s+(\S+)", out, re.M))
    assert latest == {"battery_voltage_v": "1.995", "temperature_c": "21.0"}
    shown = re.search(r"^  temp_coef_per_c\s+(\S+)$", out, re.M).group(1)
    assert abs(float(shown) - coef) <= abs(coef) * 0.005      # 3 significant digits, not 0.0
    code, out, _ = run(capsys, "--db", db, "sql", "select 'battery_voltage_v' as metric, "
                       "1.9949999999::double as value, 1.995::double as supply_v")
    assert code == 0 and out.splitlines()[2].split() == ["battery_voltage_v", "1.995", "1.995"]


def test_a_rounded_number_never_reads_as_an_exact_one(demo, capsys):
    """3 significant digits show 3 digits unless the value is exact at that precision:
    1.995 is "2.00" (it was "2", which reads as exactly two), 2.5 stays "2.5"."""
    code, out, _ = run(capsys, "--db", demo, "sql", "select 1.995::double as x, 2.5::double "
                       "as y, 0.3897::double as z, 60::double as w, "
                       "0.1::double + 0.2::double as noise")
    assert code == 0 and out.splitlines()[2].split() == ["2.00", "2.5", "0.390", "60", "0.3"]


# -- 4. a command that runs an analysis: sentences, or its key figures -------------------
def _truth(path, sql: str) -> dict:
    with Fleet(path, read_only=True) as f:
        return f.query(sql)[0]


#: command -> (figures that must equal the store's, SQL giving them)
ANALYSES = {
    "calibration detect": (
        "select count(*) as sensors, count(*) filter (where verdict = 'ok') as ok, "
        "count(*) filter (where verdict = 'needs_recalibration') as needs_recalibration, "
        "count(*) filter (where verdict = 'fault') as fault from sensor_drift"),
    "environment analyze": (
        "select (select count(distinct device_id) from environment_monitor_faults "
        "where fault = 'dead') as monitors_dead, (select count(*) from "
        "environment_device_exposure where env_source = 'none') as without_environment_data, "
        "(select count(*) from environment_recommendations) as problem_zones"),
    "firmware analyze": (
        "select count(*) filter (where version is not null) as devices, count(*) filter "
        "(where is_vulnerable) as vulnerable, count(*) filter (where is_outdated) as outdated, "
        "(select count(*) from firmware_campaign_progress) as campaigns, (select count(*) "
        "from firmware_update_health where verdict = 'unhealthy') as unhealthy_releases "
        "from firmware_device_status"),
    "network analyze": (
        "select (select count(*) from network_gateway_load where is_active and "
        "is_over_capacity) as gateways_over_capacity, (select n_moves from "
        "network_plan_summary where site = '*') as plan_moves, (select count(*) from "
        "network_gateway_status where status = 'down') as gateways_down"),
}


@pytest.mark.parametrize("command", list(ANALYSES))
def test_an_analysis_prints_sentences_or_its_key_figures(demo_build, tmp_path, capsys,
                                                         command):
    """text (the default) is the summary's sentences; table, csv and json are one record of
    key figures (a figure/value table, a CSV row, a JSON object), not the sentences in a
    column named "summary"; every line a person reads fits 120 columns."""
    db = shutil.copy(demo_build[0], tmp_path / "demo.duckdb")
    argv = ["--db", db, *command.split()]
    code, text, err = run(capsys, *argv)
    assert code == 0, err
    assert text.strip() and all(len(line) <= 120 for line in text.splitlines())
    assert '"summary"' not in text and not text.startswith("summary")
    code, out, err = run(capsys, *argv, "--format", "json")
    assert code == 0, err
    figures = json.loads(out)
    assert isinstance(figures, dict) and "summary" not in figures
    truth = _truth(db, ANALYSES[command])
    assert {k: figures[k] for k in truth} == truth
    code, out, _ = run(capsys, *argv, "--format", "csv")
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and list(row) == list(figures)
    assert {k: row[k] for k in truth} == {k: str(v) for k, v in truth.items()}
    code, out, _ = run(capsys, *argv, "--format", "table")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["figure", "value"]
    times = [k for k, v in figures.items() if isinstance(v, str) and ISO_Z.fullmatch(v)]
    assert [line.split()[0] for line in lines[2:]] == list(figures) + (
        ["(times"] if times else [])
    assert all(len(line) <= 120 for line in lines)
    for k, v in truth.items():
        assert re.search(rf"^{k}\s+{v}$", out, re.M), k
    for k in times:     # a time to the minute, said once to be UTC
        assert re.search(rf"^{k}\s+{figures[k][:10]} {figures[k][11:16]}$", out, re.M), k
    # a typo in the format is one line, exit 2, naming the nearest format
    code, out, err = run(capsys, *argv, "--format", "tabel")
    assert (code, out) == (2, "") and len(err.splitlines()) == 1
    assert "did you mean 'table'?" in err
    code, _, err = run(capsys, *argv, "--format", "xml")
    assert code == 2 and len(err.splitlines()) == 1
    assert "choose from text, table, csv, json" in err


# -- 5. a table of figures says what they are of -----------------------------------------
def test_the_backtest_table_says_how_many_devices_its_figures_are_of(demo, capsys):
    """``power backtest`` on a history shorter than its horizon scores no device: its
    table of empty figures says so above it (it printed three blank rows unexplained),
    and a scored backtest says of how many devices; the line is the same when the stored
    result is printed (read-only, the second run). CSV and JSON keep their records."""
    for horizon in ("30", "7"):      # the demo holds 20 days: nothing to score, then some
        outs = [run(capsys, "--db", demo, "power", "backtest", "--horizon-days", horizon)
                for _ in range(2)]                     # computed and stored, then stored
        with Fleet(demo, read_only=True) as f:
            [n] = f.query("select count(*) as n, count(*) filter (where is_scored) as k "
                          "from battery_backtest")
        line = (f"backtest on the last {horizon} days of each history: {n['k']} of "
                f"{n['n']} devices scored")
        for code, out, err in outs:
            assert code == 0 and err == "" and out.splitlines()[0].startswith(line), out
            assert out.splitlines()[1].split() == ["method", "within_10", "within_15",
                                                   "median_error_pct"]
            assert max(len(x) for x in out.splitlines()) <= 120
        assert ("(no battery fell over them without a reset)" in outs[0][1]) == (n["k"] == 0)
        code, out, _ = run(capsys, "--db", demo, "power", "backtest", "--horizon-days",
                           horizon, "--format", "json")
        assert code == 0 and [r["method"] for r in json.loads(out)] == ["model", "line14",
                                                                         "mean_rate"]
    assert n["k"] > 0


# -- 6. a sentence that prints a time says it is UTC -------------------------------------
def test_a_time_in_a_sentence_says_it_is_utc(demo_build, tmp_path, capsys):
    """``alerts evaluate``, its refusal of a time before the last evaluation, and
    ``retention`` print a time in a sentence: each says UTC (as ``info`` and the plans'
    headers do), and the error stays one line within 120 columns."""
    db = shutil.copy(demo_build[0], tmp_path / "demo.duckdb")
    stamp = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?"
    code, out, err = run(capsys, "--db", db, "alerts", "evaluate")
    assert code == 0 and err == "", err
    assert re.match(rf"evaluated \d+ of \d+ rules at {stamp} UTC: ", out), out
    code, out, err = run(capsys, "--db", db, "alerts", "evaluate", "--at", "2026-01-01")
    [line] = err.splitlines()
    assert code == 2 and out == "" and len(line) <= 120, line
    assert re.fullmatch(rf"tsfleet: error: evaluation time {stamp} UTC is before the previous "
                        rf"evaluation, {stamp} UTC", line), line
    code, out, err = run(capsys, "--db", db, "retention", "--raw-days", "10",
                         "--hourly-days", "15")
    assert code == 0 and err == "", err
    assert re.match(rf"cutoff {stamp} UTC: [\d,]+ raw readings rolled up", out), out
    assert max(len(x) for x in out.splitlines()) <= 120


# -- 7. a CSV of no rows is its header ---------------------------------------------------
#: Every listing that prints rows with ``--format csv`` (the analyses' key figures are one
#: record; ``sql`` streams its own header).
LISTINGS = [
    ["power", "forecast"], ["power", "plan"], ["power", "report"], ["power", "backtest"],
    ["firmware", "inventory"], ["firmware", "findings"], ["firmware", "campaigns"],
    ["firmware", "health"], ["firmware", "events"], ["firmware", "consistency"],
    ["firmware", "report"], ["calibration", "drift"], ["calibration", "faults"],
    ["calibration", "schedule"], ["calibration", "stability"],
    ["environment", "recommendations"], ["environment", "effects"], ["environment", "limits"],
    ["environment", "envelopes"], ["environment", "maintenance"],
    *([["network", name] for name in ("load", "balance", "bottlenecks", "redundancy", "spof",
                                      "down", "flapping", "saturation", "findings", "plan",
                                      "frontier")]),
    ["network", "plan", "--summary"], ["alerts", "list"], ["alerts", "history"],
    ["workorders"],
]


def headers(out: str) -> list[str]:
    """The first line of each CSV block (``power report`` prints two, a blank line apart)."""
    return [block.split("\n", 1)[0] for block in out.strip("\n").split("\n\n")]


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """A new store that holds no data."""
    path = tmp_path_factory.mktemp("empty") / "empty.duckdb"
    Fleet(str(path)).close()
    return path


@pytest.mark.parametrize("argv", LISTINGS, ids=" ".join)
def test_a_csv_of_no_rows_is_the_header_the_rows_would_have(empty_store, demo, capsys, argv):
    """A script reading ``--format csv`` sees the columns when no row matches (a fleet
    with no finding, no move, no data yet): the header line the listing prints when it has
    rows. Each printed nothing but a blank line."""
    code, out, err = run(capsys, "--db", empty_store, *argv, "--format", "csv")
    assert code == 0, err
    empty = headers(out)
    assert all(empty) and out.split() == empty, out         # the header lines alone
    code, out, err = run(capsys, "--db", demo, *argv, "--format", "csv")
    assert code == 0, err
    assert empty == headers(out)
