"""Declaring a metric (issue 17): readings of an undeclared metric wait in quarantine,
the sensors say why they cannot be judged, and declaring the metric brings them in."""

from __future__ import annotations

import pytest

from tsfleet import Fleet
from tsfleet.cli import main
from tsfleet.errors import InvalidParameter


def _flow_plant(fleet: Fleet) -> int:
    fleet.ingest("devices", [
        {"device_id": f"fl-{j}", "device_type": "flow", "manufacturer": "T", "model": "F1",
         "site": "s1", "zone": "s1/pumps", "measures": "flow_lpm"} for j in range(4)])
    rows = [{"device_id": f"fl-{j}", "observed_at": f"2026-05-{1 + h // 24:02d}T{h % 24:02d}:05Z",
             "metric": "flow_lpm", "value": 120.0 + (h % 24) + 0.1 * j}
            for j in range(4) for h in range(24 * 10)]
    rows.append({"device_id": "fl-0", "observed_at": "2026-05-11T00:05Z", "metric": "flow_lpm",
                 "value": 9000.0})       # beyond the range declared below
    report = fleet.ingest("readings", rows)
    assert report.n_accepted == 0
    assert report.quarantined_by_reason == {"unknown_metric": len(rows)}
    return len(rows)


def test_undeclared_metric_waits_in_quarantine_and_is_reingested_when_declared(tmp_path):
    fleet = Fleet(str(tmp_path / "m.duckdb"))
    n = _flow_plant(fleet)
    fleet.calibration.detect()
    before = fleet.query("select verdict, reason from sensor_drift where device_id = 'fl-1'")[0]
    assert before["verdict"] == "no_expectation"
    assert "readings of flow_lpm are in quarantine (unknown_metric)" in before["reason"]
    assert "fleet.metrics.add" in before["reason"]
    summary = fleet.query("select summary from calibration_findings "
                          "where subject_id = 'fl-1'")[0]["summary"]
    assert "quarantine" in summary
    with pytest.raises(InvalidParameter):
        fleet.metrics.add("flow_lpm", "l/min", 10, 10)
    with pytest.raises(InvalidParameter, match="drift_tolerance_pct"):
        fleet.metrics.add("flow_lpm", "l/min", 0, 500, drift_tolerance_pct=500)
    report = fleet.metrics.add("flow_lpm", "l/min", 0, 500, drift_tolerance_pct=3.0,
                               quantity="flow")
    assert report.n_accepted == n - 1
    assert fleet.query("select count(*) n from readings where metric = 'flow_lpm'")[0]["n"] == n - 1
    left = fleet.query("select reason, count(*) n from quarantine where kind = 'readings' "
                       "group by reason")
    assert left == [{"reason": "out_of_range", "n": 1}]          # nothing lost
    assert fleet.query("select distinct tolerance_pct from calibration_sensors") == [
        {"tolerance_pct": 3.0}]
    fleet.calibration.detect()
    verdicts = {r["verdict"] for r in fleet.query("select verdict from sensor_drift")}
    assert "no_expectation" not in verdicts
    # declaring the same metric again re-ingests nothing twice
    assert fleet.metrics.add("flow_lpm", "l/min", 0, 500).n_accepted == 0
    fleet.close()


def test_cli_declares_metrics_and_retries_the_quarantine(tmp_path, capsys):
    db = str(tmp_path / "c.duckdb")
    with Fleet(db) as fleet:
        n = _flow_plant(fleet)
    assert main(["--db", db, "ingest"]) == 2
    assert "needs a kind" in capsys.readouterr().err
    decl = tmp_path / "metrics.jsonl"
    decl.write_text('{"metric": "Flow_LPM", "unit": "l/min", "min_value": 0, '
                    '"max_value": 10000}\n')
    assert main(["--db", db, "ingest", "metrics", str(decl)]) == 0
    out = capsys.readouterr().out
    assert f"readings from quarantine: {n} rows, {n} accepted" in out
    assert main(["--db", db, "ingest", "--retry-quarantine"]) == 0
    assert "0 rows" in capsys.readouterr().out
    with Fleet(db) as fleet:
        assert fleet.query("select count(*) n from quarantine")[0]["n"] == 0
        assert fleet.query("select unit from metric_catalog where metric = 'flow_lpm'") == [
            {"unit": "l/min"}]
