"""A voltage-only device's load sag, from the shape of its own level series.

A device that reports only a voltage gets its level through the chemistry's
*open-circuit* curve (``battery_curve_points``), but it measures under load: its
voltage is lower by a sag of some millivolts. Where the curve is flat (Li-SOCl2:
10 mV per 10 points between 60 and 90 %) a 15 mV sag reads as 15 points too low,
where it is steep (below 10 %) as half a point, so the offset changes as the
battery runs down, and the apparent drop is too small. The sag is a constant
voltage (at a given temperature; its variation with the temperature is the gauge
effect of :mod:`tsfleet.power.temperature`), so it is found per device: among
sags from 0 to :data:`MAX_SAG_V`, the one whose corrected levels (the daily level
back to a voltage, plus the sag, through the curve again) fall most nearly on a
straight line over the current segment (least residual spread relative to the
slope; no sag unless one makes it straighter). The levels, charge-equivalents
and last level are corrected.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tsfleet.power.chemistry import charge_from_level

MAX_SAG_V = 0.04
SAG_STEP_V = 0.002
MIN_DAYS = 14             # segment days needed to see the curve's bends


def _straightness(y: np.ndarray) -> np.ndarray:
    """Residual SD / |slope| of a least-squares line per row (NaN-aware)."""
    mask = np.isfinite(y)
    t = np.where(mask, np.arange(y.shape[1])[None, :], 0.0)
    n = mask.sum(axis=1)
    yy = np.where(mask, y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tm, ym = t.sum(axis=1) / n, yy.sum(axis=1) / n
        dt = np.where(mask, t - tm[:, None], 0.0)
        dy = np.where(mask, yy - ym[:, None], 0.0)
        slope = (dt * dy).sum(axis=1) / (dt * dt).sum(axis=1)
        resid = np.where(mask, dy - slope[:, None] * dt, 0.0)
        sd = np.sqrt((resid ** 2).sum(axis=1) / np.maximum(n - 2, 1))
        return np.where(n >= 3, sd / np.abs(slope), np.nan)


def correct(s, curves: dict[str, tuple[np.ndarray, np.ndarray]]):
    """``s`` (a :class:`~tsfleet.power.series.Series`) with the load sag of each
    voltage-only device removed where its history shows it; ``curves`` maps a
    chemistry to its curve (levels %, open-circuit volts, by level)."""
    n, m = s.level.shape
    cols = np.arange(m)[None, :]
    seg = (cols >= s.start[:, None]) & (cols <= s.end[:, None])
    with np.errstate(invalid="ignore"):
        inside = seg & (s.level > 0) & (s.level < 100)    # the curve is invertible there
    sel = np.flatnonzero(s.voltage_only & np.isin(s.chemistry, list(curves))
                         & (inside.sum(axis=1) >= MIN_DAYS))
    if not len(sel):
        return s
    level, last = s.level.copy(), s.last_level.copy()
    for chem in np.unique(s.chemistry[sel]):
        rows = sel[s.chemistry[sel] == chem]
        lv, volts = curves[chem]
        y = np.where(inside[rows], s.level[rows], np.nan)
        v = np.interp(y, lv, volts)
        base = _straightness(y)
        best, sag = base, np.zeros(len(rows))
        for dv in np.arange(SAG_STEP_V, MAX_SAG_V + SAG_STEP_V / 2, SAG_STEP_V):
            crit = _straightness(np.interp(v + dv, volts, lv))
            better = np.isfinite(crit) & (crit < best)
            best, sag = np.where(better, crit, best), np.where(better, dv, sag)
        fix = rows[sag > 0]
        dv = sag[sag > 0]
        lvl = level[fix]
        ok = np.isfinite(lvl) & (lvl > 0) & (lvl < 100)
        level[fix] = np.where(ok, np.interp(np.interp(lvl, lv, volts) + dv[:, None], volts, lv),
                              lvl)
        lst = last[fix]
        last[fix] = np.where((lst > 0) & (lst < 100),
                             np.interp(np.interp(lst, lv, volts) + dv, volts, lv), lst)
    return replace(s, level=level, last_level=last,
                   charge=charge_from_level(level, s.knee[:, None], s.gain[:, None]))
