"""Who votes in a zone's consensus, and when a zone cannot be told apart.

After a first pass (every sensor judged against the median of its peers),
each sensor has a drift estimate ``d`` (its latest level minus its baseline,
% of scale). A drift that the whole zone shares (a real process change, or
every sensor drifting alike) moves every ``d`` by the same amount, so only
the *differences* between the sensors' estimates carry information. Per
peer group (zone and metric):

- A group with a reference instrument is anchored: every sensor is judged
  against the reference, whatever share drifts; the first pass's estimates
  are then relative to the reference, and sensors at the watch level or
  beyond leave the fallback consensus (hours without a reference reading).
  One exception: when a strict majority of the peers, at least 3, agree with
  each other within the watch level and *as a whole* sit a watch level or
  more away from a reference, the reference is doubted: a reference that
  drifts moves its clean peers exactly alike, while independent sensors do
  not drift by the same amount (peers that drift and only roughly agree do
  not doubt it).
  With another reference that agrees with the peers, the doubted one is
  judged against it (doubted by another reference: it can be flagged); with
  none, the zone falls back on its peers' consensus and the reference's
  drift is reported as ``zone_ambiguous`` (a reference is not flagged on the
  peers' word; a calibration check settles it). Two references that judge
  only each other, with no such set of peers to side with one, report a
  disagreement as ``zone_ambiguous`` too.
- Otherwise the consensus is the largest *coherent* set: sensors whose
  estimates lie within one window of each other (the largest window over the
  sorted estimates). The window is the watch level, or, where the estimates
  are noisier, ``SPREAD`` times the group's median noise of an estimate
  (:func:`drift_noise`, learned per sensor from its own residuals): the range
  that holds about every one of up to a few dozen clean estimates. It is identified when it holds at
  least half of the group's candidates and outnumbers every coherent set of
  the others (the drifting sensors do not agree with each other more than
  the consensus does). Its members vote; every other sensor is judged
  against them. This holds when up to half the zone drifts.
- When no set is identified (two sensors that disagree, half the zone
  drifting alike, most sensors apart from each other), the zone is ambiguous: which sensors
  drift cannot be told from a change that the zone shares, and a drift found
  there is reported as ``zone_ambiguous``, not as a sensor to recalibrate.

Faulty sensors (dead, stuck) never vote; readings out of the physical range
alone do not count as a fault here. Sensors without a
drift estimate (too few readings) vote and are not candidates.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Width of a coherent set in units of the noise of one drift estimate: the
#: expected range of n normal draws is about 2.5 (n = 6) to 3.9 (n = 30) SD.
SPREAD = 4.0


@dataclass
class Consensus:
    """Per sensor (rows of the grid's sensors)."""

    excluded: np.ndarray    # bool: does not vote in its group's consensus
    why: np.ndarray         # 'fault' | 'drifting' | 'outside_consensus' | None
    ambiguous: np.ndarray   # bool: its group's consensus is not identified
    n_members: np.ndarray   # int: consensus members of its group (candidates that vote)
    doubted: np.ndarray     # bool: a reference that no longer anchors (see below)
    doubted_by_peers: np.ndarray   # bool: ... and no other reference agrees with the peers
    pair_refs: np.ndarray   # bool: one of two references that no peer consensus can side with


def largest_window(d: np.ndarray, width: float) -> tuple[int, int]:
    """(start, size) of the largest run of sorted ``d`` spanning at most ``width``
    (the first such run when several tie)."""
    if len(d) == 0:
        return 0, 0
    end = np.searchsorted(d, d + width, side="right")
    size = end - np.arange(len(d))
    i = int(np.argmax(size))
    return i, int(size[i])


def drift_noise(x: np.ndarray, block_h: int = 72, first_hour: int = 0) -> np.ndarray:
    """Per row of the residual grid: the standard deviation of a difference of two
    ``block_h``-hour means (what a drift estimate is) without drift: 1.4826 x the
    median absolute deviation of the differences of consecutive block means (a
    steady drift shifts them all alike and does not count). NaN: fewer than 3 blocks.
    Blocks start at multiples of ``block_h`` hours since the epoch (``first_hour``:
    the epoch hour of column 0), so any grid holding a sensor gives it the same noise."""
    n_s, n_h = x.shape
    lead = (-first_hour) % block_h
    x = np.concatenate([np.full((n_s, block_h - lead), np.nan), x], axis=1) if lead else x
    n_h = x.shape[1]
    n_b = -(-n_h // block_h)
    if n_b * block_h > n_h:
        x = np.concatenate([x, np.full((n_s, n_b * block_h - n_h), np.nan)], axis=1)
    if n_b < 3:
        return np.full(n_s, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN blocks and rows
        means = np.nanmean(x[:, :n_b * block_h].reshape(n_s, n_b, block_h), axis=2)
        diff = np.diff(means, axis=1)
        mad = np.nanmedian(np.abs(diff - np.nanmedian(diff, axis=1)[:, None]), axis=1)
    return 1.4826 * mad


def consensus(sensors: pd.DataFrame, drift: np.ndarray, fault: np.ndarray,
              watch: np.ndarray, anchored: np.ndarray,
              noise: np.ndarray | None = None) -> Consensus:
    """See the module docstring. ``drift``: first-pass estimate per sensor (NaN: none);
    ``fault``: bool; ``watch``: watch level per sensor (% of scale); ``anchored``:
    bool per sensor, its group has a reference instrument; ``noise``: the noise of
    each drift estimate (:func:`drift_noise`; None: the watch level alone)."""
    noise = np.full(len(sensors), np.nan) if noise is None else noise
    n = len(sensors)
    excluded = fault.copy()
    why = np.where(fault, "fault", None).astype(object)
    ambiguous = np.zeros(n, bool)
    n_members = np.zeros(n, np.int64)
    anchor = sensors["is_anchor"] if "is_anchor" in sensors else sensors["is_reference"]
    cand = ~fault & np.isfinite(drift) & ~anchor.fillna(False).to_numpy(bool)
    keys = sensors.groupby(["zone", "metric"], dropna=False, sort=False).ngroup().to_numpy()
    order = np.lexsort((np.nan_to_num(drift), keys))
    bounds = np.flatnonzero(np.diff(keys[order])) + 1
    is_anchor = anchor.fillna(False).to_numpy(bool)
    doubted = np.zeros(n, bool)
    lone = np.zeros(n, bool)
    pair_refs = np.zeros(n, bool)
    for idx in np.split(order, bounds):
        c = idx[cand[idx]]
        if len(c) == 0:
            continue
        d = drift[c]                       # sorted within the group
        watch_c = float(np.median(watch[c]))
        se = noise[c][np.isfinite(noise[c])]
        w = max(watch_c, SPREAD * float(np.median(se))) if len(se) else watch_c
        start, size = largest_window(d, w)
        inside = np.zeros(len(c), bool)
        inside[start:start + size] = True
        _, rival = largest_window(d[~inside], w)
        identified = size >= 2 and 3 * size >= len(c) and size > rival
        if anchored[idx[0]]:
            anchors = idx[is_anchor[idx]]
            # Doubting a reference takes more than a consensus: a strict majority of
            # the peers agreeing within the watch level itself (a reference that
            # drifts moves its clean peers exactly alike; drifting peers that
            # roughly agree do not doubt it).
            t_start, t_size = largest_window(d, watch_c)
            tight = np.zeros(len(c), bool)
            tight[t_start:t_start + t_size] = True
            _, t_rival = largest_window(d[~tight], watch_c)
            if t_size >= 3 and 2 * t_size > len(c) and t_size > t_rival:
                inside, size = tight, t_size
                # The anchors against the peers' consensus: A - mean(anchors) is
                # d_A (n - 1) / n for n anchors (0 for one), the consensus is at
                # center against mean(anchors).
                center = float(np.median(d[inside]))
                k = len(anchors)
                own = np.nan_to_num(drift[anchors]) * (k - 1) / k if k > 1 else np.zeros(1)
                off = np.abs(own - center) >= watch_c
                doubted[anchors[off]] = True
                lone[anchors[off]] = off.all()
                if off.all():              # no anchor left: the peers' consensus rules
                    excluded[c[~inside]] = True
                    why[c[~inside]] = "outside_consensus"
                    n_members[idx] = size
                    continue
                out = np.abs(d - center) >= watch_c
            else:
                out = np.abs(d) >= watch_c
                # two references judge only each other: without 3+ coherent peers to
                # side with one, a disagreement between them cannot be placed
                pair_refs[anchors] = len(anchors) == 2
            excluded[c[out]] = True
            why[c[out]] = "drifting"
            n_members[idx] = int((~out).sum())
            continue
        if identified:
            excluded[c[~inside]] = True
            why[c[~inside]] = "outside_consensus"
            n_members[idx] = size
        elif len(c) >= 2:
            ambiguous[idx] = True
            n_members[idx] = 0
        else:
            n_members[idx] = 1
    excluded |= doubted
    why[doubted] = "doubted_reference"
    return Consensus(excluded, why, ambiguous, n_members, doubted, lone, pair_refs)
