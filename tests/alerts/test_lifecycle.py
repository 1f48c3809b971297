"""The alert lifecycle: pending, firing, acknowledged, resolved; for, keep_firing_for,
stable fingerprints, episodes, skipped and failing rules."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.alerts.alerting_helpers import T0, finding
from tsfleet import Fleet
from tsfleet.alerts import UnknownAlert, parse_rules
from tsfleet.errors import InvalidParameter

PACK = parse_rules("""
[[rule]]
name = "Slow"
source = "power_findings"
condition = "finding = 'battery_critical'"
for = "30m"
keep_firing_for = "2h"
annotations = { summary = "{subject_id} at {value:.1f} %" }

[[rule]]
name = "Fast"
source = "network_findings"
condition = "finding = 'gateway_down'"
severity = "critical"
""")
H = timedelta(hours=1)
M = timedelta(minutes=1)


def states(fleet):
    return {(a["rule"], a["subject_id"]): a["state"]
            for a in fleet.alerts.list_alerts(None)}


def test_pending_then_firing_after_for_then_resolved_after_keep_firing_for(fleet, findings):
    findings(fleet, "power", [finding("power", "battery_critical", "th-1", value=4.0)])
    findings(fleet, "network", [])
    fleet.alerts.evaluate(PACK, at=T0)
    assert states(fleet) == {("Slow", "th-1"): "pending"}
    fleet.alerts.evaluate(PACK, at=T0 + 20 * M)
    assert states(fleet) == {("Slow", "th-1"): "pending"}
    fleet.alerts.evaluate(PACK, at=T0 + 30 * M)
    assert states(fleet) == {("Slow", "th-1"): "firing"}
    alert = fleet.alerts.list_alerts()[0]
    assert alert["starts_at"] == T0 + 30 * M and alert["active_since"] == T0
    assert alert["summary"] == "th-1 at 4.0 %"
    findings(fleet, "power", [])
    fleet.alerts.evaluate(PACK, at=T0 + 40 * M)
    assert states(fleet) == {("Slow", "th-1"): "firing"}       # keep_firing_for holds it
    fleet.alerts.evaluate(PACK, at=T0 + 30 * M + 2 * H)
    assert states(fleet) == {("Slow", "th-1"): "resolved"}
    changes = [(h["from_state"], h["to_state"]) for h in fleet.alerts.history()]
    assert changes == [(None, "pending"), ("pending", "firing"), ("firing", "resolved")]


def test_a_pending_alert_that_clears_never_fires(fleet, findings):
    findings(fleet, "network", [])
    findings(fleet, "power", [finding("power", "battery_critical", "th-1")])
    fleet.alerts.evaluate(PACK, at=T0)
    findings(fleet, "power", [])
    fleet.alerts.evaluate(PACK, at=T0 + 10 * M)
    (alert,) = fleet.alerts.list_alerts(None)
    assert alert["state"] == "resolved" and alert["starts_at"] is None
    assert fleet.alerts.notifications() == []


def test_flapping_input_gives_one_alert_that_does_not_flap(fleet, findings):
    findings(fleet, "power", [])
    row = finding("network", "gateway_down", "gw-1", subject_kind="gateway")
    fast = parse_rules("""
