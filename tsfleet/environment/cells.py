"""Exposure cells of the failure and reboot models.

Device-hours and event counts grouped by device type, age band and binned
environment, with the exposure-weighted mean of each factor inside the cell.
Devices in one zone share its environment, so a cell's device-hours are the
zone-hours of its bin times the zone's device count. The factors are a list
(temperature, humidity, vibration, swing and the declared environmental
metrics), so the cells are built here from the zone hours (a few hundred
thousand rows) rather than in SQL; the devices and events come from
``sql/model_groups.sql`` and ``sql/model_events.sql``.

Bins: 1 degC, 5 %RH, 0.1 g, 2 degC of daily swing; a declared factor gets a
round step (1, 2 or 5 x 10^k) giving about ``DECLARED_BINS`` bins between its
1% and 99% zone-hour quantiles.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from tsfleet.environment import queries

BIN_WIDTH = {"temperature_c": 1.0, "humidity_pct": 5.0, "vibration_g": 0.1,
             "daily_swing_c": 2.0}
DECLARED_BINS = 40
COLUMNS = ["device_type", "device_hours", "age_years", "n_failures", "n_reboots"]


def round_step(span: float, n: int) -> float:
    """A round step (1, 2 or 5 x 10^k) giving at most about ``n`` steps over ``span``."""
    if not span > 0:
        return 1.0
    raw = span / n
    mag = 10.0 ** np.floor(np.log10(raw))
    return float(mag * next(m for m in (1, 2, 5, 10) if m * mag >= raw))


def bin_width(factor: str, values: np.ndarray) -> float:
    """The bin width of ``factor`` (fixed for the built-in factors, else from the data)."""
    if factor in BIN_WIDTH:
        return BIN_WIDTH[factor]
    lo, hi = np.quantile(values, [0.01, 0.99]) if len(values) else (0.0, 0.0)
    return round_step(float(hi - lo), DECLARED_BINS)


def model_cells(con: duckdb.DuckDBPyConnection, zone_hours: pd.DataFrame,
                factors: list[str], start, end, *, with_zones: bool = False):
    """One row per device type, age band and environment bin: device_hours, the mean of
    each factor, age_years, n_failures and n_reboots (complete zone hours only).

    Every input is put in one order first and the cells leave in a total order, so the
    sums (and the models fitted on the cells) do not depend on the order in which SQL
    returned the rows: with several DuckDB threads it varies between runs, and the fits
    amplify the last-bit differences (1e-4 relative in a coefficient).

    With ``with_zones``: (cells, zone parts), the zone parts one row per cell and zone
    (see _zone_parts; the zone-clustered threshold intervals use them)."""
    zh = zone_hours.dropna(subset=factors).sort_values(["zone", "hour_at"], kind="stable",
                                                       ignore_index=True)
    if zh.empty:
        empty = pd.DataFrame(columns=[*COLUMNS, *factors])
        return (empty, None) if with_zones else empty
    zone_code, zones = pd.factorize(zh["zone"])
    values = {f: zh[f].to_numpy(float) for f in factors}
    # bins of values rounded to 1e-6: the same value always lands in the same bin
    bins = pd.DataFrame({f: np.floor(np.round(v, 6) / bin_width(f, v)).astype(np.int64)
                         for f, v in values.items()})
    env_id = bins.groupby(factors, sort=False).ngroup().to_numpy()
    # zone cells: (zone, environment bin) with hours and sums of each factor
    zc = pd.DataFrame({"zone": zone_code, "env": env_id, "hours": 1.0,
                       **{f"s_{f}": v for f, v in values.items()}})
    zc = zc.groupby(["zone", "env"], as_index=False, sort=False).sum()
    p = {"start": start, "end": end}
    groups = queries.run(con, "model_groups", p).to_pandas().sort_values(
        ["zone", "device_type", "age_band"], kind="stable", ignore_index=True)
    groups["zone"] = zones.get_indexer(groups["zone"])
    x = zc.merge(groups[groups["zone"] >= 0], on="zone")
    sums = [f"s_{f}" for f in factors]
    x[sums] = x[sums].to_numpy() * x[["n"]].to_numpy()
    x["device_hours"] = x["hours"] * x["n"]
    x["sum_age"] = x["hours"] * x["sum_age_years"]
    cells = x.groupby(["device_type", "age_band", "env"], as_index=False, sort=False)[
        ["device_hours", "sum_age", *sums]].sum()
    ev = queries.run(con, "model_events", p).to_pandas()
    ev = ev.sort_values(list(ev.columns), kind="stable", ignore_index=True)
    hour_key = pd.MultiIndex.from_arrays([zone_code, zh["hour_at"].to_numpy("datetime64[us]")])
    at = hour_key.get_indexer(pd.MultiIndex.from_arrays(
        [zones.get_indexer(ev["zone"]), ev["hour_at"].to_numpy("datetime64[us]")]))
    ev = ev.assign(env=env_id[at])[at >= 0]
    counts = (ev.assign(n=1).pivot_table(index=["device_type", "age_band", "env"],
                                         columns="event", values="n", aggfunc="sum")
              .reindex(columns=["failure", "reboot"]).reset_index() if len(ev) else
              pd.DataFrame(columns=["device_type", "age_band", "env", "failure", "reboot"]))
    cells = cells.merge(counts, on=["device_type", "age_band", "env"], how="left")
    out = pd.DataFrame({"device_type": cells["device_type"],
                        "device_hours": cells["device_hours"].astype(float),
                        **{f: cells[f"s_{f}"] / cells["device_hours"] for f in factors},
                        "age_years": cells["sum_age"] / cells["device_hours"],
                        "n_failures": cells["failure"].fillna(0).astype(np.int64),
                        "n_reboots": cells["reboot"].fillna(0).astype(np.int64)})
    out = out.sort_values(["device_type", *factors, "age_years", "device_hours",
                           "n_failures", "n_reboots"], kind="stable")
    if not with_zones:
        return out.reset_index(drop=True)
    parts = _zone_parts(x, ev.assign(zone=zones.get_indexer(ev["zone"])), cells,
                        out.index.to_numpy())
    return out.reset_index(drop=True), parts


def _zone_parts(x: pd.DataFrame, ev: pd.DataFrame, cells: pd.DataFrame,
                order: np.ndarray) -> pd.DataFrame:
    """Each cell's share per zone (a cell pools the zones with the same binned environment):
    one row per cell (its row in the sorted cells) and zone with the device-hours and the
    events of that zone; the zone-clustered variance of the threshold uses them."""
    key = ["device_type", "age_band", "env"]
    row = pd.Series(np.argsort(order), name="cell")
    ids = cells[key].assign(cell=row.to_numpy())
    parts = x.groupby([*key, "zone"], as_index=False, sort=False)["device_hours"].sum()
    if len(ev):
        counts = (ev.assign(n=1).pivot_table(index=[*key, "zone"], columns="event",
                                             values="n", aggfunc="sum")
                  .reindex(columns=["failure", "reboot"]).reset_index())
        parts = parts.merge(counts, on=[*key, "zone"], how="left")
    else:
        parts = parts.assign(failure=0.0, reboot=0.0)
    parts = parts.merge(ids, on=key)
    return pd.DataFrame({"cell": parts["cell"].to_numpy(np.int64),
                         "zone": parts["zone"].to_numpy(np.int64),
                         "device_hours": parts["device_hours"].to_numpy(float),
                         "n_failures": parts["failure"].fillna(0).to_numpy(float),
                         "n_reboots": parts["reboot"].fillna(0).to_numpy(float)})
