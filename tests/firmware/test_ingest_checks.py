"""Unexpected firmware changes are raised when the report is ingested, by the
post-ingest hook, not by a later batch job."""

from __future__ import annotations

import pytest

from tsfleet import Fleet
from tsfleet.errors import InvalidParameter
from tsfleet.fleet import INGEST_HOOKS

RELEASES = [("2.3.0", "deprecated", None), ("2.9.3", "approved", None),
            ("2.10.0", "target", None), ("2.10.1", "target", "A")]


@pytest.fixture
def hooked():
    f = Fleet(memory=True)   # Fleet.ingest runs the firmware hook itself
    f.ingest("devices", [dict(device_id=f"th-{i}", device_type="t", manufacturer="Acme",
                              model="TH-200", hardware_rev="AB"[i % 2], site="s", zone="z")
                         for i in range(1, 7)])
    f.ingest("firmware_releases", [dict(manufacturer="Acme", model="TH-200", version=v,
                                        status=s, hardware_revs=hw, image_hash=f"h{v}")
                                   for v, s, hw in RELEASES])
    f.ingest("firmware_reports", [dict(device_id=f"th-{i}", reported_at="2026-06-01T00:00Z",
                                       version="2.9.3", image_hash="h2.9.3")
                                  for i in range(1, 7)])
    f.ingest("update_events", [dict(campaign_id="c1", device_id="th-1", event_at=t, state=s,
                                    target_version="2.10.1")
                               for t, s in (("2026-06-02T00:00Z", "scheduled"),
                                            ("2026-06-02T01:00Z", "succeeded"))])
    yield f
    f.close()


def events(fleet):
    return {(e["device_id"], e["kind"]) for e in fleet.firmware.security_events()}


def test_hook_raises_each_kind_at_ingest(hooked):
    assert events(hooked) == set()
    day2 = "2026-06-03T00:00Z"
    report = hooked.ingest("firmware_reports", [
        dict(device_id="th-1", reported_at=day2, version="2.10.1", image_hash="h2.10.1"),
        dict(device_id="th-2", reported_at=day2, version="2.10.0", image_hash="h2.10.0"),
        dict(device_id="th-3", reported_at=day2, version="2.3.0", image_hash="h2.3.0"),
        dict(device_id="th-4", reported_at=day2, version="2.9.3", image_hash="evil"),
        dict(device_id="th-5", reported_at=day2, version="2.9.4", image_hash="x"),
        dict(device_id="th-6", reported_at=day2, version="2.9.3 beta", image_hash="x"),
    ])
    assert events(hooked) == {("th-2", "untargeted"), ("th-3", "downgrade"),
                              ("th-4", "hash_mismatch"), ("th-5", "untargeted"),
                              ("th-5", "not_in_catalog"), ("th-6", "unparsable")}
    checked = hooked.query("select * from firmware_checked_batches")
    assert {c["batch_id"] for c in checked} >= set(report.batch_ids)
    q = hooked.query("select reason, detail from quarantine where kind = 'firmware_reports'")
    assert [r["reason"] for r in q] == ["unparsable_version"]
    assert "'2.9.3 beta' is not a semver version for Acme TH-200" in q[0]["detail"]
    b = hooked.query("select * from ingest_batches where batch_id = ?", report.batch_ids)[0]
    assert (b["n_accepted"], b["n_quarantined"]) == (5, 1)
    assert b["n_rows"] == b["n_accepted"] + b["n_duplicates"] + b["n_quarantined"]
    found = {(f["finding"], f["subject_id"]) for f in hooked.firmware.findings()
             if f["finding"] in ("unauthorized", "unknown")}
    assert found == {("unauthorized", "th-2"), ("unauthorized", "th-3"),
                     ("unauthorized", "th-4"), ("unauthorized", "th-5"),
                     ("unknown", "th-5"), ("unknown", "th-6")}
    assert ("incompatible", "th-1") not in found


def test_event_stays_open_until_the_device_is_back(hooked):
    hooked.ingest("firmware_reports", [dict(device_id="th-3", reported_at="2026-06-03T00:00Z",
                                            version="2.3.0", image_hash="h2.3.0")])
    hooked.ingest("firmware_reports", [dict(device_id="th-3", reported_at="2026-06-04T00:00Z",
                                            version="2.3.0", image_hash="h2.3.0")])
    open_ = hooked.firmware.security_events()
    assert [(e["kind"], e["last_reported_at"].day) for e in open_] == [("downgrade", 4)]
    hooked.ingest("update_events", [dict(campaign_id="fix", device_id="th-3",
                                         event_at="2026-06-04T06:00Z", state="succeeded",
                                         target_version="2.9.3")])
    hooked.ingest("firmware_reports", [dict(device_id="th-3", reported_at="2026-06-05T00:00Z",
                                            version="2.9.3", image_hash="h2.9.3")])
    assert hooked.firmware.security_events() == []
    assert len(hooked.firmware.security_events(open_only=False)) == 1


def test_check_without_hook_catches_up(fleet, monkeypatch):
    # Reports that arrived without the ingest hook (e.g. written by an older release).
    monkeypatch.delitem(INGEST_HOOKS, "firmware_reports")
    fleet.ingest("devices", [dict(device_id="d1", device_type="t", manufacturer="Zeta",
                                  model="Z", site="s", zone="z")])
    fleet.ingest("firmware_reports", [dict(device_id="d1", reported_at=f"2026-06-0{d}T00:00Z",
                                           version=v) for d, v in ((1, "1.0.0"), (2, "0.9.0"))])
    result = fleet.firmware.check_reports()
    assert result.n_reports == 2 and [e["kind"] for e in result.events] == ["downgrade"]
    assert "1 new security events" in str(result)
    assert fleet.firmware.check_reports().n_reports == 0     # nothing left unchecked
    # a model without a catalog: no "not in catalog" flood, default scheme not trusted
    fleet.firmware.ingest_reports([dict(device_id="d1", reported_at="2026-06-03T00:00Z",
                                        version="weird")])
    assert not fleet.query("select * from quarantine")
    assert fleet.query("select version_rank, scheme_source from firmware_versions "
                       "where version = 'weird'") == [{"version_rank": None,
                                                       "scheme_source": "default"}]


def test_on_ingest_ignores_other_kinds(hooked):
    r = hooked.ingest("readings", [dict(device_id="th-1", observed_at="2026-06-01T00:00Z",
                                        metric="battery_pct", value=50)])
    assert hooked.firmware.on_ingest(r) is None


def test_configured_scheme_and_settings(hooked):
    hooked.firmware.set_scheme("Acme", "dotted", model="TH-200", note="vendor says so")
    assert {r["scheme"] for r in hooked.query("select scheme from firmware_versions")} == {
        "dotted"}
    assert hooked.firmware.configure(stuck_after_hours=12)["stuck_after_hours"] == 12
    with pytest.raises(InvalidParameter, match="unknown firmware setting"):
        hooked.firmware.configure(nope=1)
    with pytest.raises(InvalidParameter, match=">= 0"):
        hooked.firmware.configure(stuck_after_hours=-1)
    with pytest.raises(InvalidParameter, match="unknown version scheme"):
        hooked.firmware.set_scheme("Acme", "nope")
    for bad in (lambda: hooked.firmware.consistency("x"),
                lambda: hooked.firmware.distribution("x"),
                lambda: hooked.firmware.compliance_report("x")):
        with pytest.raises(InvalidParameter):
            bad()