[[rule]]
name = "Fast"
source = "network_findings"
condition = "finding = 'gateway_down'"
keep_firing_for = "30m"
""")
    for i in range(8):                       # on, off, on, off ... every 10 minutes
        findings(fleet, "network", [row] if i % 2 == 0 else [])
        fleet.alerts.evaluate(fast, at=T0 + i * 10 * M)
        assert states(fleet) == {("Fast", "gw-1"): "firing"}
    assert [(h["from_state"], h["to_state"]) for h in fleet.alerts.history()] == [
        (None, "firing")]
    assert len(fleet.alerts.notifications()) == 1


def test_fingerprints_are_stable_across_runs_and_stores(findings):
    rows = [finding("power", "battery_critical", f"th-{i}", value=i) for i in range(5)]
    prints = []
    for _ in range(2):
        with Fleet(memory=True) as f:
            findings(f, "power", rows)
            findings(f, "network", [])
            for k in range(3):
                f.alerts.evaluate(PACK, at=T0 + k * H)
            alerts = f.alerts.list_alerts(None)
            assert len(alerts) == 5                   # re-evaluation updates, never duplicates
            prints.append(sorted(a["fingerprint"] for a in alerts))
    assert prints[0] == prints[1]


def test_severity_change_updates_the_alert_instead_of_creating_another(fleet, findings):
    findings(fleet, "network", [])
    findings(fleet, "power", [finding("power", "battery_critical", "th-1", severity="warning")])
    fleet.alerts.evaluate(PACK, at=T0)
    findings(fleet, "power", [finding("power", "battery_critical", "th-1", severity="critical",
                                      value=2.0)])
    fleet.alerts.evaluate(PACK, at=T0 + H)
    (alert,) = fleet.alerts.list_alerts(None)
    assert alert["severity"] == "critical" and alert["value"] == 2.0


def test_duplicate_source_rows_make_one_alert_with_the_worst_severity(fleet, findings):
    findings(fleet, "network", [])
    findings(fleet, "power", [
        finding("power", "battery_critical", "th-1", severity="warning", value=9),
        finding("power", "battery_critical", "th-1", severity="critical", value=3),
    ])
    fleet.alerts.evaluate(PACK, at=T0)
    (alert,) = fleet.alerts.list_alerts(None)
    assert alert["severity"] == "critical" and alert["value"] == 3


def test_acknowledged_stays_until_resolved_and_a_new_episode_fires_again(fleet, findings):
    findings(fleet, "power", [])
    findings(fleet, "network", [finding("network", "gateway_down", "gw-1")])
    fleet.alerts.evaluate(PACK, at=T0)
    (alert,) = fleet.alerts.list_alerts()
    assert alert["severity"] == "critical"           # the rule fixes the severity
    fleet.alerts.ack(alert["fingerprint"], by="ana", at=T0 + M)
    fleet.alerts.evaluate(PACK, at=T0 + H)
    assert states(fleet) == {("Fast", "gw-1"): "acknowledged"}
    with pytest.raises(InvalidParameter, match="only a firing alert"):
        fleet.alerts.ack(alert["fingerprint"])
    findings(fleet, "network", [])
    fleet.alerts.evaluate(PACK, at=T0 + 2 * H)
    assert states(fleet) == {("Fast", "gw-1"): "resolved"}
    findings(fleet, "network", [finding("network", "gateway_down", "gw-1")])
    fleet.alerts.evaluate(PACK, at=T0 + 3 * H)
    (again,) = fleet.alerts.list_alerts()
    assert again["fingerprint"] == alert["fingerprint"]
    assert again["state"] == "firing" and again["episode"] == 2
    assert again["acknowledged_by"] is None
    statuses = [n["notification_id"].split(":", 1)[1] for n in fleet.alerts.notifications()]
    assert statuses == ["1:firing", "1:resolved", "2:firing"]
    with pytest.raises(UnknownAlert):
        fleet.alerts.ack("0000")


def test_missing_source_is_skipped_and_leaves_its_alerts_alone(fleet, findings):
    findings(fleet, "network", [finding("network", "gateway_down", "gw-1")])
    findings(fleet, "power", [])
    fleet.alerts.evaluate(PACK, at=T0)
    fleet.con.execute("drop table network_findings")
    ev = fleet.alerts.evaluate(PACK, at=T0 + 5 * H)
    assert ev.skipped == {"Fast": "source network_findings does not exist (its domain has not "
                                  "published it)"}
    assert states(fleet) == {("Fast", "gw-1"): "firing"}
    runs = fleet.query("select rule, status from alert_rule_runs order by rule")
    assert runs == [{"rule": "Fast", "status": "skipped"}, {"rule": "Slow", "status": "ok"}]


def test_a_failing_condition_is_recorded_and_does_not_stop_other_rules(fleet, findings):
    findings(fleet, "network", [finding("network", "gateway_down", "gw-1")])
    fleet.con.execute("create or replace view power_findings as select 'power' as domain")
    bad = parse_rules("""
[[rule]]
name = "Typed"
source = "network_findings"
condition = "cast(subject_id as integer) > 0"
[[rule]]
name = "Narrow"
source = "power_findings"
[[rule]]
name = "Fine"
source = "network_findings"
""")
    ev = fleet.alerts.evaluate(bad, at=T0)
    assert ev.skipped["Typed"].startswith("condition failed: Conversion Error")
    assert ev.skipped["Narrow"].startswith("source power_findings lacks the findings columns")
    assert states(fleet) == {("Fine", "gw-1"): "firing"}


def test_rules_removed_from_the_pack_resolve_their_alerts(fleet, findings):
    findings(fleet, "network", [finding("network", "gateway_down", "gw-1")])
    findings(fleet, "power", [])
    fleet.alerts.evaluate(PACK, at=T0)
    only_slow = parse_rules("""
[[rule]]
name = "Slow"
source = "power_findings"
""")
    fleet.alerts.evaluate(only_slow, at=T0 + H)
    assert states(fleet) == {("Fast", "gw-1"): "resolved"}


def test_time_only_moves_forward(fleet, findings):
    findings(fleet, "network", [finding("network", "gateway_down", "gw-1")])
    findings(fleet, "power", [])
    fleet.alerts.evaluate(PACK, at=T0 + H)
    with pytest.raises(InvalidParameter, match="before the previous evaluation"):
        fleet.alerts.evaluate(PACK, at=T0)


def test_bad_arguments_are_rejected(fleet):
    with pytest.raises(InvalidParameter):
        fleet.alerts.evaluate(offline_k=0)
    with pytest.raises(InvalidParameter, match="unknown alert state"):
        fleet.alerts.list_alerts(["burning"])
