"""Battery forecasts for the whole fleet: Holt-Winters per device, fallbacks per item.

For each battery device: its current discharge segment (since the last reset)
as daily charge-equivalent levels (SQL does the daily aggregation), the
pattern, then a damped-trend Holt-Winters model fitted from the change point
on (step changes) or the segment start. Smoothing parameters are shared per
device type and fitted by statsmodels on a few steady devices of the type;
the per-device recursion runs vectorized (see :mod:`tsfleet.power.holt`).

The level at the horizon, the critical and empty dates come with a 90%
interval from the spread of the one-step errors and the uncertainty of the
rate: the error the device's own backtest measured (:mod:`tsfleet.power.choice`)
where it has one, else the fit's standard error. Devices with too little history
get the *type prior* (the median rate of their device type in this run) and say
so in ``reason``; devices without battery data get a ``no_data`` row. No device
is dropped silently.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import numpy as np

from tsfleet.power import ahead, choice, daystats, holt, knee, patterns, sag, series, temperature
from tsfleet.power.chemistry import charge_from_level, level_from_charge
from tsfleet.results import write_result

Z90 = 1.645
SAMPLE_PER_TYPE = 3
RATE_FLOOR_REL = 0.04          # model uncertainty of the rate, relative
BT_SD = float(np.sqrt(np.pi / 2))   # a mean absolute error to a standard deviation (normal)
DEFAULT_RATE = 0.3             # % per day when a type has no fitted device at all
RECENT_DAYS = 7                # the gauge reads now at the last week's temperature
SHORT_NOISE_PCT = 0.15         # floor of the daily-mean noise of a short segment, %
PRIOR_REL_SD = 0.5             # spread of the fallback rate between devices, relative
PREV_REL_SD = 0.15             # spread of a device's rate from one segment to the next
REFIT_DAYS = 7                 # shared parameters fitted on data this recent are reused
KNEE_FIT_DAYS = 10             # near the knee, the model is fitted on the last days only
LINE_PHI = 1 - 1e-9            # a chosen straight line: no damping to speak of


def run(con, horizon_days: int = 30, devices: list[str] | None = None,
        until: datetime | None = None, shared: dict | None = None,
        map_fn=map) -> dict[str, np.ndarray]:
    """Forecast every battery device (or ``devices``) as of ``until`` (default: its last data).

    Returns the columns of ``battery_forecast`` (without computed_at/params).
    ``shared`` maps device type to :class:`~tsfleet.power.holt.HoltParams` to
    reuse instead of fitting. ``map_fn``: how the per-type statsmodels fits are run
    (see :func:`shared_params`).
    """
    if shared is None and not _fresh_params(con):
        holt.preload()                  # the per-type fits will need statsmodels
    daystats.refresh(con)
    s = series.load(con, devices, until, correct_sag=False)
    if shared is None:
        shared = cached_params(con, s, until)
    if devices is not None and not _complete(shared, s):
        # the pooled parameters are due: pool them over the whole fleet (a full run)
        s = series.load(con, None, until, correct_sag=False)
        shared = cached_params(con, s, until)
    s = sag.correct(s, {t: sag.Pool(p.sag_scale_c, p.sag_v_at_20c, p.sag_t_min_c, p.sag_t_max_c,
                                    p.sag_clear, p.sag_span_lo_v, p.sag_span_hi_v)
                        for t, p in shared.items() if p.is_pooled})
    critical = _critical_pct(con, s.device_type)
    out = compute(s, horizon_days, critical, until=until, shared=shared, map_fn=map_fn)
    fresh = {t: p for t, p in out["shared"].items()
             if t not in shared or not shared[t].is_pooled}
    if fresh and until is None:
        store_params(con, fresh, _last_day(s))
    return out


def _fresh_params(con) -> bool:
    """Whether cached pooled parameters recent enough to reuse may exist."""
    return con.execute(
        "select count(*) > 0 from battery_holt_params where fitted_through >= "
        "(select max(day) from battery_day_stats) - ?::integer", [REFIT_DAYS]).fetchall()[0][0]


def _complete(shared: dict, s: series.Series) -> bool:
    return all(t in shared and shared[t].is_pooled for t in np.unique(s.device_type))


def _last_day(s: series.Series):
    return (s.day0 + np.timedelta64(int(s.end.max(initial=0)), "D")).astype("datetime64[D]").item()


def cached_params(con, s: series.Series, until: datetime | None) -> dict[str, holt.HoltParams]:
    """Shared parameters fitted on data no older than REFIT_DAYS before the last day (and,
    for a forecast as of ``until``, on nothing after it)."""
    if not s.n or s.end.max(initial=-1) < 0:
        return {}
    last = _last_day(s)
    rows = con.execute(
        "select device_type, alpha, beta, phi, source, prior_rate_pct_per_day, k_mean_per_c, "
        "k_tau2, g_mean_pct_per_c, g_tau2, sag_scale_c, sag_v_at_20c, sag_t_min_c, sag_t_max_c, "
        "knee_shown, pooled_model, sag_clear, sag_span_lo_v, sag_span_hi_v "
        "from battery_holt_params "
        "where fitted_through >= ?::date - ?::integer and fitted_through <= ?::date",
        [last, REFIT_DAYS, last]).fetchall()
    return {t: holt.HoltParams(a, b, p, f"cached {src}", *(np.nan if v is None else v
                                                           for v in pool))
            for t, a, b, p, src, *pool in rows}


def store_params(con, params: dict[str, holt.HoltParams], fitted_through) -> None:
    types = sorted(params)

    def col(name):
        return np.array([getattr(params[t], name) for t in types], dtype=float)

    write_result(con, "battery_holt_params", dict(
        device_type=np.array(types, dtype=object),
        alpha=col("alpha"), beta=col("beta"), phi=col("phi"),
        source=np.array([params[t].source for t in types], dtype=object),
        fitted_through=np.full(len(types), np.datetime64(fitted_through, "D")),
        prior_rate_pct_per_day=col("prior_rate"), k_mean_per_c=col("k_mean"),
        k_tau2=col("k_tau2"), g_mean_pct_per_c=col("g_mean"), g_tau2=col("g_tau2"),
        sag_scale_c=col("sag_scale_c"), sag_v_at_20c=col("sag_v_at_20c"),
        sag_t_min_c=col("sag_t_min_c"), sag_t_max_c=col("sag_t_max_c"),
        knee_shown=col("knee_shown"), sag_clear=col("sag_clear"),
        sag_span_lo_v=col("sag_span_lo_v"), sag_span_hi_v=col("sag_span_hi_v"),
        pooled_model=np.array([params[t].pooled_model if isinstance(params[t].pooled_model, str)
                               else None for t in types], dtype=object)),
        params={"refit_days": REFIT_DAYS}, key=["device_type"])


def _critical_pct(con, device_type: np.ndarray) -> np.ndarray:
    rows = dict(con.execute("select device_type, critical_pct from battery_thresholds").fetchall())
    return np.array([rows.get(t, rows.get("*", 10.0)) for t in device_type], dtype=float)


def shared_params(s: series.Series, y: np.ndarray, pat: patterns.Patterns,
                  fit_start: np.ndarray, eligible: np.ndarray,
                  map_fn=map) -> dict[str, holt.HoltParams]:
    """statsmodels fits on the longest steady series of each device type; medians per type.

    The fits are independent: ``map_fn`` runs :func:`tsfleet.power.holt.fit_sample` over
    every type's samples at once (``map``, in order; a distributed run passes an engine's
    map, so the fits of a fleet step run on the workers in parallel). The answer does not
    depend on where or in which order they run."""
    length = s.end - fit_start + 1
    types = list(np.unique(s.device_type))
    samples = []
    for t in types:
        cand = np.flatnonzero((s.device_type == t) & eligible & (pat.pattern == "steady")
                              & (length >= 14))
        cand = cand[np.argsort(-length[cand], kind="stable")][:SAMPLE_PER_TYPE]
        samples.append([y[i, fit_start[i]: s.end[i] + 1] for i in cand])
    flat = list(map_fn(holt.fit_sample, [y_ for ys in samples for y_ in ys]))
    out, at = {}, 0
    for t, ys in zip(types, samples, strict=True):
        out[t] = holt.pool_fits(flat[at: at + len(ys)])
        at += len(ys)
    return out


def compute(s: series.Series, horizon_days: int, critical_pct: np.ndarray,
            until: datetime | None = None, shared: dict | None = None,
            map_fn=map) -> dict[str, np.ndarray]:
    n = s.n
    pooled = {t: (p.k_mean, p.k_tau2, p.g_mean, p.g_tau2)
              for t, p in (shared or {}).items() if p.is_pooled}
    # each cell's own knee, where its history (or, for a percent gauge, its type's) shows it
    s, shown = knee.fit_pooled(s, {t: p.knee_shown for t, p in (shared or {}).items()
                                   if p.is_pooled})
    pat = patterns.classify(s, pooled)
    fit_start = pat.fit_start
    # near and below the knee, the chemistry's nominal knee differs from the device's own,
    # so the charge-equivalent series bends: fit the recent days only
    level_now = (s.level[np.arange(n), np.maximum(s.end, 0)] if s.level.shape[1]
                 else np.full(n, np.nan))
    # (not for an erratic gauge: ten of its days fix no rate, a bent line over its segment does)
    near_knee = ((s.end >= 0) & (s.knee > 0) & (level_now < s.knee + 5)
                 & (pat.pattern != "erratic"))
    fit_start = np.where(near_knee, np.maximum(fit_start, s.end - KNEE_FIT_DAYS), fit_start)
    tf = pat.temp
    y = tf.adjusted                     # the series at the span's mean temperature
    has_data = s.end >= 0
    eligible = has_data & (s.n_days >= patterns.MIN_DAYS) & (s.end - fit_start + 1 >= 4)
    params = dict(shared or {})
    missing = {t for t in np.unique(s.device_type) if t not in params}
    if missing:
        fitted = shared_params(s, y, pat, fit_start,
                               eligible & np.isin(s.device_type, list(missing)), map_fn)
        params.update({t: fitted[t] for t in missing})
    alpha = np.array([params[t].alpha for t in s.device_type]) if n else np.zeros(0)
    beta = np.array([params[t].beta for t in s.device_type]) if n else np.zeros(0)
    phi = np.array([params[t].phi for t in s.device_type]) if n else np.zeros(0)

    # initial states: the least-squares line over the fitted span
    intercept, slope, _ = patterns.line_fit(y, fit_start, s.end)
    start = np.where(eligible, fit_start, y.shape[1] + 1)
    lvl0 = intercept + slope * (fit_start - 1)
    lvl, trd, err = holt.holt_damped(np.nan_to_num(y), start, s.end,
                                     np.nan_to_num(lvl0), np.nan_to_num(slope), alpha, beta, phi)
    with np.errstate(invalid="ignore"):
        sigma = np.sqrt(np.nansum(err ** 2, axis=1) / np.maximum(np.isfinite(err).sum(axis=1), 1))
        span = np.maximum(s.end - fit_start + 1, 1)
        se_rate = sigma * np.sqrt(12.0 / np.maximum(span ** 3 - span, 1))
    t_ahead, t_basis = ahead.expected(s.temperature, s.end, horizon_days)
    temp_k, temp_factor, lvl_offset = future_temperature(s, tf, eligible, -trd, t_ahead)
    trd = trd * temp_factor
    lvl = lvl + lvl_offset
    # fallback: the type prior
    rate_fit = -trd
    prior = {}
    for t in np.unique(s.device_type):
        r = rate_fit[eligible & (s.device_type == t)]
        p = params[t]
        prior[t] = (p.prior_rate if p.is_pooled else
                    float(np.median(r)) if len(r) else DEFAULT_RATE)
        params[t] = replace(p, prior_rate=prior[t], **dict(zip(
            ("k_mean", "k_tau2", "g_mean", "g_tau2"),
            pooled.get(t, tf.pools.get(t, (0.0, temperature.MIN_TAU ** 2) * 2)), strict=True)),
            **dict(zip(("sag_scale_c", "sag_v_at_20c", "sag_t_min_c", "sag_t_max_c", "sag_clear",
                        "sag_span_lo_v", "sag_span_hi_v"),
                       (s.sag_pool or {}).get(t, sag.Pool()), strict=True)),
            knee_shown=shown.get(t, np.nan))
    prior_t = np.array([prior[t] for t in s.device_type]) if n else np.zeros(0)
    trd, _ = shrink_erratic(trd, se_rate, prior_t, eligible & (pat.pattern == "erratic"))
    # the model of each device: chosen by a backtest on its own history (tsfleet.power.choice)
    lo14 = np.maximum(s.end - choice.LINE_DAYS + 1, s.start)
    line_icpt, line_slope, _ = patterns.line_fit(s.charge, lo14, s.end)
    ts_level, ts_slope = choice.theil_sen(s.charge, lo14, s.end)
    pick = choice.choose(y, s.charge, fit_start, s.end, s.start, s.device_type, alpha, beta,
                         phi, horizon_days, eligible=eligible,
                         factor=(s.temperature, {**tf.pools, **pooled}),
                         pooled={t: p.pooled_model for t, p in (shared or {}).items()
                                 if p.is_pooled})
    params = {t: replace(p, pooled_model=pick.by_type.get(t, p.pooled_model))
              for t, p in params.items()}
    # the temperature ahead scales a model only as far as its own backtest tried it
    # (choice.tested); the type's pooled choice (no own backtest) keeps its factor
    own_bt = eligible & ~pick.is_pooled
    held = np.where(own_bt, choice.tested(temp_factor, pick.tested_factor), temp_factor)
    trd = trd * np.where(temp_factor > 0, held / temp_factor, 1.0)
    temp_factor = held
    # a chosen line: its own slope and its level at the last day, undamped, no temperature
    is_line, is_ts, is_lt = (eligible & (pick.chosen == m)
                             for m in ("line_14d", "theil_sen_14d", "line_14d_temp"))
    straight = is_line | is_ts | is_lt
    lf = choice.line_factor(s.temperature, np.where(tf.known, tf.k, np.nan), s.end, t_ahead)
    lf = np.where(own_bt, choice.tested(lf, pick.tested_line_factor), lf)
    trd = np.where(is_line, line_slope, np.where(is_ts, ts_slope, np.where(
        is_lt, line_slope * lf, trd)))
    lvl = np.where(is_line | is_lt, line_icpt + line_slope * s.end, np.where(is_ts, ts_level, lvl))
    phi = np.where(straight, LINE_PHI, phi)
    temp_factor = np.where(straight, 1.0, temp_factor)
    # a model that beat the line is blended with it, by their backtest errors
    w_model = choice.blend_weight(pick.errors[:, choice.LINE] if n else np.zeros(0), pick.error)
    blend = eligible & ~pick.is_pooled & ~is_line & (w_model < 1)
    equal = trd * holt.damped_sum(phi, horizon_days) / horizon_days   # its mean rate ahead
    trd = np.where(blend, w_model * equal + (1 - w_model) * line_slope, trd)
    lvl = np.where(blend, w_model * lvl + (1 - w_model) * (line_icpt + line_slope * s.end), lvl)
    phi = np.where(blend, LINE_PHI, phi)
    # the backtest error of what is forecast: a blend's, at most the weighted mean of its
    # two models' (blend_weight)
    bt_err = np.where(blend, w_model * pick.error + (1 - w_model) * (
        pick.errors[:, choice.LINE] if n else np.zeros(0)), pick.error)
    own = has_data & ~eligible & np.isfinite(s.prev_rate) & (s.prev_rate > 0)
    method = np.where(eligible, "holt_winters", np.where(
        own, "previous_segment", np.where(has_data, "type_prior", "no_data")))
    reason = np.full(n, None, dtype=object)
    few = has_data & ~eligible
    prior_rate = np.array([prior[t] for t in s.device_type]) if n else np.zeros(0)
    prior_rate = np.where(own, s.prev_rate, prior_rate)
    prior_rate, w_own = blend_short(s, prior_rate, few,
                                    np.where(own, PREV_REL_SD, PRIOR_REL_SD))
    reason[few] = [f"too short history: {d} day(s) since the last reset; "
                   + ("rate of its previous discharge segment used" if o else
                      f"median rate of {t} devices used")
                   + (f", blended with its own slope (weight {w:.0%})" if w > 0 else "")
                   for d, t, o, w in zip(s.n_days[few], s.device_type[few], own[few], w_own[few],
                                         strict=True)]
    reason[~has_data] = "no battery readings"
    reason[blend] = [f"{c} blended with line_14d, weight {w:.0%} (backtest errors {e:.1%} and "
                     f"{el:.1%})" for c, w, e, el in zip(
                         pick.chosen[blend], w_model[blend], pick.error[blend],
                         pick.errors[blend, choice.LINE], strict=True)]
    short = eligible & pick.is_pooled
    reason[short] = [f"too little history for its own backtest: {c}, the choice made most "
                     f"often for {t} devices" for c, t in zip(pick.chosen[short],
                                                             s.device_type[short], strict=True)]
    if s.has_curve is not None:
        no_curve = ~has_data & s.voltage_only & ~s.has_curve
        method = np.where(no_curve, "no_curve", method)
        reason[no_curve] = [
            "no curve: reports only a voltage and names no battery_chemistry or battery_curve"
            if c is None else f"no curve: no points for cell curve '{c}'; ingest them (kind "
            "battery_curves) to read its voltage" for c in s.curve_id[no_curve]]
    q_last = charge_from_level(s.last_level, s.knee, s.gain)
    lvl = np.where(eligible, lvl, q_last)
    trd = np.where(eligible, trd, -prior_rate)
    phi = np.where(eligible, phi, holt.DEFAULT[2])
    # the rate's relative uncertainty: where the device has a backtest of its own, the error
    # it measured (what its forecast missed by at its own past origins: duty changes, the
    # season, a gauge's steps; the fit's standard error sees only the noise about the
    # fitted span), else the fit's; with the floor either way
    rel_fit = np.sqrt((se_rate / np.maximum(np.abs(trd), 1e-6)) ** 2 + RATE_FLOOR_REL ** 2)
    rel = np.where(own_bt & np.isfinite(bt_err), np.sqrt((BT_SD * bt_err) ** 2
                                                          + RATE_FLOOR_REL ** 2), rel_fit)
    rel = np.where(eligible, rel, 0.5)
    sigma = np.where(eligible, sigma, 1.0)

    # time: steps from the modelled level (the last fitted day's noon; for a fallback, the
    # last level's mean observation time) to as_of and to the horizon
    t_ref = np.where(eligible | ~np.isfinite(s.last_level_t), np.maximum(s.end, 0) + 0.5,
                     s.last_level_t)
    noon = (s.day0.astype("datetime64[us]") + (t_ref * 86400e6).astype("timedelta64[us]"))
    as_of = (np.full(n, np.datetime64(until, "us")) if until is not None
             else s.last_observed_at.astype("datetime64[us]"))
    h_now = np.maximum((as_of - noon) / np.timedelta64(1, "D"), 0.0)

    def path(h, scale=1.0):
        return lvl + trd * scale * holt.damped_sum(phi, h)

    q_now, q_h = path(h_now), path(h_now + horizon_days)
    lv_now = level_from_charge(q_now, s.knee, s.gain)
    lv_h = level_from_charge(q_h, s.knee, s.gain)
    spread = Z90 * np.sqrt(sigma ** 2 + (rel * np.abs(trd) * horizon_days) ** 2)
    # a voltage-only device's level is read through the sag chosen for it; the sags its
    # series cannot tell apart move it by up to these points (sag.correct): the true level
    # may be that much lower or higher, now and at the horizon
    span_lo = s.level_span_lo if s.level_span_lo is not None else np.zeros(n)
    span_hi = s.level_span_hi if s.level_span_hi is not None else np.zeros(n)
    lv_lo = np.clip(level_from_charge(q_h - spread, s.knee, s.gain) - span_lo, 0.0, 100.0)
    lv_hi = np.clip(level_from_charge(q_h + spread, s.knee, s.gain) + span_hi, 0.0, 100.0)
    # where that reading is most of the interval's width, the row says so: a user who sees a
    # wide interval learns why, and that a calibration check or a new cell would narrow it
    flat = has_data & (span_lo + span_hi > 2 * spread)
    reason[flat] = [
        (f"{r}; " if r else "") + f"level read through a flat stretch of its cell curve: the "
        f"load sags its voltage cannot tell apart put it between {max(v - lo, 0):.0f} and "
        f"{min(v + hi, 100):.0f}% now (a new cell's first days would fix it)"
        for r, v, lo, hi in zip(reason[flat], lv_now[flat], span_lo[flat], span_hi[flat],
                                strict=True)]

    def when(target_level, scale=1.0):
        q_t = charge_from_level(np.full(n, target_level, dtype=float) if np.ndim(target_level) == 0
                                else target_level, s.knee, s.gain)
        steps = holt.steps_to_reach(lvl, trd * scale, phi, q_t)
        days = steps - h_now
        return _at(noon, steps), np.maximum(days, 0.0)

    crit_at, d_crit = when(critical_pct)
    # the earliest: the true level that much below the one read reaches the target when the
    # read one is that much above it; the latest, below it (past empty, on the same path)
    crit_lo, _ = when(critical_pct + span_lo, 1 + Z90 * rel)
    crit_hi, _ = when(critical_pct - span_hi, np.maximum(1 - Z90 * rel, 0.05))
    empty_at, d_empty = when(0.0)
    empty_lo, _ = when(span_lo, 1 + Z90 * rel)
    empty_hi, _ = when(-span_hi, np.maximum(1 - Z90 * rel, 0.05))
    nodata = ~has_data
    out = dict(
        device_id=s.device_id, as_of=as_of, horizon_days=np.full(n, horizon_days),
        level_now_pct=lv_now, level_at_horizon_pct=lv_h, level_lo_pct=lv_lo, level_hi_pct=lv_hi,
        drop_pct=lv_now - lv_h, rate_pct_per_day=-trd, critical_pct=critical_pct,
        critical_at=crit_at, critical_lo_at=crit_lo, critical_hi_at=crit_hi,
        empty_at=empty_at, empty_lo_at=empty_lo, empty_hi_at=empty_hi,
        days_to_critical=d_crit, days_to_empty=d_empty, method=method, reason=reason,
        pattern=pat.pattern, alpha=np.where(eligible, alpha, np.nan),
        beta=np.where(eligible, beta, np.nan), phi=np.where(eligible, phi, np.nan),
        temp_coef_per_c=temp_k, temp_factor=temp_factor, n_days=s.n_days,
        chosen_model=np.where(eligible, pick.chosen, method),
        runner_up_model=np.where(eligible & ~pick.is_pooled, pick.runner_up, "none"),
        backtest_error_pct=np.where(eligible, 100 * pick.error, np.nan),
        runner_up_error_pct=np.where(eligible, 100 * pick.runner_up_error, np.nan),
        backtest_days=np.where(eligible, pick.horizon, np.nan),
        backtest_origins=np.where(eligible, pick.n_origins, 0),
        temperature_ahead_c=t_ahead, temperature_basis=t_basis,
    )
    for k in ("level_now_pct", "level_at_horizon_pct", "level_lo_pct", "level_hi_pct", "drop_pct",
              "rate_pct_per_day", "days_to_critical", "days_to_empty"):
        out[k] = np.where(nodata, np.nan, np.asarray(out[k], float))
        out[k] = np.where(np.isfinite(out[k]), out[k], np.nan)
    for k in ("critical_at", "critical_lo_at", "critical_hi_at", "empty_at", "empty_lo_at",
              "empty_hi_at"):
        out[k] = np.where(nodata, np.datetime64("NaT"), out[k])
    out["patterns"] = pat
    out["fit_start"] = fit_start
    out["series"] = s
    out["shared"] = params
    return out


def shrink_erratic(trd: np.ndarray, se: np.ndarray, prior_rate: np.ndarray,
                   erratic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An erratic gauge's fitted trend, combined with its type prior by precision.

    The daily levels of an erratic gauge scatter so much that a few weeks of them
    fix the rate poorly: its standard error (from the one-step errors) is weighed
    against the spread of the rate between devices of the type
    (:data:`PRIOR_REL_SD` of the prior), as for short segments. Returns the trend
    and the weight of the device's own rate (1 where not erratic).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        w = 1.0 / se ** 2 / (1.0 / se ** 2 + 1.0 / (PRIOR_REL_SD * np.abs(prior_rate)) ** 2)
    w = np.where(erratic & np.isfinite(w) & np.isfinite(prior_rate), w, 1.0)
    return w * trd - (1 - w) * prior_rate, w


def blend_short(s: series.Series, prior_rate: np.ndarray, few: np.ndarray,
                rel_sd: np.ndarray | float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Precision-weighted mean of the fallback rate and a short segment's own slope.

    A few days of hourly readings already say something about a fast drain:
    the least-squares slope of the segment's daily means at their mean observation
    times (a first day that began in the evening is short; standard error from the
    residual spread, at least :data:`SHORT_NOISE_PCT` per day) is combined with the
    fallback, whose spread is ``rel_sd`` of it (between devices of the type:
    :data:`PRIOR_REL_SD`; the same device's previous segment: :data:`PREV_REL_SD`). Returns
    the rates and the weight of the device's own slope (0 with fewer than 2 days).
    """
    ok = few & np.isfinite(s.seg_slope) & (s.seg_stt > 0) & np.isfinite(prior_rate)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.maximum(np.nan_to_num(s.seg_sd), SHORT_NOISE_PCT) / np.sqrt(s.seg_stt)
        w = 1.0 / se ** 2 / (1.0 / se ** 2 + 1.0 / (rel_sd * np.abs(prior_rate)) ** 2)
    w = np.where(ok & np.isfinite(w), w, 0.0)
    return np.where(w > 0, w * -s.seg_slope + (1 - w) * prior_rate, prior_rate), w


