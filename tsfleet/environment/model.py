"""Poisson GLMs of failure and reboot counts on environmental exposure.

The data are exposure cells (device type, age band, binned environment) with
device-hours and event counts. Every factor gets the same form, a *block* of a
linear term and a threshold (hinge) term, with ``log(device_hours)`` as offset:

    log rate = a_type + b_age*age + sum_blocks [ l*(x_f - c_f) + h*max(0, x_f - tau) ]

``c_f`` is the factor's exposure-weighted median; ``l`` is the log rate ratio per
unit over the whole range and ``h`` the extra log rate ratio per unit above the
threshold ``tau``. Each threshold is found from the data by profile likelihood
over a grid between the 5% and 99% exposure quantiles (coordinate-wise: a coarse
sweep, then a fine one around the best) and reported with a profile-likelihood
95% interval: the final model refitted at every grid threshold (_converged_profile), the
grid thresholds whose likelihood ratio against the best stays below Hansen's (2000) 95%
cut-off for a threshold, 7.35, or the chi-square(1) 95% point times the zone-clustered
inflation of the threshold's variance (threshold_inflation) where that is larger. The
grid keeps only thresholds with an event on each side (with_events). A slope's interval
is the union of its Wald intervals at the thresholds of that interval (_wald_over).

Interactions with the device type, where the data support them: first every
factor has one block shared by all types. Then, for every factor and every type
with enough events, a block of the type's own (its own slopes and threshold,
replacing the shared block for that type) is tested against the shared curve:
the likelihood ratio of the model refitted with the type's own slopes at the
shared threshold (2 df, no search). The splits enter by forward selection with
Holm's thresholds: the best of the m - k splits not yet admitted enters when its
p < ALPHA / (m - k), and the model is profiled and fitted again with it before the
rest are tested anew (a split that only stood in for another type's misfit loses
its evidence once that type has its own block).
Each block of the final model is tested by the likelihood ratio of the model
with and without it, its p-value Davies' bound over the searched threshold (davies_p).
A block keeps its hinge only where the hinge's own test (the model with it against the
block's line alone, same search, Davies' bound with 1 df), Holm-adjusted over the hinge
tests of all blocks of the fit, gives p < ALPHA; otherwise the factor is fitted as a line
(see _finish).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

from tsfleet.environment.multitest import holm

FACTORS = ("temperature_c", "humidity_pct", "vibration_g", "daily_swing_c")
UNITS = {"temperature_c": "degC", "humidity_pct": "%RH", "vibration_g": "g RMS",
         "daily_swing_c": "degC of daily swing", "age_years": "year of age"}
LABELS = {"temperature_c": "temperature", "humidity_pct": "humidity",
          "vibration_g": "vibration", "daily_swing_c": "daily temperature swing"}
#: The block's test (linear + hinge slopes, threshold searched) is Davies' bound over the
#: threshold grid (every SWEEP_STRIDE-th point, plus the fine profile): see davies_p.
SWEEP_STRIDE = 2
#: Degrees of freedom of the test of a type's own block against the shared curve: its own
#: linear and hinge slopes at the shared threshold (no search, so a plain chi-square).
OWN_TEST_DF = 2
#: Threshold candidates: about this many grid points between the exposure quantiles.
GRID_POINTS = 40
GRID_QUANTILES = (0.05, 0.99)
#: The fine sweep (and the threshold interval) covers this many grid steps either side.
FINE_STEPS = 5
CHI2_1_95 = float(stats.chi2.ppf(0.95, 1))
#: The cut-off of the threshold's likelihood-ratio interval (see threshold_interval):
#: Hansen's (2000, Econometrica 68:575) 95% point for a threshold, -2 log(1 - sqrt(0.95)),
#: not the chi-square(1) 3.84, which a threshold's likelihood ratio does not follow.
THRESHOLD_CUT = float(-2 * np.log(1 - np.sqrt(0.95)))
Z95 = float(stats.norm.ppf(0.975))
ALPHA = 0.05
#: Step halvings before an iteration counts as converged (no ascent left to rounding).
MAX_HALVINGS = 12
#: Rows per piece of X'WX (see :class:`_Blocks`): a piece's weighted copy, a dozen columns
#: of this many values, stays in the processor's cache.
INFO_ROWS = 4096


@dataclass
class Block:
    """The linear and threshold terms of one factor, shared (device_type None) or one type's."""

    factor: str
    device_type: str | None
    threshold: float = np.nan
    threshold_ci: tuple[float, float] = (np.nan, np.nan)
    p_value: float = np.nan
    term_ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: Davies' bound of the hinge against the block's line alone (threshold searched)
    hinge_p: float = np.nan
    #: hinge_p Holm-adjusted over the hinge tests of all blocks of the fit
    hinge_p_adjusted: float = np.nan
    #: terms left out of the model (the hinge when the data do not support it): their
    #: estimate in the model with them, reported but not used
    dropped: dict[str, float] = field(default_factory=dict)
    #: the final model's profile log-likelihood over the threshold grid {threshold: llf}
    threshold_profile: dict[float, float] = field(default_factory=dict)
    #: the zone-clustered inflation of the threshold's variance (threshold_inflation): the
    #: interval's cut-off is the larger of THRESHOLD_CUT and CHI2_1_95 times this
    threshold_inflation: float = 1.0

    @property
    def is_linear(self) -> bool:
        """The factor is fitted as a line (its hinge was not supported)."""
        return "above" in self.dropped


