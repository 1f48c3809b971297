"""Expected values and residuals on the sensor grid: the numpy form of the
views ``calibration_expected`` and ``calibration_residuals`` (a test checks
they agree on a simulated fleet).

Per peer group (zone and metric) and hour: a trusted anchor's value (the
mean of the anchors: reference instruments, and sensors within the validity
of a passed calibration check; for an anchor, the mean of the *other*
anchors, never its peers) wins; else the median of the other sensors (at
least 1; the sensor never votes for itself; excluded sensors do not vote at
all); else no expectation. ``residual_pct = 100 (value - expected) / scale`` over the
hours after the last calibration, scale = the group's mean absolute
expected value, at least the metric's ``min_scale``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsfleet.calibration.grid import SensorGrid

NONE, REFERENCE, PEERS = 0, 1, 2
THREADS = 2                       # the design machine's cores
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
                 rows: np.ndarray | None = None, loo: bool = True) -> Residuals:
    """Residuals of the sensors of ``grid`` (only the groups of ``rows`` if given;
    other rows stay NaN). ``excluded``: bool per sensor, left out of the consensus.
    ``loo=False``: every sensor against the median of *all* voters, itself included
    (one common value per group and hour, so that differences between the sensors'
    residuals are exactly differences between their readings: the first pass)."""
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
    def one(idx: np.ndarray) -> None:
        # sensors on the last axis: (groups, hours, g)
        e, s_, p = _group(v[idx].transpose(0, 2, 1), excluded[idx][:, None, :],
                          grid.trusted(idx).transpose(0, 2, 1), loo)
        exp[idx] = e.transpose(0, 2, 1)
        src[idx] = s_.transpose(0, 2, 1)
        npeer[idx] = p.transpose(0, 2, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            absum = np.nansum(np.abs(e), axis=(1, 2))
            cnt = np.sum(~np.isnan(e), axis=(1, 2))
            mean_abs = np.where(cnt > 0, absum / cnt, np.nan)
        scale[idx] = np.where(np.isnan(mean_abs)[:, None], np.nan,
                              np.fmax(mean_abs[:, None], grid.min_scale[idx]))

    work = sizes.groupby(sizes).sum().sort_values(ascending=False)   # biggest first
    batches = [np.array(members[sizes == g].tolist(), np.int64)      # (groups, g) each
               for g in work.index.tolist()]
    with ThreadPoolExecutor(THREADS) as pool:    # numpy only; rows disjoint
        list(pool.map(one, batches))
    with np.errstate(invalid="ignore", divide="ignore"):
        x = 100.0 * (v - exp) / scale[:, None]
    cols = np.arange(n_h)[None, :]
    x[(cols < grid.start_col[:, None]) | ~(scale[:, None] > 0)] = np.nan
    return Residuals(exp, src, npeer, scale, x)


def _group(v: np.ndarray, excluded: np.ndarray, is_ref: np.ndarray, loo: bool = True):
    """Peer groups of one size, sensors on the last axis: (expected, source, n_peers).

    The median of the others follows from the sorted voters' values at n//2 - 1,
    n//2 and n//2 + 1 and whether the sensor's own value lies above them.
    """
    g = v.shape[-1]
    has = ~np.isnan(v)
    voter = has & ~excluded
    srt = np.sort(np.where(voter, v, np.nan), axis=-1)          # NaN last
    n_ok = voter.sum(-1, keepdims=True)
    half = n_ok // 2

    def at(pos):
        return np.take_along_axis(srt, np.clip(pos, 0, g - 1), axis=-1)

    s_lo, s_mid, s_hi = at(half - 1), at(half), at(half + 1)
    with np.errstate(invalid="ignore"):
        even = n_ok % 2 == 0
        # a voter: drop its own value; n_ok - 1 others
        own_odd = np.where(v >= s_mid, s_lo, s_mid)                        # n_ok even
        own_even = (np.where(v >= s_mid, s_lo, s_mid)
                    + np.where(v > s_mid, s_mid, s_hi)) / 2                # n_ok odd
        own = np.where(even, own_odd, own_even)
        # not a voter: the median of all voters
        all_ = np.where(even, (s_lo + s_mid) / 2, s_mid)
    median = np.where(voter, own, all_) if loo else all_
    m = n_ok - voter
    peers_ok = has & (m >= 1) & ~is_ref
    # Anchors: mean of the anchors that hour (of the other ones, for an anchor).
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
