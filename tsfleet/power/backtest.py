"""Backtest: cut each device's history ``horizon_days`` before its end,
forecast, and score against what was observed, next to two baselines.

* ``line14``: a straight line through the last 14 daily levels of the segment;
* ``mean_rate``: the mean level drop per hour over the whole history before
  the cut, charging and replacement intervals left out.

The actual drop is the difference of the observed daily levels at the cut and
at the horizon (each a least-squares line through the 3 days around it).
Windows holding a reset (charge, replacement) are not scored.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from tsfleet.power import daystats, forecast


def run(con, horizon_days: int = 30, devices: list[str] | None = None) -> pd.DataFrame:
    daystats.refresh(con)
    end = con.execute("select max(day) from battery_daily").fetchall()[0][0]
    if end is None:
        return pd.DataFrame()
    cut = pd.Timestamp(end) + timedelta(days=1) - timedelta(days=horizon_days)
    fc = forecast.run(con, horizon_days, devices, until=cut.to_pydatetime())
    daily = con.execute(
        "select device_id, day, level_pct, epoch(mean_observed_at) / 86400.0 as t, "
        # no look-ahead: the last day before the cut is judged without the day after it
        "case when day < ?::timestamp and next_day >= ?::timestamp "
        "then is_reset_day_unconfirmed else is_reset_day end as is_reset_day "
        "from battery_daily "
        "where ?::varchar[] is null or device_id in (select unnest(?::varchar[])) "
        "order by device_id, day", [cut, cut, devices, devices]).df()
    t_cut = cut.timestamp() / 86400.0
    rows = []
    for dev, g in daily.groupby("device_id", sort=False):
        rows.append(_score_one(dev, g, t_cut, horizon_days))
    obs = pd.DataFrame(rows, columns=["device_id", "actual_drop_pct", "line14_drop_pct",
                                      "mean_rate_drop_pct", "window_reset"])
    out = pd.DataFrame({"device_id": fc["device_id"], "predicted_drop_pct": fc["drop_pct"],
                        "method": fc["method"], "pattern": fc["pattern"]})
    out = out.merge(obs, on="device_id", how="left")
    out["cut_at"] = cut
    out["horizon_days"] = horizon_days
    a = out["actual_drop_pct"]
    out["is_scored"] = (a.notna() & (a > 0.05) & ~out["window_reset"].fillna(True).astype(bool)
                        & out["predicted_drop_pct"].notna())
    for col, err in (("predicted_drop_pct", "error_pct_of_drop"),
                     ("line14_drop_pct", "line14_error_pct_of_drop"),
                     ("mean_rate_drop_pct", "mean_rate_error_pct_of_drop")):
        out[err] = (out[col] - a).abs() / a.where(a > 0) * 100
    return out.drop(columns="window_reset")


def _line_at(t, y, at, width=1.5):
    m = np.abs(t - at) <= width
    if m.sum() < 2:
        return np.nan
    return float(np.polyval(np.polyfit(t[m], y[m], 1), at))


def _score_one(dev, g, t_cut, h):
    t, y, reset = g["t"].to_numpy(), g["level_pct"].to_numpy(), g["is_reset_day"].to_numpy(bool)
    before, window = t < t_cut, (t >= t_cut - 1) & (t <= t_cut + h + 1)
    actual = _line_at(t, y, t_cut) - _line_at(t, y, t_cut + h)
    seg = before.copy()
    r = np.flatnonzero(reset & before)
    if len(r):
        seg[: r[-1] + 1] = False
    ts, ys = t[seg], y[seg]
    last14 = ts >= ts.max() - 14 if len(ts) else ts.astype(bool)
    line = (-np.polyfit(ts[last14], ys[last14], 1)[0] * h) if last14.sum() >= 3 else np.nan
    # mean drop per hour over all discharge days before the cut (resets excluded)
    dt, dy = np.diff(t[before]), -np.diff(y[before])
    ok = ~(reset[before][1:] | reset[before][:-1]) & (dy > -5)
    mean_rate = dy[ok].sum() / dt[ok].sum() * h if ok.sum() >= 3 and dt[ok].sum() > 0 else np.nan
    return dev, actual, line, mean_rate, bool((reset & window).any())
