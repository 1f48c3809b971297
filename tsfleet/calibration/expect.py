"""Expected values and residuals on the sensor grid: the numpy form of the
views ``calibration_expected`` and ``calibration_residuals`` (a test checks
they agree on a simulated fleet).

Per peer group (zone and metric) and hour: a reference instrument's value
(the mean of the references; for a reference, the mean of the *other*
references) wins; else the median of the other sensors (at least 3; the
sensor never votes for itself; excluded sensors do not vote at all); else
no expectation. ``residual_pct = 100 (value - expected) / scale`` over the
hours after the last calibration, scale = the group's mean absolute
expected value, at least the metric's ``min_scale``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsfleet.calibration.grid import SensorGrid

NONE, REFERENCE, PEERS = 0, 1, 2
SOURCES = np.array([None, "reference", "peers"], dtype=object)


@dataclass
class Residuals:
    """Expectation and residual (% of scale) per sensor-hour; rows as the grid."""

    expected: np.ndarray    # metric unit, NaN where none
    source: np.ndarray      # int8: NONE, REFERENCE, PEERS
    n_peers: np.ndarray     # int16
    scale: np.ndarray       # per sensor, metric unit (NaN: no expectation anywhere)
    x: np.ndarray           # residual_pct, NaN outside the calibration period or unexpected


def expectations(grid: SensorGrid, excluded: np.ndarray,
                 rows: np.ndarray | None = None) -> Residuals:
    """Residuals of the sensors of ``grid`` (only the groups of ``rows`` if given;
    other rows stay NaN). ``excluded``: bool per sensor, left out of the consensus."""
    v = grid.value
    n_s, n_h = v.shape
    exp = np.full((n_s, n_h), np.nan)
    src = np.zeros((n_s, n_h), np.int8)
    npeer = np.zeros((n_s, n_h), np.int16)
    scale = np.full(n_s, np.nan)
    order = np.argsort(grid.group, kind="stable")
    bounds = np.flatnonzero(np.diff(grid.group[order])) + 1
    todo = None if rows is None else set(np.unique(grid.group[rows]).tolist())
    for idx in np.split(order, bounds):
        if len(idx) == 0 or (todo is not None and grid.group[idx[0]] not in todo):
            continue
        e, s, p = _group(v[idx], excluded[idx], grid.is_reference[idx])
        exp[idx], src[idx], npeer[idx] = e, s, p
        with np.errstate(invalid="ignore"):
            mean_abs = np.nanmean(np.abs(e)) if np.isfinite(e).any() else np.nan
        scale[idx] = np.fmax(mean_abs, grid.min_scale[idx]) if np.isfinite(mean_abs) else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        x = 100.0 * (v - exp) / scale[:, None]
    cols = np.arange(n_h)[None, :]
    x[(cols < grid.start_col[:, None]) | ~(scale[:, None] > 0)] = np.nan
    return Residuals(exp, src, npeer, scale, x)


def _group(v: np.ndarray, excluded: np.ndarray, is_ref: np.ndarray):
    """One zone and metric: (expected, source, n_peers), each (g, n_hours)."""
    g, n_h = v.shape
    has = ~np.isnan(v)
    voter = has & ~excluded[:, None]
    cons = np.where(voter, v, np.nan)
    order = np.argsort(cons, axis=0, kind="stable")        # NaN last
    srt = np.take_along_axis(cons, order, axis=0)
    n_ok = voter.sum(0)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(g)[:, None].repeat(n_h, 1), axis=0)
    # The median of the others: drop own position (voters) from the sorted values.
    own = ~excluded[:, None] & has
    n_others = n_ok[None, :] - own
    m = n_others
    lo_pos = np.where(m % 2 == 1, (m - 1) // 2, m // 2 - 1)
    hi_pos = m // 2
    lo = _others_at(srt, lo_pos, rank, own)
    hi = _others_at(srt, hi_pos, rank, own)
    with np.errstate(invalid="ignore"):
        median = np.where(m % 2 == 1, lo, (lo + hi) / 2)
    peers_ok = has & (m >= 3)
    # References: mean of the references that hour (of the other ones, for a reference).
    ref = has & is_ref[:, None]
    n_ref = ref.sum(0)[None, :]
    sum_ref = np.where(ref, v, 0.0).sum(0)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        ref_value = np.where(is_ref[:, None], (sum_ref - np.where(ref, v, 0.0)) / (n_ref - 1),
                             sum_ref / n_ref)
    ref_ok = has & np.where(is_ref[:, None], n_ref > 1, n_ref > 0)
    expected = np.where(ref_ok, ref_value, np.where(peers_ok, median, np.nan))
    source = np.where(ref_ok, REFERENCE, np.where(peers_ok, PEERS, NONE)).astype(np.int8)
    n_peers = np.where(has, m, 0).astype(np.int16)
    return expected, source, n_peers


def _others_at(srt: np.ndarray, pos: np.ndarray, rank: np.ndarray, own: np.ndarray):
    """Value at position ``pos`` of the sorted voters without the sensor's own value."""
    p = pos + (own & (pos >= rank))
    g = srt.shape[0]
    p = np.clip(p, 0, g - 1)
    return np.take_along_axis(srt, p, axis=0)
