"""Drain attribution: which factors explain faster discharge across the fleet.

One ordinary least-squares fit (statsmodels) of the log segment discharge rate
of each device on its firmware version, zone temperature, reporting interval
and radio conditions (mean RSSI), with the device model as a control (models
differ in capacity). Effects are reported as % change of the discharge rate:
per firmware version against the most common one, per degree C, per halving
of the reporting interval and per 10 dB weaker signal, with 95% intervals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def run(con) -> pd.DataFrame:
    import statsmodels.formula.api as smf

    df = con.execute("""
        select b.device_id, b.model, b.rate_pct_per_day, b.temperature_c,
               coalesce(b.firmware_version, '(unknown)') as firmware_version,
               i.interval_s, r.rssi_dbm
        from battery_discharge_device b
        left join (select device_id, median(value) as interval_s from readings
                   where metric = 'reporting_interval_s' group by device_id) i using (device_id)
        left join (select device_id, avg(value) as rssi_dbm from readings
                   where metric = 'rssi_dbm' group by device_id) r using (device_id)
        where b.rate_pct_per_day > 0.005 and b.n_days >= 7
    """).df()
    df["interval_s"] = df["interval_s"].fillna(con.execute(
        "select median(reporting_interval_s) from devices").fetchone()[0] or 3600)
    terms, numeric = [], []
    if df["temperature_c"].notna().sum() >= 10:
        terms.append("temperature_c")
        numeric.append(("temperature", "temperature_c", 1.0, "per +1 C"))
    if df["interval_s"].nunique() > 1:
        df["halvings"] = -np.log2(df["interval_s"])
        terms.append("halvings")
        numeric.append(("reporting_interval", "halvings", 1.0, "per halving of the interval"))
    if df["rssi_dbm"].notna().sum() >= 10 and df["rssi_dbm"].nunique() > 1:
        df["weaker_10db"] = -df["rssi_dbm"] / 10.0
        terms.append("weaker_10db")
        numeric.append(("rssi", "weaker_10db", 1.0, "per 10 dB weaker signal"))
    df = df.dropna(subset=[t for t in terms])
    if len(df) < 10:
        return pd.DataFrame(columns=["factor", "level", "effect_pct", "ci_lo_pct", "ci_hi_pct",
                                     "p_value", "n_devices"])
    ref = df["firmware_version"].value_counts().idxmax()
    fw = f"C(firmware_version, Treatment(reference={ref!r}))" if df["firmware_version"].nunique(
    ) > 1 else None
    # the model is a control unless each firmware version belongs to one model (then the
    # firmware effect includes the model's, and the two cannot be told apart)
    nested = fw is not None and df.groupby("firmware_version")["model"].nunique().max() == 1 \
        and df.groupby("model")["firmware_version"].nunique().max() == 1
    controls = ["C(model)"] if df["model"].nunique() > 1 and not nested else []
    formula = "np.log(rate_pct_per_day) ~ " + " + ".join(terms + ([fw] if fw else []) + controls
                                                          or ["1"])
    fit = smf.ols(formula, data=df).fit()
    ci = fit.conf_int()
    rows = []
    for factor, name, _, label in numeric:
        rows.append(_row(factor, label, fit, ci, name, len(df)))
    if fw:
        for name in fit.params.index:
            if name.startswith("C(firmware_version"):
                level = name.split("[T.", 1)[1].rstrip("]")
                rows.append(_row("firmware_version", f"{level} vs {ref}", fit, ci, name,
                                 int((df["firmware_version"] == level).sum())))
    return pd.DataFrame(rows)


def _row(factor, level, fit, ci, name, n):
    pct = lambda v: (np.exp(v) - 1) * 100  # noqa: E731
    return dict(factor=factor, level=level, effect_pct=pct(fit.params[name]),
                ci_lo_pct=pct(ci.loc[name, 0]), ci_hi_pct=pct(ci.loc[name, 1]),
                p_value=float(fit.pvalues[name]), n_devices=n)
