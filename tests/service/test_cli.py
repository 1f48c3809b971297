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
