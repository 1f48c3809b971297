"""The min-max assignment of devices to gateways, for a move budget, against a bound.

Every device has *options*: staying on its current gateway (when that gateway is
active) and moving along a usable link (heard above the RSSI floor) to an active
gateway that accepts devices (not predicted to overload). A pinned device has only
the stay option. A device whose gateway is down must move (a *failover*); it is
*stranded* when it has no option at all. The utilisation of an active gateway is
its devices / its capacity. Capacity is a constraint: a gateway ends with at most
``upper = max(capacity, its devices with no move but the failovers)``, so no move
pushes a gateway over capacity, or further over it.

Three exact flow problems, solved with OR-Tools' ``SimpleMinCostFlow`` (C++):

1. **The optimum without a budget** (:func:`optimum`). Each gateway drains to the
   sink through one arc per device level ``k`` whose cost is the rank of ``k / c``
   among all levels (strictly increasing in utilisation). A min-cost flow has no
   path that moves a device from a gateway at ``l_a / c_a`` to one where
   ``(l_b + 1) / c_b < l_a / c_a``; that is exactly the condition under which no
   assignment has a lower maximum (the gateways reachable by such paths from a
   worst gateway form a closed set; their capacity cannot hold their devices at
   any lower level). So one flow gives ``U*``, the best whole-device maximum, per
   connected part of the reach graph, and the most balanced (leximin) assignment:
   every gateway's level ``f``.
2. **The bound.** The closed set ``T`` of (1) -- gateways reachable from the worst
   gateways by option links of their devices -- holds devices ``S`` that can go
   nowhere else, so *any* assignment, even one that splits devices, has a
   maximum of at least ``|S| / capacity(T)`` (gateways of ``T`` at their ``upper``
   counted as full). The bound reported is the larger of that and every part's
   devices / capacity.
3. **The fewest moves for a threshold** (:func:`min_moves`): gateway ``g`` takes at
   most ``min(upper_g, floor(max(U, f_g) c_g))`` devices (:func:`thresholds`: simply
   ``floor(U c_g)`` for ``U >= U*``); a move costs ``M`` plus the signal loss in whole
   dB (0..100) with ``M`` larger than any total signal loss, staying costs 0. The
   min-cost flow is the assignment with the fewest moves, then the least signal
   loss. A failover costs only its signal loss: it happens whatever the budget,
   and does not count against it.

``moves(U)`` never increases with ``U``, so the smallest threshold within a
budget is found by bisection over the achievable utilisations ``k / c_g``, and a
frontier over thresholds is monotone by construction.

>>> import numpy as np
>>> g = prepare(np.array([0, 0, 0, 0]), np.array([0, 1, 2, 3]), np.array([1, 1, 1, 1]),
...             np.array([-90.0, -95, -99, -80]), np.array([4, 4]))
>>> best = optimum(g)
>>> best.u_star, best.bound, int((best.assign != g.cur).sum())
(0.5, 0.5, 2)
>>> r = min_moves(g, thresholds(g, best, 0.5))
>>> r.n_moves, np.bincount(r.assign).tolist()
(2, [2, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import breadth_first_order, connected_components

from tsfleet.errors import InvalidParameter

MAX_SIGNAL_COST_DB = 100     # signal loss counted per move, whole dB, clipped to 0..100
_EPS = 1e-9


@dataclass
class Parts:
    """Devices, option arcs and gateways grouped by connected part (slices ``start[c]``
    to ``start[c + 1]`` of each ``*_order``), with each one's position inside its part."""

    dev_order: np.ndarray
    dev_start: np.ndarray
    arc_order: np.ndarray
    arc_start: np.ndarray
    gw_order: np.ndarray
    gw_start: np.ndarray
    dev_pos: np.ndarray
    gw_pos: np.ndarray

    @classmethod
    def build(cls, comp: np.ndarray, cur: np.ndarray, od: np.ndarray) -> Parts:
        k = comp.max() + 1 if len(comp) else 0
        out = []
        for key in (comp[cur], comp[cur[od]], comp):
            order = np.argsort(key, kind="stable")
            out += [order, np.searchsorted(key[order], np.arange(k + 1))]
        pos = []
        for order, start in ((out[0], out[1]), (out[4], out[5])):
            p = np.empty(len(order), dtype=np.int64)
            sizes = np.diff(start)
            p[order] = np.arange(len(order)) - np.repeat(start[:-1], sizes)
            pos.append(p)
        return cls(*out, *pos)


