"""The CLI: demo, ingest, sql, info, and one-line errors with a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.foundation.cli_support import run
from tsfleet import Fleet
from tsfleet.cliutil import format_rows


def test_demo_builds_a_store_and_reports(tmp_path, capsys):
    db = tmp_path / "demo.duckdb"
    code, out, err = run(capsys, "demo", "--devices", "40", "--days", "10", "--db", str(db))
    assert code == 0, err
    assert "stored" in out and "readings from 40 devices" in out
    with Fleet(db, read_only=True) as f:
        assert f.query("select count(*) as n from devices")[0]["n"] == 40
        assert f.query("select n_devices from sim.config")[0]["n_devices"] == 40
    # A second demo replaces its own store ...
    assert run(capsys, "demo", "--devices", "20", "--days", "5", "--db", str(db))[0] == 0
    # ... but never a store that is not a demo.
    real = tmp_path / "real.duckdb"
    Fleet(real).close()
    code, _, err = run(capsys, "demo", "--devices", "20", "--days", "5", "--db", str(real))
    assert code == 2 and "not a demo store" in err and "Traceback" not in err
    # a folder that does not exist yet is made (it failed after the simulation), and one
    # that cannot be is an error before any simulation
    deep = tmp_path / "new" / "folder" / "demo.duckdb"
    assert run(capsys, "demo", "--devices", "20", "--days", "2", "--db", str(deep))[0] == 0
    assert deep.is_file()
    (tmp_path / "plain-file").write_text("")
    code, _, err = run(capsys, "demo", "--devices", "20", "--days", "2", "--db",
                       str(tmp_path / "plain-file" / "demo.duckdb"))
    assert code == 2 and err.startswith("tsfleet: error: cannot create the folder of ")
    assert "simulating" not in err


def test_ingest_sql_and_info(tmp_path, capsys, monkeypatch):
    db = tmp_path / "plant.duckdb"
    monkeypatch.setenv("TSFLEET_DB", str(db))
    csv = tmp_path / "r.csv"
    csv.write_text("device_id,observed_at,metric,value\npump-17,2026-03-01T10:00Z,battery_pct,87\n"
                   "pump-17,2026-03-01T11:00Z,battery_pct,180\n")
    code, out, _ = run(capsys, "ingest", "readings", str(csv))
    assert code == 0 and "1 accepted" in out and "out_of_range: 1" in out
    code, out, _ = run(capsys, "sql", "select device_id, value from readings", "--format", "json")
    assert code == 0 and json.loads(out) == [{"device_id": "pump-17", "value": 87.0}]
    code, out, _ = run(capsys, "sql", "select device_id, value from readings", "--format", "csv")
    assert out.splitlines() == ["device_id,value", "pump-17,87"]
    code, out, _ = run(capsys, "sql", "select device_id, value from readings")
    assert out.splitlines()[2].split() == ["pump-17", "87"]
    code, out, _ = run(capsys, "info")
    assert code == 0 and "readings            1" in out and "quarantine          1" in out
    assert "readings from       2026-03-01 10:00" in out
    empty = tmp_path / "empty.duckdb"
    Fleet(empty).close()
    code, out, _ = run(capsys, "--db", str(empty), "info")     # said nothing after the names
    assert code == 0 and "readings from       (no readings)" in out.splitlines()


@pytest.mark.parametrize("argv, message", [
    (["sql", "select nonsense from nowhere"], "SQL error"),
    # DuckDB's hint, on the same line (it was cut at the first line break)
    (["sql", "select * from readngs"], 'Did you mean "readings"?'),
    # a write says what it means (DuckDB's sentence was cut at "read-onl...")
    (["sql", "insert into devices (device_id) values ('x')"],
     "tsfleet sql only reads: an INSERT statement is not run (write with tsfleet ingest "
     "or the Python API)"),
    (["ingest", "readings", "/no/such/file.csv"], "no such file"),
    (["ingest", "nonsense", "/no/such/file.csv"], "unknown ingest kind"),
    (["ingest", "redings", "/no/such/file.csv"], "did you mean 'readings'?"),
    (["info"], "no store"),
    # named as the options, as --seed is (it said "at least 10 devices and 2 days, got
    # 400 devices and 1 days")
    (["demo", "--days", "1"], "--days must be a whole number >= 2, got 1"),
    (["demo", "--devices", "5"], "--devices must be a whole number >= 10, got 5"),
    (["demo", "--seed", "-1", "--devices", "10", "--days", "2"],
     "--seed must be a whole number >= 0, got -1"),
    (["ingest", "readings", "a" * 5000 + ".csv"], ": file name too long"),
    (["ingest", "readings", "/dev/null"], "cannot read /dev/null: not a regular file"),
    # a time no store can hold (a plan as of 1890 was built from data in its future)
    (["workorders", "--as-of", "1890-01-01"],
     "--as-of must be within 1990-01-01..2100-01-01 (the times a store holds), got "
     "'1890-01-01'"),
    (["alerts", "evaluate", "--at", "2200-01-01T00:00"], "--at must be within 1990-01-01"),
])
def test_errors_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    db = tmp_path / ("x.duckdb" if argv[0] not in ("sql", "alerts") else "y.duckdb")
    if argv[0] in ("sql", "alerts"):
        Fleet(db).close()
    code, out, err = run(capsys, "--db", str(db), *argv)
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("tsfleet: error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in err
    assert len(err.rstrip("\n").replace(str(db), "DB")) <= 120     # but the user's own path


def test_a_fifo_given_as_a_file_is_not_a_regular_file(tmp_path, capsys):
    fifo = tmp_path / "readings.csv"
    os.mkfifo(fifo)
    code, _, err = run(capsys, "--db", str(tmp_path / "x.duckdb"), "ingest", "readings",
                       str(fifo))
    assert code == 2 and err == f"tsfleet: error: cannot read {fifo}: not a regular file\n"


def test_the_simulator_refuses_a_negative_seed():
    from tsfleet.errors import InvalidParameter
    from tsfleet.simulate import SimConfig

    with pytest.raises(InvalidParameter, match="seed must be a whole number >= 0, got -1"):
        SimConfig(n_devices=10, days=2, seed=-1)


def test_console_script_runs_as_a_module(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tsfleet", "--db", str(tmp_path / "n.duckdb"),
                          "info"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.startswith("tsfleet: error: no store")


def test_version_prints_the_package_version_and_exits_0():
    from importlib.metadata import version

    out = subprocess.run([sys.executable, "-m", "tsfleet", "--version"], capture_output=True,
                         text=True, timeout=60)
    assert (out.returncode, out.stdout, out.stderr) == (0, f"tsfleet {version('tsfleet')}\n", "")


def test_format_rows_handles_empty_and_types():
    assert format_rows([], "table") == "(no rows)"
    assert format_rows([], "csv") == ""
    assert format_rows([{"a": None, "b": 1.23456789}], "csv") == "a,b\n,1.23456789"
