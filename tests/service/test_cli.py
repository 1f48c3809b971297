"""``tsfleet serve --analyze-every``, ``tsfleet analyze`` and ``tsfleet device`` on the CLI."""

from __future__ import annotations

import json

from tsfleet import Fleet
from tsfleet.cli import main


def test_serve_refuses_a_bad_cadence_in_one_line(capsys, tmp_path):
    for spec, message in (("weather=5m", "unknown analysis 'weather'"),
                          ("power=soon", "a cadence is a duration like 30s, 5m or 1h")):
        assert main(["serve", "--db", str(tmp_path / "x.duckdb"), "--coap", "127.0.0.1:1",
                     "--analyze-every", spec]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_analyze_then_device_card_as_json(capsys, tmp_path):
    db = str(tmp_path / "f.duckdb")
    with Fleet(db) as f:
        f.ingest("readings", [{"device_id": "pump-17", "observed_at": "2026-03-01T10:00Z",
                               "metric": "battery_pct", "value": 87}])
    assert main(["analyze", "--only", "firmware,power", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "firmware" in out and "power" in out and "ok" in out
    assert main(["device", "pump-17", "--format", "json", "--db", db]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["latest"][0]["value"] == 87.0
    assert main(["analyze", "--only", "weather", "--db", db]) == 2
    assert "unknown analysis weather" in capsys.readouterr().err


def test_the_card_cuts_a_long_value_at_120_columns_and_shows_it_was_cut(capsys, tmp_path):
    """A value longer than its line (a model name, a forecast's reason) ends in "…" at
    column 120, as a table's cut cell does: never silently."""
    db = str(tmp_path / "f.duckdb")
    model = "M-" + "x" * 150
    with Fleet(db) as f:
        f.ingest("devices", [{"device_id": "pump-17", "device_type": "pump",
                              "site": "plant-north", "model": model}])
        f.ingest("readings", [{"device_id": "pump-17", "observed_at": "2026-03-01T10:00Z",
                               "metric": "battery_pct", "value": 87}])
    assert main(["device", "pump-17", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 120
    shown = [line for line in lines if line.startswith("  model ")]   # identity, firmware
    assert shown and all(len(line) == 120 and line.endswith("x…") for line in shown)
    assert main(["device", "pump-17", "--db", db, "--wide"]) == 0      # not fitted: whole
    assert f"  model                  {model}" in capsys.readouterr().out.splitlines()
    assert main(["device", "pump-17", "--db", db, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["identity"]["model"] == model