@dataclass
class Fit:
    """The fitted model of one outcome, or the reason there is none."""

    outcome: str
    types: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    params: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bse: np.ndarray = field(default_factory=lambda: np.zeros(0))
    centers: dict[str, float] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    selection: list[dict] = field(default_factory=list)
    n_events: int = 0
    #: unit and label (a word for sentences) of the declared factors (UNITS, LABELS: built-in)
    units: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def factors(self) -> list[str]:
        """The factors in the model (those with any variation in the data)."""
        return list(self.centers)

    def unit(self, factor: str) -> str:
        return self.units.get(factor) or UNITS.get(factor, "unit")

    def label(self, factor: str) -> str:
        return self.labels.get(factor) or LABELS.get(factor, factor)

    def coef(self, name: str) -> float:
        return float(self.params[self.names.index(name)]) if name in self.names else 0.0

    def se(self, name: str) -> float:
        return float(self.bse[self.names.index(name)]) if name in self.names else np.nan

    def block(self, factor: str, device_type: str | None) -> Block | None:
        """The block that describes ``factor`` for ``device_type`` (its own, else shared)."""
        own = [b for b in self.blocks if b.factor == factor and b.device_type == device_type]
        if own:
            return own[0]
        shared = [b for b in self.blocks if b.factor == factor and b.device_type is None]
        return shared[0] if shared else None

    def predict_rate(self, device_type, age_years, env: Mapping[str, object]) -> np.ndarray:
        """Events per device-hour (arrays broadcast; one type or an array of types)."""
        return np.exp(self.log_rate(device_type, age_years, env))

    def log_rate(self, device_type, age_years, env: Mapping[str, object]) -> np.ndarray:
        """The log of :meth:`predict_rate` (a ratio of two rates is the exponential of a
        difference of these: it stays finite where the rates under- or overflow)."""
        dt = np.asarray(device_type, dtype=object)
        shape = np.broadcast(dt, np.asarray(age_years, dtype=float),
                             *(np.asarray(v, dtype=float) for v in env.values())).shape
        # per distinct type, then indexed (one type, the usual call, costs no string compare)
        uniq, inv = np.unique(dt.ravel(), return_inverse=True)
        inv = inv.reshape(dt.shape)
        mean_icpt = float(np.mean([self.coef(f"type:{t}") for t in self.types]))
        icpt = np.array([self.coef(f"type:{t}") if t in self.types else mean_icpt
                         for t in uniq])
        lp = np.broadcast_to(icpt[inv], shape) + self.coef("age_years") * np.asarray(
            age_years, dtype=float)
        own = {(b.factor, b.device_type) for b in self.blocks if b.device_type is not None}
        for b in self.blocks:
            if b.factor not in env:
                continue
            others = [t for f, t in own if f == b.factor]
            in_block = np.array([t not in others if b.device_type is None
                                 else t == b.device_type for t in uniq])
            if not in_block.any():
                continue
            x = np.asarray(env[b.factor], dtype=float)
            name = _block_name(b.factor, b.device_type)
            term = (self.coef(f"{name}:linear") * (x - self.centers[b.factor])
                    + self.coef(f"{name}:above") * np.maximum(x - b.threshold, 0.0))
            lp = lp + (term if in_block.all() else in_block[inv] * term)
        return lp


def _block_name(factor: str, device_type: str | None) -> str:
    return factor if device_type is None else f"{factor}[{device_type}]"


class _Blocks:
    """The model matrix cut into row segments (one per device type: the cells are sorted
    by type), each with only the columns that are not all zero in it.

    A type's own block is zero outside the type, and a shared block is zero for the
    types with their own: per type only a dozen of the columns are active, so X'WX is
    the sum of small per-segment products (exactly; about p/dozen times less work).

    Each segment is kept transposed (a contiguous row per column, in double and in single
    precision), and X'WX is summed over pieces of :data:`INFO_ROWS` rows, so the weighted
    copy of a piece stays in the processor's cache: the products are limited by memory,
    and this reads each column once per product (2-4 times faster than a row-major matrix
    and one weighted copy of the whole segment; the sums differ only by rounding).
    """

    def __init__(self, x: np.ndarray, segments: list[slice] | None,
                 active: list[np.ndarray] | None = None):
        self.p = x.shape[1]
        self.parts = []
        segments = segments or [slice(0, x.shape[0])]
        if active is None:
            active = [np.any(x[seg] != 0, axis=0) for seg in segments]
        for seg, act in zip(segments, active, strict=True):
            cols = np.flatnonzero(act)
            sub_t = np.ascontiguousarray(x[seg][:, cols].T)
            self.parts.append((seg, cols, sub_t, sub_t.astype(np.float32)))

    def copy(self) -> _Blocks:
        """A copy whose hinge columns move apart from this one's."""
        other = object.__new__(_Blocks)
        other.p = self.p
        other.parts = [(seg, cols, sub_t.copy(), sub32.copy())
                       for seg, cols, sub_t, sub32 in self.parts]
        return other

    def moved(self, k: int, old: list[int], new: list[int]) -> _Blocks:
        """A view of this matrix with segment ``k``'s columns ``old`` moved to the new
        columns ``new`` (appended after the others): the model with those terms split off
        for the rows of segment ``k`` (there they are zero in the old columns, elsewhere
        zero in the new). No data are copied."""
        other = object.__new__(_Blocks)
        other.p = self.p + len(new)
        other.parts = list(self.parts)
        seg, cols, sub_t, sub32 = other.parts[k]
        cols = cols.copy()
        for o, n in zip(old, new, strict=True):
            cols[cols == o] = n
        other.parts[k] = (seg, cols, sub_t, sub32)
        return other

    def set_col(self, c: int, values: np.ndarray) -> None:
        """Replace column ``c`` (a hinge at another threshold; it stays within the
        columns active per segment)."""
        for seg, cols, sub_t, sub32 in self.parts:
            j = int(np.searchsorted(cols, c))
            if j < len(cols) and cols[j] == c:
                sub_t[j] = values[seg]
                sub32[j] = values[seg]

    def info(self, mu: np.ndarray, exact: bool) -> np.ndarray:
        """X'WX with weights ``mu``: in double (``exact``) or with single-precision products
        (each piece's sum of :data:`INFO_ROWS` rows; the pieces are added in double)."""
        out = np.zeros((self.p, self.p))
        for seg, cols, sub_t, sub32 in self.parts:
            m = mu[seg] if exact else mu[seg].astype(np.float32)
            a = sub_t if exact else sub32
            part = np.zeros((len(cols), len(cols)))
            for lo in range(0, a.shape[1], INFO_ROWS):
                piece = a[:, lo:lo + INFO_ROWS]
                part += (piece * m[lo:lo + INFO_ROWS]) @ piece.T
            out[np.ix_(cols, cols)] += part
        return out

    def tmul(self, r: np.ndarray) -> np.ndarray:
        """X' r"""
        out = np.zeros(self.p)
        for seg, cols, sub_t, _ in self.parts:
            out[cols] += sub_t @ r[seg]
        return out

    def mul(self, v: np.ndarray, n: int) -> np.ndarray:
        """X v"""
        out = np.empty(n)
        for seg, cols, sub_t, _ in self.parts:
            out[seg] = v[cols] @ sub_t
        return out


