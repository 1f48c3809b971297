"""``tsfleet firmware ...`` on a store file: report as JSON and CSV, views, OSV load."""

from __future__ import annotations

import json

from tsfleet import Fleet
from tsfleet.cli import main


def make_store(path):
    with Fleet(str(path)) as f:
        f.ingest("devices", [dict(device_id=f"d{i}", device_type="t", manufacturer="Acme",
                                  model="TH-200", site="s", zone="z") for i in (1, 2)])
        f.ingest("firmware_releases", [dict(manufacturer="Acme", model="TH-200", version=v,
                                            status=s) for v, s in (("1.0.0", "approved"),
                                                                   ("1.1.0", "target"))])
        f.firmware.ingest_reports([dict(device_id=d, reported_at="2026-06-01T00:00Z",
                                        version=v) for d, v in (("d1", "1.0.0"),
                                                                ("d2", "1.1.0"))])


def test_report_json_csv_and_reads(tmp_path, capsys):
    db = tmp_path / "f.duckdb"
    make_store(db)
    feed = tmp_path / "osv.json"
    feed.write_text(json.dumps([{"id": "OSV-9", "affected": [{
        "package": {"name": "Acme/TH-200"}, "versions": ["1.0.0"]}]}]))
    assert main(["--db", str(db), "firmware", "osv", str(feed)]) == 0
    assert "1 accepted" in capsys.readouterr().out
    assert main(["--db", str(db), "firmware", "analyze"]) == 0
    assert "2 devices" in capsys.readouterr().out
    assert main(["--db", str(db), "firmware", "report", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_devices"] == 2 and report["n_compliant"] == 1
    [bad] = report["non_compliant_devices"]
    assert bad["device_id"] == "d1" and "vulnerable: OSV-9" in bad["reasons"]
    assert main(["--db", str(db), "firmware", "report", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("as_of,device_id") and lines[1].split(",")[1] == "d1"
    for action in ("inventory", "findings", "campaigns", "health", "events", "consistency"):
        assert main(["--db", str(db), "firmware", action, "--format", "csv"]) == 0
    assert main(["--db", str(db), "firmware", "osv", str(tmp_path / "none.json")]) == 2
    assert "no OSV feed" in capsys.readouterr().err
