"""Work orders: findings that need a person, merged into one order per site visit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.alerts.alerting_helpers import T0, finding
from tsfleet.errors import InvalidParameter

D = timedelta(days=1)


def test_one_work_order_per_site_visit_due_with_its_most_urgent_item(fleet, findings):
    findings(fleet, "power", [
        finding("power", "battery_critical", "th-1", severity="critical",
                action="replace_battery", due_at=T0 + 9 * D),
        finding("power", "battery_depleting", "th-2", action="replace_battery",
                due_at=T0 + 20 * D),
        finding("power", "battery_depleting", "th-9", site="plant-b",
                action="replace_battery", due_at=T0 + 60 * D),
        finding("power", "battery_low", "th-3", action=None),          # no work for a person
    ])
    findings(fleet, "calibration", [
        finding("calibration", "sensor_drifting", "th-1", action="recalibrate",
                due_at=T0 + 3 * D),
        finding("calibration", "sensor_drifting", "rh-4", action="recalibrate",
                due_at=T0 + 45 * D),                                   # beyond the horizon
    ])
    findings(fleet, "network", [
        finding("network", "gateway_down", "gw-1", subject_kind="gateway", severity="critical",
                action="repair_gateway", due_at=None, observed_at=T0),  # due from severity
        finding("network", "gateway_down", "gw-1", subject_kind="gateway", severity="critical",
                action="repair_gateway", due_at=None, observed_at=T0),  # same item twice
    ])
    orders = fleet.alerts.plan_work_orders(at=T0, horizon_days=30)
    summary = [(o["site"], o["visit_no"], o["due_at"], o["severity"], o["n_items"])
               for o in orders]
    assert summary == [("plant-a", 1, T0 + D, "critical", 4),
                       ("plant-a", 2, T0 + 45 * D, "warning", 1),
                       ("plant-b", 1, T0 + 60 * D, "warning", 1)]
    first = orders[0]
    assert first["actions"] == "recalibrate:1, repair_gateway:1, replace_battery:2"
    assert [i["subject_id"] for i in first["items"]] == ["gw-1", "th-1", "th-1", "th-2"]
    flat = fleet.alerts.work_orders(flat=True)
    assert len(flat) == 6 and flat[0]["visit_due_at"] == T0 + D
    assert [o["site"] for o in fleet.alerts.work_orders("plant-b")] == ["plant-b"]
    again = fleet.alerts.plan_work_orders(at=T0 + D, horizon_days=30)
    assert [(o["workorder_id"], o["revision"]) for o in again] == [
        (o["workorder_id"], o["revision"]) for o in orders]          # stable when unchanged
    with pytest.raises(InvalidParameter):
        fleet.alerts.plan_work_orders(horizon_days=-1)


def test_no_findings_views_means_no_work_orders(fleet):
    assert fleet.alerts.plan_work_orders(at=T0) == []


def test_a_visit_split_off_an_earlier_order_gets_an_id_of_its_own(fleet, findings):
    """An order's first item that moves out to a later visit of its own: the earlier visit
    keeps the order's id (it shares most of its items), and the new visit's id must differ
    from it. The new id was derived from the site and that item alone, so it was the old
    order's id again, and every later plan failed on the duplicate key (seen in the hostile
    soak: the alerts analysis failed on every run of a 10-minute serve)."""
    def plan(due_a, due_b, due_c):
        findings(fleet, "power", [
            finding("power", "battery_depleting", s, action="replace_battery", due_at=due)
            for s, due in (("th-a", due_a), ("th-b", due_b), ("th-c", due_c))])
        return fleet.alerts.plan_work_orders(at=T0, horizon_days=30)

    first = plan(T0 + 3 * D, T0 + 10 * D, T0 + 12 * D)
    assert [o["n_items"] for o in first] == [3]
    second = plan(T0 + 50 * D, T0 + 3 * D, T0 + 5 * D)
    assert [(o["n_items"], [i["subject_id"] for i in o["items"]]) for o in second] == [
        (2, ["th-b", "th-c"]), (1, ["th-a"])]
    assert second[0]["workorder_id"] == first[0]["workorder_id"]    # the ticket lives on
    assert second[1]["workorder_id"] != first[0]["workorder_id"]
    third = plan(T0 + 50 * D, T0 + 3 * D, T0 + 5 * D)                 # and stays stable
    assert [o["workorder_id"] for o in third] == [o["workorder_id"] for o in second]
