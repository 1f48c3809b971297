"""The rebalancing plan over the store: read attachment, reach, capacity, gateways
predicted to overload and pinned devices; solve with :mod:`tsfleet.network.minmax`;
write ``network_plan_moves``, ``network_plan_summary`` and ``network_plan_frontier``."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np

from tsfleet.errors import InvalidParameter
from tsfleet.network import minmax
from tsfleet.network.fairness import imbalance
from tsfleet.network.rebalance import _site_metrics
from tsfleet.results import write_result
from tsfleet.rows import Rows

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
order by dev.d, gw.g
"""

_ACCEPTS = """
with h as (select value as horizon from network_settings where name = 'forecast_horizon_days')
select f.gateway_id
from network_overload_forecast f cross join h
where f.status = 'predicted' and f.days_to_overload <= h.horizon
"""

_PINS = "select device_id from network_plan_pins"

OBJECTIVES = ("min_max", "fix_overloads")
SUMMARY_KEYS = ("jain", "gini", "max_utilization", "min_headroom", "n_over_capacity")
#: The columns of a plan's moves, and of its summary (:func:`_summary`), in order.
MOVE_COLUMNS = ("device_id", "site", "from_gateway_id", "to_gateway_id", "to_rssi_dbm",
                "reason", "is_single_point_of_failure")
SUMMARY_COLUMNS = ("site", "n_gateways", "n_devices", "n_moves", "n_failover", "n_stranded",
                   "n_single_gateway_before", "n_single_gateway_after", "n_spof_created",
                   "n_spof_removed",
                   *(f"{k}_{when}" for k in SUMMARY_KEYS for when in ("before", "after")),
                   "is_feasible", "fairness_tradeoff", "objective", "max_moves",
                   "max_utilization_optimum", "max_utilization_bound")


@dataclass
class Plan:
    """Recommended moves and the before/after figures (per site and ``'*'`` for all), as
    :class:`~tsfleet.rows.Rows` (their columns named with no move or no gateway too)."""

    moves: list[dict] = field(default_factory=lambda: Rows([], MOVE_COLUMNS))
    summary: list[dict] = field(default_factory=lambda: Rows([], SUMMARY_COLUMNS))

    @property
    def fleet(self) -> dict:
        """The fleet-wide summary row."""
        return next(r for r in self.summary if r["site"] == "*")


@dataclass
class Arrays:
    """The store's network as arrays, and the solved optimum without a budget."""

    graph: minmax.Graph
    best: minmax.Optimum
    gateway_id: np.ndarray
    site: np.ndarray
    device_id: np.ndarray
    ld: np.ndarray           # usable links (device, gateway): the failover check
    lg: np.ndarray
    rssi: dict


_FINGERPRINT = """
select
    (select count(*) from connections),
    (select max(event_at) from connections),
    (select count(*) from network_reach),
    (select max(computed_at) from network_reach),
    (select count(*) from gateway_stats),
    (select max(observed_at) from gateway_stats),
    (select sum(hash(gateway_id, site, capacity_devices, installed_at, removed_at))
     from gateways),
    (select sum(hash(name, value)) from network_settings),
    (select sum(hash(device_id)) from network_plan_pins),
    (select max(computed_at) from network_overload_forecast)
"""

def read_network(con: duckdb.DuckDBPyConnection, *, rssi_floor_dbm: float,
                 pinned: list[str] | None = None, cache: dict | None = None) -> Arrays | None:
    """Read the arrays from the views and solve the optimum (None without gateways).

    With ``cache`` (a dict the caller keeps, e.g. per store), the last result is kept
    under a fingerprint of every input (row counts and newest times of the appended
    tables, hashes of the small ones, the floor and the pins), so ``plan()`` then
    ``frontier()`` read and solve once."""
    if cache is None:
        return _read_network(con, rssi_floor_dbm=rssi_floor_dbm, pinned=pinned)
    key = (con.execute(_FINGERPRINT).fetchall()[0], float(rssi_floor_dbm),
           tuple(sorted(pinned or ())))
    if cache.get("key") == key:
        return cache["net"]
    net = _read_network(con, rssi_floor_dbm=rssi_floor_dbm, pinned=pinned)
    cache.update(key=key, net=net)
    return net


