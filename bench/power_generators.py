"""Power forecast accuracy on two fleet generators (issue #16): tsfleet's simulator and the
independent one (bench/independent/power.py), several seeds each, beside the 14-day
straight line and the mean-drop baseline computed in the same run from the same store,
broken down by chemistry x gauge kind x temperature band. Beside them, a reference that
no user has: the 14-day line through each device's *true* level (``true_line``): how far a
perfect reading of the level goes with a line, so a gap between it and the forecast is the
reading's (a voltage through a flat curve), and a gap between it and the target is the
future's. On the independent generator also ``gauge_line``: that line as each percent
gauge reports it (the gauge's capacity error, which no reading of the gauge can remove).

    PYTHONPATH=. python bench/power_generators.py                       # seeds 1 2 3
    PYTHONPATH=. python bench/power_generators.py --seeds 4 --devices 600   # the held-out seed

Scores at the end of history, against each generator's truth (no intervention after
it): the 30-day drop within 10% / 15% of the true drop (devices whose true drop is
above 0.05 points), and the empty date within 15% of the true remaining life (devices
that truly empty within 90 days). Targets: >= 95% / >= 97% / >= 90%, and no group of
>= 20 devices more than 2 points below the straight line (within 15%).

Also the forecast's 90% intervals: the level at the horizon against the true level (at 0
once empty), beside the 14-day line's own 90% prediction interval (least squares,
Student's t); and the critical date against the day the true level reaches the device's
critical level, beside the days between which the line's prediction interval holds it.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from tsfleet import Fleet

HORIZON = 30
LINE_DAYS = 14
MIN_GROUP = 20


def simulator_fleet(n: int, days: int, seed: int):
    from tsfleet.simulate import SimConfig, simulated_fleet

    fleet = simulated_fleet(SimConfig(n_devices=n, days=days, seed=seed))
    truth = fleet.frame("select device_id, day_at, level_pct from sim.battery_daily")
    cfg = fleet.query("select * from sim.config")[0]
    return fleet, truth, pd.Timestamp(cfg["start"]) + pd.Timedelta(days=cfg["days"]), None


def independent_fleet(n: int, days: int, seed: int):
    from bench.independent.power import generate, load_into

    gen = generate(n, seed=seed, history_days=days)
    fleet = Fleet(memory=True)
    load_into(fleet, gen)
    return fleet, gen.truth, gen.end, gen.info.set_index("device_id").capacity_error


def truth_at(truth: pd.DataFrame, at: pd.Timestamp) -> pd.Series:
    return truth[truth.day_at == at].set_index("device_id").level_pct.clip(lower=0)


def true_empty_days(truth: pd.DataFrame, at: pd.Timestamp) -> pd.Series:
    fut = truth[truth.day_at >= at].sort_values(["device_id", "day_at"])
    lv = fut.level_pct.to_numpy()
    t = ((fut.day_at - at) / pd.Timedelta(days=1)).to_numpy()
    out = {}
    for dev, idx in fut.groupby("device_id").indices.items():
        hit = np.flatnonzero(lv[idx] <= 0)
        if len(hit) and hit[0] > 0:
            i, j = idx[hit[0] - 1], idx[hit[0]]
            out[dev] = t[i] + lv[i] / (lv[i] - lv[j]) * (t[j] - t[i])
        elif not len(hit):
            out[dev] = np.inf
    return pd.Series(out, dtype=float)


def true_days_below(truth: pd.DataFrame, at: pd.Timestamp, level: pd.Series) -> pd.Series:
    """Days from ``at`` until each device's true level first falls to its ``level`` (0 if
    it is there already; NaN if not within the truth's days)."""
    fut = truth[truth.day_at >= at].sort_values(["device_id", "day_at"])
    lv = fut.level_pct.to_numpy()
    t = ((fut.day_at - at) / pd.Timedelta(days=1)).to_numpy()
    out = {}
    for dev, idx in fut.groupby("device_id").indices.items():
        target = level.get(dev, np.nan)
        hit = np.flatnonzero(lv[idx] <= target)
        if len(hit) and hit[0] > 0:
            i, j = idx[hit[0] - 1], idx[hit[0]]
            out[dev] = t[i] + (lv[i] - target) / (lv[i] - lv[j]) * (t[j] - t[i])
        elif len(hit):
            out[dev] = 0.0
    return pd.Series(out, dtype=float)


