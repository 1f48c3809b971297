"""A typo on the command line is one error line (exit 2) that names the nearest right
thing, never an empty answer or a quiet success (README, "CLI"): on a demo store built by
``tsfleet demo``, as a person would type the commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.foundation.cli_support import run as cli_run

WIDTH = 120


@pytest.fixture(scope="module")
def demo(demo_build, tmp_path_factory):
    """A copy of the shared demo store (60 devices, 20 days, seed 7) for this module."""
    return shutil.copy(demo_build[0], tmp_path_factory.mktemp("demo") / "demo.duckdb")


def run(demo, capsys, *argv):
    """Exit status, stdout and stderr of ``tsfleet --db DEMO argv...``."""
    return cli_run(capsys, "--db", demo, *argv)


def one_line_error(result, *parts: str) -> str:
    """The error line of ``result``: exit 2, nothing on stdout, one line that fits 120
    columns and holds every one of ``parts``."""
    code, out, err = result
    assert code == 2 and out == "", result
    lines = err.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) <= WIDTH, err
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


def sql(demo, capsys, query: str) -> list[dict]:
    code, out, _ = run(demo, capsys, "sql", "--format", "json", query)
    assert code == 0
    return json.loads(out)


# -- 1. calibration drift --verdict ------------------------------------------------------
def test_an_unknown_verdict_names_the_nearest(demo, capsys):
    one_line_error(run(demo, capsys, "calibration", "drift", "--verdict", "needs_recal"),
                   "--verdict", "did you mean 'needs_recalibration'?")
    # nothing close: the action's help, which lists every verdict
    one_line_error(run(demo, capsys, "calibration", "drift", "--verdict", "zzz"),
                   "--verdict", "(see tsfleet calibration drift --help)")
    code, out, _ = run(demo, capsys, "calibration", "drift", "--help")
    assert code == 0 and "needs_recalibration" in out and "zone_ambiguous" in out
    # a verdict no sensor has is an empty listing, not an error
    for verdict in ("needs_recalibration", "zone_ambiguous"):
        code, out, err = run(demo, capsys, "calibration", "drift", "--verdict", verdict,
                             "--format", "json")
        assert code == 0 and err == "" and {r["verdict"] for r in json.loads(out)} <= {verdict}


# -- 4. alerts history FINGERPRINT -------------------------------------------------------
def test_history_of_an_unknown_fingerprint_is_the_error_ack_gives(demo, capsys):
    ack = one_line_error(run(demo, capsys, "alerts", "ack", "deadbeefdeadbeef"))
    history = one_line_error(run(demo, capsys, "alerts", "history", "deadbeefdeadbeef"))
    assert history == ack == "tsfleet: error: no alert with fingerprint 'deadbeefdeadbeef'"
    known = sql(demo, capsys, "select fingerprint from alert_history limit 1")[0]["fingerprint"]
    code, out, err = run(demo, capsys, "alerts", "history", known, "--format", "json")
    assert code == 0 and err == "" and {h["fingerprint"] for h in json.loads(out)} == {known}


# -- 4b. a device id typed wrong ---------------------------------------------------------
def test_a_device_id_typed_wrong_names_the_nearest_device(demo, capsys):
    """``device ID`` and ``calibration history ID`` with a digit left off: one line that
    names the device meant (the one the typed id is the start of), as a typo in a filter
    does; an id near nothing names none."""
    sensor = sql(demo, capsys, "select device_id from calibration_sensors "
                               "order by device_id desc limit 1")[0]["device_id"]
    typo = sensor[:-1]
    for argv, text in ((["device", typo], "is neither registered nor seen in readings"),
                       (["calibration", "history", typo], "is not a sensor")):
        line = one_line_error(run(demo, capsys, *argv), f"device '{typo}' {text}",
                              f"; did you mean '{typo}")
        meant = line.rsplit("'", 2)[-2]
        assert meant.startswith(typo) and run(demo, capsys, *argv[:-1], meant)[0] == 0, line
    for argv in (["device", "zzzzzzzz"], ["calibration", "history", "zzzzzzzz"]):
        assert "did you mean" not in one_line_error(run(demo, capsys, *argv), "'zzzzzzzz'")


# -- 2. alerts silence LABEL=VALUE -------------------------------------------------------
def test_a_silence_on_a_label_no_alert_has_names_the_nearest_and_stores_nothing(
        demo, capsys):
    before = sql(demo, capsys, "select count(*) as n from silences")[0]["n"]
    one_line_error(run(demo, capsys, "alerts", "silence", "sitee=plant-a"),
                   "no alert or rule has the label 'sitee'", "did you mean 'site'?")
    one_line_error(run(demo, capsys, "alerts", "silence", "site=plant-a", "alertnme=~Bat.*"),
                   "'alertnme'", "did you mean 'alertname'?")
    assert sql(demo, capsys, "select count(*) as n from silences")[0]["n"] == before
    # a rule's static label is a label; a value that matches nothing yet is a silence for
    # alerts to come (docs/alerts.md: silences are windows of time)
    code, out, err = run(demo, capsys, "alerts", "silence", "team=maintenance",
                         "site=plant-zz", "--duration", "1h")
    assert code == 0 and err == "" and ": 0 alerts muted for 1h" in out


# -- 3. firmware osv-map PACKAGE MANUFACTURER MODEL --------------------------------------
def test_an_osv_mapping_to_a_model_the_store_lacks_names_the_nearest(demo, capsys):
    models = sql(demo, capsys, "select distinct manufacturer, model from devices "
                               "order by all")
    maker, model = models[0]["manufacturer"], models[0]["model"]
    one_line_error(run(demo, capsys, "firmware", "osv-map", "fw", maker + "e", model + "0"),
                   f"no manufacturer '{maker}e' in the store", f"did you mean '{maker}'?")
    one_line_error(run(demo, capsys, "firmware", "osv-map", "fw", maker, model + "0"),
                   f"no {maker} model '{model}0' in the store", f"did you mean '{model}'?")
    assert sql(demo, capsys, "select count(*) as n from firmware_osv_packages")[0]["n"] == 0
    # the names themselves map, and so does every model of a known manufacturer
    for argv in ([maker, model], [maker]):
        code, out, err = run(demo, capsys, "firmware", "osv-map", "fw", *argv)
        assert code == 0 and err == "" and "fw" in out


# -- 5. errors name the option as typed, not the API's parameter -------------------------
@pytest.mark.parametrize("argv, flag", [
    (["workorders", "--window-days", -5], "--window-days must be >= 0"),
    (["workorders", "--horizon-days", -5], "--horizon-days must be >= 0"),   # its alias
    (["power", "plan", "--window-days", -5], "--window-days must be >= 0"),
    (["power", "plan", "--batch-days", -5], "--batch-days must be >= 0"),     # its old name
    (["calibration", "schedule", "--window-days", -5], "--window-days must be >= 0"),
    (["calibration", "schedule", "--visit-window-days", -5],
     "--visit-window-days must be >= 0"),                                      # its old name
    (["calibration", "schedule", "--horizon-days", -1], "--horizon-days must be 0 or more"),
    (["network", "plan", "--pin", "no-such-device"], "--pin: no-such-device"),
    (["network", "frontier", "--points", 1], "--points must be"),
    (["network", "frontier", "--rssi-floor", 100], "--rssi-floor must be"),
    (["network", "plan", "--rssi-floor", "nan"], "--rssi-floor must be"),
    (["calibration", "detect", "--fdr", 2], "--fdr must be"),
    (["environment", "maintenance", "--limit", 0], "--limit must be"),
    (["retention", "--raw-days", -1], "need 1 <= --raw-days <= --hourly-days"),
    (["export", "EXPORT", "--since", "garbage"], "--since must be"),
    (["export", "EXPORT", "--since", "2026-09-01", "--until", "2026-08-01"],
     "--until must be after --since"),
    (["export", "EXPORT", "--buckets", 0], "--buckets must be"),
    (["alerts", "evaluate", "--offline-k", -1], "--offline-k must be > 0"),
])
def test_an_error_names_the_option_as_typed(demo, capsys, tmp_path, argv, flag):
    argv = [str(tmp_path / "export") if a == "EXPORT" else a for a in argv]
    line = one_line_error(run(demo, capsys, *argv), flag)
    for name in ("horizon_days", "n_points", "rssi_floor_dbm", "fdr must", "limit must",
                 "raw_days", "since must", "buckets must", "offline_k", "pinned"):
        assert f" {name}" not in line.replace(f" --{name}", ""), line


# -- 6. what a command cannot do is an error, not a quiet success ------------------------
def test_sql_runs_exactly_one_statement(demo, capsys):
    for query in ("", "  ", "-- a comment only"):
        one_line_error(run(demo, capsys, "sql", query), "one SQL statement, got none")
    one_line_error(run(demo, capsys, "sql", "select 1 as a; select 2 as b"),
                   "one SQL statement, got 2")
    code, out, err = run(demo, capsys, "sql", "--format", "json", "select 2 as b;")
    assert code == 0 and err == "" and json.loads(out) == [{"b": 2}]


def test_a_file_where_a_folder_belongs_is_one_line_not_a_traceback(demo, capsys, tmp_path,
                                                                   monkeypatch):
    """``export FILE`` and ``snapshot FILE/x.duckdb`` (a file where the command makes a
    folder) printed Python's traceback; now one line that names the path. An error of the
    system no command foresaw is one line too."""
    monkeypatch.chdir(tmp_path)      # paths as typed, relative: the line names them so
    afile = Path("afile")
    afile.write_text("x")
    one_line_error(run(demo, capsys, "export", afile), f"the export folder {afile} is a file")
    one_line_error(run(demo, capsys, "export", afile / "sub"),
                   f"cannot create the export folder {afile / 'sub'}: not a directory")
    for out in (afile / "x.duckdb", afile / "a" / "x.duckdb"):
        one_line_error(run(demo, capsys, "snapshot", out),
                       f"cannot create the folder of {out}: ")
    assert afile.read_text() == "x"

    def refused(args):
        raise PermissionError(13, "Permission denied", "/srv/fleet/x.parquet")

    monkeypatch.setattr("tsfleet.cli.cmd_info", refused)
    assert one_line_error(run(demo, capsys, "info")) == (
        "tsfleet: error: permission denied: /srv/fleet/x.parquet")


@pytest.mark.parametrize("argv, message", [
    (["snmp-poll", "--targets", "t.toml", "--timeout", "-1"],
     "argument --timeout: must be a number above 0, got '-1'"),
    (["snmp-poll", "--targets", "t.toml", "--timeout", "0"], "argument --timeout"),
    (["snmp-poll", "--targets", "t.toml", "--timeout=nan"], "argument --timeout"),
    (["alerts", "notify", "http://127.0.0.1:9/", "--timeout", "-1"], "argument --timeout"),
    (["alerts", "notify", "http://127.0.0.1:9/", "--attempts", "0"], "argument --attempts"),
    (["network", "plan", "--target-utilization", "0.8"],
     "--target-utilization needs --objective fix_overloads"),
    (["network", "plan", "--objective", "min_max", "--target-utilization", "0.8"],
     "--target-utilization needs --objective fix_overloads"),
    # 0 is a value, not "not given" (it planned to the default 0.9)
    (["network", "plan", "--objective", "fix_overloads", "--target-utilization", "0"],
     "--target-utilization must be within (0, 10], got 0.0"),
])
def test_an_option_that_cannot_apply_is_refused(demo, capsys, argv, message):
    one_line_error(run(demo, capsys, *argv), message)


def test_a_target_utilization_applies_with_fix_overloads(demo, capsys):
    def worst(*argv):
        code, out, err = run(demo, capsys, "network", "plan", "--objective", "fix_overloads",
                             "--summary", "--format", "json", *argv)
        assert code == 0 and err == ""
        return max(r["max_utilization_after"] for r in json.loads(out))
    assert worst("--target-utilization", "0.5") <= 0.5 + 1e-9 < worst()


@pytest.mark.parametrize("duration", ["-1h", "0h", "-30m", "0d"])
def test_a_silence_of_no_time_is_refused(demo, capsys, duration):
    before = sql(demo, capsys, "select count(*) as n from silences")[0]["n"]
    one_line_error(run(demo, capsys, "alerts", "silence", "site=plant-a",
                       f"--duration={duration}"),
                   f"--duration must be positive, like 30m, 2h or 1d; got '{duration}'")
    if not duration.startswith("-"):   # argparse takes '-1h' only as --duration=-1h
        one_line_error(run(demo, capsys, "alerts", "silence", "site=plant-a", "--duration",
                           duration), "--duration must be positive")
    assert sql(demo, capsys, "select count(*) as n from silences")[0]["n"] == before


def test_a_number_is_shown_as_typed(demo, capsys):
    # "--window-days must be >= 0, got -5.0" for -5: the option is a float, the user's is not
    line = one_line_error(run(demo, capsys, "workorders", "--window-days", "-5"),
                          "--window-days must be >= 0")
    assert line.endswith("got -5"), line
