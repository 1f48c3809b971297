"""``fleet.network``: distribution, load, imbalance, redundancy, failures, churn and
the rebalancing plan of the gateway network."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from tsfleet.errors import InvalidParameter
from tsfleet.network.forecast import trend_to_capacity
from tsfleet.network.plan import Plan, make_frontier, make_plan
from tsfleet.network.saturation import saturation_rows
from tsfleet.network.settings import read_settings, write_settings
from tsfleet.results import now_utc, write_result
from tsfleet.store import quote_ident, transaction

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet

_HOURLY = """
select gateway_id, hour_at, messages_per_s, latency_ms, n_connected
from network_gateway_hourly
where is_up and messages_per_s is not null and latency_ms is not null
  and (? or list_contains(?, gateway_id))
order by gateway_id, hour_at
"""

_DAILY = """
with last as (select max(day) as last_day from network_gateway_daily)
select d.gateway_id, d.day, d.n_attached, s.capacity_devices
from network_gateway_daily d
join network_gateway_status s using (gateway_id)
cross join last
where s.is_active and d.day > last.last_day - ?::integer
  and (? or list_contains(?, d.gateway_id))
order by d.gateway_id, d.day
"""


class Network:
    """The network domain of a fleet.

    >>> from tsfleet.simulate import SimConfig, simulated_fleet
    >>> fleet = simulated_fleet(SimConfig(n_devices=120, days=20, seed=3))
    >>> fleet.network.analyze()
    >>> fleet.network.plan().fleet["n_over_capacity_after"]
    0
    """

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.con = fleet.con
        self._plan_cache: dict = {}     # the plan's arrays and optimum, see plan.read_network

    # -- settings --------------------------------------------------------------------
    def settings(self) -> dict[str, float]:
        """The tunables the network views read (``network_settings``)."""
        return read_settings(self.con)

    def configure(self, **values: float) -> dict[str, float]:
        """Change settings, e.g. ``configure(rssi_floor_dbm=-110)``; returns all of them."""
        self.fleet.require_writable()
        return write_settings(self.con, values)

    # -- analysis ----------------------------------------------------------------------
    def analyze(self, gateways: list[str] | None = None) -> None:
        """Snapshot reach, fit saturation points and overload trends (for ``gateways``
        only, merged, if given) and recompute the rebalancing plan."""
        self.refresh_reach()
        self.saturation(gateways)
        self.forecast_overload(gateways)
        self.plan()

    def refresh_reach(self) -> int:
        """Snapshot ``network_heard_links`` (every heard report of the reach window,
        aggregated per device and gateway) into ``network_reach``, which the
        redundancy views and the plan read; returns the number of links."""
        self.fleet.require_writable()
        s = self.settings()
        con = self.con
        with transaction(con):
            con.execute("delete from network_reach")
            con.execute("insert into network_reach select device_id, gateway_id, n_heard, "
                        "rssi_dbm, snr_db, last_heard_at, ?::timestamp, ? "
                        "from network_heard_links",
                        [now_utc(), json.dumps({"reach_window_days": s["reach_window_days"]})])
        return con.execute("select count(*) from network_reach").fetchall()[0][0]

    def saturation(self, gateways: list[str] | None = None) -> list[dict]:
        """Fit each gateway's latency-vs-load knee; writes ``network_saturation``."""
        self.fleet.require_writable()
        gws = _subset(gateways)
        frame = self.fleet.frame(_HOURLY, [gateways is None, gws])
        as_of = self.con.execute("select max(hour_at) from network_gateway_hourly").fetchall()[0][0]
        capacity = dict(self.con.execute(
            "select gateway_id, capacity_devices from gateways").fetchall())
        cols = saturation_rows(frame, None if as_of is None else np.datetime64(as_of), capacity)
        write_result(self.con, "network_saturation", cols, params={"gateways": gateways},
                     key=["gateway_id"] if gateways is not None else None)
        return self._rows("network_saturation", gateways)

    def forecast_overload(self, gateways: list[str] | None = None) -> list[dict]:
        """Trend of attached devices per active gateway towards its capacity; writes
        ``network_overload_forecast``."""
        self.fleet.require_writable()
        s = self.settings()
        window = int(s["forecast_window_days"])
        frame = self.fleet.frame(_DAILY, [window, gateways is None, _subset(gateways)])
        as_of = self.con.execute("select max(as_of) from network_attachment").fetchall()[0][0]
        cols: dict[str, list] = {k: [] for k in (
            "gateway_id", "status", "n_days", "n_attached", "capacity_devices",
            "slope_devices_per_day", "p_value", "overload_at", "days_to_overload", "as_of")}
        for gw, part in frame.groupby("gateway_id", sort=True):
            cap = int(part["capacity_devices"].iloc[0])
            f = trend_to_capacity(part["n_attached"].to_numpy(dtype=float), cap)
            days = f["days_to_overload"]
            cols["gateway_id"].append(gw)
            cols["capacity_devices"].append(cap)
            cols["as_of"].append(as_of)
            cols["overload_at"].append(None if days is None or as_of is None else
                                       as_of + np.timedelta64(int(days * 86400), "s").item())
            for k in ("status", "n_days", "n_attached", "slope_devices_per_day", "p_value",
                      "days_to_overload"):
                cols[k].append(f[k])
        write_result(self.con, "network_overload_forecast", cols,
                     params={"gateways": gateways, "window_days": window},
                     key=["gateway_id"] if gateways is not None else None)
        return self._rows("network_overload_forecast", gateways)

    def plan(self, max_moves: int | None = None, objective: str = "min_max", *,
             rssi_floor_dbm: float | None = None, target_utilization: float = 0.9,
             pinned: list[str] | None = None, store: bool = True) -> Plan:
        """Recommend device moves (exact min-cost flows, see :mod:`tsfleet.network.minmax`).

        ``objective="min_max"``: the assignment with the lowest worst gateway utilisation
        reachable with at most ``max_moves`` moves (None: no budget), then the fewest
        moves, then the least signal loss. ``"fix_overloads"``: the fewest moves that keep
        every gateway at or below ``target_utilization`` (or, in a part of the network
        that cannot get there, at its own best level), within the budget as far as it
        goes. Devices of down gateways fail over whatever the budget (not counted).

        Every move goes along a link whose mean heard RSSI over the reach window is at or
        above ``rssi_floor_dbm`` (default: the setting), to an active gateway that is not
        predicted to overload; devices in ``pinned`` or in ``network_plan_pins`` never
        move. Writes ``network_plan_moves`` and ``network_plan_summary`` (with the
        optimum and the lower bound on the maximum, and the devices that gain or lose a
        failover gateway with room), unless not ``store`` (a what-if; a read-only store).
        """
        if store:
            self.fleet.require_writable()
        return make_plan(self.con, rssi_floor_dbm=self._floor(rssi_floor_dbm),
                         target_utilization=float(target_utilization), objective=objective,
                         max_moves=max_moves, pinned=self._known(pinned, "pinned"),
                         cache=self._plan_cache, store=store)

    def frontier(self, n_points: int = 10, *, rssi_floor_dbm: float | None = None,
                 pinned: list[str] | None = None, store: bool = True) -> list[dict]:
        """What each extra move buys: for thresholds from today's maximum utilisation down
        to the optimum, the fewest moves and the resulting maximum, Jain's index, gateways
        over capacity and devices without a failover gateway with room, beside the lower
        bound. A row with more moves always has a lower maximum. Writes
        ``network_plan_frontier`` unless not ``store``."""
        if store:
            self.fleet.require_writable()
        return make_frontier(self.con, rssi_floor_dbm=self._floor(rssi_floor_dbm),
                             n_points=n_points, pinned=self._known(pinned, "pinned"),
                             cache=self._plan_cache, store=store)

    def pin(self, device_ids: list[str], reason: str | None = None) -> int:
        """Keep devices where they are in every plan (``network_plan_pins``); returns how
        many are pinned now."""
        self.fleet.require_writable()
        ids = self._known(device_ids, "device_ids")
        with transaction(self.con):
            self.con.execute("delete from network_plan_pins where list_contains(?, device_id)",
                             [ids])
            self.con.execute("insert into network_plan_pins select unnest(?), ?", [ids, reason])
        return self.con.execute("select count(*) from network_plan_pins").fetchall()[0][0]

    def _known(self, ids: list[str] | None, name: str) -> list[str]:
        """``ids`` as a list, every one a known device."""
        out = _ids(ids, name)
        known = {r[0] for r in self.con.execute(
            "select device_id from devices where list_contains(?, device_id)", [out]).fetchall()}
        unknown = sorted(set(out) - known)
        if unknown:
            raise InvalidParameter(f"unknown device ids in {name}: {', '.join(unknown[:5])}"
                                   + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""))
        return out

    def _floor(self, rssi_floor_dbm: float | None) -> float:
        floor = self.settings()["rssi_floor_dbm"] if rssi_floor_dbm is None else rssi_floor_dbm
        if not -160 <= floor <= 10:
            raise InvalidParameter(f"rssi_floor_dbm must be within -160..10 dBm, got {floor}")
        return float(floor)

    # -- reading the views ---------------------------------------------------------------
    def load(self, site: str | None = None) -> list[dict]:
        """Devices per gateway against capacity now (``network_gateway_load``); a ``site``
        the store does not know raises InvalidParameter."""
        self.fleet.check_site(site, "network_gateway_load")
        return self.fleet.query("select * from network_gateway_load where ? is null or site = ? "
                                "order by site, utilization desc", [site, site])

    def balance(self) -> list[dict]:
        """Imbalance indices per site (``network_site_balance``), least fair first."""
        return self.fleet.query("select * from network_site_balance order by jain_index, site")

    def bottlenecks(self) -> list[dict]:
        """Active gateways above the overload level or beyond their saturation point."""
        return self.fleet.query("select * from network_gateway_load where is_bottleneck "
                                "order by utilization desc")

    def redundancy(self) -> list[dict]:
        """Per gateway: devices stranded if it failed, and where the others would go."""
        return self.fleet.query("select * from network_gateway_redundancy "
                                "order by n_stranded_if_failed desc, gateway_id")

    def single_points_of_failure(self) -> list[dict]:
        """Devices that can reach exactly one usable gateway."""
        return self.fleet.query("select * from network_device_redundancy "
                                "where is_single_point_of_failure order by device_id")

    def down(self) -> list[dict]:
        """Devices of down gateways with their failover targets (``network_down_devices``)."""
        return self.fleet.query("select * from network_down_devices order by gateway_id, device_id")

    def flapping(self) -> list[dict]:
        """Devices connecting more often than the flapping setting allows."""
        return self.fleet.query("select * from network_device_churn where is_flapping "
                                "order by connects_per_day desc")

    def profile(self, gateway_id: str) -> list[dict]:
        """The time-of-day load profile of one gateway."""
        return self.fleet.query("select * from network_load_profile where gateway_id = ? "
                                "order by hour_of_day", [gateway_id])

    def findings(self) -> list[dict]:
        """Open network findings (``network_findings``)."""
        return self.fleet.query("select * from network_findings order by severity, finding, "
                                "subject_id")

    def figures(self) -> dict[str, Any]:
        """The key figures of the views and the stored plan, one record: gateways over
        capacity (the worst and its utilization), gateways down (the first and since when),
        the least balanced site (Jain, Gini), devices that reach one gateway, flapping
        devices, gateways predicted to overload, and the stored plan's moves with the
        fleet's figures before and after it (None without a plan).
        ``tsfleet network analyze --format table|csv|json`` prints it."""
        return self._headline()[0]

    def summary(self) -> list[str]:
        """Headline lines for ``tsfleet demo``, read from the views and result tables (the
        sentences of :meth:`figures`)."""
        return self._headline()[1]

    def _headline(self) -> tuple[dict[str, Any], list[str]]:
        q = self.fleet.query
        lines = []
        over = q("select gateway_id, utilization from network_gateway_load "
                 "where is_active and is_over_capacity order by utilization desc")
        down = q("select gateway_id, down_since from network_gateway_status where status = 'down' "
                 "order by down_since")
        lines.append(f"{len(over)} gateway{'' if len(over) == 1 else 's'} over capacity"
                     + (f" (worst: {over[0]['gateway_id']} at {over[0]['utilization']:.0%})"
                        if over else "")
                     + f"; {len(down)} down"
                     + (f" (first: {down[0]['gateway_id']} since {down[0]['down_since']:%Y-%m-%d})"
                        if down else ""))
        bal = q("select site, jain_index, gini from network_site_balance "
                "where jain_index is not null order by jain_index limit 1")
        if bal:
            lines.append(f"least balanced site: {bal[0]['site']} (Jain {bal[0]['jain_index']:.2f},"
                         f" Gini {bal[0]['gini']:.2f})")
        n = q("select count(*) filter (where finding = 'single_point_of_failure') as spof, "
              "count(*) filter (where finding = 'device_flapping') as flap, "
              "count(*) filter (where finding = 'gateway_overload_predicted') as pred "
              "from network_findings")[0]
        lines.append(f"{_n(n['spof'], 'device reaches', 'devices reach')} only one gateway; "
                     f"{_n(n['flap'], 'device flaps', 'devices flap')}; "
                     f"{_n(n['pred'], 'gateway', 'gateways')} predicted to overload")
        plan = q("select * from network_plan_summary where site = '*'")
        if plan:
            p = plan[0]
            lines.append(f"plan: {p['n_moves']} moves; gateways over capacity "
                         f"{p['n_over_capacity_before']} -> {p['n_over_capacity_after']}; "
                         f"max utilization {_fmt(p['max_utilization_before'])} -> "
                         f"{_fmt(p['max_utilization_after'])} (bound "
                         f"{_fmt(p['max_utilization_bound'])}); "
                         f"Jain {_fmt(p['jain_before'])} -> {_fmt(p['jain_after'])}")
        first = {"over": over[0] if over else {}, "down": down[0] if down else {},
                 "bal": bal[0] if bal else {}, "plan": plan[0] if plan else {}}
        figures = {
            "gateways_over_capacity": len(over), "worst_gateway": first["over"].get("gateway_id"),
            "worst_utilization": first["over"].get("utilization"),
            "gateways_down": len(down), "first_down_gateway": first["down"].get("gateway_id"),
            "first_down_since": first["down"].get("down_since"),
            "least_balanced_site": first["bal"].get("site"),
            "least_balanced_jain": first["bal"].get("jain_index"),
            "least_balanced_gini": first["bal"].get("gini"),
            "single_gateway_devices": n["spof"], "flapping_devices": n["flap"],
            "gateways_predicted_to_overload": n["pred"],
            **{f"plan_{k.removeprefix('n_')}": first["plan"].get(k) for k in (
                "n_moves", "n_over_capacity_before", "n_over_capacity_after",
                "max_utilization_before", "max_utilization_after", "max_utilization_bound",
                "jain_before", "jain_after")}}
        return figures, lines

    def _rows(self, table: str, gateways: list[str] | None) -> list[dict[str, Any]]:
        return self.fleet.query(f"select * from {quote_ident(table)} where ? or "
                                "list_contains(?, gateway_id) order by gateway_id",
                                [gateways is None, _subset(gateways)])


def _subset(gateways: list[str] | None) -> list[str]:
    if gateways is None:
        return []
    if isinstance(gateways, str) or not all(isinstance(g, str) for g in gateways):
        raise InvalidParameter(f"gateways must be a list of gateway ids, got {gateways!r}")
    return list(gateways)


def _ids(ids: list[str] | None, name: str) -> list[str]:
    if ids is None:
        return []
    if isinstance(ids, str) or not all(isinstance(d, str) for d in ids):
        raise InvalidParameter(f"{name} must be a list of device ids, got {ids!r}")
    return list(ids)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _n(n: int, one: str, many: str) -> str:
    """``n`` with the word that agrees with it: 1 device reaches, 2 devices reach."""
    return f"{n:,} {one if n == 1 else many}"
