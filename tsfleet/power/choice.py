"""A trend model per device, chosen by a rolling-origin backtest on its own history.

Candidates, each a trend of the charge-equivalent level (% per day):

* ``line_14d``: the least-squares straight line through the last :data:`LINE_DAYS` daily
  levels, as reported (what a user draws by eye): the reference every other candidate must
  beat;
* ``theil_sen_14d``: the robust line over the same days (the median of the slopes between
  every pair of days: a few outlying days, a gap or a quantisation step, do not tilt it);
* ``line_14d_temp``: the straight line, its rate scaled from the temperature of its own 14
  days to the temperature expected ahead (:mod:`tsfleet.power.ahead`) by the device's
  consumption coefficient (:mod:`tsfleet.power.temperature`): a line that knows the season
  turns, extrapolated from two weeks ago rather than from the fitted span's mean;
* ``holt_winters``: the damped-trend model on the temperature-adjusted series
  (:mod:`tsfleet.power.forecast`), scaled to the temperature ahead.

(A straight line through the whole fitted span was tried: on tsfleet's simulator it changed
nothing (87.0% / 87.2% within 10%), so it was left out.)

Each device's history is cut at origins ``end - H - j * ORIGIN_STEP`` (``j`` below
:data:`N_ORIGINS`, while :data:`LINE_DAYS` days remain before the origin), with a
backtest horizon ``H`` of the forecast's horizon or what the history allows; each
candidate predicts the drop over ``H`` from what it saw up to the origin (the temperature
effects too are fitted on the days up to the origin: fitted on the whole segment, they
carried the weeks being scored into the damped trend's series), and its error is
``|predicted - actual| / max(actual, DROP_FLOOR_PCT)``, averaged over the origins; the
actual drop is the difference of the observed levels at the origin and ``H`` days later,
each the least-squares line through the daily levels within :data:`LOCAL_DAYS` days of it
(a single day's level, as noisy as the gauge, let the noise decide between close models).

**The line is the default.** Another candidate is chosen only where its backtest error,
with the noise of the actual drops it was scored on added (the two observed levels, their
daily levels as noisy as the line's residuals), is still below the line's; the forecast
then blends it with the line by their errors (:func:`blend_weight`), so that a model which
won a few origins by chance does not carry the whole forecast. Where the device's own
history does not show that a model beats the straight line, the line is used, so on its
own history the chosen forecast is never worse than the line. A device whose
history is too short for :data:`MIN_BACKTEST_DAYS` gets the choice made most often among
its device type's devices (the pooled choice; ``line_14d`` when none has a backtest), and
says so.

>>> import numpy as np
>>> q = np.array([[50.0 - 0.5 * d for d in range(40)]])
>>> c = choose(q, q, np.array([0]), np.array([39]), np.array([0]), np.array(["t"]),
...            np.array([0.2]), np.array([0.05]), np.array([0.9999]), 30)
>>> str(c.chosen[0])
'line_14d'
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from tsfleet.power import ahead, holt, patterns, temperature

MODELS = ("line_14d", "theil_sen_14d", "line_14d_temp", "holt_winters")
LINE = 0                  # index of the reference (the straight line) in MODELS
LINE_DAYS = 14            # the straight line's window (days), as the baseline users draw
MIN_BACKTEST_DAYS = 7     # a backtest horizon shorter than this says too little
N_ORIGINS = 6             # rolling origins per device
ORIGIN_STEP = 4           # days between origins
LOCAL_DAYS = 3            # the observed level at a day: the line through the days within 3
DROP_FLOOR_PCT = 0.5      # a smaller actual drop is scored against this (points)
TIE = 1e-9                # a challenger equal to the line up to rounding: the line


def blend_weight(line_error: np.ndarray, error: np.ndarray) -> np.ndarray:
    """The weight of a chosen model against the straight line in the forecast:
    ``e_line^2 / (e_line^2 + e^2)`` from their mean backtest errors (inverse squared errors,
    the classic forecast combination); 1 where either is unknown.

    A few origins rank two close models by chance: the blend keeps most of a model that
    beat the line by far and half of one that merely tied it. By the triangle inequality,
    at every origin the blend's error is at most the weighted mean of the two errors, so on
    its own history the blend is no worse than the line when the model was better.

    >>> [round(float(w), 2) for w in blend_weight(np.array([0.3, 0.1]), np.array([0.1, 0.1]))]
    [0.9, 0.5]
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        w = line_error ** 2 / (line_error ** 2 + error ** 2)
    return np.where(np.isfinite(w), w, 1.0)


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
    # the range of the log temperature factors the backtest tried (each includes 0): the
    # damped trend's (n, 2) and the temperature-scaled line's (n, 2); see :func:`tested`
    tested_factor: np.ndarray | None = None
    tested_line_factor: np.ndarray | None = None


