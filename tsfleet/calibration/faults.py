"""Faults that show on the residual grid: stuck sensors and spikes.

The same rules as before in SQL (``calibration_spikes`` still states the
spike rule as a view, and a test checks both agree), over the sensor-hours
with a residual, in time order per sensor:

- ``stuck``: the last run of identical hourly values is at least 24 readings
  long while the expectation moved by at least 1% of scale over it;
- spike hours: the residual jumps away from both neighbouring readings
  (``jump = r - (prev + next) / 2``) while those agree (``|prev - next| <
  |jump| / 2``), by at least 8 robust jump scales (1.4826 x the sensor's
  median absolute jump, at least 0.05% of scale) and at least 5% of scale;
  a sensor with 3 or more is faulty (``spikes``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STUCK_MIN_RUN = 24
STUCK_MIN_EXPECTED_RANGE_PCT = 1.0
SPIKE_Z, SPIKE_MIN_PCT, SPIKE_MIN_SCALE, SPIKES_FOR_FAULT = 8.0, 5.0, 0.05, 3


@dataclass
class GridFaults:
    stuck: np.ndarray          # bool per sensor
    stuck_since: np.ndarray    # column of the run start (-1)
    stuck_n: np.ndarray        # readings in the run
    stuck_value: np.ndarray    # the value it reads
    spike_row: np.ndarray      # per spike hour: sensor row
    spike_col: np.ndarray      # ... column
    spike_z: np.ndarray        # ... robust z
    n_spikes: np.ndarray       # per sensor
    first_spike: np.ndarray    # column (-1)


def grid_faults(value: np.ndarray, expected: np.ndarray, x: np.ndarray,
                scale: np.ndarray, spikes: bool = True) -> GridFaults:
    """Stuck runs and (unless ``spikes=False``) spikes of every row of the residual grid."""
    n_s, n_h = x.shape
    rows = np.arange(n_s)
    # Stuck: the last run of equal values (hours without a residual do not break it).
    valid = ~np.isnan(x)
    has = valid.any(1)
    last = (n_h - 1) - np.argmax(valid[:, ::-1], axis=1)
    v_last = value[rows, last]
    differ = valid & (value != v_last[:, None])
    last_diff = np.where(differ.any(1), (n_h - 1) - np.argmax(differ[:, ::-1], axis=1), -1)
    in_run = valid & (np.arange(n_h)[None, :] > last_diff[:, None])
    del differ
    run_n = in_run.sum(1)
    since = np.argmax(in_run, axis=1)
    hi = np.where(in_run, expected, -np.inf).max(1)
    lo = np.where(in_run, expected, np.inf).min(1)
    del in_run
    with np.errstate(invalid="ignore", divide="ignore"):
        rng_pct = np.where(has, 100 * (hi - lo) / scale, 0.0)
    stuck = has & (run_n >= STUCK_MIN_RUN) & (rng_pct >= STUCK_MIN_EXPECTED_RANGE_PCT)
    stuck_since = np.where(stuck, since, -1)
    stuck_value = np.where(stuck, v_last, np.nan)
    if not spikes:
        none = np.zeros(0, np.int64)
        return GridFaults(stuck, stuck_since, run_n, stuck_value, none, none, np.zeros(0),
                          np.zeros(n_s, np.int64), np.full(n_s, -1))
    rr, cc = np.nonzero(valid)
    del valid
    same_row = np.zeros(len(rr), bool)
    same_row[1:] = rr[1:] == rr[:-1]

    # Spikes: jumps away from both neighbours.
    r = x[rr, cc]
    inner = np.zeros(len(rr), bool)
    inner[1:-1] = same_row[1:-1] & same_row[2:]
    prev = np.roll(r, 1)
    nxt = np.roll(r, -1)
    jump = np.where(inner, r - (prev + nxt) / 2, np.nan)
    aj = np.full((n_s, n_h), np.nan, np.float32)   # for the median only
    aj[rr, cc] = np.abs(jump)
    aj.sort(axis=1)
    k = np.sum(~np.isnan(aj), axis=1)
    lo_i, hi_i = np.maximum((k - 1) // 2, 0), np.maximum(k // 2, 0)
    med = (aj[rows, np.minimum(lo_i, n_h - 1)].astype(float)
           + aj[rows, np.minimum(hi_i, n_h - 1)].astype(float)) / 2
    del aj
    jscale = np.maximum(1.4826 * np.where(k > 0, med, np.nan), SPIKE_MIN_SCALE)
    js = jscale[rr]
    with np.errstate(invalid="ignore"):
        spike = (inner & (np.abs(jump) >= SPIKE_Z * js) & (np.abs(jump) >= SPIKE_MIN_PCT)
                 & (np.abs(prev - nxt) < np.abs(jump) / 2))
    n_spikes = np.bincount(rr[spike], minlength=n_s)
    first = np.full(n_s, n_h, np.int64)
    np.minimum.at(first, rr[spike], cc[spike])
    return GridFaults(stuck, stuck_since, run_n, stuck_value, rr[spike], cc[spike],
                      jump[spike] / js[spike], n_spikes, np.where(first < n_h, first, -1))