@dataclass
class Graph:
    """The prepared problem (arrays; gateways and devices are integer indices)."""

    cur: np.ndarray            # current gateway of every device
    cap: np.ndarray            # capacity of every gateway, devices
    active: np.ndarray         # gateway can hold devices (up or unknown)
    od: np.ndarray             # option arcs: device ...
    og: np.ndarray             # ... to gateway (never the current one)
    orssi: np.ndarray          # ... heard RSSI, dBm
    osig: np.ndarray           # ... signal loss cost, whole dB 0..100
    stay: np.ndarray           # device may stay (its gateway is active)
    failover: np.ndarray       # device must move (gateway down) and can
    stranded: np.ndarray       # device has no option at all
    comp: np.ndarray           # connected part of every gateway
    n_usable: np.ndarray       # usable gateways of every device, its own included
    parts: Parts | None = None


    @property
    def n_devices(self) -> int:
        return len(self.cur)

    @property
    def n_gateways(self) -> int:
        return len(self.cap)

    def load(self, assign: np.ndarray) -> np.ndarray:
        """Devices per gateway (stranded devices excluded)."""
        return np.bincount(assign[~self.stranded], minlength=self.n_gateways)

    def max_utilization(self, assign: np.ndarray) -> float:
        a = self.active
        if not a.any():
            return float("nan")
        return float((self.load(assign)[a] / self.cap[a]).max())

    def comp_max(self, assign: np.ndarray) -> np.ndarray:
        """Highest utilisation of the active gateways of every part."""
        u = np.where(self.active, self.load(assign) / np.maximum(self.cap, 1), 0.0)
        out = np.zeros(self.comp.max() + 1 if len(self.comp) else 0)
        np.maximum.at(out, self.comp, u)
        return out


def prepare(device_gateway, link_device, link_gateway, link_rssi_dbm, capacity, *,
            active=None, accepts=None, pinned=None, rssi_floor_dbm: float = -115.0) -> Graph:
    """Validate the arrays and build the options of every device.

    ``accepts[g]`` false: gateway ``g`` keeps its devices but takes no new ones
    (predicted to overload). ``pinned[d]`` true: device ``d`` never moves.
    """
    cur = np.asarray(device_gateway, dtype=np.int64)
    ld = np.asarray(link_device, dtype=np.int64)
    lg = np.asarray(link_gateway, dtype=np.int64)
    lr = np.asarray(link_rssi_dbm, dtype=float)
    cap = np.asarray(capacity, dtype=np.int64)
    G, n = len(cap), len(cur)
    act = np.ones(G, dtype=bool) if active is None else np.asarray(active, dtype=bool)
    acc = np.ones(G, dtype=bool) if accepts is None else np.asarray(accepts, dtype=bool)
    pin = np.zeros(n, dtype=bool) if pinned is None else np.asarray(pinned, dtype=bool)
    _check(cur, ld, lg, lr, cap, act, acc, pin, G, n)
    usable = (lr >= rssi_floor_dbm) & act[lg]
    n_usable = np.bincount(ld[usable], minlength=n)
    # The RSSI a move is compared with: the current link, else the strongest heard.
    best = np.full(n, -np.inf)
    np.maximum.at(best, ld, lr)
    ref = best.copy()
    own = lg == cur[ld]
    ref[ld[own]] = lr[own]
    keep = usable & acc[lg] & ~own & ~pin[ld]
    od, og, orssi = ld[keep], lg[keep], lr[keep]
    loss = np.where(np.isfinite(ref[od]), ref[od] - orssi, 0.0)
    osig = np.clip(np.round(loss), 0, MAX_SIGNAL_COST_DB).astype(np.int64)
    stay = act[cur] if n else np.zeros(0, dtype=bool)
    has_option = np.bincount(od, minlength=n) > 0
    failover = ~stay & has_option
    stranded = ~stay & ~has_option
    # Parts of the reach graph: gateways joined by a device's current gateway and options.
    graph = sparse.coo_matrix((np.ones(len(od)), (cur[od], og)), shape=(G, G))
    _, comp = connected_components(graph, directed=False)
    comp = comp.astype(np.int64)
    return Graph(cur, cap, act, od, og, orssi, osig, stay, failover, stranded, comp, n_usable,
                 Parts.build(comp, cur, od))


