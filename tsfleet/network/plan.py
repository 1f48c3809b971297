"""The rebalancing plan over the store: read attachment, reach and capacity, call
:func:`~tsfleet.network.rebalance.rebalance`, write ``network_plan_moves`` and
``network_plan_summary``."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np

from tsfleet.network.fairness import imbalance
from tsfleet.network.rebalance import Rebalance, rebalance
from tsfleet.results import write_result

_GATEWAYS = """
select gateway_id, site, capacity_devices, is_active
from network_gateway_status
where status in ('up', 'unknown', 'down')
order by gateway_id
"""

_DEVICES = """
with gw as (
    select gateway_id, row_number() over (order by gateway_id) - 1 as g, is_active
    from network_gateway_status
    where status in ('up', 'unknown', 'down')
)
select a.device_id, gw.g
from network_attachment a
join gw using (gateway_id)
where a.is_attached or not gw.is_active
order by a.device_id
"""

_LINKS = """
with gw as (
    select gateway_id, row_number() over (order by gateway_id) - 1 as g
    from network_gateway_status
    where status in ('up', 'unknown', 'down')
),
dev as (
    select a.device_id, row_number() over (order by a.device_id) - 1 as d
    from network_attachment a
    join network_gateway_status s using (gateway_id)
    where s.status in ('up', 'unknown', 'down') and (a.is_attached or not s.is_active)
)
select dev.d, gw.g, l.rssi_dbm
from network_links l
join dev using (device_id)
join gw using (gateway_id)
"""

SUMMARY_KEYS = ("jain", "gini", "max_utilization", "min_headroom", "n_over_capacity")


@dataclass
class Plan:
    """Recommended moves and the before/after figures (per site and ``'*'`` for all)."""

    moves: list[dict] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)

    @property
    def fleet(self) -> dict:
        """The fleet-wide summary row."""
        return next(r for r in self.summary if r["site"] == "*")


def make_plan(con: duckdb.DuckDBPyConnection, *, rssi_floor_dbm: float,
              target_utilization: float, move_cost: float = 20.0) -> Plan:
    """Compute the plan from the views and store it; returns it."""
    params = dict(rssi_floor_dbm=rssi_floor_dbm, target_utilization=target_utilization,
                  move_cost=move_cost)
    gw = con.execute(_GATEWAYS).fetchnumpy()
    dev = con.execute(_DEVICES).fetchnumpy()
    links = con.execute(_LINKS).fetchnumpy()
    if not len(gw["gateway_id"]):
        write_result(con, "network_plan_moves", _empty_moves(), params=params)
        write_result(con, "network_plan_summary", {"site": []}, params=params)
        return Plan()
    r = rebalance(dev["g"].astype(np.int64), links["d"].astype(np.int64),
                  links["g"].astype(np.int64), np.asarray(links["rssi_dbm"], dtype=float),
                  np.asarray(gw["capacity_devices"], dtype=np.int64),
                  active=np.asarray(gw["is_active"], dtype=bool),
                  site=np.asarray(gw["site"], dtype=object),
                  rssi_floor_dbm=rssi_floor_dbm, target_utilization=target_utilization,
                  move_cost=move_cost)
    gw_ids = np.asarray(gw["gateway_id"], dtype=object)
    moves = dict(device_id=np.asarray(dev["device_id"], dtype=object)[r.device],
                 site=np.asarray(gw["site"], dtype=object)[r.to_gateway],
                 from_gateway_id=gw_ids[r.from_gateway], to_gateway_id=gw_ids[r.to_gateway],
                 to_rssi_dbm=r.to_rssi_dbm, reason=r.reason)
    summary = _summary_columns(r, np.asarray(gw["capacity_devices"], dtype=float),
                               np.asarray(gw["is_active"], dtype=bool))
    write_result(con, "network_plan_moves", {k: list(v) for k, v in moves.items()}, params=params)
    write_result(con, "network_plan_summary", summary, params=params)
    names = list(moves)
    move_rows = [dict(zip(names, row, strict=True))
                 for row in zip(*(moves[k].tolist() for k in names), strict=True)]
    sum_rows = [dict(zip(summary, row, strict=True)) for row in zip(*summary.values(), strict=True)]
    return Plan(move_rows, sum_rows)


def _summary_columns(r: Rebalance, cap: np.ndarray, act: np.ndarray) -> dict[str, list]:
    s = r.summary
    cols: dict[str, list] = {"site": [str(x) for x in r.sites] + ["*"]}
    for k in ("n_gateways", "n_devices", "n_moves"):
        cols[k] = [int(v) for v in s[k]] + [int(np.sum(s[k]))]
    fleet = {}
    for when, load in (("before", r.load_before), ("after", r.load_after)):
        m = imbalance(load[act] / cap[act])
        fleet.update({f"jain_{when}": m["jain"][0], f"gini_{when}": m["gini"][0],
                      f"max_utilization_{when}": m["max_utilization"][0],
                      f"min_headroom_{when}": m["min_headroom"][0],
                      f"n_over_capacity_{when}": int(np.sum(load[act] > cap[act]))})
    for k in SUMMARY_KEYS:
        for when in ("before", "after"):
            key = f"{k}_{when}"
            vals = [None if isinstance(v, float) and np.isnan(v) else v
                    for v in s[key].tolist()] + [fleet[key]]
            cols[key] = [None if isinstance(v, float) and np.isnan(v) else v for v in vals]
    cols["is_feasible"] = [bool(v) for v in s["is_feasible"]] + [bool(np.all(s["is_feasible"]))]
    cols["fairness_tradeoff"] = [bool(v) for v in s["fairness_tradeoff"]] + [
        bool(np.any(s["fairness_tradeoff"]))]
    return cols


def _empty_moves() -> dict[str, list]:
    return {k: [] for k in ("device_id", "site", "from_gateway_id", "to_gateway_id",
                            "to_rssi_dbm", "reason")}