def _read_network(con: duckdb.DuckDBPyConnection, *, rssi_floor_dbm: float,
                  pinned: list[str] | None = None) -> Arrays | None:
    gw = con.execute(_GATEWAYS).fetchnumpy()
    if not len(gw["gateway_id"]):
        return None
    dev = con.execute(_DEVICES).fetchnumpy()
    links = con.execute(_LINKS).fetchnumpy()
    gw_ids = np.asarray(gw["gateway_id"], dtype=object)
    dev_ids = np.asarray(dev["device_id"], dtype=object)
    full = {r[0] for r in con.execute(_ACCEPTS).fetchall()}
    pins = {r[0] for r in con.execute(_PINS).fetchall()} | set(pinned or ())
    ld = np.asarray(links["d"], dtype=np.int64)
    lg = np.asarray(links["g"], dtype=np.int64)
    lr = np.asarray(links["rssi_dbm"], dtype=float)
    ok = np.isfinite(lr)
    ld, lg, lr = ld[ok], lg[ok], lr[ok]
    act = np.asarray(gw["is_active"], dtype=bool)
    g = minmax.prepare(np.asarray(dev["g"], dtype=np.int64), ld, lg, lr,
                       np.asarray(gw["capacity_devices"], dtype=np.int64), active=act,
                       accepts=~np.isin(gw_ids, list(full)),
                       pinned=np.isin(dev_ids, list(pins)), rssi_floor_dbm=rssi_floor_dbm)
    use = (lr >= rssi_floor_dbm) & act[lg]
    return Arrays(g, minmax.optimum(g), gw_ids, np.asarray(gw["site"], dtype=object), dev_ids,
                   ld[use], lg[use], {"d": ld, "g": lg, "r": lr})


def check_options(objective: str, max_moves: int | None, target_utilization: float) -> None:
    """Reject a bad objective, budget or target before any work."""
    if objective not in OBJECTIVES:
        raise InvalidParameter(f"objective must be one of {', '.join(OBJECTIVES)}, "
                               f"got {objective!r}")
    if max_moves is not None and (isinstance(max_moves, bool) or not isinstance(max_moves, int)
                                  or max_moves < 0):
        raise InvalidParameter(f"max_moves must be a whole number >= 0 or None, got {max_moves!r}")
    if not 0 < target_utilization <= 10:
        raise InvalidParameter(f"target_utilization must be within (0, 10], "
                               f"got {target_utilization}")


def solve(net: Arrays, *, objective: str, max_moves: int | None,
          target_utilization: float) -> tuple[float, minmax.Assignment]:
    """The threshold and assignment of the plan for an objective and a budget."""
    check_options(objective, max_moves, target_utilization)
    # min_max: the optimum U*, and where U* is above capacity, every gateway the most
    # balanced assignment keeps within capacity is brought within it.
    lo = min(net.best.u_star, 1.0) if objective == "min_max" else target_utilization
    g, best = net.graph, net.best
    if not g.active.any():                      # nowhere to put anything: no move
        return lo, minmax.Assignment(g.cur.copy(), 0, 0)
    if max_moves is None:
        return lo, minmax.min_moves(g, minmax.thresholds(g, best, lo))
    return minmax.best_within(g, best, max_moves, lo)


def make_plan(con: duckdb.DuckDBPyConnection, *, rssi_floor_dbm: float,
              target_utilization: float = 0.9, objective: str = "min_max",
              max_moves: int | None = None, pinned: list[str] | None = None,
              cache: dict | None = None, store: bool = True) -> Plan:
    """Compute the plan from the views and store it (unless not ``store``); returns it."""
    check_options(objective, max_moves, target_utilization)
    params = dict(rssi_floor_dbm=rssi_floor_dbm, target_utilization=target_utilization,
                  objective=objective, max_moves=max_moves, pinned=sorted(pinned or []))
    net = read_network(con, rssi_floor_dbm=rssi_floor_dbm, pinned=pinned, cache=cache)
    if net is None:
        if store:
            write_result(con, "network_plan_moves", _empty_moves(), params=params)
            write_result(con, "network_plan_summary", {"site": []}, params=params)
        return Plan()
    u, r = solve(net, objective=objective, max_moves=max_moves,
                 target_utilization=target_utilization)
    g = net.graph
    moved = np.flatnonzero((r.assign != g.cur) & ~g.stranded)
    src, dst = g.cur[moved], r.assign[moved]
    load = g.load(g.cur)
    reason = np.where(~g.active[src], "failover",
                      np.where(load[src] > g.cap[src], "relieve_overload", "balance"))
    moves = dict(zip(MOVE_COLUMNS, (
        net.device_id[moved], net.site[dst], net.gateway_id[src], net.gateway_id[dst],
        _rssi(net, moved, dst), reason.astype(object), g.n_usable[moved] == 1), strict=True))
    summary = _summary(net, r, objective, max_moves)
    if store:
        write_result(con, "network_plan_moves", {k: list(v) for k, v in moves.items()},
                     params=params)
        write_result(con, "network_plan_summary", summary, params=params)
    names = list(moves)
    move_rows = [dict(zip(names, row, strict=True))
                 for row in zip(*(np.asarray(moves[k]).tolist() for k in names), strict=True)]
    sum_rows = [dict(zip(summary, row, strict=True)) for row in zip(*summary.values(), strict=True)]
    return Plan(Rows(move_rows, names), Rows(sum_rows, list(summary)))