def _map(fn, items: list, threads: int) -> list:
    """``[fn(i) for i in items]``, on up to ``threads`` threads (numpy's products and
    element-wise operations release the GIL; each call's arithmetic is the same, so the
    results do not depend on the thread count)."""
    if threads <= 1 or len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(threads, len(items))) as pool:
        return list(pool.map(fn, items))


def _irls(y: np.ndarray, x: np.ndarray | None, offset: np.ndarray, start: np.ndarray | None,
          max_iter: int = 60, tol: float = 1e-9, want_info: bool = True,
          segments: list[slice] | None = None, active: list[np.ndarray] | None = None,
          xb: _Blocks | None = None) -> tuple[np.ndarray, float, np.ndarray | None]:
    """Poisson GLM by Newton's method (IRLS): (params, llf, X'WX at the params or None).

    From a close start, one or two iterations give the likelihood to a small
    fraction of a unit (the threshold profile uses that). The Newton matrix is
    computed in single precision (the costly product; the gradient and the
    likelihood stay in double, so the optimum is the same); the returned X'WX,
    used for standard errors, is double. A step that gives no ascent is halved
    along the same line (the linear predictor is not recomputed); when halving
    finds none, the iteration is redone with the exact double matrix, and when that
    finds none either the fit is at its optimum to rounding (a descent is never taken).
    ``segments``: row slices that cover the rows, ``active``: per segment, the columns
    that may be nonzero in it (default: those that are; see :class:`_Blocks`); ``xb``:
    ``x`` already cut so (the threshold sweeps keep one and move its hinge column; with
    it and a ``start`` of its width, ``x`` is not read and may be None).
    """
    if start is None or len(start) != (xb.p if xb is not None else x.shape[1]):
        start = np.linalg.lstsq(x, np.log((y + 0.5) / np.exp(offset)), rcond=None)[0]
    n = len(y)
    xb = xb if xb is not None else _Blocks(x, segments, active)
    beta = start.copy()
    ridge = 1e-10 * np.eye(xb.p)
    lin = xb.mul(beta, n) + offset   # the linear predictor; clipped only for the rate
    eta = np.clip(lin, -50, 50)
    mu = np.exp(eta)
    llf = float(y @ eta - mu.sum())
    exact = False   # single-precision Newton matrix until it fails to give an ascent
    for _ in range(max_iter):
        info = xb.info(mu, exact) + ridge
        step = np.linalg.solve(info, xb.tmul(y - mu))
        x_step = xb.mul(step, n)   # the linear predictor moves along this line: halving reuses it
        llf_old, t = llf, 1.0
        for _halving in range(MAX_HALVINGS):  # step halving keeps every iteration an ascent
            eta_new = np.clip(lin + t * x_step, -50, 50)
            mu_new = np.exp(eta_new)
            llf = float(y @ eta_new - mu_new.sum())
            if llf >= llf_old - 1e-9 * (1 + abs(llf_old)):
                break
            t /= 2
        else:
            llf = llf_old
            if exact:   # no ascent along the exact Newton direction: at the optimum
                break
            exact = True   # the rounded matrix may point the wrong way near the optimum
            continue
        beta, lin, mu = beta + t * step, lin + t * x_step, mu_new
        if abs(llf - llf_old) < tol * (1 + abs(llf)):
            break
    return beta, llf, (xb.info(mu, True) + ridge) if want_info else None


def _quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(x)
    cum = np.cumsum(w[order]) / w.sum()
    return float(x[order][min(np.searchsorted(cum, q), len(cum) - 1)])


def exposure_ranges(cells: pd.DataFrame, factors) -> dict[str, tuple[float, float]]:
    """Per factor, the exposure-weighted 5% and 99% quantiles (``GRID_QUANTILES``) of the
    cells: the range the fleet saw, which the thresholds are searched in."""
    if not len(cells):
        return {}
    w = cells["device_hours"].to_numpy(float)
    out = {}
    for f in factors:
        x = cells[f].to_numpy(float)
        ok = np.isfinite(x)
        if ok.any() and w[ok].sum() > 0:
            out[f] = tuple(_quantile(x[ok], w[ok], q) for q in GRID_QUANTILES)
    return out


