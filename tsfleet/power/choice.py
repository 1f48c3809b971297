"""A trend model per device, chosen by a rolling-origin backtest on its own history.

Candidates, each a trend of the charge-equivalent level (% per day):

* ``holt_winters``: the damped-trend model on the temperature-adjusted series
  (:mod:`tsfleet.power.forecast`), scaled to the temperature ahead;
* ``line_14d``: the straight line through the last :data:`LINE_DAYS` daily levels, as
  reported (what a user draws by eye).

(A third candidate, the straight line through the whole fitted span, was tried: on
tsfleet's simulator it changed nothing (87.0% / 87.2% within 10%), so it was left out.)

Each device's history is cut at origins ``end - H - j * ORIGIN_STEP`` (``j`` below
:data:`N_ORIGINS`, while :data:`LINE_DAYS` days remain before the origin), with a
backtest horizon ``H`` of the forecast's horizon or what the history allows; each
candidate predicts the drop over ``H`` from what it saw up to the origin, and its error
is ``|predicted - actual| / max(actual, DROP_FLOOR_PCT)``, averaged over the origins.
The least error wins, where the line must beat the damped trend's error by
:data:`CHOICE_MARGIN` of it plus the noise of the actual drops (two daily levels as
noisy as the line's residuals): on its own history a device's chosen model is never
worse than the straight line by more than that noise. Where both forecast the same drop
ahead (within :data:`CHOICE_MARGIN`), the line wins the near-tie instead. (The line
winning every near-tie was measured on tsfleet's simulator, seed 1, 600 x 90: 89.9% within
10% against 95.7% with the damped trend alone: three origins a week apart do not tell
which of two close models holds over the next month, and the damped trend carries the
temperature, the knee and the step changes that the line does not.) A device whose
history is too short for :data:`MIN_BACKTEST_DAYS` gets the choice made most often
among its device type's devices (the pooled choice; ``holt_winters`` when none has a
backtest), and says so.

>>> import numpy as np
>>> q = np.array([[50.0 - 0.5 * d for d in range(40)]])
>>> c = choose(q, q, np.array([0]), np.array([39]), np.array([0]), np.array(["t"]),
...            np.array([0.2]), np.array([0.05]), np.array([0.9999]), 30)
>>> str(c.chosen[0])
'line_14d'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsfleet.power import ahead, holt, patterns

MODELS = ("holt_winters", "line_14d")
LINE_DAYS = 14            # the straight line's window (days), as the baseline users draw
MIN_BACKTEST_DAYS = 7     # a backtest horizon shorter than this says too little
N_ORIGINS = 3             # rolling origins per device
ORIGIN_STEP = 7           # days between origins
DROP_FLOOR_PCT = 0.5      # a smaller actual drop is scored against this (points)
CHOICE_MARGIN = 0.1       # the line must beat the damped trend's error by 10% (of it):
                          #   three origins do not tell a smaller difference from noise


@dataclass
class Choice:
    chosen: np.ndarray          # model name per device
    runner_up: np.ndarray       # second best (None: no backtest)
    error: np.ndarray           # chosen model's mean backtest error, fraction of the drop
    runner_up_error: np.ndarray
    horizon: np.ndarray         # backtest horizon (days; 0: none, the pooled choice)
    n_origins: np.ndarray
    is_pooled: np.ndarray       # too little history: the type's pooled choice
    errors: np.ndarray          # (n, len(MODELS)) every candidate's mean error (NaN: none)
    by_type: dict               # device type -> its pooled choice


def _at(y: np.ndarray, col: np.ndarray) -> np.ndarray:
    c = np.clip(col, 0, max(y.shape[1] - 1, 0))
    return np.where(col >= 0, y[np.arange(len(col)), c], np.nan)


def predicted_drops(y_adj: np.ndarray, q: np.ndarray, fit_start: np.ndarray, start: np.ndarray,
                    origin: np.ndarray, h: np.ndarray, alpha, beta, phi,
                    factor: np.ndarray) -> np.ndarray:
    """Each candidate's predicted drop over ``h`` days from ``origin`` (rows: devices,
    columns: :data:`MODELS`), from the data up to the origin only (the line: the
    segment's last :data:`LINE_DAYS` days, whatever the fitted span)."""
    n = len(origin)
    fs = np.where(fit_start <= origin - 5, fit_start, np.maximum(origin - LINE_DAYS + 1, 0))
    icpt, slope, _ = patterns.line_fit(y_adj, fs, origin)
    lvl0 = icpt + slope * (fs - 1)
    _, trd, _ = holt.holt_damped(np.nan_to_num(y_adj), fs, origin, np.nan_to_num(lvl0),
                                 np.nan_to_num(slope), alpha, beta, phi)
    out = np.empty((n, len(MODELS)))
    out[:, 0] = -trd * factor * holt.damped_sum(phi, h)
    _, s_line, _ = patterns.line_fit(q, np.maximum(origin - LINE_DAYS + 1, start), origin)
    out[:, 1] = -s_line * h
    return out


def choose(y_adj: np.ndarray, q: np.ndarray, fit_start: np.ndarray, end: np.ndarray,
           start: np.ndarray, device_type: np.ndarray, alpha, beta, phi, horizon: int,
           factor=None, eligible: np.ndarray | None = None,
           pooled: dict | None = None, ahead_drops: np.ndarray | None = None) -> Choice:
    """Backtest the candidates on each device's own history and choose (see the module).

    ``pooled`` maps a device type to the pooled choice of an earlier fleet run, used for
    its short histories instead of this run's (an incremental run decides as the fleet)."""
    n = len(end)
    # ``factor``: None (no temperature), or (temperature (n, m), k, t_ref): the damped
    # trend's rate scaled to the temperature expected ahead of each origin, as the forecast
    # scales it ahead of the last day (tsfleet.power.ahead)
    eligible = np.ones(n, dtype=bool) if eligible is None else eligible
    alpha, beta, phi = (np.broadcast_to(np.asarray(v, float), (n,)) for v in (alpha, beta, phi))
    span = end - start + 1
    h = np.minimum(horizon, span - LINE_DAYS).astype(float)
    own = eligible & (h >= MIN_BACKTEST_DAYS)
    err_sum = np.zeros((n, len(MODELS)))
    noise_sum = np.zeros(n)
    n_orig = np.zeros(n, dtype=int)
    for j in range(N_ORIGINS):
        origin = (end - h - j * ORIGIN_STEP).astype(int)
        ok = own & (origin - start + 1 >= LINE_DAYS)
        if not ok.any():
            break
        f_o = np.ones(ok.sum())
        if factor is not None:
            temp, k, t_ref = factor
            t_o, _ = ahead.expected(temp[ok], origin[ok], horizon)
            with np.errstate(invalid="ignore"):
                f_o = np.where(np.isfinite(t_o - t_ref[ok]) & np.isfinite(k[ok]),
                               np.exp(np.clip(np.nan_to_num(k[ok] * (t_o - t_ref[ok])), -1, 1)),
                               1.0)
        pred = predicted_drops(y_adj[ok], q[ok], fit_start[ok], start[ok], origin[ok], h[ok],
                               alpha[ok], beta[ok], phi[ok], f_o)
        actual = _at(q[ok], origin[ok]) - _at(q[ok], origin[ok] + h[ok].astype(int))
        with np.errstate(invalid="ignore"):
            e = np.abs(pred - actual[:, None]) / np.maximum(np.abs(actual), DROP_FLOOR_PCT)[:, None]
        good = np.isfinite(e).all(axis=1)
        rows = np.flatnonzero(ok)[good]
        err_sum[rows] += e[good]
        n_orig[rows] += 1
        # the actual drop's own noise: two daily levels, each as noisy as the line's residuals
        _, _, sd = patterns.line_fit(q[ok], np.maximum(origin[ok] - LINE_DAYS + 1, start[ok]),
                                     origin[ok])
        noise_sum[rows] += (np.sqrt(2) * np.nan_to_num(sd)
                            / np.maximum(np.abs(actual), DROP_FLOOR_PCT))[good]
    has = n_orig > 0
    with np.errstate(invalid="ignore"):
        err = np.where(has[:, None], err_sum / np.maximum(n_orig, 1)[:, None], np.nan)
    # the damped trend first among equals: the line must beat it by CHOICE_MARGIN of its
    # error and by the noise of the actual drops it was scored on
    # ... unless both forecast the same drop ahead (within CHOICE_MARGIN): then the simpler
    # line wins the near-tie, as nothing rides on it
    order_cols = np.array([0, 1])
    is_line = np.array(MODELS)[order_cols] == "line_14d"
    noise = noise_sum / np.maximum(n_orig, 1)
    handicap = np.where(~is_line[None, :], err[:, order_cols],
                        err[:, order_cols] * (1.0 + CHOICE_MARGIN) + noise[:, None])
    if ahead_drops is not None:
        with np.errstate(invalid="ignore"):
            agree = (np.abs(ahead_drops[:, 0] - ahead_drops[:, 1])
                     <= CHOICE_MARGIN * np.abs(ahead_drops[:, 1]))
        line_first = np.where(~is_line[None, :],
                              err[:, order_cols] * (1.0 + CHOICE_MARGIN) + noise[:, None],
                              err[:, order_cols])
        handicap = np.where(agree[:, None], line_first, handicap)
    rank = np.argsort(np.where(has[:, None], handicap, 0.0), axis=1, kind="stable")
    best, second = order_cols[rank[:, 0]], order_cols[rank[:, 1]]
    names = np.array(MODELS, dtype=object)
    chosen = np.where(has, names[best], None).astype(object)
    runner = np.where(has, names[second], None).astype(object)
    e_best = np.where(has, np.take_along_axis(np.nan_to_num(err), best[:, None], 1)[:, 0], np.nan)
    e_second = np.where(has, np.take_along_axis(np.nan_to_num(err), second[:, None], 1)[:, 0],
                        np.nan)
    short = ~has
    by_type = {}
    for t in np.unique(device_type):
        picks = chosen[has & (device_type == t)]
        if pooled and isinstance(pooled.get(t), str):
            by_type[t] = pooled[t]
        elif len(picks):
            v, c = np.unique(picks.astype(str), return_counts=True)
            by_type[t] = str(v[np.argmax(c)])
        else:
            by_type[t] = MODELS[0]
        chosen[short & (device_type == t)] = by_type[t]
    return Choice(chosen, runner, e_best, e_second, np.where(has, h, 0.0), n_orig, short, err,
                  by_type)
