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


#: temperature_c as tsfleet ships it (sql/tables/020_metrics.sql)
TEMPERATURE = {"metric": "temperature_c", "unit": "Cel", "quantity": "temperature",
               "min_value": -80.0, "max_value": 250.0,
               "description": "Temperature, degrees Celsius."}


def _catalog(fleet: Fleet, metric: str) -> dict:
    return fleet.query("select * from metric_catalog where metric = ?", [metric])[0]


def test_a_builtin_metric_keeps_its_unit_and_its_physical_range():
    """A declaration may narrow a built-in metric's range and set its drift tolerance;
    one that changes its unit or widens its range is quarantined (builtin_metric), and
    the catalog, which every stored reading of the metric is in, is left as it was."""
    fleet = Fleet(memory=True)
    bad = [{"metric": "temperature_c", "unit": "F", "min_value": -1000, "max_value": 1000},
           {"metric": "Temperature_C", "unit": "K", "min_value": 0, "max_value": 400},
           {"metric": "humidity_pct", "unit": "%RH", "min_value": -5, "max_value": 100},
           {"metric": "temperature_f", "unit": "F", "min_value": -100, "max_value": 400}]
    for row in bad:
        r = fleet.ingest("metrics", [row])
        assert (r.n_accepted, r.quarantined_by_reason) == (0, {"builtin_metric": 1}), row
    details = [q["detail"] for q in fleet.query("select detail from quarantine order by batch_id")]
    assert details == [
        "temperature_c is a built-in metric in Cel: a declaration cannot change its unit, "
        "got F for temperature_c",
        "temperature_c is a built-in metric in Cel: a declaration cannot change its unit, "
        "got K for temperature_c",   # the name is read in lower case, as it is stored
        "humidity_pct is a built-in metric whose physical range is 0..100: a declaration may "
        "narrow it, not widen it, got -5..100 for humidity_pct",
        "temperature_f is an alias of the built-in metric temperature_c (Fahrenheit to "
        "Celsius): it cannot be declared for temperature_f"]
    assert _catalog(fleet, "temperature_c") == TEMPERATURE
    assert fleet.query("select count(*) as n from metric_declarations")[0]["n"] == 0
    with pytest.raises(InvalidParameter, match="cannot change its unit, got F"):
        fleet.metrics.add("temperature_c", "F", -1000, 1000)
    assert fleet.ingest("readings", [{"device_id": "a", "observed_at": "2026-05-01T00:00Z",
                                      "metric": "temperature_c", "value": 900}]
                        ).quarantined_by_reason == {"out_of_range": 1}
    # the same unit by another name, a narrower range and a drift tolerance: accepted
    for unit in ("degC", "°C", "C", "Cel"):
        fleet.metrics.add("temperature_c", unit, -40, 85, drift_tolerance_pct=1.5)
        assert _catalog(fleet, "temperature_c") == dict(TEMPERATURE, min_value=-40.0,
                                                        max_value=85.0)
    assert fleet.query("select unit, drift_tolerance_pct from metric_declarations") == [
        {"unit": "Cel", "drift_tolerance_pct": 1.5}]
    r = fleet.ingest("readings", [{"device_id": "a", "observed_at": f"2026-05-01T0{h}:00Z",
                                   "metric": "temperature_c", "value": v}
                                  for h, v in ((1, 84.0), (2, 90.0))])
    assert (r.n_accepted, r.quarantined_by_reason) == (1, {"out_of_range": 1})
    # a metric of the user's own may still change its unit (no reading of it is stored)
    fleet.metrics.add("flow_lpm", "l/min", 0, 500)
    fleet.metrics.add("flow_lpm", "m3/h", 0, 30)
    assert _catalog(fleet, "flow_lpm")["unit"] == "m3/h"
    fleet.close()


def test_the_builtin_list_is_the_catalog_a_new_store_ships():
    """metric_builtins (what declarations are held to) names every metric of a new
    store's catalog as shipped: a migration adding a metric must add it there too."""
    with Fleet(memory=True) as fleet:
        shipped = fleet.query("select * from metric_catalog order by metric")
        assert fleet.query("select metric, unit, quantity, min_value, max_value, description "
                           "from metric_builtins order by metric") == shipped
        assert len(shipped) >= 15


def test_a_builtin_redeclared_before_the_check_is_held_to_its_unit_and_range():
    """A store written before declarations were checked may hold one that changed a
    built-in metric (what the hook copied then); the next declaration of any metric
    brings the catalog back to the built-in unit and within the physical range."""
    fleet = Fleet(memory=True)
    fleet.con.execute("insert into metric_declarations (metric, unit, min_value, max_value) "
                      "values ('temperature_c', 'F', -1000, 1000)")
    fleet.con.execute("update metric_catalog set unit = 'F', min_value = -1000, "
                      "max_value = 1000, quantity = 'temperature_c', "
                      "description = 'declared by a user' where metric = 'temperature_c'")
    fleet.metrics.add("flow_lpm", "l/min", 0, 500)
    assert _catalog(fleet, "temperature_c") == TEMPERATURE
    fleet.close()