def threshold_grid(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Candidate thresholds: a round step (1, 2 or 5 x 10^k) giving about
    ``GRID_POINTS`` points between the exposure-weighted 5% and 99% quantiles."""
    lo, hi = (_quantile(x, w, q) for q in GRID_QUANTILES)
    if not hi > lo:
        return np.array([hi])
    raw = (hi - lo) / GRID_POINTS
    mag = 10.0 ** np.floor(np.log10(raw))
    step = mag * next(m for m in (1, 2, 5, 10) if m * mag >= raw)
    return np.round(np.arange(np.ceil(lo / step) * step, hi + step / 2, step), 10)


def with_events(grid: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The points of ``grid`` with at least one event (``y``, per cell at ``x``) strictly
    below and one strictly above.

    At a threshold with no event on one side the likelihood has no maximum: the line and
    the hinge together drive that side's rate to zero (the linear slope to +infinity and
    the hinge's to -infinity, or the hinge's alone), and the fit stops wherever the
    iterations do, with slopes of hundreds and rate ratios that overflow. One event on
    each side is what a finite maximum needs in that direction; it does not make a
    threshold well determined (its interval says how well). Where no point has events on
    both sides, the largest ``x``: the hinge column is then zero and the factor is a line
    (a block without a hinge has no threshold search)."""
    order = np.argsort(x, kind="stable")
    xs, cum = x[order], np.concatenate([[0.0], np.cumsum(y[order])])
    below = cum[np.searchsorted(xs, grid, side="left")]
    above = cum[-1] - cum[np.searchsorted(xs, grid, side="right")]
    ok = (below > 0) & (above > 0)
    if ok.any():
        return grid[ok]
    return np.array([float(xs[-1])]) if len(xs) else grid


class _Design:
    """The model matrix of a set of blocks, with one hinge column per block to move."""

    def __init__(self, data: dict, types: list[str], centers: dict, grids: dict,
                 blocks: list[tuple[str, str | None]], taus: dict):
        self.data, self.types, self.centers, self.grids = data, types, centers, grids
        self.blocks = blocks
        dt = data["device_type"]
        # the rows are sorted by type (fit_outcome): one segment of rows per type
        edges = np.flatnonzero(dt[1:] != dt[:-1]) + 1
        bounds = [0, *edges.tolist(), len(dt)]
        self.segments = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        own = {f: [t for f2, t in blocks if f2 == f and t is not None] for f, _ in blocks}
        cols = [(dt == t).astype(float) for t in types] + [data["age_years"]]
        self.names = [f"type:{t}" for t in types] + ["age_years"]
        self.masks, self.hinge_col = {}, {}
        for f, t in blocks:
            mask = (~np.isin(dt, own[f]) if t is None else dt == t).astype(float)
            self.masks[(f, t)] = mask
            name = _block_name(f, t)
            cols.append(mask * (data[f] - centers[f]))
            self.hinge_col[(f, t)] = len(cols)
            cols.append(np.zeros(len(dt)))
            self.names += [f"{name}:linear", f"{name}:above"]
        # column-major: a hinge column moves as one contiguous run of values
        self.x = np.array(cols).T
        if np.ptp(self.x[:, len(types)]) < 1e-6:
            self.x[:, len(types)] = 0.0   # one age (to rounding): no age slope to find
        self.taus = {}
        for b in blocks:
            self.set_tau(b, taus[b])

    def set_tau(self, b: tuple, tau: float) -> None:
        self.taus[b] = float(tau)
        c = self.hinge_col[b]
        self.x[:, c] = self.masks[b] * np.maximum(self.data[b[0]] - tau, 0.0)
        if getattr(self, "xb", None) is not None:
            self.xb.set_col(c, self.x[:, c])

    def grid(self, b: tuple) -> np.ndarray:
        """Block ``b``'s threshold candidates: its own where it has them (a type's own
        block: the points with events of that type on both sides), else its factor's."""
        return self.grids[b] if b in self.grids else self.grids[b[0]]

    def fork(self) -> _Design:
        """A copy whose thresholds move apart from this one's (for a sweep run beside
        another on the same model: the model matrix and its blocks are copied)."""
        other = copy.copy(self)
        other.taus = dict(self.taus)
        other.x = self.x.copy(order="F")
        if getattr(self, "xb", None) is not None:
            other.xb = self.xb.copy()
        return other

    def keep(self, x: np.ndarray) -> np.ndarray:
        k = np.ptp(x, axis=0) > 0
        k[: len(self.types)] = True
        return k


def _profile(d: _Design, y, offset, blocks: list[tuple], start,
             coarse: list[tuple] | None = None) -> tuple[np.ndarray, dict]:
    """Profile the thresholds of ``blocks`` coordinate-wise (coarse, then fine around the
    best); returns the last params and {block: (grid points, log-likelihoods)}.

    Every grid point leaves exposure on both sides, so the columns never go constant.
    """
    profiles: dict[tuple, dict[float, float]] = {b: {} for b in blocks}
    keep = d.keep(d.x)
    d.x = np.asfortranarray(d.x[:, keep])
    d.names = [n for n, k in zip(d.names, keep, strict=True) if k]
    d.hinge_col = {b: int(np.sum(keep[:c])) for b, c in d.hinge_col.items() if keep[c]}
    # per type, the columns that may be nonzero: a hinge column wherever its block's
    # linear column is (at another threshold it may be nonzero where it is zero now)
    d.active = [np.any(d.x[seg] != 0, axis=0) for seg in d.segments]
    for act in d.active:
        for c in d.hinge_col.values():
            act[c] |= act[c - 1]
    d.xb = _Blocks(d.x, d.segments, d.active)
    beta, _, _ = _irls(y, d.x, offset, start, segments=d.segments, active=d.active, xb=d.xb)
    coarse = blocks if coarse is None else coarse
    for sweep in (0, 1):
        for b in blocks:
            if b not in d.hinge_col or (sweep == 0 and b not in coarse):
                continue
            grid = d.grid(b)
            step = grid[1] - grid[0] if len(grid) > 1 else 1.0
            pts = (grid[::4] if sweep == 0 else
                   grid[np.abs(grid - d.taus[b]) <= FINE_STEPS * step])
            if sweep == 1:
                profiles[b] = {}  # the fine profile, given the other thresholds' final values
            warm = beta
            cols = [d.hinge_col[b] - 1, d.hinge_col[b]]
            for tau in pts:
                d.set_tau(b, tau)
                # coarse: two Newton steps from the neighbour; fine: converged
                warm, llf, info = _irls(y, d.x, offset, warm, max_iter=2 if sweep == 0 else 60,
                                        want_info=sweep == 1, segments=d.segments,
                                        active=d.active, xb=d.xb)
                se = (np.sqrt(np.clip(np.diag(np.linalg.pinv(info))[cols], 0, None))
                      if info is not None else np.full(2, np.nan))
                profiles[b][float(tau)] = (llf, warm[cols] - Z95 * se, warm[cols] + Z95 * se)
            d.set_tau(b, max(profiles[b], key=lambda t, b=b: profiles[b][t][0]))
    beta, _, _ = _irls(y, d.x, offset, beta, segments=d.segments, active=d.active, xb=d.xb)
    return beta, {b: p for b, p in profiles.items() if p}


def _try_own_block(d: _Design, y, offset, beta, llf: float, f: str, t: str) -> float:
    """The likelihood-ratio p of type ``t``'s own block for ``f`` against the shared
    curve: the model refitted with the shared block split into t's own linear and
    hinge columns at the shared threshold (2 df, no search)."""
    cols = [d.names.index(f"{f}:linear"), d.names.index(f"{f}:above")]
    # the rows of type t are one segment of the model matrix: its shared columns become
    # the own ones (a view, no copy of the matrix)
    k = next(i for i, seg in enumerate(d.segments) if d.data["device_type"][seg.start] == t)
    p = len(d.names)
    xb = d.xb.moved(k, cols, [p, p + 1])
    _, llf1, _ = _irls(y, None, offset, np.concatenate([beta, beta[cols]]), max_iter=8,
                       want_info=False, xb=xb)
    return float(stats.chi2.sf(max(2 * (llf1 - llf), 0.0), OWN_TEST_DF))


def _lr_process(d: _Design, y, offset, beta, b: tuple, prof: dict) -> dict[float, float]:
    """The log-likelihood of the model with block ``b`` at every other grid threshold
    (two Newton steps from the neighbour's fit, as the coarse sweep) and at the fine
    profile's points (converged), in threshold order. Against the model without the
    block it gives the block's likelihood-ratio process, against the model with the
    block's linear term only the hinge's."""
    tau0 = d.taus[b]
    llfs = {t: v[0] for t, v in prof.items()}
    warm = beta
    for tau in d.grid(b)[::SWEEP_STRIDE]:
        if float(tau) in llfs:
            continue
        d.set_tau(b, tau)
        warm, llf, _ = _irls(y, d.x, offset, warm, max_iter=2, want_info=False,
                             segments=d.segments, active=d.active, xb=d.xb)
        llfs[float(tau)] = llf
    d.set_tau(b, tau0)
    return {t: llfs[t] for t in sorted(llfs)}


def _converged_profile(d: _Design, y, offset, beta, b: tuple
                       ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The log-likelihood of the final model with block ``b``'s threshold at every grid
    point, each fit converged (warm from the neighbour, outwards from the estimate): the
    profile the threshold's interval inverts. (The fine sweep's values were taken given
    the other thresholds of their time and from the early iterations of a fit: against the
    final model they were off by up to thousands of units, which made the interval a
    single grid point.) Returns the grid, the log-likelihoods and the params at each
    point."""
    tau0 = d.taus[b]
    grid = np.asarray(d.grid(b), float)
    llfs = np.full(len(grid), -np.inf)
    fits: list[np.ndarray] = [beta] * len(grid)
    start = int(np.argmin(np.abs(grid - tau0)))
    for order in (range(start, len(grid)), range(start - 1, -1, -1)):
        warm = beta
        for i in order:
            d.set_tau(b, grid[i])
            warm, llfs[i], _ = _irls(y, d.x, offset, warm, want_info=False,
                                     segments=d.segments, active=d.active, xb=d.xb)
            fits[i] = warm
    d.set_tau(b, tau0)
    return grid, llfs, fits


def _wald_over(d: _Design, offset, b: tuple, cols: list[int], pts: np.ndarray,
               fits: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The Wald intervals of ``cols`` (block ``b``'s slopes) in the final model at each of
    its thresholds ``pts``, from the converged params ``fits`` there (the converged
    profile's): the information at each fit, no refit."""
    tau0 = d.taus[b]
    out = []
    for t, params in zip(pts, fits, strict=True):
        d.set_tau(b, t)
        mu = np.exp(np.clip(d.xb.mul(params, len(offset)) + offset, -50, 50))
        se = np.sqrt(np.clip(np.diag(np.linalg.pinv(d.xb.info(mu, True)))[cols], 0, None))
        out.append((params[cols] - Z95 * se, params[cols] + Z95 * se))
    d.set_tau(b, tau0)
    return out


def davies_p(lr: np.ndarray, observed: float, df: int = OWN_TEST_DF) -> float:
    """Davies' (1987) upper bound of the p-value of the largest likelihood ratio over a
    searched threshold: P(chi2_df > u) + V u^((df-1)/2) e^(-u/2) 2^(-df/2) / Gamma(df/2),
    with u the largest statistic and V the total variation of its square root over the
    thresholds. At a fixed threshold the block (linear + hinge slopes) is a df = 2 test;
    the search over thresholds, which a plain chi-square ignores, is what V pays for
    (a statistic that rises and falls from zone to zone pays the most)."""
    lr = np.maximum(lr, 0.0)
    u = float(max(observed, lr.max() if len(lr) else 0.0))
    root = np.sqrt(lr)
    v = float(np.abs(np.diff(root)).sum()) if len(root) > 1 else 0.0
    bound = stats.chi2.sf(u, df) + v * u ** ((df - 1) / 2) * np.exp(-u / 2) * 2 ** (
        -df / 2) / special.gamma(df / 2)
    return float(min(1.0, bound))


def threshold_interval(process: Mapping[float, float], llf: float, tau: float,
                       cut: float | None = None) -> tuple[float, float]:
    """The threshold's interval: the span of the searched thresholds whose profile
    likelihood ratio against the best, 2 (max llf - llf(tau)), stays within ``cut``
    (default THRESHOLD_CUT), over the whole grid; ``tau`` is always inside."""
    cut = THRESHOLD_CUT if cut is None else cut
    if not process:
        return (tau, tau)
    pts = np.array(list(process))
    lls = np.array(list(process.values()))
    inside = pts[2 * (max(lls.max(), llf) - lls) <= cut]
    return (float(min(inside.min(initial=tau), tau)), float(max(inside.max(initial=tau), tau)))


def _without(d: _Design, y, offset, beta, drop_cols: list[int]):
    """The model refitted without the columns ``drop_cols``: (params, llf, X'WX, keep)."""
    keep = np.ones(len(d.names), bool)
    keep[drop_cols] = False
    b, llf, info = _irls(y, d.x[:, keep], offset, beta[keep], segments=d.segments,
                         active=[a[keep] for a in d.active])
    return b, llf, info, keep


def threshold_inflation(d: _Design, y, offset, beta, b: tuple, cols: list[int],
                        parts: tuple | None) -> float:
    """How much wider than the likelihood says the threshold's interval must be: the
    zone-clustered (sandwich) variance of the threshold over its model-based variance, at
    least 1.

    The threshold enters the linear predictor through the column d eta / d tau = -h *
    1{x > tau} (h the hinge slope; as in Muggeo's segmented regression), added to the
    model matrix. Its model variance is the last element of a = I^-1 e (I the information
    of the augmented model); the clustered one sum_z (a' S_z)^2 G / (G - 1), S_z the score
    of zone z. Cells pool the zones with the same binned environment, so a cell's expected
    count is shared among its zones by their device-hours (``parts``: per cell and zone,
    the cell's row, the zone's code, device-hours and events); without them every cell is
    its own cluster. The likelihood interval assumes independent Poisson counts given the
    modelled environment; the monitors measure the environment the devices feel with
    error and a zone's hours are not independent, so a threshold that a few zones pin
    down moves from zone to zone more than the likelihood says."""
    n = len(y)
    mu = np.exp(np.clip(d.xb.mul(beta, n) + offset, -50, 50))
    g = -beta[cols[1]] * d.masks[b] * (d.data[b[0]] > d.taus[b])
    if not np.any(g):
        return 1.0
    p = len(beta)
    c = d.xb.tmul(mu * g)
    full = np.zeros((p + 1, p + 1))
    full[:p, :p] = d.xb.info(mu, True)
    full[:p, p] = full[p, :p] = c
    full[p, p] = float(g @ (mu * g))
    a = np.linalg.pinv(full + 1e-10 * np.eye(p + 1))[:, p]
    model_var = float(a[p])
    if not model_var > 0:
        return 1.0
    u = d.xb.mul(a[:p], n) + g * a[p]   # a' x_c, per cell
    if parts is None:
        score, n_groups = u * (y - mu), n
    else:
        row, zone, hours_part, y_part = parts
        contrib = u[row] * (y_part - (mu / np.exp(offset))[row] * hours_part)
        _, code = np.unique(zone, return_inverse=True)
        score = np.bincount(code, weights=contrib)
        n_groups = len(score)
    if n_groups < 2:
        return 1.0
    robust_var = float(score @ score) * n_groups / (n_groups - 1)
    return float(max(1.0, robust_var / model_var))


def _finish(d: _Design, y, offset, beta, profiles, outcome, types,
            parts: tuple | None = None, threads: int = 1) -> Fit:
    """Test every block and choose its form, then the final fit.

    A block's joint test (both slopes, threshold searched: Davies' bound, 2 df) decides
    whether the factor matters; its hinge's own test (the model with the hinge against
    the model with the block's linear term only, threshold searched: Davies' bound, 1 df,
    Holm-adjusted over the blocks of the fit) decides the form. A hinge the data do not
    support (adjusted p >= ALPHA) is left out: the
    factor is fitted as a line, whose slope then has a plain Wald interval (the union of
    intervals over a poorly identified threshold reaches zero, and the limits and
    recommendations follow a threshold placed by noise). The dropped hinge is still
    reported (its estimate and interval with the threshold), never as significant.
    """
    beta, llf, info = _irls(y, d.x, offset, beta, segments=d.segments, active=d.active, xb=d.xb)
    tested = []
    inflation: dict[tuple, float] = {}
    todo = []
    for b in d.blocks:
        name = _block_name(*b)
        cols = [i for i, n in enumerate(d.names) if n in (f"{name}:linear", f"{name}:above")]
        if b in profiles and cols:
            todo.append((b, cols))

    def refits(job):
        # the block's refits against the final model: independent of the other blocks',
        # so they may run beside them (each moves its own copy of the hinge column)
        b, cols = job
        dd = d.fork() if threads > 1 else d
        _, llf0, _, _ = _without(dd, y, offset, beta, cols)
        if len(cols) != 2:
            return llf0, {}, 1.0, {}, np.nan, (dd.taus[b], dd.taus[b]), []
        process = _lr_process(dd, y, offset, beta, b, profiles[b])
        # the threshold's interval inverts the final model's converged profile (the
        # sweeps' values were taken given the other thresholds of their time) at
        # Hansen's cut-off, or wider where the zone-clustered variance of the
        # threshold says so (threshold_inflation)
        infl = threshold_inflation(dd, y, offset, beta, b, cols, parts)
        grid, prof_ll, fits = _converged_profile(dd, y, offset, beta, b)
        profile = dict(zip(grid.tolist(), prof_ll.tolist(), strict=True))
        _, llf_lin, _, _ = _without(dd, y, offset, beta, [cols[1]])
        ci = threshold_interval(profile, llf, dd.taus[b],
                                cut=max(THRESHOLD_CUT, infl * CHI2_1_95))
        # the slopes' intervals at every threshold of the threshold's interval
        at = [i for i, t in enumerate(grid) if ci[0] <= t <= ci[1]]
        walds = _wald_over(dd, offset, b, cols, grid[at], [fits[i] for i in at])
        return llf0, process, infl, profile, llf_lin, ci, walds

    results = _map(refits, todo, threads)
    for (b, cols), (llf0, process, infl, profile, llf_lin, ci, walds) in zip(todo, results,
                                                                              strict=True):
        inflation[b] = infl
        stat = max(2 * (llf - llf0), 0.0)
        p_hinge = np.nan
        # a block without its hinge column (constant in the data) has no threshold search
        if len(cols) == 2:
            lr = np.array(list(process.values()))
            p = davies_p(2 * (lr - llf0), stat)
            p_hinge = davies_p(2 * (lr - llf_lin), max(2 * (llf - llf_lin), 0.0), df=1)
        else:
            p = float(stats.chi2.sf(stat, len(cols)))
        tested.append((b, cols, walds, ci, p, p_hinge, profile))
    # the form choice is a family of tests too ("this factor has a threshold"): Holm over
    # the blocks' hinge tests, so a hinge fitted to noise in one of many blocks is not kept
    hinged = [i for i, (_, cols, *_) in enumerate(tested) if len(cols) == 2]
    hinge_adj = dict(zip(hinged, holm([tested[i][5] for i in hinged]) if hinged else [],
                         strict=True))
    linear_only = {tested[i][0] for i in hinged if hinge_adj[i] >= ALPHA}
    drop = [cols[1] for b, cols, *_ in tested if b in linear_only]
    cov = np.linalg.pinv(info)
    bse_full = np.sqrt(np.clip(np.diag(cov), 0, None))
    if drop:
        beta_r, _, info_r, keep = _without(d, y, offset, beta, drop)
        names = [n for n, k in zip(d.names, keep, strict=True) if k]
        bse_r = np.sqrt(np.clip(np.diag(np.linalg.pinv(info_r)), 0, None))
    else:
        beta_r, names, bse_r = beta, list(d.names), bse_full
    blocks = []
    for k, (b, cols, walds, ci, p, p_hinge, profile) in enumerate(tested):
        name = _block_name(*b)
        # slope intervals: the union over the thresholds of the threshold's interval (the
        # conditional Wald interval at one threshold ignores the threshold's own uncertainty)
        lo = np.min([w[0] for w in walds] + [beta[cols] - Z95 * bse_full[cols]], axis=0)
        hi = np.max([w[1] for w in walds] + [beta[cols] + Z95 * bse_full[cols]], axis=0)
        terms = [d.names[i].rpartition(":")[2] for i in cols]
        term_ci = {t: (float(a), float(z)) for t, a, z in zip(terms, lo, hi, strict=True)}
        dropped = {}
        if b in linear_only:
            i = names.index(f"{name}:linear")
            est, se = float(beta_r[i]), float(bse_r[i])
            term_ci["linear"] = (est - Z95 * se, est + Z95 * se)
            dropped = {"above": float(beta[cols[1]])}
        blocks.append(Block(b[0], b[1], d.taus[b], ci, p, term_ci, float(p_hinge),
                            float(hinge_adj.get(k, np.nan)), dropped, profile, inflation[b]))
    return Fit(outcome, types, names, beta_r, bse_r, dict(d.centers), blocks,
               n_events=int(y.sum()))


def fit_outcome(cells: pd.DataFrame, outcome: str, *, min_events: int = 10,
                min_type_events: int = 20, factors: tuple[str, ...] = FACTORS,
                units: dict[str, str] | None = None,
                labels: dict[str, str] | None = None,
                zone_parts: pd.DataFrame | None = None, threads: int = 1) -> Fit:
    """Fit the model of ``outcome`` (column ``n_<outcome>s``) with thresholds and
    the device-type interactions the data support.

    A type's own block is tried only where the type has at least
    ``min_type_events`` events. ``zone_parts`` (from ``model_cells(..., with_zones=True)``,
    rows ``cell`` indexing ``cells``' rows): the zones each cell pools, for the
    zone-clustered threshold intervals (without them every cell is its own cluster).
    ``threads``: how many of the independent refits (the tests of the type splits, the
    blocks' threshold profiles) run side by side; the fit is the same for any count.
    """
    cells = cells.reset_index(drop=True).sort_values("device_type", kind="stable")
    y = cells[f"n_{outcome}s"].to_numpy(float)
    parts = None
    if zone_parts is not None and len(zone_parts):
        # each cell's zone shares, by the cell's row after the sort above
        at = np.empty(len(cells), np.int64)
        at[cells.index.to_numpy()] = np.arange(len(cells))
        parts = (at[zone_parts["cell"].to_numpy(np.int64)], zone_parts["zone"].to_numpy(),
                 zone_parts["device_hours"].to_numpy(float),
                 zone_parts[f"n_{outcome}s"].to_numpy(float))
    if y.sum() < min_events:
        return Fit(outcome, reason=f"only {int(y.sum())} {outcome}s with environment data; "
                                   f"need {min_events}")
    data = {f: cells[f].to_numpy(float) for f in (*factors, "age_years")}
    data["device_type"] = cells["device_type"].astype(str).to_numpy(object)
    hours = cells["device_hours"].to_numpy(float)
    offset = np.log(hours)
    types = sorted(set(data["device_type"]))
    present = [f for f in factors if np.ptp(data[f]) > 0]
    centers = {f: _quantile(data[f], hours, 0.5) for f in present}
    # the thresholds leave exposure (threshold_grid) and events (with_events) on both sides
    grids = {f: with_events(threshold_grid(data[f], hours), data[f], y) for f in present}
    shared = [(f, None) for f in present]
    taus = {b: float(grids[b[0]][len(grids[b[0]]) // 2]) for b in shared}
    d = _Design(data, types, centers, grids, shared, taus)
    beta, profiles = _profile(d, y, offset, shared, None)
    beta, llf, _ = _irls(y, d.x, offset, beta, segments=d.segments, active=d.active, xb=d.xb)
    candidates = [(f, t) for t in types if y[data["device_type"] == t].sum() >= min_type_events
                  for f in present if f"{f}:linear" in d.names and f"{f}:above" in d.names]
    for f, t in candidates:     # a type's own block: events of that type on both sides
        own_rows = data["device_type"] == t
        grids[(f, t)] = with_events(grids[f], data[f][own_rows], y[own_rows])
    tried: list[dict] = []
    own: list[tuple[str, str]] = []
    floor = 0.0   # Holm's adjusted p never falls below that of a split admitted before
    # forward selection with Holm's thresholds: at step k the remaining splits are tested
    # in the model with the k splits already admitted, and the best enters only if its
    # p < ALPHA / (m - k) (m: the candidates). A split that only stood in for another
    # type's misfit (the shared curve bent by a one-type effect) loses its evidence once
    # that effect has its own block.
    while True:
        # (a shared block's columns may have gone constant in the rows it still covers)
        split = [(f, t) for f, t in candidates if (f, t) not in own
                 and f"{f}:linear" in d.names and f"{f}:above" in d.names]
        # each split's test refits a view of the model (no writes): they may run side by side
        step = [dict(factor=f, device_type=t, step=len(own), threshold=d.taus[(f, None)],
                     p_value=p) for (f, t), p in zip(split, _map(
                         lambda ft, d=d, beta=beta, llf=llf: _try_own_block(
                             d, y, offset, beta, llf, *ft), split, threads), strict=True)]
        if not step:
            break
        left = len(candidates) - len(own)   # Holm's m - k (untestable ones count too)
        best = min(step, key=lambda r: r["p_value"])
        for r in step:
            r.update(p_adjusted=float(min(1.0, max(floor, r["p_value"] * left))),
                     is_selected=r is best and r["p_value"] < ALPHA / left)
        tried += step
        floor = best["p_adjusted"]
        if not best["is_selected"]:
            break
        own.append((best["factor"], best["device_type"]))
        taus = dict(d.taus)
        taus[own[-1]] = best["threshold"]
        d = _Design(data, types, centers, grids, shared + own, taus)
        beta, profiles = _profile(d, y, offset, shared + own, None, coarse=own[-1:])
        beta, llf, _ = _irls(y, d.x, offset, beta, segments=d.segments, active=d.active,
                             xb=d.xb)
    fit = _finish(d, y, offset, beta, profiles, outcome, types, parts, threads)
    fit.selection = tried
    fit.units, fit.labels = dict(units or {}), dict(labels or {})
    return fit


def effect_rows(fit: Fit) -> list[dict]:
    """Per block: the linear and the above-threshold row; plus age."""
    z = stats.norm.ppf(0.975)
    base = dict(method="glm_poisson", outcome=fit.outcome)
    if not fit.ok:
        return [dict(base, factor="all", device_type=None, note=fit.reason)]
    own = {(b.factor, b.device_type) for b in fit.blocks if b.device_type}
    b_age, se_age = fit.coef("age_years"), fit.se("age_years")
    rows = [dict(base, factor="age_years", device_type=None, term="linear", estimate=b_age,
                 ci_low=b_age - z * se_age, ci_high=b_age + z * se_age,
                 rate_ratio=float(np.exp(b_age)),
                 p_value=float(2 * stats.norm.sf(abs(b_age / se_age))) if se_age > 0 else None,
                 n=fit.n_events, unit="per year of age", note="adjustment, not tested")]
    for blk in fit.blocks:
        name = _block_name(blk.factor, blk.device_type)
        others = sorted(t for f, t in own if f == blk.factor)
        scope = (f"type {blk.device_type}'s own terms" if blk.device_type else
                 "shared by all types" + (f" except {', '.join(others)}" if others else ""))
        for kind in ("linear", "above"):
            b, se = fit.coef(f"{name}:{kind}"), fit.se(f"{name}:{kind}")
            b = blk.dropped.get(kind, b)
            lo, hi = blk.term_ci.get(kind, (b - z * se, b + z * se))
            unit = (f"per {fit.unit(blk.factor)}" if kind == "linear" else
                    f"per {fit.unit(blk.factor)} above {blk.threshold:g}")
            note = (f"log rate ratio ({scope}); p of the factor's joint test (linear + "
                    "threshold terms, threshold searched: Davies bound)")
            if kind == "above" and blk.threshold_inflation > 1:
                note += (f"; threshold interval: likelihood-ratio cut-off x"
                         f"{blk.threshold_inflation:.2g} (zone-clustered variance)")
            if blk.is_linear:
                note += (f"; threshold not supported (hinge p {blk.hinge_p:.2g}, "
                         f"Holm-adjusted {blk.hinge_p_adjusted:.2g}): fitted as a "
                         "line" + ("; this term is not in the model" if kind == "above" else ""))
            # a factor fitted as a line has no threshold: only its rejected hinge row keeps
            # the threshold that was searched (environment_limits: "no threshold found")
            no_tau = blk.is_linear and kind == "linear"
            rows.append(dict(
                base, factor=blk.factor, device_type=blk.device_type, term=kind, estimate=b,
                ci_low=lo, ci_high=hi, rate_ratio=float(np.exp(b)),
                threshold=None if no_tau else blk.threshold,
                threshold_ci_low=None if no_tau else blk.threshold_ci[0],
                threshold_ci_high=None if no_tau else blk.threshold_ci[1],
                p_value=blk.p_value, n=fit.n_events,
                unit=unit, note=note, in_model=kind not in blk.dropped))
    return rows
