"""A voltage-only device's load sag, from the shape of its own level series.

A device that reports only a voltage gets its level through the chemistry's
*open-circuit* curve (``battery_curve_points``), but it measures under load: its
voltage is lower by a sag of some millivolts. Where the curve is flat (Li-SOCl2:
10 mV per 10 points between 60 and 90 %) a 15 mV sag reads as 15 points too low,
where it is steep (below 10 %) as half a point, so the offset changes as the
battery runs down, and the apparent drop is too small. The sag also grows as the
cell cools (its internal resistance rises steeply): at 0 C it may be several
times the sag at 20 C, so a device in a cold zone reads many points low on a cold
day and its level looks erratic.

The model: ``sag(T) = sag_20 * exp(-(T - 20) / scale)`` at the zone's daily
temperature ``T``. Per device type, the ``scale`` is the one of :data:`SCALES_C`
(``inf``: no temperature effect) under which the levels of its devices fall most
nearly on straight lines over their current segments (least residual spread
relative to the slope, summed in logs over the devices with :data:`MIN_DAYS` days);
each such device gets its own ``sag_20`` from 0 up to its curve's whole span, the
volts from full to empty (no sag unless one makes it straighter; a larger sag would
put a full cell under load below empty, and the radio would brown out), where the type's
devices are on average clearly straighter with their sags (else none of them keeps one:
the few that found one found the noise); a device with a shorter segment (a battery
swapped a few days ago) gets the median of its type. Beyond the range of daily
temperatures the type's fit saw, the growth is not extrapolated: the temperature is held
at the range's end.
The levels, charge-equivalents and last level are corrected: the daily level back to
a voltage, plus the sag, through the curve again.

The type's :class:`Pool` (scale, median, temperature range, whether its devices keep
their own sags, the spread of their sags) is cached with the other pooled parameters
(``battery_holt_params``) and reused until they are pooled again.

What the series cannot tell apart is kept too: each searched device's sags that are not
clearly less straight than its best (by the same margin, :data:`SAG_GAIN`, that a sag must
beat no sag by), whether or not one is kept; a device with a shorter segment, its type's
10th to 90th percentile of those (:data:`SPAN_PCT`); a sag read off a new cell, that one.
The forecast's intervals span the levels they give (``level_span_lo``/``level_span_hi`` of
the series, points below and above the level read): on a flat stretch of a curve a load
sag is invisible in the series' shape, so the level may be anywhere the sags it cannot
exclude put it.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from tsfleet.power import patterns
from tsfleet.power.chemistry import charge_from_level

SAG_STEP_V = 0.002         # the sag's resolution (V) ...
SAG_REL_STEP = 0.025       # ... and, where that is finer, this fraction of the sag
# (Until session 16 the search stopped at 60 mV, a cap that fitted tsfleet's simulator.
# A bobbin Li-SOCl2 cell has an internal resistance of ohms to tens of ohms, more in the
# cold: under a radio's few mA it sags by tens to hundreds of mV, and on the independent
# generator (bench/independent/power.py) the cap left such devices 18-21 points low. The
# search now runs to the curve's span: every SAG_STEP_V up to SAG_STEP_V / SAG_REL_STEP
# = 80 mV, which holds every point of the old grid, then every SAG_REL_STEP of the sag.)
SAG_GAIN = 0.9           # a sag must straighten the series by 10% at least (as a gauge's
                          #   knee must, knee.GAUGE_GAIN)
ANCHOR_DAYS = 5           # a new cell's first days, read for its sag
SPAN_PCT = 10             # a shorter segment's sags: its type's 10th-90th percentile
MIN_DAYS = 14             # segment days needed to see the curve's bends
T_REF_C = 20.0            # the sag is stated at this temperature
#: e-folding scales (C) of the sag's growth towards the cold, tried per device type;
#: inf (no temperature effect) first, so that it stands unless another is straighter
SCALES_C = (np.inf, 6.0, 9.0, 12.0, 18.0, 30.0)


def sag_grid(step: float, top: float) -> np.ndarray:
    """The sags tried, from ``step`` up to ``top`` (V): every ``step`` while that is at least
    :data:`SAG_REL_STEP` of the sag, then every :data:`SAG_REL_STEP` of it; the relative step
    is scaled as ``step`` is from :data:`SAG_STEP_V` (the scale search's grid is twice as
    coarse throughout).

    >>> [round(float(v), 4) for v in sag_grid(0.002, 0.09)][-5:]
    [0.08, 0.082, 0.084, 0.0862, 0.0883]
    """
    rel = SAG_REL_STEP * step / SAG_STEP_V
    knee = step / rel
    lin = np.arange(step, min(knee, top) + step / 2, step)
    n = int(np.floor(np.log(max(top, knee) / knee) / np.log1p(rel)))
    return np.concatenate([lin, knee * (1 + rel) ** np.arange(1, n + 1)])


class Pool(NamedTuple):
    """A device type's sag model: its scale (C), the median sag at 20 C of its devices (V),
    the range of daily zone temperatures the fit saw (C), beyond which the growth is
    not extrapolated, and whether its devices keep their own sags. NaN: none (the type had
    no voltage-only device to learn it from)."""

    scale_c: float = np.nan
    median_v_at_20c: float = np.nan
    t_min_c: float = np.nan
    t_max_c: float = np.nan
    #: 0: the type's devices were not, on average, clearly straighter with their own sags
    #: when it was pooled, and get none (a new cell's still counts); 1 (or NaN): they do
    clear: float = np.nan
    #: the 10th and 90th percentiles of its devices' sags at 20 C (V): where a device with
    #: too short a segment to show its own may lie (NaN: no spread known)
    span_lo_v: float = np.nan
    span_hi_v: float = np.nan


def _straightness(y: np.ndarray, temp: np.ndarray | None = None) -> np.ndarray:
    """Residual SD / |slope| of a least-squares line per row (NaN-aware).

    With ``temp`` (the daily zone temperatures), the fit is a line plus a consumption term:
    the running sum of the temperature's departure from the row's mean (degree-days), which
    a consumption that grows in the cold follows; the slope is the line's, at the mean
    temperature."""
    mask = np.isfinite(y)
    t = np.where(mask, np.arange(y.shape[1])[None, :], 0.0)
    n = mask.sum(axis=1)
    yy = np.where(mask, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tm, ym = t.sum(axis=1) / n, yy.sum(axis=1) / n
        dt = np.where(mask, t - tm[:, None], 0.0)
        dy = np.where(mask, yy - ym[:, None], 0.0)
        if temp is None:
            slope = (dt * dy).sum(axis=1) / (dt * dt).sum(axis=1)
            resid = np.where(mask, dy - slope[:, None] * dt, 0.0)
            sd = np.sqrt((resid ** 2).sum(axis=1) / np.maximum(n - 2, 1))
            return np.where(n >= 3, sd / np.abs(slope), np.nan)
        anom = np.where(mask, temp - (np.where(mask, temp, 0.0).sum(axis=1) / n)[:, None], 0.0)
        c = np.cumsum(anom, axis=1)
        dc = np.where(mask, c - (np.where(mask, c, 0.0).sum(axis=1) / n)[:, None], 0.0)
        stt, scc, stc = (dt * dt).sum(axis=1), (dc * dc).sum(axis=1), (dt * dc).sum(axis=1)
        sty, scy = (dt * dy).sum(axis=1), (dc * dy).sum(axis=1)
        det = stt * scc - stc ** 2
        ok = np.abs(det) > 1e-9 * np.maximum(stt * scc, 1e-300)
        b_t = np.where(ok, (scc * sty - stc * scy) / np.where(ok, det, 1.0), sty / stt)
        b_c = np.where(ok, (stt * scy - stc * sty) / np.where(ok, det, 1.0), 0.0)
        resid = np.where(mask, dy - b_t[:, None] * dt - b_c[:, None] * dc, 0.0)
        sd = np.sqrt((resid ** 2).sum(axis=1) / np.maximum(n - 3, 1))
        return np.where(n >= 4, sd / np.abs(b_t), np.nan)


def correct(s, pool: dict | None = None):
    """``s`` (a :class:`~tsfleet.power.series.Series` with its ``curves``) with the load sag
    of each voltage-only device removed (see the module's text).

    ``pool`` maps a device type to the :class:`Pool` of an earlier run, used instead of
    fitting one (a pool of NaN: no correction), so that a forecast of a few devices
    corrects them exactly as a forecast of the fleet did. The result holds each device's
    sag and scale (NaN where none) and the pool used per device type.
    """
    n, m = s.level.shape
    sag_v, sag_scale, used = np.full(n, np.nan), np.full(n, np.nan), {}
    span_lo, span_hi = np.zeros(n), np.zeros(n)
    curves = s.curves or {}
    cols = np.arange(m)[None, :]
    seg = (cols >= s.start[:, None]) & (cols <= s.end[:, None])
    with np.errstate(invalid="ignore"):
        inside = seg & (s.level > 0) & (s.level < 100)    # the curve is invertible there
    key = s.curve_key if s.curve_key is not None else s.chemistry
    volt = s.voltage_only & np.isin(key, list(curves)) & (s.end >= 0)
    level, last = s.level.copy(), s.last_level.copy()
    temp = _filled_temperature(s.temperature)
    t_end = temp[np.arange(n), np.maximum(s.end, 0)] if m else np.full(n, T_REF_C)
    for dtype in sorted(set(s.device_type[volt])):
        rows = np.flatnonzero(volt & (s.device_type == dtype))
        chem = key[rows]
        long = inside[rows].sum(axis=1) >= MIN_DAYS
        y_long = np.where(inside[rows][long], s.level[rows][long], np.nan)
        t_long = np.where(inside[rows][long], temp[rows][long], np.nan)
        if dtype in (pool or {}):
            p = Pool(*pool[dtype])
        elif long.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                p = Pool(np.nan, np.nan, float(np.nanmin(t_long)), float(np.nanmax(t_long)))
        else:
            continue                    # nothing to learn the type's sag from
        if not np.isfinite(p.t_min_c):
            continue                    # pooled without a sag: none until the next pooling
        scale, own, clear, own_lo, own_hi = _fit(
            y_long, np.clip(temp[rows][long], p.t_min_c, p.t_max_c), chem[long], curves,
            p.scale_c)
        pooling = not np.isfinite(p.median_v_at_20c)    # pooled now (else: as pooled then)
        if not (clear if pooling else p.clear != 0):
            # the type's devices are not, on average, clearly straighter with their sags:
            # the few that are found the noise (the wider the search, the more chances it has)
            own = np.zeros_like(own)
        if pooling:
            lo_v, hi_v = ((float(np.percentile(own_lo, SPAN_PCT)),
                           float(np.percentile(own_hi, 100 - SPAN_PCT))) if len(own_lo)
                          else (np.nan, np.nan))
            p = p._replace(scale_c=scale, median_v_at_20c=float(np.median(own)),
                           clear=float(clear), span_lo_v=float(lo_v), span_hi_v=float(hi_v))
        used[dtype] = p
        sag20 = np.full(len(rows), p.median_v_at_20c)
        sag20[long] = own
        # a new cell reads the top of its curve less its load sag: where the segment began
        # at a battery replacement, that reading fixes the device's sag (see anchored)
        at, fixed = anchored(s, rows, chem, curves, temp, p, scale)
        fixed &= long
        if fixed.any():
            # ... where the segment is long enough to judge it (MIN_DAYS), and unless that sag
            # bends the segment clearly more than no sag at all (a cell whose first days do
            # not sit on the curve's top: a steep top read through the days' means, a cell
            # not new); "clearly" as a sag must straighten it to be kept
            y_seg = np.where(inside[rows][fixed], s.level[rows][fixed], np.nan)
            v_seg = _convert(y_seg, chem[fixed], curves, True)
            bent = _straightness(_convert(v_seg + at[fixed, None] * _shape(
                np.clip(temp[rows][fixed], p.t_min_c, p.t_max_c), scale), chem[fixed], curves,
                False)) * SAG_GAIN > _straightness(y_seg)
            fixed[np.flatnonzero(fixed)[bent]] = False
        sag20 = np.where(fixed, at, sag20)
        # the sags its series cannot tell apart from the one chosen (module doc): a device's
        # own where it was searched; a shorter segment's, its type's spread; a sag read off a
        # new cell, that one
        lo, hi = np.full(len(rows), p.span_lo_v), np.full(len(rows), p.span_hi_v)
        lo[long], hi[long] = own_lo, own_hi
        lo, hi = np.fmin(np.where(fixed, at, lo), sag20), np.fmax(np.where(fixed, at, hi), sag20)
        t_rows = np.clip(temp[rows], p.t_min_c, p.t_max_c)
        t_last = np.clip(t_end[rows], p.t_min_c, p.t_max_c)
        level[rows] = _shift(level[rows], sag20[:, None] * _shape(t_rows, scale), chem, curves)
        raw_last = last[rows, None]
        last[rows] = _shift(raw_last, (sag20 * _shape(t_last, scale))[:, None],
                            chem, curves)[:, 0]
        for bound, out in ((lo, span_lo), (hi, span_hi)):
            at_bound = _shift(raw_last, (bound * _shape(t_last, scale))[:, None], chem,
                              curves)[:, 0]
            with np.errstate(invalid="ignore"):
                out[rows] = np.nan_to_num(np.abs(at_bound - last[rows]))
        sag_v[rows], sag_scale[rows] = sag20, scale
    return replace(s, level=level, last_level=last,
                   charge=charge_from_level(level, s.knee[:, None], s.gain[:, None]),
                   sag_v_at_20c=sag_v, sag_scale_c=sag_scale, sag_pool=used,
                   level_span_lo=span_lo, level_span_hi=span_hi)


def anchored(s, rows: np.ndarray, chem: np.ndarray, curves: dict, temp: np.ndarray,
             p: Pool, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Each device's sag at 20 C (V) read at the start of a segment that began with a new
    primary cell (a reset of a non-rechargeable battery), and where it could be read.

    A new cell is full: it reads the top of its curve, less its load sag. The first
    :data:`ANCHOR_DAYS` days' open-circuit volts (each day's level back through the curve),
    extrapolated to the segment's first day by their own line, stand that far below the
    curve's top; the sag at the zone's temperature then is brought to 20 C by the type's
    scale (within the temperature range it was fitted on). A reading at or above the top
    gives no sag. Rechargeable cells are left out: a charge need not be full."""
    n, m = len(rows), s.level.shape[1]
    after = s.after_reset[rows] if s.after_reset is not None else np.zeros(n, dtype=bool)
    st = s.start[rows]
    cols = np.arange(m)[None, :]
    last = np.minimum(st + ANCHOR_DAYS - 1, s.end[rows])          # within the data
    win = (cols >= st[:, None]) & (cols <= last[:, None])
    with np.errstate(invalid="ignore"):
        y = np.where(win & (s.level[rows] > 0) & (s.level[rows] < 100), s.level[rows], np.nan)
    icpt, slope, _ = patterns.line_fit(_convert(y, chem, curves, True), st, last)
    top = np.array([np.interp(100.0, *curves[c]) for c in chem]) if n else np.zeros(0)
    t0 = np.clip(temp[rows, np.clip(st, 0, max(m - 1, 0))], p.t_min_c, p.t_max_c) if m else top
    ok = after & ~s.is_rechargeable[rows] & (st >= 0) & (np.isfinite(y).sum(axis=1) >= 2)
    out = np.maximum(top - (icpt + slope * st), 0.0) / _shape(t0, scale)
    return np.where(ok, out, 0.0), ok


def _shape(t: np.ndarray, scale: float) -> np.ndarray:
    return np.exp(-(t - T_REF_C) / scale) if np.isfinite(scale) else np.ones_like(t)


def _filled_temperature(t: np.ndarray) -> np.ndarray:
    """Zone temperatures with unknown days at the device's mean (T_REF_C if none known)."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(t, axis=1) if t.shape[1] else np.full(t.shape[0], np.nan)
    mean = np.where(np.isfinite(mean), mean, T_REF_C)
    return np.where(np.isfinite(t), t, mean[:, None])


def _convert(x: np.ndarray, chem: np.ndarray, curves: dict, to_volts: bool) -> np.ndarray:
    """Levels to open-circuit volts (or back), each row through its chemistry's curve."""
    out = np.full(x.shape, np.nan)
    for c in np.unique(chem):
        r = chem == c
        lv, volts = curves[c]
        out[r] = np.interp(x[r], lv, volts) if to_volts else np.interp(x[r], volts, lv)
    return out


def _shift(y: np.ndarray, dv: np.ndarray, chem: np.ndarray, curves: dict) -> np.ndarray:
    """Levels ``y`` read ``dv`` volts too low, corrected (where the curve is invertible)."""
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(y) & (y > 0) & (y < 100)
    return np.where(ok, _convert(_convert(y, chem, curves, True) + dv, chem, curves, False), y)


def _fit(y: np.ndarray, t: np.ndarray, chem: np.ndarray, curves: dict, given: float = np.nan
         ) -> tuple[float, np.ndarray, bool, np.ndarray, np.ndarray]:
    """The scale of a device type (``given`` unless NaN; else chosen on a grid of sags twice
    as coarse), each device's sag at 20 C (V), whether the devices are on average
    clearly straighter with their sags (their mean log ratio of straightness below
    ``log(SAG_GAIN)``: what a single device's sag must reach, asked of the type), and each
    device's lowest and highest sag (V) not clearly less straight than its best (by that
    margin): the sags its series cannot tell apart, the one returned among them."""
    v = _convert(y, chem, curves, True)
    base = _straightness(y)
    span = np.array([float(np.ptp(curves[c][1])) for c in chem]) if len(chem) else np.zeros(0)

    def best_sags(scale, step, final=False):
        shape = _shape(t, scale)
        crit, sag20 = base, np.zeros(len(y))
        tried = [(0.0, base)]       # (sag, straightness per device) of the final search
        # every sag of the grid up to the largest span; each device's up to its own span
        for dv in sag_grid(step, float(span.max(initial=0.0))):
            c = _straightness(_convert(v + dv * shape, chem, curves, False))
            ok = (dv <= span + step / 2) & np.isfinite(c)
            better = ok & (c < crit)
            crit, sag20 = np.where(better, c, crit), np.where(better, dv, sag20)
            if final:
                tried.append((dv, np.where(ok, c, np.inf)))
        # a sag must straighten the series clearly: on a near-linear curve every shift is
        # about as straight, and the noise alone would pick one (and move the level with it)
        clear = crit < SAG_GAIN * base
        if np.isfinite(scale) and final:
            # a sag that grows into the cold straightens a consumption that grows in the
            # cold as well (both bend the series where the zone cools): keep it only where
            # it still straightens the series once a consumption term is fitted
            with_c = _straightness(_convert(v + sag20[:, None] * shape, chem, curves, False), t)
            clear &= with_c < SAG_GAIN * _straightness(y, t)
        # the sags not clearly less straight than the best (by the margin a sag must beat no
        # sag by): the series cannot tell them apart
        lo, hi = np.full(len(y), np.inf), np.full(len(y), -np.inf)
        for dv, c in tried:
            near = np.isfinite(c) & (c * SAG_GAIN <= crit)
            lo, hi = np.where(near, np.minimum(lo, dv), lo), np.where(near, dv, hi)
        found = np.where(clear, sag20, 0.0)
        lo, hi = np.where(np.isfinite(lo), lo, found), np.where(np.isfinite(hi), hi, found)
        return (np.where(clear, crit, base), found,
                (np.minimum(lo, found), np.maximum(hi, found)))

    def log_ratios(crit):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = crit / base
        ok = np.isfinite(ratio) & (ratio > 0)        # a flat or too short series: no vote
        return np.log(ratio[ok])

    scale = given
    if np.isnan(given):
        totals = [log_ratios(best_sags(sc, 2 * SAG_STEP_V)[0]).sum() for sc in SCALES_C]
        scale = SCALES_C[int(np.argmin(totals))]
    crit, own, (lo, hi) = best_sags(scale, SAG_STEP_V, final=True)
    votes = log_ratios(crit)
    return scale, own, bool(len(votes)) and float(votes.mean()) < np.log(SAG_GAIN), lo, hi
