"""Post-update health: a release that silently raises battery drain is caught
although every install succeeded; a neutral release is not. Also the LwM2M
object 5 mapping and stuck updates with a configurable threshold."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from tsfleet.errors import InvalidParameter
from tsfleet.firmware.lwm2m import update_state

T0 = datetime(2026, 6, 1)
UPDATE = T0 + timedelta(days=10)


def build(fleet, model, drain_after, n=8, seed=0):
    rng = np.random.default_rng(seed)
    devs = [f"{model.lower()}-{i}" for i in range(n)]
    fleet.ingest("devices", [dict(device_id=d, device_type="t", manufacturer="Acme", model=model,
                                  site="s", zone="z") for d in devs])
    events, obs, dev_col, vals = [], [], [], []
    hours = np.arange(24 * 21)
    for i, d in enumerate(devs):
        at = UPDATE + timedelta(hours=i)
        events += [dict(campaign_id=f"c-{model}", device_id=d, event_at=at, state=s,
                        target_version="2.0.0") for s in ("scheduled", "succeeded")]
        rate = rng.uniform(0.1, 0.4) / 24                      # %/h before the update
        t_up = 24 * 10 + i
        level = 90 - rate * np.minimum(hours, t_up) - rate * drain_after * np.maximum(
            hours - t_up, 0)
        obs += [T0 + timedelta(hours=int(h)) for h in hours]
        dev_col += [d] * len(hours)
        vals += list(np.round(level + rng.normal(0, 0.3, len(hours))))
    fleet.ingest("update_events", events)
    fleet.ingest("readings", {"device_id": np.array(dev_col), "observed_at": np.array(
        obs, dtype="datetime64[s]"), "metric": np.array(["battery_pct"] * len(vals)),
                              "value": np.array(vals)})


def test_bad_release_caught_neutral_release_not(fleet):
    build(fleet, "BAD-1", drain_after=1.8)
    build(fleet, "OK-1", drain_after=1.0, seed=1)
    health = {r["model"]: r for r in fleet.firmware.health()}
    assert health["BAD-1"]["verdict"] == "unhealthy"
    assert 1.5 <= health["BAD-1"]["drain_ratio"] <= 2.2
    assert "battery drain" in health["BAD-1"]["reasons"]
    assert health["OK-1"]["verdict"] == "healthy"
    assert 0.8 <= health["OK-1"]["drain_ratio"] <= 1.2
    assert all(c["success_rate"] == 1 for c in fleet.firmware.campaigns())
    fleet.firmware.configure(health_min_devices=20)
    assert {r["verdict"] for r in fleet.firmware.health()} == {"insufficient_data"}


def test_stuck_threshold_is_configurable(fleet):
    fleet.ingest("devices", [dict(device_id="d1", device_type="t", manufacturer="A", model="M",
                                  site="s", zone="z")])
    fleet.ingest("update_events", [
        dict(campaign_id="c", device_id="d1", event_at="2026-06-01T00:00Z", state="updating"),
        dict(campaign_id="c", device_id="d1", event_at="2026-06-01T00:00Z", state="scheduled")])
    fleet.ingest("firmware_reports", [dict(device_id="d1", reported_at="2026-06-02T12:00Z",
                                           version="1.0.0")])
    assert fleet.firmware.stuck() == []                    # 36 h < 48 h
    fleet.firmware.configure(stuck_after_hours=24)
    [row] = fleet.firmware.stuck()
    assert (row["state"], row["hours_in_state"]) == ("updating", 36.0)
    [f] = [f for f in fleet.firmware.findings() if f["finding"] == "update_stuck"]
    assert f["action"] == "flash_firmware" and f["value"] == 36.0


@pytest.mark.parametrize(("state", "result", "expected"), [
    (0, 0, ("scheduled", None)), (1, 0, ("downloading", None)), (2, 0, ("downloaded", None)),
    (3, 0, ("updating", None)), (0, 1, ("succeeded", None)),
    (0, 2, ("failed", "not enough flash")), (0, 4, ("failed", "connection lost")),
    (0, 10, ("failed", "cancelled")), (0, 11, ("scheduled", "deferred"))])
def test_lwm2m_object5_mapping(state, result, expected):
    assert update_state(state, result) == expected


@pytest.mark.parametrize(("state", "result"), [(4, 0), (0, 12)])
def test_lwm2m_invalid(state, result):
    with pytest.raises(InvalidParameter):
        update_state(state, result)


def test_verdicts_survive_retention_of_the_raw_readings(fleet):
    build(fleet, "BAD-1", drain_after=1.8)
    build(fleet, "OK-1", drain_after=1.0, seed=1)
    before = {r["model"]: r for r in fleet.firmware.health()}
    res = fleet.retain(raw_days=7)          # the whole before-window and part of the after
    assert res.n_raw_deleted > 0
    assert fleet.query("select min(observed_at) as t from readings")[0]["t"] > UPDATE
    after = {r["model"]: r for r in fleet.firmware.health()}
    assert {m: r["verdict"] for m, r in after.items()} == {"BAD-1": "unhealthy",
                                                           "OK-1": "healthy"}
    for model in after:
        assert after[model]["drain_ratio"] == pytest.approx(before[model]["drain_ratio"],
                                                            rel=0.05)


def test_the_summary_names_the_unhealthy_releases_on_most_devices_and_counts_the_rest(fleet):
    # the summary showed two releases in whatever order the table returned and never said
    # there was a third
    for model, n in (("BAD-A", 7), ("BAD-B", 12), ("BAD-C", 9)):
        build(fleet, model, drain_after=1.8, n=n, seed=n)
        fleet.ingest("firmware_reports", [dict(device_id=f"{model.lower()}-{i}", version="2.0.0",
                                               reported_at=UPDATE + timedelta(days=1))
                                          for i in range(n)])
    lines = [x for x in fleet.firmware.summary() if "unhealthy release" in x]
    assert lines[0].startswith("unhealthy release Acme BAD-B 2.0.0: battery drain x")
    assert lines[1].startswith("unhealthy release Acme BAD-C 2.0.0: battery drain x")
    assert lines[2] == "1 more unhealthy release: tsfleet firmware health"


def failures(fleet, model, k, days_after=3):
    """A failure event on the first ``k`` devices of ``model``, ``days_after`` the update."""
    fleet.ingest("device_events", [dict(device_id=f"{model.lower()}-{i}", event="failure",
                                        event_at=UPDATE + timedelta(days=days_after, hours=i))
                                   for i in range(k)])


def test_a_release_is_unhealthy_on_failures_only_where_they_are_evidence(fleet):
    """One device of 18 failing after the update (a share rising by 5.6%, past the 5% rule)
    is no evidence against a release; six of 18 are (exact sign test, one-sided p < 0.05)."""
    build(fleet, "ONE-1", drain_after=1.0, n=18, seed=2)
    build(fleet, "SIX-1", drain_after=1.0, n=18, seed=3)
    failures(fleet, "ONE-1", 1)
    failures(fleet, "SIX-1", 6)
    health = {r["model"]: r for r in fleet.firmware.health()}
    one, six = health["ONE-1"], health["SIX-1"]
    assert (one["failure_share_after"], one["failure_p"]) == (pytest.approx(1 / 18), 0.5)
    assert one["verdict"] == "healthy" and one["reasons"] == ""
    assert six["failure_p"] == pytest.approx(0.5 ** 6)
    assert six["verdict"] == "unhealthy" and six["reasons"] == "failures 0% -> 33% of devices"
    # failures before the update that stop after it are no evidence against it either
    failures(fleet, "SIX-1", 6, days_after=-3)
    assert {r["model"]: r["verdict"] for r in fleet.firmware.health()}["SIX-1"] == "healthy"


#: Releases by model: devices that began failing, stopped failing, went silent, came
#: back, drained faster, drained slower after the update (as a distributed run stores them).
CHANGES = {"A": (0, 0, 3, 1, 6, 0), "B": (6, 0, 0, 2, 9, 3), "C": (1, 0, 5, 5, 2, 7),
           "D": (12, 4, 0, 0, 0, 0), "E": (7, 7, 1, 9, 40, 13)}


def _stored_health(fleet, changes: dict) -> None:
    """Per-device health rows with those changes, read by the views as a distributed
    firmware run leaves them (firmware_device_health, firmware_health_source)."""
    import pyarrow as pa

    rows = []
    for model, (f_new, f_gone, s_new, s_gone, d_up, d_down) in changes.items():
        for i in range(max(f_new + f_gone, s_new + s_gone, d_up + d_down) + 2):
            rows.append(dict(
                campaign_id=f"c-{model}", device_id=f"{model}-{i}", manufacturer="Acme",
                model=model, target_version="2.0.0", health_window_days=14.0,
                drain_before_pct_per_day=1.0,
                drain_after_pct_per_day=2.0 if i < d_up else 0.5 if i < d_up + d_down else 1.0,
                is_failed_before=f_new <= i < f_new + f_gone, is_failed_after=i < f_new,
                is_silent_before=s_new <= i < s_new + s_gone, is_silent_after=i < s_new))
    fleet.con.register("_health_rows", pa.Table.from_pylist(rows))
    fleet.con.execute("insert into firmware_device_health by name select *, now() as "
                      "computed_at, '{}' as params from _health_rows")
    fleet.con.execute("insert into firmware_health_source values ('dask', 'lake', now(), '{}')")


def test_each_release_p_is_the_exact_one_sided_sign_test_written_once(fleet):
    """failure_p, silent_p and drain_p of firmware_update_health are P(X >= new) for
    X ~ Binomial(new + gone, 1/2), scipy's exact binomial test (1 with no change), and
    the view writes that test once for the three (it repeated the expression thrice)."""
    from scipy.stats import binomtest

    from tsfleet.store import sql_files

    _stored_health(fleet, CHANGES)
    got = {r["model"]: r for r in fleet.firmware.health()}
    for model, counts in CHANGES.items():
        for name, (new, gone) in zip(("failure_p", "silent_p", "drain_p"),
                                     (counts[0:2], counts[2:4], counts[4:6]), strict=True):
            want = binomtest(new, new + gone, 0.5, alternative="greater").pvalue \
                if new + gone else 1.0
            assert got[model][name] == pytest.approx(want, rel=1e-12), (model, name)
    [view] = [f for f in sql_files("views") if f.name == "firmware_update_health"]
    assert view.text.count("generate_series(") == view.text.count("lgamma(k + 1)") == 1
