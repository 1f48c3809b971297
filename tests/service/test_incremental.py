"""Incremental runs recompute only the items with new data and agree with a full run."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

FORECAST = ("select * exclude (computed_at, params) from battery_forecast "
            "order by device_id")


def one_more_day(fleet, devices: list[str]) -> list[dict]:
    """24 hourly battery readings after each device's last one, 0.02 %/h lower."""
    last = fleet.query("select device_id, max(observed_at) as t, arg_max(value, observed_at) "
                       "as v from readings where metric = 'battery_pct' and device_id in "
                       "(select unnest(?)) group by all", [devices])
    assert len(last) == len(devices)
    return [{"device_id": r["device_id"], "observed_at": (r["t"] + timedelta(hours=h))
             .isoformat() + "Z", "metric": "battery_pct", "value": max(r["v"] - 0.02 * h, 0)}
            for r in last for h in range(1, 25)]


def computed_at(fleet) -> dict[str, object]:
    return {r["device_id"]: r["computed_at"] for r in fleet.query(
        "select device_id, computed_at from battery_forecast")}


def test_power_incremental_run_recomputes_only_what_changed_and_equals_a_full_run(service_sim):
    sim = service_sim
    [first] = sim.analyze(only="power", force=True)
    assert (first.status, first.n_items) == ("ok", None)  # a full run
    before = computed_at(sim)
    original = sim.frame(FORECAST).set_index("device_id")
    types = sim.query("select device_type, list(device_id order by device_id) as ids "
                      "from devices where device_id in (select device_id from battery_forecast) "
                      "group by all order by len(ids), device_type")
    target = next(t for t in types if len(t["ids"]) >= 2)  # the smallest pool of 2+
    changed = target["ids"][:2]
    assert sim.ingest("readings", one_more_day(sim, changed)).n_accepted == 48

    [inc] = sim.analyze(only="power")
    run = sim.query("select * from analysis_runs where analysis = 'power' "
                    "order by run_id desc limit 1")[0]
    assert inc.status == "ok" and run["is_incremental"]
    # only the changed devices: the parameters pooled per device type are cached
    assert inc.n_items == run["n_items"] == len(changed) < len(before)
    after = computed_at(sim)
    redone = {d for d in after if after[d] != before[d]}
    assert redone == set(changed)
    incremental = sim.frame(FORECAST)

    [full] = sim.analyze(only="power", force=True)
    assert full.status == "ok" and full.n_items is None
    pd.testing.assert_frame_equal(incremental, sim.frame(FORECAST))
    # the new day moved the changed devices' forecasts, the other devices kept theirs
    inc = incremental.set_index("device_id")
    assert (inc.loc[changed, "as_of"] > original.loc[changed, "as_of"]).all()
    others = [d for d in inc.index if d not in changed]
    pd.testing.assert_frame_equal(inc.loc[others], original.loc[others])
    assert sim.analyze(only="power")[0].status == "skipped"  # nothing new: nothing to do


NETWORK_RESULTS = ("network_saturation", "network_overload_forecast", "network_plan_moves",
                   "network_plan_summary")


def test_network_incremental_run_recomputes_the_gateways_with_new_stats(service_sim):
    sim = service_sim
    [first] = sim.analyze(only="network", force=True)
    assert first.status == "ok"
    gw = sim.query("select gateway_id, max(observed_at) as t, arg_max(messages_per_s, "
                   "observed_at) as m, arg_max(latency_ms, observed_at) as l "
                   "from gateway_stats group by all order by gateway_id limit 1")[0]
    busier = [{"gateway_id": gw["gateway_id"], "observed_at": (gw["t"] + timedelta(hours=h))
               .isoformat() + "Z", "is_up": True, "messages_per_s": gw["m"] * 1.5,
               "latency_ms": gw["l"] * 2, "n_connected": 10} for h in range(1, 25)]
    assert sim.ingest("gateway_stats", busier).n_accepted == 24
    [inc] = sim.analyze(only="network")
    assert (inc.status, inc.n_items) == ("ok", 1)
    incremental = {t: sim.frame(f"select * exclude (computed_at, params) from {t} "
                                "order by all") for t in NETWORK_RESULTS}
    sim.analyze(only="network", force=True)
    for table, frame in incremental.items():
        pd.testing.assert_frame_equal(frame, sim.frame(
            f"select * exclude (computed_at, params) from {table} order by all"))