def future_temperature(s: series.Series, tf: temperature.TempFit, eligible: np.ndarray,
                       rate: np.ndarray, t_ahead: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Temperature coefficient, trend factor and level offset for the expected future.

    The model ran on the series at ``T_ref`` (the fitted span's mean zone
    temperature, see :mod:`tsfleet.power.temperature`). The trend is scaled by
    ``exp(k * (T_ahead - T_ref))`` with ``T_ahead`` the temperature expected over the
    horizon (:mod:`tsfleet.power.ahead`; default: the last week's), and the last level
    gets back the extra consumption of the fitted span (``-rate * k * C(end)``) and the
    gauge's offset at the last week's temperature (where the level is now). Devices
    without a known zone temperature get 1 and 0.
    """
    n, m = s.temperature.shape
    cols = np.arange(m)[None, :]
    recent = ((cols <= s.end[:, None]) & (cols > (s.end - RECENT_DAYS)[:, None])
              & np.isfinite(s.temperature))
    with np.errstate(invalid="ignore", divide="ignore"):
        t_recent = np.where(recent, s.temperature, 0).sum(axis=1) / recent.sum(axis=1)
    t_ahead = t_recent if t_ahead is None else np.where(np.isfinite(t_ahead), t_ahead, t_recent)
    known = eligible & tf.known & np.isfinite(t_recent)
    d_recent = np.where(known, t_recent - tf.t_ref, 0.0)
    d_ahead = np.where(known, t_ahead - tf.t_ref, 0.0)
    factor = np.where(known, np.exp(np.clip(tf.k * d_ahead, -1, 1)), 1.0)
    offset = np.where(known, -rate * tf.k * tf.cum_end + tf.g * d_recent, 0.0)
    return np.where(known, tf.k, np.nan), factor, offset


def _at(noon: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """noon + steps days, to the second (NaT where never or beyond ~30 years)."""
    ok = np.isfinite(steps) & (steps < 365 * 30)
    delta = np.round(np.where(ok, steps, 0) * 86400.0).astype("timedelta64[s]")
    return np.where(ok, noon + delta, np.datetime64("NaT"))
