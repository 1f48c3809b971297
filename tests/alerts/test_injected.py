"""Every injected problem, in every domain, produces exactly one alert, evaluation after
evaluation; findings no rule asks for produce none."""

from __future__ import annotations

from datetime import timedelta

from tests.alerts.alerting_helpers import T0, finding

#: (domain, finding code, subject kind, rule that must fire)
INJECTED = [
    ("power", "battery_critical", "device", "BatteryCritical"),
    ("power", "depleting_soon", "device", "BatteryDaysToEmpty"),
    ("firmware", "vulnerable", "device", "FirmwareVulnerable"),
    ("firmware", "unauthorized", "device", "FirmwareUnauthorized"),
    ("firmware", "update_stuck", "device", "FirmwareUpdateStuck"),
    ("calibration", "sensor_drifting", "device", "CalibrationDrifting"),
    ("environment", "environment_stress", "device", "EnvironmentalStress"),
    ("network", "gateway_overloaded", "gateway", "GatewayOverloaded"),
    ("network", "gateway_down", "gateway", "GatewayDown"),
    ("network", "single_point_of_failure", "gateway", "GatewaySinglePointOfFailure"),
]


def test_every_injected_problem_raises_exactly_one_alert(fleet, findings):
    rows: dict[str, list[dict]] = {d: [] for d, *_ in INJECTED}
    expected = set()
    for i, (domain, code, kind, rule) in enumerate(INJECTED):
        for k in range(3):                                   # three subjects per problem
            subject = f"{kind[:2]}-{i:02d}{k}"
            rows[domain].append(finding(domain, code, subject, subject_kind=kind,
                                        severity="critical" if k == 0 else "warning"))
            expected.add((rule, subject))
        # the same problem reported twice (e.g. two advisories): still one alert
        rows[domain].append(finding(domain, code, f"{kind[:2]}-{i:02d}0", subject_kind=kind))
    rows["firmware"].append(finding("firmware", "outdated", "th-99", severity="info"))
    rows["power"].append(finding("power", "battery_ok", "th-98", severity="info"))
    for domain, domain_rows in rows.items():
        findings(fleet, domain, domain_rows)
    for step in range(4):
        ev = fleet.alerts.evaluate(at=T0 + step * timedelta(minutes=20))
        assert ev.skipped == {}
        alerts = fleet.alerts.list_alerts(None)
        assert len(alerts) == len(expected)
        assert {(a["rule"], a["subject_id"]) for a in alerts} == expected
    assert {a["state"] for a in fleet.alerts.list_alerts()} == {"firing"}   # past every for:
    assert len(fleet.alerts.notifications()) == len(expected)
    lines = fleet.alerts.summary()
    assert lines[0] == "11 of 11 rules evaluated; 30 alerts firing, 0 pending, 0 acknowledged"