def tested(factor: np.ndarray, log_range: np.ndarray) -> np.ndarray:
    """A temperature factor held to the range its backtest tried.

    The backtest vouches for a temperature-scaled model only as far as the temperature
    moved at its origins: ahead of the last day the zone may be forecast further from the
    fitted span's mean than at any origin (a season that keeps turning), and the factor
    would then extrapolate a coefficient never scored at that distance (where the series'
    rate changed with time for another reason, a cell curve's bend or a duty cycle, the
    coefficient holds that too, as the span's temperature moved with time). So
    ``log(factor)`` is clipped to ``log_range`` (the smallest and largest log factor at the
    device's origins, each widened to include 0).

    >>> [round(float(f), 3) for f in tested(np.array([0.5, 1.1, 2.0]),
    ...                                     np.array([[-0.1, 0.0], [-0.1, 0.0], [0.0, 0.2]]))]
    [0.905, 1.0, 1.221]
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        lf = np.log(factor)
    return np.where(np.isfinite(lf), np.exp(np.clip(lf, log_range[:, 0], log_range[:, 1])),
                    factor)


def _level_at(y: np.ndarray, col: np.ndarray, lo: np.ndarray, hi: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """The level at ``col`` from the least-squares line through the daily levels within
    :data:`LOCAL_DAYS` of it (inside [lo, hi]), and how many days it used: the observed
    level, less noisy than one day's."""
    a, b = np.maximum(col - LOCAL_DAYS, lo), np.minimum(col + LOCAL_DAYS, hi)
    icpt, slope, _ = patterns.line_fit(y, a, b)
    cols = np.arange(y.shape[1])[None, :]
    used = (np.isfinite(y) & (cols >= a[:, None]) & (cols <= b[:, None])).sum(axis=1)
    return icpt + slope * col, used