@dataclass
class Optimum:
    """The best maximum utilisation without a budget, per part and overall, and the bound."""

    assign: np.ndarray        # one optimal assignment (moves not minimised)
    u_star: float             # best whole-device maximum utilisation (active gateways)
    u_star_comp: np.ndarray   # the same, per part
    bound: float              # lower bound for any (even fractional) assignment
    u_before: float           # maximum utilisation now
    u_before_comp: np.ndarray
    u_zero: float             # maximum with no move but the failovers (budget 0)
    upper: np.ndarray         # most devices a gateway may end with: max(capacity, budget-0)
    level: np.ndarray         # utilisation of every gateway in the optimum (0 if inactive)


def optimum(g: Graph) -> Optimum:
    """Solve (1) and (2) of the module docstring, subject to capacity: a gateway ends at
    most at ``max(capacity, its load with no move but the failovers)``."""
    before = g.comp_max(g.cur)
    n_comp = len(before)
    cap = np.where(g.active, g.cap, 0)
    fo_opts = np.bincount(g.og[g.failover[g.od]], minlength=g.n_gateways)
    stay_load = np.bincount(g.cur[g.stay], minlength=g.n_gateways)
    # Budget 0: the failovers placed for the lowest levels, nothing else moving. Every
    # gateway may hold its own devices plus every failover device that reaches it.
    fo_parts = np.zeros(n_comp, dtype=bool)
    fo_parts[g.comp[g.cur[g.failover]]] = True
    zero = _convex_flow(g, stay_load * g.active, (stay_load + fo_opts) * g.active,
                        parts=fo_parts, failover_only=True)
    upper = np.where(g.active, np.maximum(cap, g.load(zero)), 0)
    comp_n = np.bincount(g.comp[zero[~g.stranded]], minlength=n_comp)
    comp_c = np.bincount(g.comp, weights=cap, minlength=n_comp)
    with np.errstate(divide="ignore", invalid="ignore"):
        density = np.where(comp_c > 0, comp_n / comp_c, 0.0)
    low = np.minimum(np.floor(density[g.comp] * cap + _EPS).astype(np.int64), upper)
    top = np.minimum(np.maximum(np.floor(g.comp_max(zero)[g.comp] * cap + _EPS), low), upper)
    assign = _convex_flow(g, low, top.astype(np.int64), parts=np.ones(n_comp, dtype=bool))
    u_star = g.max_utilization(assign)
    bound = max(float(density.max(initial=0.0)), _closed_set_bound(g, assign, u_star, upper))
    level = np.where(g.active, g.load(assign) / np.maximum(g.cap, 1), 0.0)
    return Optimum(assign, u_star, g.comp_max(assign),
                   min(bound, u_star) if np.isfinite(u_star) else bound,
                   g.max_utilization(g.cur), before, g.max_utilization(zero), upper, level)


def thresholds(g: Graph, best: Optimum, u: float) -> np.ndarray:
    """Devices each gateway may hold for the threshold ``u``:
    ``min(upper, floor(max(u, f) c))``, with ``f`` the gateway's level in the optimum
    (no gateway is asked for a level the most balanced assignment does not reach) and
    ``upper`` the capacity limit. For ``u >= U*`` this is simply ``floor(u c)``; below
    ``U*`` the maximum stays ``U*`` and the gateways that need not be above ``u`` come
    down to it (``u = 1``: only gateways whose optimum level is above capacity stay
    above it)."""
    level = np.maximum(u, best.level)
    lim = np.where(g.active, np.floor(level * g.cap + _EPS), 0).astype(np.int64)
    return np.minimum(lim, best.upper)


@dataclass
class Assignment:
    assign: np.ndarray
    n_moves: int          # moves that count against the budget (failovers excluded)
    n_failover: int


def min_moves(g: Graph, limit: np.ndarray) -> Assignment:
    """(3) of the module docstring: the fewest moves, then the least signal loss, so that
    every gateway holds at most ``limit`` devices (which must be feasible)."""
    load = g.load(g.cur)
    hot_comp = np.zeros(g.comp.max() + 1 if g.n_gateways else 0, dtype=bool)
    hot_comp[g.comp[(load > limit) & g.active]] = True
    hot_comp[g.comp[g.cur[g.failover]]] = True
    assign = g.cur.copy()
    if hot_comp.any():
        _threshold_flow(g, limit, hot_comp, assign)
    moved = (assign != g.cur) & ~g.stranded
    return Assignment(assign, int((moved & g.stay).sum()), int((moved & g.failover).sum()))


