"""Drain attribution: which factors explain faster discharge across the fleet.

One ordinary least-squares fit (statsmodels) of the log segment discharge rate
of each device on its firmware version, zone temperature, reporting interval
and radio conditions (mean RSSI), with the device model as a control (models
differ in capacity). Firmware versions belong to a model, so a version is
compared with the most common version of its own model (one indicator per
other model-version pair): comparing it with another model's version would
mix the firmware's effect with the hardware's and leave the design singular.
Effects are reported as % change of the discharge rate: per firmware version
against its model's most common one, per degree C, per halving of the
reporting interval and per 10 dB weaker signal, with 95% intervals.
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
        "select median(reporting_interval_s) from devices").fetchall()[0][0] or 3600)
    numeric = []            # (factor, column, scale, label)
    if df["temperature_c"].notna().sum() >= 10 and df["temperature_c"].nunique() > 1:
        numeric.append(("temperature", "temperature_c", 1.0, "per +1 C"))
    if df["interval_s"].nunique() > 1:
        df["halvings"] = -np.log2(df["interval_s"])
        numeric.append(("reporting_interval", "halvings", 1.0, "per halving of the interval"))
    if df["rssi_dbm"].notna().sum() >= 10 and df["rssi_dbm"].nunique() > 1:
        df["weaker_10db"] = -df["rssi_dbm"] / 10.0
        numeric.append(("rssi", "weaker_10db", 1.0, "per 10 dB weaker signal"))
    df = df.dropna(subset=[name for _, name, _, _ in numeric])
    if len(df) < 10:
        return pd.DataFrame(columns=["factor", "level", "effect_pct", "ci_lo_pct", "ci_hi_pct",
                                     "p_value", "n_devices"])
    contrasts = _firmware_contrasts(df)
    controls = ["C(model)"] if df["model"].nunique() > 1 else []
    rows = []
    while True:
        formula = "np.log(rate_pct_per_day) ~ " + " + ".join(
            [name for _, name, _, _ in numeric] + [c["column"] for c in contrasts]
            + controls or ["1"])
        model = smf.ols(formula, data=df)
        # a small fleet can make a version's devices a combination of other terms (one
        # site, one interval), or a numeric term one of the models (each model with its own
        # interval): that term is not identifiable; say so, fit the rest
        c = _redundant_term(model, contrasts, "column")
        if c is not None:
            contrasts.remove(c)
            rows.append(dict(factor="firmware_version", n_devices=c["n"], level=(
                f"{c['version']} vs {c['reference']} ({c['model']}): not identifiable")))
            continue
        term = _redundant_term(model, numeric, 1)
        if term is None:
            break
        numeric.remove(term)
        rows.append(dict(factor=term[0], n_devices=len(df),
                         level=f"{term[3]}: not identifiable"))
    fit = model.fit()
    ci = fit.conf_int()
    for factor, name, _, label in numeric:
        rows.append(_row(factor, label, fit, ci, name, len(df)))
    for c in contrasts:
        rows.append(_row("firmware_version", f"{c['version']} vs {c['reference']} ({c['model']})",
                         fit, ci, c["column"], c["n"]))
    return pd.DataFrame(rows)


def _redundant_term(model, candidates: list, column) -> dict | tuple | None:
    """The candidate whose design column (``candidate[column]``) the other columns of a
    rank-deficient design already span: for contrasts, the one with the fewest devices
    (None: full rank, or no such candidate)."""
    X = model.exog
    rank = np.linalg.matrix_rank(X)
    if rank == X.shape[1]:
        return None
    names = list(model.exog_names)
    spanned = [c for c in candidates
               if np.linalg.matrix_rank(np.delete(X, names.index(c[column]), axis=1)) == rank]
    if not spanned:
        return None
    return min(spanned, key=lambda c: c["n"]) if isinstance(spanned[0], dict) else spanned[0]


def _firmware_contrasts(df: pd.DataFrame) -> list[dict]:
    """One 0/1 column per model-version pair other than the model's most common version
    (added to ``df``); a model with one version gets none."""
    reference = df.groupby("model")["firmware_version"].agg(lambda v: v.value_counts().idxmax())
    others = df[df["firmware_version"] != df["model"].map(reference)]
    contrasts = []
    for i, ((model, version), n) in enumerate(
            others.groupby(["model", "firmware_version"]).size().items()):
        column = f"fw_{i}"
        df[column] = ((df["model"] == model) & (df["firmware_version"] == version)).astype(float)
        contrasts.append(dict(column=column, model=model, version=version,
                              reference=reference[model], n=int(n)))
    return contrasts


def _row(factor, level, fit, ci, name, n):
    pct = lambda v: (np.exp(v) - 1) * 100  # noqa: E731
    return dict(factor=factor, level=level, effect_pct=pct(fit.params[name]),
                ci_lo_pct=pct(ci.loc[name, 0]), ci_hi_pct=pct(ci.loc[name, 1]),
                p_value=float(fit.pvalues[name]), n_devices=n)