def theil_sen(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Theil-Sen line per row over columns [lo, hi] (at most :data:`LINE_DAYS` of them):
    (level at ``hi``, slope): the median of the pairwise slopes, and the median of the
    levels' offsets from it. Rows with fewer than 2 days: slope 0, level NaN."""
    n = len(lo)
    cols = hi[:, None] - np.arange(LINE_DAYS)[::-1][None, :]          # (n, LINE_DAYS)
    ok = (cols >= np.maximum(lo, 0)[:, None]) & (cols >= 0)
    v = np.where(ok, y[np.arange(n)[:, None], np.clip(cols, 0, max(y.shape[1] - 1, 0))],
                 np.nan) if y.shape[1] else np.full(cols.shape, np.nan)
    i, j = np.triu_indices(LINE_DAYS, 1)
    pair = (v[:, j] - v[:, i]) / (j - i)[None, :]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # all-NaN rows: no days
        slope = np.nanmedian(pair, axis=1)
        slope = np.where(np.isfinite(slope), slope, 0.0)
        level = np.nanmedian(v - slope[:, None] * (np.arange(LINE_DAYS)[None, :]
                                                    - (LINE_DAYS - 1)), axis=1)
    return level, slope


def predicted_drops(y_adj: np.ndarray, q: np.ndarray, fit_start: np.ndarray, start: np.ndarray,
                    origin: np.ndarray, h: np.ndarray, alpha, beta, phi,
                    factor: np.ndarray, line_f: np.ndarray | None = None) -> np.ndarray:
    """Each candidate's predicted drop over ``h`` days from ``origin`` (rows: devices,
    columns: :data:`MODELS`), from the data up to the origin only (the lines: the
    segment's last :data:`LINE_DAYS` days, whatever the fitted span)."""
    n = len(origin)
    line_factor = np.ones(n) if line_f is None else line_f
    fs = _fit_start(fit_start, origin)
    icpt, slope, _ = patterns.line_fit(y_adj, fs, origin)
    lvl0 = icpt + slope * (fs - 1)
    _, trd, _ = holt.holt_damped(np.nan_to_num(y_adj), fs, origin, np.nan_to_num(lvl0),
                                 np.nan_to_num(slope), alpha, beta, phi)
    out = np.empty((n, len(MODELS)))
    lo = np.maximum(origin - LINE_DAYS + 1, start)
    _, s_line, _ = patterns.line_fit(q, lo, origin)
    out[:, LINE] = -s_line * h
    out[:, MODELS.index("theil_sen_14d")] = -theil_sen(q, lo, origin)[1] * h
    out[:, MODELS.index("line_14d_temp")] = out[:, LINE] * line_factor
    out[:, MODELS.index("holt_winters")] = -trd * factor * holt.damped_sum(phi, h)
    return out


def _fit_start(fit_start: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """The first day the damped trend is fitted on at ``origin``: the forecast's, unless it
    leaves fewer than 5 days before the origin (then the line's days)."""
    return np.where(fit_start <= origin - 5, fit_start, np.maximum(origin - LINE_DAYS + 1, 0))


def line_factor(temp: np.ndarray, k: np.ndarray, at: np.ndarray, t_ahead: np.ndarray
                ) -> np.ndarray:
    """The straight line's rate scaled from the temperature of its own days (the
    :data:`LINE_DAYS` up to ``at``) to the temperature expected ahead: ``exp(k (T_ahead -
    T_line))``, 1 where either is unknown (``k``: the device's consumption coefficient)."""
    n, m = temp.shape
    cols = np.arange(m)[None, :]
    win = (cols <= at[:, None]) & (cols > (at - LINE_DAYS)[:, None]) & np.isfinite(temp)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_line = np.where(win, temp, 0.0).sum(axis=1) / win.sum(axis=1)
        d = k * (t_ahead - t_line)
    return np.where(np.isfinite(d), np.exp(np.clip(np.nan_to_num(d), -1, 1)), 1.0)


def choose(y_adj: np.ndarray, q: np.ndarray, fit_start: np.ndarray, end: np.ndarray,
           start: np.ndarray, device_type: np.ndarray, alpha, beta, phi, horizon: int,
           factor=None, eligible: np.ndarray | None = None,
           pooled: dict | None = None) -> Choice:
    """Backtest the candidates on each device's own history and choose (see the module).

    ``pooled`` maps a device type to the pooled choice of an earlier fleet run, used for
    its short histories instead of this run's (an incremental run decides as the fleet)."""
    n = len(end)
    # ``factor``: None (no temperature), or (temperature (n, m), pools): the temperature
    # effects refitted on the days up to each origin (shrunk to ``pools``, the type's
    # (k_mean, k_tau2, g_mean, g_tau2)), the damped trend on the series they adjust, its rate
    # scaled to the temperature expected ahead of the origin, as the forecast scales it
    # ahead of the last day (tsfleet.power.ahead)
    eligible = np.ones(n, dtype=bool) if eligible is None else eligible
    alpha, beta, phi = (np.broadcast_to(np.asarray(v, float), (n,)) for v in (alpha, beta, phi))
    span = end - start + 1
    h = np.minimum(horizon, span - LINE_DAYS).astype(float)
    own = eligible & (h >= MIN_BACKTEST_DAYS)
    err_sum = np.zeros((n, len(MODELS)))
    noise_sum = np.zeros(n)
    n_orig = np.zeros(n, dtype=int)
    f_range, lf_range = np.zeros((n, 2)), np.zeros((n, 2))
    for j in range(N_ORIGINS):
        origin = (end - h - j * ORIGIN_STEP).astype(int)
        ok = own & (origin - start + 1 >= LINE_DAYS)
        if not ok.any():
            break
        f_o, lf_o, y_o = np.ones(ok.sum()), np.ones(ok.sum()), y_adj[ok]
        if factor is not None:
            # the temperature effects as the days up to the origin show them: fitted on the
            # whole segment, they knew the weeks the backtest scores (a consumption that grew
            # as the zone cooled after the origin straightened the series the damped trend
            # was fitted on, and it won backtests it then lost ahead)
            temp, pools = factor
            fs = _fit_start(fit_start[ok], origin[ok])
            tf = temperature.fit(q[ok], temp[ok], fs, origin[ok], device_type[ok], pools)
            y_o = tf.adjusted
            t_o, _ = ahead.expected(temp[ok], origin[ok], horizon)
            k = np.where(tf.known, tf.k, np.nan)
            with np.errstate(invalid="ignore"):
                f_o = np.where(np.isfinite(t_o - tf.t_ref) & np.isfinite(k),
                               np.exp(np.clip(np.nan_to_num(k * (t_o - tf.t_ref)), -1, 1)),
                               1.0)
            lf_o = line_factor(temp[ok], k, origin[ok], t_o)
        pred = predicted_drops(y_o, q[ok], fit_start[ok], start[ok], origin[ok], h[ok],
                               alpha[ok], beta[ok], phi[ok], f_o, lf_o)
        a0, n0 = _level_at(q[ok], origin[ok], start[ok], end[ok])
        a1, n1 = _level_at(q[ok], origin[ok] + h[ok].astype(int), start[ok], end[ok])
        actual = a0 - a1
        with np.errstate(invalid="ignore"):
            e = np.abs(pred - actual[:, None]) / np.maximum(np.abs(actual), DROP_FLOOR_PCT)[:, None]
        good = np.isfinite(e).all(axis=1)
        rows = np.flatnonzero(ok)[good]
        err_sum[rows] += e[good]
        for rng, f in ((f_range, f_o), (lf_range, lf_o)):
            lg = np.log(f[good])
            rng[rows, 0] = np.minimum(rng[rows, 0], lg)
            rng[rows, 1] = np.maximum(rng[rows, 1], lg)
        n_orig[rows] += 1
        # the actual drop's own noise: two local levels, from daily levels each as noisy as
        # the line's residuals
        _, _, sd = patterns.line_fit(q[ok], np.maximum(origin[ok] - LINE_DAYS + 1, start[ok]),
                                     origin[ok])
        with np.errstate(invalid="ignore", divide="ignore"):
            se = np.nan_to_num(sd) * np.sqrt(1.0 / n0 + 1.0 / n1)
        noise_sum[rows] += (np.nan_to_num(se) / np.maximum(np.abs(actual), DROP_FLOOR_PCT))[good]
    has = n_orig > 0
    with np.errstate(invalid="ignore"):
        err = np.where(has[:, None], err_sum / np.maximum(n_orig, 1)[:, None], np.nan)
    # the line first: another model must beat its error by the noise of the actual drops
    # it was scored on (and is then blended with the line: see blend_weight)
    noise = noise_sum / np.maximum(n_orig, 1)
    is_line = np.arange(len(MODELS)) == LINE
    handicap = np.where(is_line[None, :], err, err + noise[:, None] + TIE)
    rank = np.argsort(np.where(has[:, None], handicap, 0.0), axis=1, kind="stable")
    best, second = rank[:, 0], rank[:, 1]
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
        if pooled and isinstance(pooled.get(t), str) and pooled[t] in MODELS:
            by_type[t] = pooled[t]
        elif len(picks):
            v, c = np.unique(picks.astype(str), return_counts=True)
            by_type[t] = str(v[np.argmax(c)])
        else:
            by_type[t] = MODELS[LINE]
        chosen[short & (device_type == t)] = by_type[t]
    return Choice(chosen, runner, e_best, e_second, np.where(has, h, 0.0), n_orig, short, err,
                  by_type, f_range, lf_range)
