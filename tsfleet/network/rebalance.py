"""The rebalancing optimisation: which devices to move to which gateway.

A min-cost flow, solved by OR-Tools' ``SimpleMinCostFlow`` (C++):
every device sends one unit of flow, either to its current gateway (cost 0) or to a
gateway it can reach with a usable link (cost ``move_cost`` plus a small penalty
for a weaker signal). Each gateway passes its load to the sink through arcs of
increasing marginal cost (a convex, piecewise-linear cost of utilization):

=====================  ===============
utilization band        cost per device
=====================  ===============
below target / 2        0
target / 2 .. 3/4       1
3/4 target .. target    4
target .. capacity      60
above capacity          2 D + 1
=====================  ===============

A down gateway keeps its devices only at D each, where D exceeds the cost of any
chain of moves in the part of the network, so they fail over wherever there is
room (but never push a gateway over capacity). Min-cost flow with
integer capacities has an integral optimum: each device goes to exactly one
gateway and is moved at most once. Because a move costs 20,
a device moves only when it relieves a gateway above target towards one in a
clearly lower band, or when it takes load above capacity (overflow costs
dominate every other term, so no gateway stays over capacity if any assignment
avoids it).

Only the connected parts of the device-gateway reach graph that hold a gateway
above target (or down with devices) are solved; first with the devices of the
hot gateways alone (twice each gateway's excess, those with the strongest
alternatives) and their four strongest alternatives, then, where overflow
remains, with every device and link of the part (chains of moves). Per site, a
plan that would lower Jain's index or the minimum headroom is replaced by the
smallest plan that only repairs capacity; if even that lowers fairness, the
site's plan is kept only when it repairs capacity (``fairness_tradeoff``), else
dropped.

>>> import numpy as np
>>> r = rebalance(device_gateway=np.array([0, 0, 0]), link_device=np.array([0, 1, 2]),
...               link_gateway=np.array([1, 1, 1]), link_rssi_dbm=np.array([-90., -95., -99.]),
...               capacity=np.array([2, 5]))
>>> r.n_moves, r.to_gateway.tolist(), r.summary["n_over_capacity_after"].tolist()
(2, [1, 1], [0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from tsfleet.errors import InvalidParameter
from tsfleet.network.fairness import imbalance

COST_SCALE = 200                         # integer cost units per unit of cost
BAND_COSTS = (0.0, 1.0, 4.0, 60.0)       # below target/2, to 3/4 target, to target, to capacity
FIRST_PASS_ALTERNATIVES = 4             # strongest alternatives per device in the first pass
SIGNAL_PENALTY_PER_DB = 0.005            # per dB below -60 dBm: breaks ties towards strong links


@dataclass
class Rebalance:
    """The moves and the before/after figures per site (``site_*`` arrays by site code)."""

    device: np.ndarray          # index of each moved device
    from_gateway: np.ndarray
    to_gateway: np.ndarray
    to_rssi_dbm: np.ndarray
    reason: np.ndarray          # 'failover' | 'relieve_overload' | 'balance'
    assignment: np.ndarray      # gateway of every device after the plan
    load_before: np.ndarray     # devices per gateway
    load_after: np.ndarray
    sites: np.ndarray           # site labels; summary arrays below are indexed like it
    summary: dict[str, np.ndarray]

    @property
    def n_moves(self) -> int:
        return len(self.device)


def rebalance(device_gateway: np.ndarray, link_device: np.ndarray, link_gateway: np.ndarray,
              link_rssi_dbm: np.ndarray, capacity: np.ndarray, *,
              active: np.ndarray | None = None, site: np.ndarray | None = None,
              rssi_floor_dbm: float = -115.0, target_utilization: float = 0.9,
              move_cost: float = 20.0) -> Rebalance:
    """Plan device moves; see the module docstring for the model.

    ``device_gateway[i]`` is device i's gateway (index into ``capacity``); links
    ``(link_device, link_gateway, link_rssi_dbm)`` are what gateways hear of
    devices; ``active[g]`` is False for a gateway that is down (its devices
    need a new home, it takes none). ``site[g]`` labels gateways for the summary.
    """
    dg = np.asarray(device_gateway, dtype=np.int64)
    ld = np.asarray(link_device, dtype=np.int64)
    lg = np.asarray(link_gateway, dtype=np.int64)
    lr = np.asarray(link_rssi_dbm, dtype=float)
    cap = np.asarray(capacity, dtype=np.int64)
    G, n = len(cap), len(dg)
    act = np.ones(G, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    _check(dg, ld, lg, lr, cap, act, G, n, target_utilization, move_cost)
    site_lab = np.zeros(G, dtype=object) if site is None else np.asarray(site, dtype=object)
    sites, site_code = np.unique(site_lab.astype(str), return_inverse=True)

    # Usable alternatives: strong enough, to an active gateway other than the current one.
    ok = (lr >= rssi_floor_dbm) & act[lg] & (lg != dg[ld])
    ld, lg, lr = ld[ok], lg[ok], lr[ok]
    load = np.bincount(dg, minlength=G)
    band_top = _band_tops(cap, target_utilization)
    hot = (act & (load > band_top[:, 2])) | (~act & (load > 0))
    # Parts of the reach graph that can interact at all.
    graph = sparse.coo_matrix((np.ones(len(ld)), (dg[ld], lg)), shape=(G, G))
    _, comp = connected_components(graph, directed=False)
    hot_comp = np.zeros(comp.max() + 1 if G else 0, dtype=bool)
    hot_comp[comp[hot]] = True

    assign = dg.copy()
    # First the devices of hot gateways, over their strongest few alternatives only.
    order = np.lexsort((-lr, ld))
    rank = np.arange(len(order)) - np.searchsorted(ld[order], ld[order])
    top = np.sort(order[rank < FIRST_PASS_ALTERNATIVES])
    _solve(assign, dg, ld[top], lg[top], lr[top], cap, act, band_top,
           _first_movers(dg, ld, lr, load, band_top, act, hot), comp, hot_comp, move_cost,
           BAND_COSTS)
    # Where overflow remains, allow chains: every device of the part may move.
    over = _overflow(assign, cap, act, G)
    redo = np.zeros_like(hot_comp)
    redo[comp[over > 0]] = True
    if redo.any():
        assign[redo[comp[dg]]] = dg[redo[comp[dg]]]
        _solve(assign, dg, ld, lg, lr, cap, act, band_top, redo[comp[dg]], comp, redo,
               move_cost, BAND_COSTS)

    # Fairness guard, per site.
    before = _site_metrics(load, cap, act, site_code, len(sites))
    bad = _worse(before, _site_metrics(np.bincount(assign, minlength=G), cap, act, site_code,
                                       len(sites)))
    if bad.any():
        parts = np.zeros_like(hot_comp)
        parts[comp[bad[site_code]]] = True
        sel = parts[comp[dg]]
        assign[sel] = dg[sel]
        _solve(assign, dg, ld, lg, lr, cap, act, band_top, sel, comp, parts, 1.0,
               (0.0, 0.0, 0.0, 0.0))
        bad = _worse(before, _site_metrics(np.bincount(assign, minlength=G), cap, act,
                                           site_code, len(sites)))
        if bad.any():
            needs_repair = np.zeros_like(hot_comp)
            needs_repair[comp[(act & (load > cap)) | (~act & (load > 0))]] = True
            sel = (parts & ~needs_repair)[comp[dg]]
            assign[sel] = dg[sel]
    load_after = np.bincount(assign, minlength=G)
    after = _site_metrics(load_after, cap, act, site_code, len(sites))
    tradeoff = _worse(before, after)     # what remains worse is the price of capacity repair

    moved = np.flatnonzero(assign != dg)
    rssi = _link_rssi(moved, assign[moved], ld, lg, lr)
    src = dg[moved]
    reason = np.where(~act[src], "failover",
                      np.where(load[src] > cap[src], "relieve_overload", "balance")).astype(object)
    feasible = np.ones(len(sites), dtype=bool)
    np.logical_and.at(feasible, site_code, _overflow(assign, cap, act, G) == 0)
    summary = dict(
        n_gateways=np.bincount(site_code, weights=act, minlength=len(sites)).astype(np.int64),
        n_devices=np.bincount(site_code[dg], minlength=len(sites)),
        n_moves=np.bincount(site_code[src], minlength=len(sites)),
        is_feasible=feasible, fairness_tradeoff=tradeoff,
        **{f"{k}_before": v for k, v in before.items()},
        **{f"{k}_after": v for k, v in after.items()},
    )
    return Rebalance(moved, src, assign[moved], rssi, reason, assign, load, load_after,
                     sites, summary)


# -- pieces ------------------------------------------------------------------------------

def _check(dg, ld, lg, lr, cap, act, G, n, target, move_cost) -> None:
    if not (len(ld) == len(lg) == len(lr)):
        raise InvalidParameter(f"link arrays must have equal lengths, got {len(ld)}, {len(lg)} "
                               f"and {len(lr)}")
    if len(act) != G:
        raise InvalidParameter(f"active must have one entry per gateway ({G}), got {len(act)}")
    if G == 0:
        raise InvalidParameter("rebalance needs at least one gateway")
    if (cap[act] < 1).any():
        raise InvalidParameter(f"an active gateway needs a capacity >= 1, "
                               f"got {int(cap[act].min())}")
    if n and (dg.min() < 0 or dg.max() >= G):
        raise InvalidParameter(f"device_gateway must index the {G} gateways")
    if len(ld) and (ld.min() < 0 or ld.max() >= n or lg.min() < 0 or lg.max() >= G):
        raise InvalidParameter("link_device/link_gateway must index the devices and gateways")
    if not 0 < target <= 1:
        raise InvalidParameter(f"target_utilization must be within (0, 1], got {target}")
    if not move_cost > 0:
        raise InvalidParameter(f"move_cost must be > 0, got {move_cost}")


def _band_tops(cap: np.ndarray, target: float) -> np.ndarray:
    """(G, 4) cumulative device counts where each cost band ends."""
    tops = np.stack([np.floor(cap * target * 0.5), np.floor(cap * target * 0.75),
                     np.floor(cap * target), cap], axis=1)
    return np.maximum.accumulate(tops, axis=1).astype(np.int64)


def _first_movers(dg, ld, lr, load, band_top, act, hot) -> np.ndarray:
    """Devices of hot gateways offered to the first pass: per gateway, twice its excess
    over target (plus a few), those with the strongest alternative first; all the
    devices of a down gateway."""
    best = np.full(len(dg), -np.inf)
    np.maximum.at(best, ld, lr)
    pool = np.flatnonzero(hot[dg] & np.isfinite(best))
    order = pool[np.lexsort((-best[pool], dg[pool]))]
    g = dg[order]
    rank = np.arange(len(order)) - np.searchsorted(g, g)
    quota = np.where(act, 2 * (load - band_top[:, 2]) + 4, load)
    movable = np.zeros(len(dg), dtype=bool)
    movable[order[rank < quota[g]]] = True
    return movable


def _overflow(assign, cap, act, G) -> np.ndarray:
    load = np.bincount(assign, minlength=G)
    return np.where(act, np.maximum(load - cap, 0), load)


def _solve(assign, dg, ld, lg, lr, cap, act, band_top, movable, comp, parts, move_cost,
           band_costs) -> None:
    """Re-assign the ``movable`` devices of the gateway parts ``parts`` in place."""
    from ortools.graph.python import min_cost_flow  # the C++ solver, loaded when first needed

    in_part = parts[comp]
    gws = np.flatnonzero(in_part)
    cand = np.flatnonzero(movable & in_part[dg])
    if not len(cand):
        return
    local = np.full(len(cap), -1)
    local[gws] = np.arange(len(gws))
    dev_local = np.full(len(dg), -1)
    dev_local[cand] = np.arange(len(cand))
    fixed = np.bincount(local[assign[(dev_local < 0) & in_part[assign]]], minlength=len(gws))
    keep = dev_local[ld] >= 0
    m_dev, m_gw, m_rssi = dev_local[ld[keep]], local[lg[keep]], lr[keep]
    # Nodes: devices 0..nc-1, gateways nc..nc+ng-1, the sink last. Integer costs.
    nc, ng = len(cand), len(gws)
    sink = nc + ng
    arc_dev = np.r_[np.arange(nc), m_dev]
    arc_gw = np.r_[local[dg[cand]], m_gw]
    arc_cost = np.r_[np.zeros(nc), move_cost + SIGNAL_PENALTY_PER_DB * np.maximum(0, -60 - m_rssi)]
    widths = np.diff(np.c_[np.zeros(ng, dtype=np.int64), band_top[gws]], axis=1)
    t_hi = np.c_[widths, np.full(ng, len(dg) + 1)]
    # Leaving a device on a down gateway, and overflow above that, must cost more than
    # any chain of moves can (a chain visits each gateway of a part at most once).
    chain = (move_cost + max(band_costs) + 1) * (np.bincount(comp[gws]).max() + 1)
    t_cost = np.tile(np.r_[band_costs, 2 * chain + 1], (ng, 1))
    down = ~act[gws]
    t_hi[down] = np.r_[0, 0, 0, 0, len(dg) + 1]
    t_cost[down] = chain
    tails = np.r_[arc_dev, nc + np.repeat(np.arange(ng), 5)].astype(np.int32)
    heads = np.r_[nc + arc_gw, np.full(5 * ng, sink)].astype(np.int32)
    caps = np.r_[np.ones(len(arc_dev)), t_hi.ravel()].astype(np.int64)
    costs = np.round(np.r_[arc_cost, t_cost.ravel()] * COST_SCALE).astype(np.int64)
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    supply = np.r_[np.ones(nc), fixed, -(nc + fixed.sum())].astype(np.int64)
    flow.set_nodes_supplies(np.arange(sink + 1, dtype=np.int32), supply)
    status = flow.solve()
    if status != flow.OPTIMAL:  # pragma: no cover - stay arcs and the overflow band always fit
        raise RuntimeError(f"rebalancing flow failed with status {status}")
    # Integral by construction: each device sends its unit along exactly one arc.
    used = np.flatnonzero(flow.flows(np.arange(len(arc_dev), dtype=np.int32)) > 0)
    assign[cand[arc_dev[used]]] = gws[arc_gw[used]]


def _site_metrics(load, cap, act, site_code, n_sites) -> dict[str, np.ndarray]:
    a = np.flatnonzero(act)
    u = load[a] / cap[a]
    m = imbalance(u, site_code[a], n_sites)
    over = np.bincount(site_code[a], weights=load[a] > cap[a], minlength=n_sites)
    return dict(jain=m["jain"], gini=m["gini"], max_utilization=m["max_utilization"],
                min_headroom=m["min_headroom"], n_over_capacity=over.astype(np.int64))


def _worse(before: dict, after: dict, eps: float = 1e-9) -> np.ndarray:
    jb, ja = before["jain"], after["jain"]
    jain_worse = np.where(np.isnan(jb), False, np.nan_to_num(ja, nan=0.0) < jb - eps)
    hb, ha = before["min_headroom"], after["min_headroom"]
    head_worse = np.where(np.isnan(hb), False, np.nan_to_num(ha, nan=-np.inf) < hb - eps)
    return jain_worse | head_worse


def _link_rssi(dev, gw, ld, lg, lr) -> np.ndarray:
    if not len(dev):
        return np.zeros(0)
    key = ld * (lg.max(initial=0) + 1) + lg
    want = dev * (lg.max(initial=0) + 1) + gw
    order = np.argsort(key)
    pos = np.searchsorted(key[order], want)
    pos = np.clip(pos, 0, max(len(key) - 1, 0))
    found = key[order][pos] == want
    return np.where(found, lr[order][pos], np.nan)