def make_frontier(con: duckdb.DuckDBPyConnection, *, rssi_floor_dbm: float, n_points: int = 10,
                  pinned: list[str] | None = None, cache: dict | None = None,
                  store: bool = True) -> list[dict]:
    """Moves against max utilisation for ``n_points`` thresholds from the maximum with no
    move (but the failovers) down to the plan without a budget; stores
    ``network_plan_frontier`` (unless not ``store``) and returns its rows, fewest moves
    first. A row with more moves has a strictly lower maximum, or the same maximum with
    fewer gateways over capacity."""
    if isinstance(n_points, bool) or not isinstance(n_points, int) or not 2 <= n_points <= 1000:
        raise InvalidParameter(f"n_points must be a whole number within 2..1000, got {n_points!r}")
    params = dict(rssi_floor_dbm=rssi_floor_dbm, n_points=n_points, pinned=sorted(pinned or []))
    net = read_network(con, rssi_floor_dbm=rssi_floor_dbm, pinned=pinned, cache=cache)
    cols: dict[str, list] = {k: [] for k in (
        "n_moves", "n_failover", "threshold", "max_utilization", "jain", "n_over_capacity",
        "n_single_gateway", "max_utilization_bound")}
    if net is not None and net.graph.active.any():
        g, best = net.graph, net.best
        lo = min(best.u_star, 1.0)                  # the plan without a budget
        hi = max(best.u_zero, lo) if np.isfinite(best.u_zero) else lo
        cand = minmax.candidates(g, lo, hi)
        if not len(cand):
            cand = np.array([lo])
        grid = np.linspace(hi, lo, n_points)
        picks = np.unique(cand[np.clip(np.searchsorted(cand, grid - 1e-12), 0, len(cand) - 1)])
        last = (np.inf, np.inf)
        for u in picks[::-1]:                       # highest threshold (fewest moves) first
            r = minmax.min_moves(g, minmax.thresholds(g, best, float(u)))
            mx = g.max_utilization(r.assign)
            load = g.load(r.assign)
            n_over = int((load[g.active] > g.cap[g.active]).sum())
            better = mx < last[0] - 1e-12 or (mx <= last[0] + 1e-12 and n_over < last[1])
            if cols["n_moves"] and not better:
                continue                            # more moves, nothing better
            if cols["n_moves"] and r.n_moves == cols["n_moves"][-1]:
                for k in cols:                      # same moves, better result: replace
                    cols[k].pop()
            last = (mx, n_over)
            load = g.load(r.assign)
            a = g.active
            cols["n_moves"].append(r.n_moves)
            cols["n_failover"].append(r.n_failover)
            cols["threshold"].append(float(u))
            cols["max_utilization"].append(mx)
            cols["jain"].append(float(imbalance(load[a] / g.cap[a])["jain"][0]))
            cols["n_over_capacity"].append(n_over)
            cols["n_single_gateway"].append(int(_no_failover(net, r.assign).sum()))
            cols["max_utilization_bound"].append(best.bound)
    if store:
        write_result(con, "network_plan_frontier", cols, params=params)
    return Rows((dict(zip(cols, row, strict=True)) for row in zip(*cols.values(), strict=True)),
                list(cols))


def _no_failover(net: Arrays, assign: np.ndarray) -> np.ndarray:
    """Devices (not stranded) with no usable gateway other than their own that has room."""
    g = net.graph
    room = g.active & (g.load(assign) < g.cap)
    ok = room[net.lg] & (net.lg != assign[net.ld])
    return (np.bincount(net.ld[ok], minlength=g.n_devices) == 0) & ~g.stranded