def candidates(g: Graph, lo: float, hi: float) -> np.ndarray:
    """Every achievable utilisation ``k / c_g`` within ``[lo, hi]``, sorted."""
    cap = g.cap[g.active].astype(float)
    caps = np.unique(cap)
    out = [np.arange(np.ceil(lo * c - _EPS), np.floor(hi * c + _EPS) + 1) / c for c in caps]
    vals = np.unique(np.concatenate(out)) if out else np.zeros(0)
    return vals[(vals >= lo - _EPS) & (vals <= hi + _EPS)]


def best_within(g: Graph, best: Optimum, max_moves: int, lo: float) -> tuple[float, Assignment]:
    """The smallest threshold ``>= lo`` reachable with at most ``max_moves`` moves
    (bisection over the achievable utilisations; ``moves`` never increases with it)."""
    hi = max(best.u_zero, lo)
    first = min_moves(g, thresholds(g, best, lo))
    if first.n_moves <= max_moves:
        return lo, first
    cand = candidates(g, lo, hi)
    cand = cand[cand > lo]
    i, j = 0, len(cand) - 1
    found = min_moves(g, thresholds(g, best, hi))    # no move but the failovers
    u_found = hi
    while i <= j:
        m = (i + j) // 2
        r = min_moves(g, thresholds(g, best, float(cand[m])))
        if r.n_moves <= max_moves:
            found, u_found, j = r, float(cand[m]), m - 1
        else:
            i = m + 1
    return u_found, found


# -- pieces ------------------------------------------------------------------------------

def _check(cur, ld, lg, lr, cap, act, acc, pin, G, n) -> None:
    if not (len(ld) == len(lg) == len(lr)):
        raise InvalidParameter(f"link arrays must have equal lengths, got {len(ld)}, {len(lg)} "
                               f"and {len(lr)}")
    if G == 0:
        raise InvalidParameter("the plan needs at least one gateway")
    if len(act) != G or len(acc) != G:
        raise InvalidParameter(f"active and accepts need one entry per gateway ({G}), got "
                               f"{len(act)} and {len(acc)}")
    if len(pin) != n:
        raise InvalidParameter(f"pinned needs one entry per device ({n}), got {len(pin)}")
    if (cap[act] < 1).any():
        raise InvalidParameter(f"an active gateway needs a capacity >= 1, "
                               f"got {int(cap[act].min())}")
    if n and (cur.min() < 0 or cur.max() >= G):
        raise InvalidParameter(f"device_gateway must index the {G} gateways")
    if len(ld) and (ld.min() < 0 or ld.max() >= n or lg.min() < 0 or lg.max() >= G):
        raise InvalidParameter("link_device/link_gateway must index the devices and gateways")
    if np.isnan(lr).any():
        raise InvalidParameter("link_rssi_dbm must not contain NaN")


def _solver():
    from ortools.graph.python import min_cost_flow  # the C++ solver, loaded when first needed

    return min_cost_flow.SimpleMinCostFlow()


def _part(g: Graph, c: int):
    """Devices, option arcs and gateways of part ``c`` and the stay arcs in local indices."""
    P = g.parts
    dev = P.dev_order[P.dev_start[c]:P.dev_start[c + 1]]
    arcs = P.arc_order[P.arc_start[c]:P.arc_start[c + 1]]
    gws = P.gw_order[P.gw_start[c]:P.gw_start[c + 1]]
    st = np.flatnonzero(g.stay[dev])
    n = len(dev)
    tails = np.r_[st, P.dev_pos[g.od[arcs]]]
    heads = n + np.r_[P.gw_pos[g.cur[dev[st]]], P.gw_pos[g.og[arcs]]]
    return dev, arcs, gws, st, tails, heads


def _place(g: Graph, assign: np.ndarray, dev, gws, tails, heads, flow) -> None:
    used = np.flatnonzero(flow[:len(tails)] > 0)
    assign[dev[tails[used]]] = gws[heads[used] - len(dev)]


def _live_parts(g: Graph, mask: np.ndarray) -> np.ndarray:
    """Parts in ``mask`` where a device can move at all."""
    has_arcs = np.diff(g.parts.arc_start) > 0
    return np.flatnonzero(mask & has_arcs)


