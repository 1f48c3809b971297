"""Requirement-level: on a simulated fleet with injected firmware truth, the
findings name exactly the injected devices and nothing on the clean part."""

from __future__ import annotations

import pytest

from tsfleet.simulate.firmware import SCHEME


@pytest.fixture(scope="module")
def fleet(small_sim_fleet):
    small_sim_fleet.firmware.analyze()
    return small_sim_fleet


def ids(fleet, sql, params=None):
    return {r[next(iter(r))] for r in fleet.query(sql, params)}


def found(fleet, finding):
    return ids(fleet, "select subject_id from firmware_findings where finding = ?", [finding])


def test_every_unauthorized_change_found_and_nothing_else(fleet):
    truth = {r["device_id"]: r["kind"] for r in fleet.query(
        "select device_id, kind from sim.firmware_unauthorized")}
    assert set(truth.values()) == {"untargeted", "downgrade", "hash_mismatch",
                                   "not_in_catalog", "unparsable"}
    events = fleet.firmware.security_events()
    kinds: dict[str, set] = {}
    for e in events:
        kinds.setdefault(e["device_id"], set()).add(e["kind"])
    assert set(kinds) == set(truth)
    for dev, kind in truth.items():
        assert kind in kinds[dev], (dev, kind, kinds[dev])
    changed = {d for d, k in truth.items() if k in ("untargeted", "downgrade", "hash_mismatch",
                                                     "not_in_catalog")}
    assert found(fleet, "unauthorized") == changed


def test_unknown_versions_found(fleet):
    truth = ids(fleet, "select device_id from sim.firmware_unauthorized "
                       "where kind in ('not_in_catalog', 'unparsable')")
    assert found(fleet, "unknown") == truth


def test_unparsable_report_goes_to_quarantine_with_reason(fleet):
    dev = ids(fleet, "select device_id from sim.firmware_unauthorized where kind = 'unparsable'")
    rows = fleet.query("select reason, detail, raw from quarantine where kind = "
                       "'firmware_reports'")
    assert rows and {r["reason"] for r in rows} == {"unparsable_version"}
    assert all(any(d in r["raw"] for d in dev) and "expected" in r["detail"] for r in rows)
    # no stored report of those devices carries the unparsable string
    assert not fleet.query("select * from firmware_reports where version like '%~mod'")
    bad = fleet.query("select count(*) as n from ingest_batches where kind = 'firmware_reports' "
                      "and n_rows <> n_accepted + n_duplicates + n_quarantined")[0]["n"]
    assert bad == 0


def test_vulnerable_devices_exactly(fleet):
    truth = {r["device_id"]: r["advisories"] for r in fleet.query(
        "select device_id, advisories from sim.firmware_devices where is_vulnerable")}
    assert truth
    got = {r["device_id"]: r["advisories"].replace(" ", "") for r in fleet.query(
        "select device_id, advisories from firmware_device_status where is_vulnerable")}
    assert got == truth
    assert found(fleet, "vulnerable") == set(truth)


def test_osv_feed_malformed_records_quarantined(fleet):
    truth = {r["advisory_id"]: r["reason"] for r in fleet.query(
        "select advisory_id, reason from sim.osv_feed where not is_valid")}
    rows = fleet.query("select reason, raw from quarantine where kind = 'osv_advisories'")
    got = {next(a for a in truth if a in r["raw"]): r["reason"] for r in rows}
    assert got == truth
    loaded = ids(fleet, "select advisory_id from firmware_advisories")
    assert loaded == ids(fleet, "select advisory_id from sim.osv_feed where is_valid")


def test_stuck_updates_exactly(fleet):
    truth = ids(fleet, "select device_id from sim.firmware_stuck")
    assert truth
    assert found(fleet, "update_stuck") == truth
    stuck = {r["device_id"]: r["state"] for r in fleet.firmware.stuck()}
    assert stuck == {r["device_id"]: r["state"] for r in fleet.query(
        "select device_id, state from sim.firmware_stuck")}


