"""``tsfleet alerts evaluate|list|ack|silence|notify|history`` and ``tsfleet workorders``."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from tests.alerts.alerting_helpers import T0, finding, set_findings
from tsfleet import Fleet
from tsfleet.cli import main


def store(tmp_path):
    path = str(tmp_path / "f.duckdb")
    with Fleet(path) as fleet:
        set_findings(fleet, "power", [
            finding("power", "battery_critical", "th-1", severity="critical", value=3,
                    action="replace_battery", due_at=T0 + timedelta(days=2)),
            finding("power", "battery_critical", "th-2", site="plant-b", severity="critical",
                    value=4, action="replace_battery", due_at=T0 + timedelta(days=5)),
        ])
        # A store whose network domain published nothing: its rules are skipped.
        fleet.con.execute("drop view network_findings")
    return path


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_evaluate_list_ack_silence_history(tmp_path, capsys, endpoint):
    db = store(tmp_path)
    code, out, _ = run(capsys, "--db", db, "alerts", "evaluate", "--at", "2026-06-01T00:00Z")
    assert code == 0 and "2 firing" in out and "skipped GatewayDown: source" in out
    code, out, _ = run(capsys, "--db", db, "alerts", "list", "--format", "json")
    alerts = json.loads(out)
    assert [a["subject_id"] for a in alerts] == ["th-1", "th-2"]
    # labels are an object (they were JSON text inside a string)
    assert alerts[0]["labels"]["subject_id"] == "th-1" and alerts[0]["labels"]["alertname"]
    code, out, _ = run(capsys, "--db", db, "alerts", "ack", alerts[0]["fingerprint"],
                       "--by", "ana")
    assert code == 0 and "acknowledged" in out
    code, out, _ = run(capsys, "--db", db, "alerts", "silence", "site=plant-b",
                       "--duration", "1h", "--comment", "visit")
    assert code == 0 and ": 1 alert muted for 1h" in out
    code, out, _ = run(capsys, "--db", db, "alerts", "list", "--state", "acknowledged")
    assert "th-1" in out and "th-2" not in out
    code, out, _ = run(capsys, "--db", db, "alerts", "list", "--all", "--format", "csv")
    assert len(list(csv.DictReader(io.StringIO(out)))) == 2
    code, out, _ = run(capsys, "--db", db, "alerts", "history", "--format", "json")
    assert [h["to_state"] for h in json.loads(out)] == ["firing", "firing", "acknowledged"]
    code, out, _ = run(capsys, "--db", db, "alerts", "notify", endpoint.url)
    assert code == 0 and "2 delivered" in out


def test_workorders_json_csv_and_send(tmp_path, capsys, endpoint):
    db = store(tmp_path)
    code, out, _ = run(capsys, "--db", db, "workorders", "--format", "json")
    orders = json.loads(out)
    assert [(o["site"], o["n_items"]) for o in orders] == [("plant-a", 1), ("plant-b", 1)]
    assert orders[0]["items"][0]["action"] == "replace_battery"
    code, out, _ = run(capsys, "--db", db, "workorders", "--format", "csv", "--no-plan")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["subject_id"] for r in rows] == ["th-1", "th-2"]
    code, out, err = run(capsys, "--db", db, "workorders", "--send", endpoint.url,
                         "--format", "table")
    assert code == 0 and "tickets: 2 delivered" in err and len(endpoint.tickets) == 2


def test_errors_are_one_line(tmp_path, capsys):
    db = store(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nname = "X"\nsource = "power_findings"\nfor = "soon"\n')
    code, _, err = run(capsys, "--db", db, "alerts", "evaluate", "--rules", str(bad))
    assert code == 2 and "rule 'X': field 'for'" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "--db", db, "alerts", "ack", "nope")
    assert code == 2 and "no alert with fingerprint 'nope'" in err
    code, _, err = run(capsys, "--db", db, "alerts", "evaluate", "--at", "yesterday")
    assert code == 2 and "--at must be an ISO time" in err
