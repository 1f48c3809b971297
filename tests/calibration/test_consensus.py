"""Issue 17 requirements against injected truth: references anchor their zone, the
consensus holds when up to half a zone drifts, a zone-wide drift is ambiguous, not a
false flag, small zones say what they can (and why not), and levels are explicit.

One small plant of hand-made zones (hourly pressure readings, 30 days): each zone
injects a known drift per sensor, so each test reads the verdicts of its zone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsfleet import Fleet
from tsfleet.calibration.consensus import consensus, largest_window

DAYS = 30
FLAGS = ("drifting", "needs_recalibration", "step")
T0 = np.datetime64("2026-04-01T00:00")

#: zone -> list of (final drift % at the end, drift start day, is_reference)
ZONES = {
    "ref_majority": [(3.0, 8, False), (-3.5, 10, False), (4.0, 6, False), (2.8, 12, False),
                     (0, 0, False), (0, 0, False), (0, 0, True)],
    "half": [(3.0, 8, False), (-3.0, 10, False), (4.5, 6, False), (-4.0, 12, False),
             (0, 0, False), (0, 0, False), (0, 0, False), (0, 0, False)],
    "alike": [(3.0, 10, False), (3.0, 10, False), (3.0, 10, False),
              (0, 0, False), (0, 0, False), (0, 0, False)],
    "common": [(0, 0, False)] * 5,
    "pair": [(3.5, 10, False), (0, 0, False)],
    "pair_checked": [(3.5, 12, False), (0, 0, False)],
    "trio": [(3.5, 10, False), (0, 0, False), (0, 0, False)],
    "ref_drifts": [(0, 0, False)] * 5 + [(-3.0, 10, True)],
    "ref_checked": [(0, 0, False)] * 5 + [(-3.0, 5, True)],
    "ref_rough": [(2.5, 8, False), (3.6, 8, False), (4.7, 8, False), (0, 0, False),
                  (0, 0, False), (0, 0, True)],
    "two_refs": [(3.0, 8, False), (-3.5, 8, False), (0, 0, False), (-3.0, 8, True),
                 (0, 0, True)],
    "lone": [(0, 0, False)],
}


def _plant(seed: int = 3):
    rng = np.random.default_rng(seed)
    hours = np.arange(DAYS * 24)
    devices, readings, truth = [], [], []
    for z, sensors in ZONES.items():
        level = rng.uniform(200, 600)
        proc = level * (1 + 0.04 * np.sin(2 * np.pi * hours / 24))
        if z == "common":        # a real process change every sensor sees
            proc = proc * (1 + 0.06 * (hours >= 15 * 24) + 0.04 * np.clip(
                (hours - 20 * 24) / 72, 0, 1))
        for j, (final, start, ref) in enumerate(sensors):
            did = f"px-{z}-{j}"
            ramp = np.clip((hours - start * 24) / ((DAYS - start) * 24), 0, 1) if final else 0
            noise = (0.0005 if ref else 0.003) * level
            value = (proc * (1 + rng.normal(0, 0.002)) + final / 100 * level * ramp
                     + rng.normal(0, noise, len(hours)))
            devices.append(dict(device_id=did, device_type="pressure", manufacturer="T",
                                model="P1", site="s1", zone=z, measures="pressure_kpa",
                                is_reference=ref, reporting_interval_s=3600.0))
            readings.append(pd.DataFrame(dict(
                device_id=did, observed_at=T0 + hours.astype("timedelta64[h]")
                + np.timedelta64(7, "m"), metric="pressure_kpa", value=value)))
            truth.append(dict(device_id=did, zone=z, final=final, is_reference=ref,
                              level=level))
    return pd.DataFrame(devices), pd.concat(readings, ignore_index=True), pd.DataFrame(truth)


@pytest.fixture(scope="module")
def plant():
    devices, readings, truth = _plant()
    fleet = Fleet(memory=True)
    fleet.con.execute("set enable_progress_bar = false")
    fleet.ingest("devices", devices)
    fleet.ingest("readings", readings)
    lv = truth.set_index("device_id")["level"]
    fleet.ingest("calibrations", [
        # passed check (no correction needed) of the pair's clean sensor on day 5
        dict(device_id="px-pair_checked-1", calibrated_at="2026-04-06T00:00Z",
             reference_value=float(lv["px-pair_checked-1"]),
             measured_value=float(lv["px-pair_checked-1"]) * 1.001),
        # a lab check that found the reference 3% off and corrected nothing
        dict(device_id="px-ref_checked-5", calibrated_at="2026-04-29T00:00Z",
             reference_value=float(lv["px-ref_checked-5"]),
             measured_value=float(lv["px-ref_checked-5"]) * 0.97)])
    fleet.calibration.set_tolerance("pressure", 2.0, check_valid_days=40)
    fleet.calibration.analyze()
    rows = {r["device_id"]: r for r in fleet.query("select * from sensor_drift")}
    yield fleet, rows, truth
    fleet.close()


def _zone(plant, zone):
    _, rows, truth = plant
    t = truth[truth.zone == zone]
    return [(rows[d], f, ref) for d, f, ref in zip(t.device_id, t.final, t.is_reference,
                                                    strict=True)]


def test_a_reference_anchors_its_zone_when_most_peers_drift(plant):
    for row, final, ref in _zone(plant, "ref_majority"):
        if ref:
            assert row["verdict"] == "ok" and row["level"] is None, row
        elif final:
            assert row["verdict"] == "needs_recalibration" and row["level"] == "recalibrate"
            assert row["expected_source"] == "reference" and row["confidence"] == "high"
            assert abs(row["drift_pct"] - final) < 0.35 * abs(final), row
        else:
            assert row["verdict"] == "ok", row


def test_a_majority_drifting_roughly_alike_does_not_doubt_the_reference(plant):
    for row, final, ref in _zone(plant, "ref_rough"):
        want = "needs_recalibration" if final else "ok"
        assert row["verdict"] == want and (row["expected_source"] == "reference") != ref, row


def test_the_consensus_holds_when_half_the_zone_drifts(plant):
    for row, final, _ in _zone(plant, "half"):
        if final:
            assert row["verdict"] == "needs_recalibration", row
            assert abs(row["drift_pct"] - final) < 0.35 * abs(final), row
        else:
            assert row["verdict"] == "ok", row
    excluded = {r["device_id"] for r in plant[0].query(
        "select device_id from calibration_peer_exclusions")}
    assert {f"px-half-{j}" for j in range(4)} <= excluded


def test_half_a_zone_drifting_alike_is_ambiguous_not_a_false_flag(plant):
    got = _zone(plant, "alike")
    assert all(r["verdict"] in ("ok", "zone_ambiguous") for r, _, _ in got)
    assert all(r["level"] is None for r, _, _ in got)
    assert sum(r["verdict"] == "zone_ambiguous" for r, _, _ in got) >= 3
    finding = plant[0].query("select * from calibration_findings where finding = "
                             "'zone_ambiguous' and zone = 'alike'")
    assert finding and finding[0]["action"] is None and "cannot be told" in finding[0]["summary"]


def test_a_process_change_every_sensor_sees_is_not_drift(plant):
    assert [r["verdict"] for r, _, _ in _zone(plant, "common")] == ["ok"] * 5


def test_a_pair_that_disagrees_says_so_per_sensor(plant):
    for row, _, _ in _zone(plant, "pair"):
        assert row["verdict"] == "zone_ambiguous" and row["level"] is None, row
        assert "no reference, valid calibration check or majority" in row["reason"]
        assert row["confidence"] == "low"


def test_a_passed_check_anchors_a_small_zone(plant):
    (drifter, final, _), (checked, _, _) = _zone(plant, "pair_checked")
    assert drifter["verdict"] == "needs_recalibration", drifter
    assert drifter["expected_source"] == "reference"
    assert abs(drifter["drift_pct"] - final) < 0.35 * final
    assert checked["verdict"] == "ok" and checked["level"] is None, checked


def test_three_sensors_find_the_odd_one_with_medium_confidence(plant):
    (drifter, final, _), *clean = _zone(plant, "trio")
    assert drifter["verdict"] == "needs_recalibration" and drifter["confidence"] == "medium"
    assert abs(drifter["drift_pct"] - final) < 0.35 * final
    assert all(r["verdict"] == "ok" for r, _, _ in clean)


def test_a_drifting_reference_is_doubted_not_flagged_by_its_peers(plant):
    got = _zone(plant, "ref_drifts")
    ref = [r for r, _, is_ref in got if is_ref][0]
    assert ref["verdict"] == "zone_ambiguous" and ref["level"] is None, ref
    assert "a calibration check tells" in ref["reason"]
    assert all(r["verdict"] == "ok" for r, _, is_ref in got if not is_ref)
    assert plant[0].query("select verdict from calibration_peer_exclusions "
                          "where device_id = ?", [ref["device_id"]]) == [
        {"verdict": "doubted_reference"}]


def test_a_failed_check_doubts_a_reference(plant):
    got = _zone(plant, "ref_checked")
    ref = [r for r, _, is_ref in got if is_ref][0]
    assert ref["verdict"] == "needs_recalibration" and ref["level"] == "recalibrate", ref
    assert all(r["verdict"] == "ok" for r, _, is_ref in got if not is_ref)


def test_two_references_that_disagree_are_not_flagged_on_each_others_word(plant):
    refs = [r for r, _, is_ref in _zone(plant, "two_refs") if is_ref]
    assert [r["verdict"] for r in refs] == ["zone_ambiguous"] * 2, refs
    assert all("other reference" in r["reason"] and r["level"] is None for r in refs)


def test_a_lone_sensor_says_why_it_cannot_be_judged(plant):
    (row, _, _), = _zone(plant, "lone")
    assert row["verdict"] == "no_expectation"
    assert "the only pressure_kpa sensor in zone lone" in row["reason"]


def test_levels_are_explicit_and_the_schedule_takes_recalibrate(plant):
    fleet, rows, _ = plant
    for r in rows.values():
        want = ("recalibrate" if r["verdict"] == "needs_recalibration" else
                "watch" if r["verdict"] == "drifting" else None)
        if r["verdict"] != "step":
            assert r["level"] == want, r
    plan = fleet.calibration.schedule(horizon_days=30)
    assert {p["device_id"] for p in plan} >= {d for d, r in rows.items()
                                              if r["level"] == "recalibrate"}
    assert all(rows[p["device_id"]]["level"] in ("recalibrate", "watch") for p in plan)
    levels = {r["finding"]: r["level"] for r in fleet.query(
        "select finding, level from calibration_findings")}
    assert levels["needs_recalibration"] == "recalibrate"


def test_the_grid_equals_the_views_with_anchors_and_small_zones(plant):
    from tests.calibration.test_grid import assert_grid_equals_views

    fleet = plant[0]
    assert_grid_equals_views(fleet)
    sources = {r["expected_source"] for r in fleet.query(
        "select distinct expected_source from sensor_residuals")}
    assert sources == {"reference", "peers"}


def test_consensus_rules_on_their_own():
    assert largest_window(np.array([]), 1.0) == (0, 0)
    assert largest_window(np.array([0.0, 0.2, 0.5, 3.0]), 1.0) == (0, 3)
    s = pd.DataFrame(dict(zone="z", metric="m", is_reference=False), index=range(4))
    watch = np.ones(4)
    one = consensus(s.iloc[:1], np.array([5.0]), np.zeros(1, bool), watch[:1],
                    np.zeros(1, bool))
    assert not one.ambiguous.any() and one.n_members.tolist() == [1]
    apart = consensus(s, np.array([-4.0, -1.0, 2.0, 6.0]), np.zeros(4, bool), watch,
                      np.zeros(4, bool), noise=np.full(4, 0.1))
    assert apart.ambiguous.all() and not apart.excluded.any()