def test_a_metric_with_stored_readings_keeps_its_unit():
    """A metric of the user's own may change its unit while no reading of it is stored;
    once readings are (raw, or rolled up by retention), a declaration in another unit is
    quarantined (unit_change: they would be read in the new unit, unconverted), the
    rest of the file lands, and the catalog keeps the unit the readings are in. The same
    unit by another name, or a new range, is still a redeclaration."""
    from tsfleet.service.retention import apply_retention

    fleet = Fleet(memory=True)
    fleet.metrics.add("flow_lpm", "m3/h", 0, 30)
    fleet.metrics.add("flow_lpm", "l/min", 0, 500)       # no reading yet: the unit may change
    fleet.metrics.add("oven_temp", "degC", 0, 400)
    fleet.ingest("readings", [{"device_id": "fl-1", "observed_at": f"2026-05-{day:02d}T10:00Z",
                               "metric": metric, "value": 120.0}
                              for day in (1, 2, 10) for metric in ("flow_lpm", "oven_temp")])
    assert apply_retention(fleet, raw_days=2).n_raw_deleted == 4       # 2 of each rolled up
    r = fleet.ingest("metrics", [
        {"metric": "flow_lpm", "unit": "m3/h", "min_value": 0, "max_value": 30},
        {"metric": "dust_ugm3", "unit": "ug/m3", "min_value": 0, "max_value": 5000}])
    assert (r.n_accepted, r.quarantined_by_reason) == (1, {"unit_change": 1})
    [q] = fleet.query("select detail from quarantine where kind = 'metrics'")
    assert q["detail"] == ("flow_lpm has 3 readings stored in l/min, which a redeclaration in "
                           "m3/h would read as m3/h: declare a new metric name for m3/h instead")
    assert _catalog(fleet, "flow_lpm")["unit"] == "l/min"
    assert _catalog(fleet, "dust_ugm3")["unit"] == "ug/m3"
    with pytest.raises(InvalidParameter, match=r"^metric Flow_LPM was not declared: flow_lpm "
                                               r"has 3 readings stored in l/min, .* declare a "
                                               r"new metric name for m3/h instead$"):
        fleet.metrics.add("Flow_LPM", "m3/h", 0, 30)
    fleet.metrics.add("flow_lpm", "l/min", 0, 1000)              # its unit: a new range
    fleet.metrics.add("oven_temp", "°C", -20, 400)               # Cel by another name
    assert (_catalog(fleet, "flow_lpm")["max_value"], _catalog(fleet, "oven_temp")["min_value"]
            ) == (1000.0, -20.0)
    fleet.close()


def test_a_metric_declared_in_capitals_is_one_declaration_of_its_lower_case_name():
    """Readings and the catalog match metric names in lower case; so does a declaration.
    'Flow_LPM' then 'FLOW_lpm' is one metric redeclared (the second range wins), and the
    drift tolerance declared with capitals reaches the metric's sensors."""
    fleet = Fleet(memory=True)
    n = _flow_plant(fleet)
    assert fleet.metrics.add("Flow_LPM", "l/min", 0, 500, drift_tolerance_pct=3.0
                             ).n_accepted == n - 1
    assert fleet.query("select distinct tolerance_pct from calibration_sensors") == [
        {"tolerance_pct": 3.0}]
    r = fleet.ingest("metrics", [{"metric": "FLOW_lpm", "unit": "l/min", "min_value": 0,
                                  "max_value": 10000}])
    assert r.n_accepted == 1
    assert fleet.query("select metric, max_value from metric_declarations") == [
        {"metric": "flow_lpm", "max_value": 10000.0}]
    assert _catalog(fleet, "flow_lpm")["max_value"] == 10000.0
    fleet.close()


def _reading(h: int, value: float, metric: str = "flow_lpm") -> dict:
    return {"device_id": "fl-9", "observed_at": f"2026-05-01T{h:02d}:00Z", "metric": metric,
            "value": value}


def test_a_wider_range_takes_back_the_readings_it_admits_now():
    fleet = Fleet(memory=True)
    fleet.metrics.add("flow_lpm", "l/min", 0, 500)
    r = fleet.ingest("readings", [_reading(1, 100), _reading(2, 700), _reading(3, 1200)])
    assert (r.n_accepted, r.quarantined_by_reason) == (1, {"out_of_range": 2})
    # the same declaration again changes nothing and tries nothing
    assert fleet.metrics.add("flow_lpm", "l/min", 0, 500).n_rows == 0
    # wider: 700 lands, 1200 is out of range again (quarantined anew, once)
    again = fleet.metrics.add("flow_lpm", "l/min", 0, 1000)
    assert (again.n_rows, again.n_accepted, again.n_quarantined) == (2, 1, 1)
    assert [r["value"] for r in fleet.query("select value from readings order by value")] == [
        100.0, 700.0]
    assert fleet.query("select json_extract(raw, '$.value')::double as v from quarantine") == [
        {"v": 1200.0}]
    # a declaration of another metric does not try flow_lpm's reading
    assert fleet.metrics.add("level_mm", "mm", 0, 10).n_rows == 0
    # nor does the command line's retry, until the next declaration of flow_lpm
    assert fleet.metrics.retry_quarantine().n_rows == 0
    assert fleet.metrics.add("flow_lpm", "l/min", 0, 1500).n_accepted == 1
    assert fleet.query("select count(*) as n from quarantine") == [{"n": 0}]
    fleet.close()