def true_level_rate(truth: pd.DataFrame, at: pd.Timestamp) -> pd.Series:
    """The fall per day of the least-squares line through each device's *true* level over
    the last 14 days of history (since its last replacement: a rise of more than 5 points):
    a reference that reads the level perfectly and knows nothing of the future. It is not a
    baseline a user could compute; it shows how far a perfect reading of the level goes."""
    hist = truth[truth.day_at <= at].sort_values(["device_id", "day_at"])
    t = ((hist.day_at - at) / pd.Timedelta(days=1)).to_numpy()
    lv = hist.level_pct.to_numpy()
    out = {}
    for dev, idx in hist.groupby("device_id").indices.items():
        y, d = lv[idx], t[idx]
        rise = np.flatnonzero(np.diff(y) > 5)
        keep = (d > -LINE_DAYS) & (np.arange(len(y)) > (rise[-1] if len(rise) else -1))
        out[dev] = -np.polyfit(d[keep], y[keep], 1)[0] if keep.sum() >= 2 else np.nan
    return pd.Series(out, dtype=float)


def baselines(fleet, end: pd.Timestamp, critical: pd.Series) -> pd.DataFrame:
    """The 14-day straight line and the mean drop over the current segment, per device,
    from the store's own daily levels (what a user of the store would fit)."""
    d = fleet.frame("select device_id, level_pct, epoch(mean_observed_at) / 86400.0 as t, "
                    "is_reset_day from battery_daily order by device_id, day")
    t_end = (end - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    rows = []
    for dev, g in d.groupby("device_id", sort=False):
        r = np.flatnonzero(g.is_reset_day.to_numpy())
        seg = g.iloc[r[-1] + 1:] if len(r) else g
        if len(seg) < 2:
            rows.append((dev, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan))
            continue
        t, y = seg.t.to_numpy(), seg.level_pct.to_numpy()
        last = t >= t[-1] - LINE_DAYS
        if last.sum() >= 2:
            slope, icpt = np.polyfit(t[last], y[last], 1)
        else:
            slope, icpt = np.nan, np.nan
        now_line = icpt + slope * t_end
        mean_rate = (y[0] - y[-1]) / max(t[-1] - t[0], 1e-9)
        rows.append((dev, now_line, -slope, y[-1], mean_rate,
                     line_interval(t[last], y[last], t_end + HORIZON),
                     *line_dates(t[last], y[last], t_end, critical.get(dev, 10.0))))
    return pd.DataFrame(rows, columns=["device_id", "line_now", "line_rate", "mean_now",
                                       "mean_rate", "line_half90", "line_crit_lo",
                                       "line_crit_hi"]).set_index("device_id")


def line_band(t: np.ndarray, y: np.ndarray):
    """The 14-day line's 90% prediction band (ordinary least squares, Student's t): a
    function of the day giving (the line, half the band's width) there, the band a user gets
    from a spreadsheet's trend line; None with fewer than 3 days."""
    from scipy import stats

    n = len(t)
    if n < 3:
        return None
    slope, icpt = np.polyfit(t, y, 1)
    q = stats.t.ppf(0.95, n - 2) * np.sqrt(((y - icpt - slope * t) ** 2).sum() / (n - 2))
    sxx = ((t - t.mean()) ** 2).sum()
    return lambda at: (icpt + slope * at,
                       q * np.sqrt(1 + 1 / n + (at - t.mean()) ** 2 / sxx))


def line_interval(t: np.ndarray, y: np.ndarray, at: float) -> float:
    """Half the width of the 14-day line's 90% prediction interval at ``at``."""
    band = line_band(t, y)
    return np.nan if band is None else float(band(at)[1])


def line_dates(t: np.ndarray, y: np.ndarray, t_end: float, target: float
               ) -> tuple[float, float]:
    """The days from ``t_end`` between which the 14-day line's 90% prediction interval
    holds ``target`` (the first day its lower edge reaches it, the first its upper edge
    does), over the next 120 days; NaN where it never does."""
    band = line_band(t, y)
    if band is None:
        return np.nan, np.nan
    d = np.arange(0.0, 120.0, 0.05)
    mid, half = band(t_end + d)
    lo, hi = np.flatnonzero(mid - half <= target), np.flatnonzero(mid + half <= target)
    return (d[lo[0]] if len(lo) else np.nan), (d[hi[0]] if len(hi) else np.nan)


def groups(fleet) -> pd.DataFrame:
    return fleet.frame(
        "with t as (select zone, avg(temperature_c) as t_c from zone_temperature_daily "
        "where day > (select max(day) from zone_temperature_daily) - 14 group by zone) "
        "select d.device_id, coalesce(d.battery_chemistry, '?') as chemistry, "
        "case when d.device_id in (select device_id from device_latest "
        "where metric = 'battery_pct') then 'percent' else 'voltage' end as gauge, "
        "case when t.t_c is null then 't?' when t.t_c < 0 then 'below 0C' "
        "when t.t_c < 10 then '0-10C' when t.t_c < 25 then '10-25C' else 'above 25C' end "
        "as temp_band from devices d left join t using (zone)").set_index("device_id")


def score(fleet, truth: pd.DataFrame, end: pd.Timestamp,
          gauge_error: pd.Series | None = None) -> tuple[pd.DataFrame, float]:
    """Each device's forecast and baselines against the truth. ``gauge_error``: a percent
    gauge's capacity error (its reading is the true level x (1 + it)), where the generator
    has one: the ``gauge_line`` reference is then the true-level line as that gauge reports
    it (no reading of the gauge can do better than the gauge)."""
    t0 = time.perf_counter()
    fc = fleet.power.forecast(HORIZON).set_index("device_id")
    t_fc = time.perf_counter() - t0
    b = baselines(fleet, end, fc.critical_pct)
    now, later = truth_at(truth, end), truth_at(truth, end + pd.Timedelta(days=HORIZON))
    df = fc[["level_now_pct", "drop_pct", "days_to_empty", "method", "level_at_horizon_pct",
             "level_lo_pct", "level_hi_pct"]].join(b).join(groups(fleet))
    # the critical date's 90% interval, in days from the end of history, against the day
    # the true level reaches the device's critical level (within the truth's days)
    day = pd.Timedelta(days=1)
    df["crit_lo"] = (fc.critical_lo_at - end) / day
    df["crit_hi"] = (fc.critical_hi_at - end) / day
    df["true_crit"] = true_days_below(truth, end, fc.critical_pct)
    if "chosen_model" in fc:
        df["chosen_model"] = fc["chosen_model"]
    df["true_now"] = now
    df["true_drop"] = now - later
    df["true_empty"] = true_empty_days(truth, end)
    df["true_line_rate"] = true_level_rate(truth, end)
    horizon_drop = {"model": df.drop_pct,
                    "line14": np.minimum(df.line_rate * HORIZON, df.line_now.clip(lower=0)),
                    "mean_drop": np.minimum(df.mean_rate * HORIZON, df.mean_now.clip(lower=0)),
                    "true_line": np.minimum(df.true_line_rate * HORIZON, df.true_now)}
    if gauge_error is not None:
        scale = 1 + df.index.map(gauge_error).to_series(index=df.index).fillna(0.0)
        horizon_drop["gauge_line"] = horizon_drop["true_line"] * scale
    empty = {"model": df.days_to_empty,
             "line14": np.where(df.line_rate > 0, df.line_now.clip(lower=0) / df.line_rate,
                                np.inf),
             "mean_drop": np.where(df.mean_rate > 0, df.mean_now.clip(lower=0) / df.mean_rate,
                                   np.inf),
             "true_line": np.where(df.true_line_rate > 0, df.true_now / df.true_line_rate,
                                   np.inf)}
    # the 90% intervals of the level at the horizon, against the true level (at 0 when empty)
    later_true = later.reindex(df.index)
    line_at = (df.line_now - df.line_rate * HORIZON).clip(lower=0)
    df["model_cover"] = ((later_true >= df.level_lo_pct.clip(lower=0) - 1e-9)
                         & (later_true <= df.level_hi_pct + 1e-9))
    df["model_width"] = df.level_hi_pct - df.level_lo_pct.clip(lower=0)
    df["line14_cover"] = ((later_true >= (line_at - df.line_half90).clip(lower=0) - 1e-9)
                          & (later_true <= line_at + df.line_half90 + 1e-9))
    df["line14_width"] = (line_at + df.line_half90) - (line_at - df.line_half90).clip(lower=0)
    for m in horizon_drop:
        df[f"{m}_err"] = ((horizon_drop[m] - df.true_drop).abs() / df.true_drop).fillna(np.inf)
        if m in empty:
            df[f"{m}_eerr"] = ((pd.Series(empty[m], index=df.index) - df.true_empty).abs()
                               / df.true_empty).fillna(np.inf)
    return df, t_fc


def summary(df: pd.DataFrame) -> dict:
    sc = df[df.true_drop > 0.05]
    em = df[(df.true_empty > 0) & (df.true_empty <= 90)]
    out = {"n_drop": len(sc), "n_empty": len(em), "n_rows": len(df)}
    for m in ("model", "line14", "mean_drop", "true_line"):
        out[f"{m}_w10"] = float((sc[f"{m}_err"] <= 0.10).mean())
        out[f"{m}_w15"] = float((sc[f"{m}_err"] <= 0.15).mean())
        out[f"{m}_e15"] = float((em[f"{m}_eerr"] <= 0.15).mean()) if len(em) else np.nan
    iv = df[df.level_lo_pct.notna() & df.line_half90.notna()]
    for m in ("model", "line14"):
        out[f"{m}_cover"] = float(iv[f"{m}_cover"].mean())
        out[f"{m}_width"] = float(iv[f"{m}_width"].median())
    out["n_interval"] = len(iv)
    # the critical date: devices whose true level reaches it after the end of history
    # (half a day either side: the forecast's as-of time is the last reading, not midnight)
    cd = df[(df.true_crit > 0) & df.crit_lo.notna()]
    out["n_crit"] = len(cd)
    out["model_crit_cover"] = float(((cd.crit_lo - 0.5 <= cd.true_crit)
                                     & (cd.true_crit <= cd.crit_hi.fillna(np.inf) + 0.5)).mean())
    out["line14_crit_cover"] = float(((cd.line_crit_lo - 0.5 <= cd.true_crit)
                                      & (cd.true_crit <= cd.line_crit_hi.fillna(np.inf) + 0.5))
                                     .mean())
    if "gauge_line_err" in sc:
        out["gauge_line_w10"] = float((sc["gauge_line_err"] <= 0.10).mean())
        out["gauge_line_w15"] = float((sc["gauge_line_err"] <= 0.15).mean())
        pc = sc[sc.gauge == "percent"]      # the percent gauges alone, within 10%
        for m in ("model", "line14", "true_line", "gauge_line"):
            out[f"pct_{m}_w10"] = float((pc[f"{m}_err"] <= 0.10).mean())
    return out


def group_table(df: pd.DataFrame) -> pd.DataFrame:
    sc = df[df.true_drop > 0.05]
    rows = []
    for key, g in sc.groupby(["chemistry", "gauge", "temp_band"]):
        row = dict(zip(("chemistry", "gauge", "temp_band"), key, strict=True), n=len(g))
        for m in ("model", "line14", "mean_drop"):
            row[f"{m}_w15"] = float((g[f"{m}_err"] <= 0.15).mean())
        row["model_w10"] = float((g["model_err"] <= 0.10).mean())
        row["line14_w10"] = float((g["line14_err"] <= 0.10).mean())
        row["true_line_w10"] = float((g["true_line_err"] <= 0.10).mean())
        row["model_cover90"] = float(g["model_cover"].mean())
        row["line14_cover90"] = float(g["line14_cover"].mean())
        row["behind_line"] = (len(g) >= MIN_GROUP
                              and row["model_w15"] < row["line14_w15"] - 0.02)
        rows.append(row)
    return pd.DataFrame(rows)


def bias_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per chemistry x gauge kind: the median level bias now (forecast - truth, points) and
    the median ratio of the forecast drop to the true drop, the line's beside it: where a
    group's misses come from (a level read off the curve, or a rate)."""
    sc = df[df.true_drop > 0.05].copy()
    sc["level_bias"] = sc.level_now_pct - sc.true_now
    sc["drop_ratio"] = sc.drop_pct / sc.true_drop
    sc["line_drop_ratio"] = (np.minimum(sc.line_rate * HORIZON, sc.line_now.clip(lower=0))
                             / sc.true_drop)
    return sc.groupby(["chemistry", "gauge"]).agg(
        n=("level_bias", "size"), level_bias_pts=("level_bias", "median"),
        drop_ratio=("drop_ratio", "median"), line_drop_ratio=("line_drop_ratio", "median"),
        drop_ratio_p10=("drop_ratio", lambda v: v.quantile(0.1)),
        drop_ratio_p90=("drop_ratio", lambda v: v.quantile(0.9))).reset_index()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--devices", type=int, default=600)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--generators", nargs="+", default=["simulator", "independent"])
    ap.add_argument("--groups", action="store_true", help="print every group's table")
    ap.add_argument("--bias", action="store_true", help="print the level bias and drop ratio "
                    "per chemistry x gauge kind")
    ap.add_argument("--save", default=None, help="write each run's per-device table to "
                    "SAVE-<generator>-<seed>.pkl")
    a = ap.parse_args()
    make = {"simulator": simulator_fleet, "independent": independent_fleet}
    pct = lambda v: f"{v:.1%}"  # noqa: E731
    for gen in a.generators:
        for seed in a.seeds:
            t0 = time.perf_counter()
            fleet, truth, end, gauge_error = make[gen](a.devices, a.days, seed)
            t_gen = time.perf_counter() - t0
            load = os.getloadavg()[0]
            df, t_fc = score(fleet, truth, end, gauge_error)
            if a.save:
                df.to_pickle(f"{a.save}-{gen}-{seed}.pkl")
            s = summary(df)
            gt = group_table(df)
            behind = gt[gt.behind_line]
            print(f"\n{gen} seed {seed}: {s['n_rows']} forecast rows, {s['n_drop']} scored on the "
                  f"drop, {s['n_empty']} on the empty date (generated+ingested {t_gen:.0f} s, "
                  f"forecast {t_fc:.1f} s, load average {load:.1f})")
            for m in ("model", "line14", "mean_drop", "true_line"):
                print(f"  {m:10s} drop within 10%: {pct(s[f'{m}_w10']):>6s}  within 15%: "
                      f"{pct(s[f'{m}_w15']):>6s}  empty date within 15%: {pct(s[f'{m}_e15']):>6s}"
                      + ("" if m == "model" else
                         f"   (model/{m} within 15%: "
                         f"{s['model_w15'] / max(s[f'{m}_w15'], 1e-9):.2f}x)")
                      + ("   (reference: reads the true level)" if m == "true_line" else ""))
            if "gauge_line_w10" in s:
                print(f"  gauge_line drop within 10%: {pct(s['gauge_line_w10']):>6s}  within 15%: "
                      f"{pct(s['gauge_line_w15']):>6s}   (reference: the true-level line as "
                      "each percent gauge reports it, its capacity error included)")
                print(f"  percent gauges within 10%: model {pct(s['pct_model_w10'])}, line14 "
                      f"{pct(s['pct_line14_w10'])}, true_line {pct(s['pct_true_line_w10'])}, "
                      f"gauge_line {pct(s['pct_gauge_line_w10'])}")
            print(f"  90% interval of the level at the horizon holds the true level "
                  f"({s['n_interval']} devices): model {pct(s['model_cover'])} (median width "
                  f"{s['model_width']:.1f} points),\n    line14 {pct(s['line14_cover'])} "
                  f"({s['line14_width']:.1f}; the 14-day line's prediction interval)")
            print(f"  90% interval of the critical date holds the true day ({s['n_crit']} devices "
                  f"that reach it after the end of history):\n    model "
                  f"{pct(s['model_crit_cover'])}, line14 {pct(s['line14_crit_cover'])}")
            print(f"  groups (chemistry x gauge x temperature band, >= {MIN_GROUP} devices) more "
                  f"than 2 points behind the line within 15%: {len(behind)} of "
                  f"{int((gt.n >= MIN_GROUP).sum())}")
            show = gt if a.groups else behind
            if len(show):
                print(show.to_string(index=False, float_format=pct))
            if a.bias:
                print(bias_table(df).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
            if "chosen_model" in df:
                print("  chosen models: " + ", ".join(
                    f"{k} {v}" for k, v in df.chosen_model.value_counts().items()))
            fleet.close()


if __name__ == "__main__":
    main()