def _convex_flow(g: Graph, low: np.ndarray, top: np.ndarray, *, parts: np.ndarray,
                 failover_only: bool = False) -> np.ndarray:
    """Min-cost flow with strictly increasing marginal cost per utilisation level, in the
    ``parts`` (a mask); with ``failover_only`` every other device stays."""
    assign = g.cur.copy()
    for c in _live_parts(g, parts):
        dev, arcs, gws, st, tails, heads = _part(g, c)
        if failover_only:
            keep = np.r_[np.ones(len(st), dtype=bool), g.failover[g.od[arcs]]]
            tails, heads = tails[keep], heads[keep]
        n, ng = len(dev), len(gws)
        lo, hi = low[gws], top[gws]
        extra = np.maximum(hi - lo, 0)
        lg = np.repeat(np.arange(ng), extra)
        lk = np.arange(len(lg)) - np.repeat(np.cumsum(extra) - extra, extra) + lo[lg] + 1
        _, rank = np.unique(lk / np.maximum(g.cap[gws][lg], 1), return_inverse=True)
        sink = n + ng
        base = np.flatnonzero(lo > 0)
        live = ~g.stranded[dev]
        flow = _solve(np.r_[tails, n + base, n + lg],
                      np.r_[heads, np.full(len(base) + len(lg), sink)],
                      np.r_[np.ones(len(tails)), lo[base], np.ones(len(lg))],
                      np.r_[np.zeros(len(tails) + len(base)), rank + 1],
                      np.r_[live, np.zeros(ng), -live.sum()])
        _place(g, assign, dev, gws, tails, heads, flow)
    return assign


def _threshold_flow(g: Graph, limit: np.ndarray, hot_comp: np.ndarray,
                    assign: np.ndarray) -> None:
    for c in _live_parts(g, hot_comp):
        dev, arcs, gws, st, tails, heads = _part(g, c)
        n, ng = len(dev), len(gws)
        big = (MAX_SIGNAL_COST_DB + 1) * (n + 1)       # one move outweighs any signal loss
        move_cost = np.where(g.failover[g.od[arcs]], 0, big) + g.osig[arcs]
        live = ~g.stranded[dev]
        flow = _solve(np.r_[tails, n + np.arange(ng)], np.r_[heads, np.full(ng, n + ng)],
                      np.r_[np.ones(len(tails)), limit[gws]],
                      np.r_[np.zeros(len(st)), move_cost, np.zeros(ng)],
                      np.r_[live, np.zeros(ng), -live.sum()])
        _place(g, assign, dev, gws, tails, heads, flow)


def _solve(tails, heads, caps, costs, supply) -> np.ndarray:
    flow = _solver()
    flow.add_arcs_with_capacity_and_unit_cost(
        np.asarray(tails, dtype=np.int32), np.asarray(heads, dtype=np.int32),
        np.asarray(caps, dtype=np.int64), np.asarray(costs, dtype=np.int64))
    flow.set_nodes_supplies(np.arange(len(supply), dtype=np.int32),
                            np.asarray(supply, dtype=np.int64))
    status = flow.solve()
    if status != flow.OPTIMAL:  # pragma: no cover - the limits always admit the optimum
        raise InvalidParameter(f"no assignment fits the gateway limits (flow status {status})")
    return flow.flows(np.arange(len(tails), dtype=np.int32))


def _closed_set_bound(g: Graph, assign: np.ndarray, u_star: float, upper: np.ndarray) -> float:
    """The bound of the closed set of gateways reachable from the worst ones (module doc):
    its devices fit in the capacity of the gateways below their limit at the threshold
    and in the limit of the full ones."""
    if not np.isfinite(u_star):
        return 0.0
    G = g.n_gateways
    load = g.load(assign)
    worst = np.flatnonzero(g.active & (load >= u_star * g.cap - _EPS) & (load > 0))
    if not len(worst):
        return 0.0
    # Edges gateway of a device -> each of its options (the stay option included).
    live = ~g.stranded
    src = np.r_[assign[g.od], assign[live & g.stay]]
    dst = np.r_[g.og, g.cur[live & g.stay]]
    ok = np.r_[live[g.od], np.ones((live & g.stay).sum(), dtype=bool)]
    root = G
    src = np.r_[src[ok], np.full(len(worst), root)]
    dst = np.r_[dst[ok], worst]
    graph = sparse.csr_matrix((np.ones(len(src)), (src, dst)), shape=(G + 1, G + 1))
    reach = breadth_first_order(graph, root, directed=True, return_predecessors=False)
    t = np.zeros(G + 1, dtype=bool)
    t[reach] = True
    t = t[:G] & g.active
    full = t & (load >= upper)
    free_cap = g.cap[t & ~full].sum()
    if free_cap == 0:
        return u_star       # every gateway of the set is at its limit in any assignment
    return float((load[t].sum() - upper[full].sum()) / free_cap)
