"""The device card on devices with no data, partial data and full data."""

from __future__ import annotations

import pytest

from tsfleet import UnknownDevice
from tsfleet.service.card import SECTIONS, relations

PUMP = {"device_id": "pump-17", "device_type": "pressure", "manufacturer": "Acme",
        "model": "P-1", "site": "plant-north", "zone": "boiler-room",
        "battery_chemistry": "li_socl2", "reporting_interval_s": 3600}


def absent_sections(fleet) -> set[str]:
    have = relations(fleet.con)
    return {name for name, (relation, _, _) in SECTIONS.items() if relation not in have}


def test_registered_device_without_data(fleet):
    fleet.ingest("devices", [PUMP])
    card = fleet.device("pump-17")
    assert card["identity"]["site"] == "plant-north"
    assert card["latest"] == [] and card["battery_forecast"] is None
    assert card["battery_state"] is None or card["battery_state"]["level_pct"] is None
    for name in ("battery", "firmware", "alerts"):
        assert card[name] == []
    for name in absent_sections(fleet):  # domains not in this build
        assert card[name] is None


def test_device_seen_in_readings_but_not_registered_nor_analysed(fleet):
    fleet.ingest("readings", [{"device_id": "th-9", "observed_at": f"2026-03-01T{h:02d}:00Z",
                               "metric": "temperature_c", "value": 20 + h / 10}
                              for h in range(5)])
    card = fleet.device("th-9")
    assert card["identity"] is None and card["last_seen"]["is_registered"] is False
    assert [(r["metric"], r["value"]) for r in card["latest"]] == [("temperature_c", 20.4)]
    assert str(card["last_seen"]["last_observed_at"]) == "2026-03-01 04:00:00"
    assert card["battery_forecast"] is None and card["firmware_state"] is None
    assert card["alerts"] == []


def test_unknown_device_is_an_error(fleet):
    with pytest.raises(UnknownDevice, match="nope"):
        fleet.device("nope")


def test_full_card_of_an_analysed_device_with_an_open_alert(service_sim):
    sim = service_sim
    sim.analyze()
    [row] = sim.query("select subject_id, count(*) as n from alerts where subject_kind = "
                      "'device' and state in ('pending', 'firing', 'acknowledged') "
                      "group by all order by n desc, subject_id limit 1")
    device = row["subject_id"]
    card = sim.device(device)
    registered = sim.query("select * exclude (batch_id) from devices where device_id = ?",
                           [device])[0]
    assert card["identity"] == registered
    latest = {r["metric"]: r["value"] for r in card["latest"]}
    assert latest == {r["metric"]: r["value"] for r in sim.query(
        "select metric, value from device_latest where device_id = ?", [device])}
    assert card["battery_state"]["level_pct"] == latest["battery_pct"]
    assert card["battery_forecast"]["device_id"] == device
    assert card["battery_forecast"]["method"] in ("holt_winters", "previous_segment",
                                                   "type_prior")
    reported = sim.query("select arg_max(version, reported_at) as v from firmware_reports "
                         "where device_id = ?", [device])[0]["v"]
    assert card["firmware_state"]["version"] == reported
    assert len(card["alerts"]) == row["n"]
    assert {a["subject_id"] for a in card["alerts"]} == {device}
    for name in absent_sections(sim):
        assert card[name] is None


def test_device_status_and_fleet_overview_agree_with_the_result_tables(service_sim):
    sim = service_sim
    sim.analyze()
    status = {r["device_id"]: r for r in sim.query("select * from device_status")}
    assert set(status) == {r["device_id"] for r in sim.query("select device_id from devices")}
    forecast = {r["device_id"]: r["days_to_empty"] for r in sim.query(
        "select device_id, days_to_empty from battery_forecast")}
    assert {d: s["days_to_empty"] for d, s in status.items() if d in forecast} == forecast
    alerts = sim.query("select subject_id, count(*) as n from alerts where subject_kind = "
                       "'device' and state in ('pending', 'firing', 'acknowledged') group by 1")
    assert {a["subject_id"]: a["n"] for a in alerts} == {
        d: s["n_open_alerts"] for d, s in status.items() if s["n_open_alerts"]}
    overview = {r["site"]: r for r in sim.query("select * from fleet_overview")}
    for site, row in overview.items():
        mine = [s for s in status.values() if s["site"] == site]
        assert row["n_devices"] == len(mine)
        assert row["n_empty_within_30d"] == sum(
            1 for s in mine if s["days_to_empty"] is not None and s["days_to_empty"] <= 30)
    # The card reads the copies the analysis run made, not the heavy views.
    copied = {r["domain"] for r in sim.query("select distinct domain from card_findings")}
    assert {"power", "firmware"} <= copied
    assert sim.query("select count(*) as n from card_state where source = 'battery_state'"
                     )[0]["n"] == sim.query("select count(*) as n from battery_state")[0]["n"]


def test_the_card_shows_each_findings_view_row_as_the_view_does(service_sim):
    """The copy keeps a domain's own columns (calibration: level): the card's section,
    read from the copy, equals the findings view's rows for that device."""
    sim = service_sim
    sim.analyze()
    [row] = sim.query("select subject_id from calibration_findings where subject_kind = "
                      "'device' and level is not null order by subject_id limit 1")
    card = sim.device(row["subject_id"])
    view = sim.query("select * from calibration_findings where subject_id = ?",
                     [row["subject_id"]])

    def key(r):
        return (r["finding"], str(r["observed_at"]))

    got = sorted(card["calibration"], key=key)
    assert [r["level"] for r in got] == [r["level"] for r in sorted(view, key=key)]
    assert set(got[0]) == set(view[0])


def test_the_last_seen_section_is_the_views_row_for_every_device(service_sim):
    """The card's ``last_seen`` is the view's row, for registered devices, a device seen
    only in readings and one registered but silent."""
    sim = service_sim
    sim.ingest("readings", [{"device_id": "stray-1", "observed_at": "2026-03-01T10:00Z",
                             "metric": "temperature_c", "value": 21.0}])
    sim.ingest("devices", [{**PUMP, "device_id": "silent-1"}])
    view = {r["device_id"]: r for r in sim.query("select * from device_last_seen")}
    assert {"stray-1", "silent-1"} <= set(view) and len(view) > 40
    for device, row in view.items():
        assert sim.device(device)["last_seen"] == row, device
    assert view["silent-1"]["n_metrics"] == 0 and view["stray-1"]["is_registered"] is False


def test_the_card_knows_the_time_columns_of_every_copy(fleet):
    """A state view's copy is JSON, whose times are text: the card reads the columns of
    STATE_TIMES back as times, so it must name every time column of every state view;
    a findings copy keeps the contract's typed columns, and a view's own columns (kept
    as JSON in ``extra``) hold no time."""
    from tsfleet.alerts.ruleset import CONTRACT_COLUMNS
    from tsfleet.domain import DOMAINS
    from tsfleet.service.snapshots import STATE_TIMES, STATE_VIEWS

    def times(view: str, skip=()) -> set[str]:
        return {c for c, t, *_ in fleet.con.execute(f"describe {view}").fetchall()
                if (t.startswith("TIMESTAMP") or t == "DATE") and c not in skip}

    views = [v for vs in STATE_VIEWS.values() for v in vs]
    assert set(views) <= relations(fleet.con) and set(STATE_TIMES) == set(views)
    for view in views:
        assert times(view) == set(STATE_TIMES[view]), view
    for d in DOMAINS:
        assert times(d.findings_view, CONTRACT_COLUMNS) == set(), d.findings_view