def _rssi(net: Arrays, dev: np.ndarray, gw: np.ndarray) -> np.ndarray:
    d, g, r = net.rssi["d"], net.rssi["g"], net.rssi["r"]
    G = net.graph.n_gateways
    key = d * G + g
    order = np.argsort(key)
    want = dev * G + gw
    pos = np.clip(np.searchsorted(key[order], want), 0, max(len(key) - 1, 0))
    if not len(key):
        return np.full(len(dev), np.nan)
    return np.where(key[order][pos] == want, r[order][pos], np.nan)


def _summary(net: Arrays, r: minmax.Assignment, objective: str,
             max_moves: int | None) -> dict[str, list]:
    g = net.graph
    sites, site_code = np.unique(net.site.astype(str), return_inverse=True)
    k = len(sites)
    act, cap = g.active, g.cap
    # Before, every device counts where it is (down gateways hold theirs); after, a
    # stranded device stays on its down gateway, which has no utilisation.
    load_b, load_a = np.bincount(g.cur, minlength=g.n_gateways), g.load(r.assign)
    before = _site_metrics(load_b, cap, act, site_code, k)
    after = _site_metrics(load_a, cap, act, site_code, k)
    moved = (r.assign != g.cur) & ~g.stranded
    dsite = site_code[g.cur]
    nf_b = _no_failover(net, g.cur) & g.stay
    nf_a = _no_failover(net, r.assign)
    per = dict(
        n_gateways=np.bincount(site_code, weights=act, minlength=k),
        n_devices=np.bincount(dsite, minlength=k),
        n_moves=np.bincount(dsite, weights=moved, minlength=k),
        n_failover=np.bincount(dsite, weights=moved & g.failover, minlength=k),
        n_stranded=np.bincount(dsite, weights=g.stranded, minlength=k),
        n_single_gateway_before=np.bincount(dsite, weights=nf_b, minlength=k),
        n_single_gateway_after=np.bincount(dsite, weights=nf_a, minlength=k),
        n_spof_created=np.bincount(dsite, weights=nf_a & ~nf_b, minlength=k),
        n_spof_removed=np.bincount(dsite, weights=nf_b & ~nf_a, minlength=k),
    )
    cols: dict[str, list] = {"site": [str(x) for x in sites] + ["*"]}
    for key, v in per.items():
        cols[key] = [int(x) for x in v] + [int(np.sum(v))]
    fleet = {}
    for when, load in (("before", load_b), ("after", load_a)):
        m = imbalance(load[act] / cap[act]) if act.any() else None
        fleet.update({f"jain_{when}": _num(m["jain"][0]) if m else None,
                      f"gini_{when}": _num(m["gini"][0]) if m else None,
                      f"max_utilization_{when}": _num(m["max_utilization"][0]) if m else None,
                      f"min_headroom_{when}": _num(m["min_headroom"][0]) if m else None,
                      f"n_over_capacity_{when}": int(np.sum(load[act] > cap[act]))})
    src = {"before": before, "after": after}
    for key in SUMMARY_KEYS:
        for when in ("before", "after"):
            vals = [_num(v) for v in src[when][key].tolist()]
            cols[f"{key}_{when}"] = vals + [fleet[f"{key}_{when}"]]
    over_after = after["n_over_capacity"]
    cols["is_feasible"] = [bool(v == 0) for v in over_after] + [bool(np.all(over_after == 0))]
    worse = [a is not None and b is not None and a < b - 1e-9
             for a, b in zip(cols["jain_after"], cols["jain_before"], strict=True)]
    cols["fairness_tradeoff"] = worse
    n = len(cols["site"])
    cols["objective"] = [objective] * n
    cols["max_moves"] = [max_moves] * n
    cols["max_utilization_optimum"] = [None] * (n - 1) + [_num(net.best.u_star)]
    cols["max_utilization_bound"] = [None] * (n - 1) + [_num(net.best.bound)]
    return cols


def _num(v) -> float | None:
    v = float(v)
    return None if np.isnan(v) else v


def _empty_moves() -> dict[str, list]:
    return {k: [] for k in ("device_id", "site", "from_gateway_id", "to_gateway_id",
                            "to_rssi_dbm", "reason")}