def test_campaign_halt_only_for_the_failing_campaign(fleet):
    truth = ids(fleet, "select campaign_id from sim.firmware_campaigns where halt_expected")
    assert truth
    assert found(fleet, "campaign_halt") == truth
    camps = {c["campaign_id"]: c for c in fleet.firmware.campaigns()}
    for row in fleet.query("select * from sim.firmware_campaigns"):
        c = camps[row["campaign_id"]]
        assert c["n_devices"] == row["n_devices"]
        assert c["n_failed"] + c["n_rolled_back"] == row["n_failed"]
        assert c["n_stuck"] == row["n_stuck"]


def test_incompatible_and_outdated_exactly(fleet):
    for flag, finding in (("is_incompatible", "incompatible"), ("is_outdated", "outdated")):
        # (a device that reports an unparsable version is judged on its last valid report)
        truth = ids(fleet, f"select device_id from sim.firmware_devices where {flag}")
        assert truth, flag
        assert found(fleet, finding) == truth, finding


def test_schemes_detected_per_model(fleet):
    got = {r["model"]: (r["scheme"], r["scheme_source"]) for r in fleet.query(
        "select distinct model, scheme, scheme_source from firmware_versions")}
    assert got == {m: (s, "detected") for m, s in SCHEME.items()}


def test_inventory_views(fleet):
    n_dev = fleet.query("select count(*) as n from devices")[0]["n"]
    cur = fleet.query("select * from firmware_current")
    assert len(cur) == n_dev and all(r["version"] for r in cur)
    final = {r["device_id"]: r["final_version"] for r in fleet.query(
        "select device_id, final_version from sim.firmware_devices")}
    assert {r["device_id"]: r["version"] for r in cur} == final
    assert all(0 <= r["days_on_version"] <= 45 for r in cur)
    for dim in ("model", "hardware_rev", "site", "zone"):
        rows = fleet.firmware.distribution(dim)
        assert sum(r["n_devices"] for r in rows) == n_dev
    cons = fleet.firmware.consistency("model")
    assert sum(r["n_devices"] for r in cons) == n_dev
    status = {r["device_id"]: r for r in fleet.firmware.inventory()}
    for r in cons:
        listed = set((r["deviating_devices"] or "").split(",")) - {""}
        assert len(listed) == r["n_deviating"]
        assert all(status[d]["version_rank"] != status[d]["target_rank"] for d in listed)


def test_findings_contract_and_report(fleet):
    rows = fleet.firmware.findings()
    assert rows
    cols = fleet.query("select column_name, data_type from information_schema.columns "
                       "where table_name = 'firmware_findings' order by ordinal_position")
    assert [(c["column_name"], c["data_type"]) for c in cols] == [
        ("domain", "VARCHAR"), ("finding", "VARCHAR"), ("subject_kind", "VARCHAR"),
        ("subject_id", "VARCHAR"), ("site", "VARCHAR"), ("zone", "VARCHAR"),
        ("severity", "VARCHAR"), ("value", "DOUBLE"), ("summary", "VARCHAR"),
        ("action", "VARCHAR"), ("due_at", "TIMESTAMP"), ("observed_at", "TIMESTAMP")]
    assert {r["severity"] for r in rows} <= {"info", "warning", "critical"}
    assert {r["action"] for r in rows} <= {"flash_firmware", "inspect_device", None}
    assert all(r["summary"] and r["observed_at"] for r in rows)
    report = fleet.firmware.compliance_report()
    assert report["n_devices"] == len(fleet.query("select * from devices"))
    flagged = {d["device_id"] for d in report["non_compliant_devices"]}
    assert found(fleet, "vulnerable") | found(fleet, "unauthorized") <= flagged
    lines = fleet.firmware.summary()
    assert 2 <= len(lines) <= 6
    assert any("halt c-vb-9" in x for x in lines)
