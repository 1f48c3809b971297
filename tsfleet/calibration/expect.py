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
import pandas as pd

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
    members = pd.Series(np.arange(n_s)).groupby(grid.group).agg(list)
    if rows is not None:
        members = members[members.index.isin(np.unique(grid.group[rows]))]
    sizes = members.map(len)
    for g in np.unique(sizes.to_numpy()) if len(sizes) else []:
        idx = np.array(members[sizes == g].tolist(), np.int64)       # (groups, g)
        # sensors on the last axis: (groups, hours, g)
        e, s_, p = _group(v[idx].transpose(0, 2, 1), excluded[idx][:, None, :],
                          grid.is_reference[idx][:, None, :])
        exp[idx] = e.transpose(0, 2, 1)
        src[idx] = s_.transpose(0, 2, 1)
        npeer[idx] = p.transpose(0, 2, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            absum = np.nansum(np.abs(e), axis=(1, 2))
            cnt = np.sum(~np.isnan(e), axis=(1, 2))
            mean_abs = np.where(cnt > 0, absum / cnt, np.nan)
        scale[idx] = np.where(np.isnan(mean_abs)[:, None], np.nan,
                              np.fmax(mean_abs[:, None], grid.min_scale[idx]))
    with np.errstate(invalid="ignore", divide="ignore"):
        x = 100.0 * (v - exp) / scale[:, None]
    cols = np.arange(n_h)[None, :]
    x[(cols < grid.start_col[:, None]) | ~(scale[:, None] > 0)] = np.nan
    return Residuals(exp, src, npeer, scale, x)


def _group(v: np.ndarray, excluded: np.ndarray, is_ref: np.ndarray):
    """Peer groups of one size, sensors on the last axis: (expected, source, n_peers)."""
    g = v.shape[-1]
    has = ~np.isnan(v)
    voter = has & ~excluded
    cons = np.where(voter, v, np.nan)
    order = np.argsort(cons, axis=-1, kind="stable")        # NaN last
    srt = np.take_along_axis(cons, order, axis=-1)
    n_ok = voter.sum(-1, keepdims=True)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(g), order.shape), axis=-1)
    # The median of the others: drop own position (voters) from the sorted values.
    own = voter
    m = n_ok - own
    lo_pos = np.where(m % 2 == 1, (m - 1) // 2, m // 2 - 1)
    hi_pos = m // 2
    lo = _others_at(srt, lo_pos, rank, own)
    hi = _others_at(srt, hi_pos, rank, own)
    with np.errstate(invalid="ignore"):
        median = np.where(m % 2 == 1, lo, (lo + hi) / 2)
    peers_ok = has & (m >= 3)
    # References: mean of the references that hour (of the other ones, for a reference).
    ref = has & is_ref
    n_ref = ref.sum(-1, keepdims=True)
    vref = np.where(ref, v, 0.0)
    sum_ref = vref.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ref_value = np.where(is_ref, (sum_ref - vref) / (n_ref - 1), sum_ref / n_ref)
    ref_ok = has & np.where(is_ref, n_ref > 1, n_ref > 0)
    expected = np.where(ref_ok, ref_value, np.where(peers_ok, median, np.nan))
    source = np.where(ref_ok, REFERENCE, np.where(peers_ok, PEERS, NONE)).astype(np.int8)
    n_peers = np.where(has, m, 0).astype(np.int16)
    return expected, source, n_peers


def _others_at(srt: np.ndarray, pos: np.ndarray, rank: np.ndarray, own: np.ndarray):
    """Value at position ``pos`` of the sorted voters without the sensor's own value."""
    p = pos + (own & (pos >= rank))
    p = np.clip(p, 0, srt.shape[-1] - 1)
    return np.take_along_axis(srt, p, axis=-1)
