"""The devices kind needs only an id; the rest has documented defaults, and the
model says what a missing field disables (issue #18)."""

from __future__ import annotations

from tsfleet import Fleet
from tsfleet.models import DEVICE_FIELD_USES, Device


def test_a_device_with_only_an_id_lands_with_the_documented_defaults():
    fleet = Fleet(memory=True)
    report = fleet.ingest("devices", [{"device_id": "bare-1"}])
    assert report.n_accepted == 1
    row = fleet.query("select * from devices where device_id = 'bare-1'")[0]
    assert (row["device_type"], row["manufacturer"], row["model"], row["site"],
            row["zone"]) == ("unspecified", "unknown", "unknown", "unknown", "unknown")
    assert row["is_environment_monitor"] is None
    assert not fleet.query("select * from quarantine")


def test_a_device_without_an_id_is_quarantined_with_a_reason():
    fleet = Fleet(memory=True)
    report = fleet.ingest("devices", [{"zone": "hall"}, {"device_id": "ok-1"}])
    assert report.n_accepted == 1
    reasons = [r["reason"] for r in fleet.query("select reason from quarantine")]
    assert reasons == ["missing_field"]


def test_every_optional_device_field_says_what_its_absence_disables():
    optional = {n for n, f in Device.model_fields.items() if not f.is_required()}
    required = {n for n, f in Device.model_fields.items() if f.is_required()}
    assert required == {"device_id"}
    documented = {"device_type", "manufacturer", "model", "site", "zone", "installed_at",
                  "battery_chemistry", "reporting_interval_s", "measures"}
    assert documented <= set(DEVICE_FIELD_USES) <= optional
    assert all(DEVICE_FIELD_USES[f] for f in documented)
