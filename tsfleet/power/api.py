"""``fleet.power``: battery analysis of a fleet store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from tsfleet.errors import InvalidParameter
from tsfleet.power import attribution, backtest, daystats, forecast, plan
from tsfleet.results import now_utc, to_arrow, write_result
from tsfleet.words import plural

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet

FORECAST_COLUMNS = (
    "device_id", "as_of", "horizon_days", "level_now_pct", "level_at_horizon_pct", "level_lo_pct",
    "level_hi_pct", "drop_pct", "rate_pct_per_day", "critical_pct", "critical_at",
    "critical_lo_at", "critical_hi_at", "empty_at", "empty_lo_at", "empty_hi_at",
    "days_to_critical", "days_to_empty", "method", "reason", "pattern", "alpha", "beta", "phi",
    "temp_coef_per_c", "temp_factor", "n_days", "chosen_model", "runner_up_model",
    "backtest_error_pct", "runner_up_error_pct", "backtest_days", "backtest_origins",
    "temperature_ahead_c", "temperature_basis")


def _or_nan(values, n: int) -> np.ndarray:
    return np.full(n, np.nan) if values is None else np.asarray(values, float)


def _check_horizon(horizon_days: int) -> int:
    if not isinstance(horizon_days, (int, np.integer)) or not 1 <= horizon_days <= 365:
        raise InvalidParameter(
            f"horizon_days must be an integer within 1..365, got {horizon_days!r}")
    return int(horizon_days)


class Power:
    """Battery discharge, forecasts, criticality, replacement plan and drain attribution.

    >>> from tsfleet.simulate import SimConfig, simulated_fleet
    >>> fleet = simulated_fleet(SimConfig(n_devices=30, days=20, seed=2))
    >>> fleet.power.forecast(horizon_days=30)  # doctest: +SKIP
    """

    def __init__(self, fleet: Fleet):
        self.fleet = fleet
        self.con = fleet.con

    # -- forecasts -----------------------------------------------------------------------
    def forecast(self, horizon_days: int = 30, devices: list[str] | None = None,
                 shared: dict | None = None) -> pd.DataFrame:
        """Forecast every battery device (or ``devices``, merged) into ``battery_forecast``.

        Returns the rows written: level at the horizon with a 90% interval,
        critical and empty dates with intervals, method, fit parameters.
        ``shared``: the parameters pooled per device type (device type ->
        :class:`~tsfleet.power.holt.HoltParams`) to apply instead of fitting them, as
        a distributed run's fleet step hands them to each bucket (:mod:`tsfleet.scaleout`).
        """
        horizon_days = _check_horizon(horizon_days)
        out = forecast.run(self.con, horizon_days, devices, shared=shared)
        pat = out["patterns"]
        data = {k: out[k] for k in FORECAST_COLUMNS}
        params = {"horizon_days": horizon_days,
                  "shared": {t: vars(p) for t, p in out["shared"].items()}}
        key = ["device_id"] if devices is not None else None
        table = to_arrow(data)
        for i, field in enumerate(table.schema):     # an all-None text column stays text
            if pa.types.is_null(field.type):
                table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
        write_result(self.con, "battery_forecast", table, params=params, key=key)
        s = out["series"]
        day0 = s.day0.astype("datetime64[us]")
        change_at = np.where(pat.change_col >= 0, day0 + (np.maximum(pat.change_col, 0) * 86400e6)
                             .astype("timedelta64[us]"), np.datetime64("NaT"))
        seg_at = np.where(s.start >= 0, day0 + (np.maximum(s.start, 0) * 86400e6)
                          .astype("timedelta64[us]"), np.datetime64("NaT"))
        level_now = np.asarray(data["level_now_pct"], float)
        knee_excess = np.where(s.knee > 0, s.gain * np.maximum(s.knee - level_now, 0.0)
                               / np.where(s.knee > 0, s.knee, 1.0), 0.0)
        write_result(self.con, "battery_patterns", to_arrow(dict(
            device_id=out["device_id"], pattern=pat.pattern, segment_start_at=seg_at,
            n_days=out["n_days"], rate_pct_per_day=pat.rate,
            rate_recent_pct_per_day=pat.rate_recent, change_at=change_at,
            change_ratio=pat.change_ratio, temp_coef_per_c=pat.temp_coef,
            temp_coef_t=pat.temp_t, temp_gauge_pct_per_c=np.where(pat.temp.known, pat.temp.g,
                                                                   np.nan),
            knee_excess=np.where(np.isfinite(level_now), knee_excess, np.nan),
            load_sag_v_at_20c=_or_nan(s.sag_v_at_20c, s.n),
            load_sag_scale_c=_or_nan(s.sag_scale_c, s.n),
            residual_sd_pct=pat.resid_sd)),
            params={"source": "forecast"}, key=key)
        return pd.DataFrame({k: data[k] for k in FORECAST_COLUMNS})

    def backtest(self, horizon_days: int = 30) -> dict:
        """Cut each history ``horizon_days`` before its end, forecast, score; returns a summary."""
        horizon_days = _check_horizon(horizon_days)
        bt = backtest.run(self.con, horizon_days)
        if bt.empty:
            return {"n_scored": 0}
        write_result(self.con, "battery_backtest", pa.Table.from_pandas(bt, preserve_index=False),
                     params={"horizon_days": horizon_days})
        return summarize_backtest(bt)

    # -- criticality and plan --------------------------------------------------------------
    def states(self) -> list[dict]:
        """Battery devices with their power state (ok, low, critical, depleting, unknown)."""
        return self.fleet.query("select * from battery_state order by device_id")

    def replacement_plan(self, horizon_days: int = 30, batch_days: float = 7.0) -> list[dict]:
        """Devices to replace within ``horizon_days``, batched into site visits, ranked."""
        horizon_days = _check_horizon(horizon_days)
        if batch_days < 0:
            raise InvalidParameter(f"batch_days must be >= 0, got {batch_days!r}")
        if not self.con.execute("select count(*) from battery_forecast").fetchall()[0][0]:
            self.forecast(horizon_days=max(horizon_days, 30))
        frame = self.fleet.frame(
            "select f.*, d.site, d.zone, d.device_type, d.criticality from battery_forecast f "
            "join devices d using (device_id) where f.method <> 'no_data'")
        now = frame["as_of"].max() if len(frame) else now_utc()
        p = plan.build(frame, horizon_days, batch_days, now)
        write_result(self.con, "replacement_plan",
                     pa.Table.from_pandas(p, preserve_index=False) if len(p) else
                     pa.table({"visit_id": pa.array([], pa.int32())}),
                     params={"horizon_days": horizon_days, "batch_days": batch_days})
        return self.fleet.query("select * exclude (computed_at, params) from replacement_plan "
                                "order by rank")

    def refresh(self) -> int:
        """Bring the daily tables (and so the ``battery_daily`` and discharge views) up to
        the newest ingested batch; every forecast does this itself. Returns the (device,
        day) rows touched."""
        self.fleet.require_writable()
        return daystats.refresh(self.con)

    def attribution(self) -> list[dict]:
        """Effects of firmware, temperature, interval and RSSI on the discharge rate (OLS)."""
        self.refresh()
        table = attribution.run(self.con)
        write_result(self.con, "drain_attribution",
                     pa.Table.from_pandas(table, preserve_index=False) if len(table) else
                     pa.table({"factor": pa.array([], pa.string())}), params={"model": "ols"})
        return self.fleet.query("select * exclude (computed_at, params) from drain_attribution")

    # -- domain contract ---------------------------------------------------------------------
    def analyze(self, devices: list[str] | None = None) -> int:
        """Forecast (all or ``devices``), then the plan and the attribution.

        Returns the number of devices forecast: ``devices`` alone while the
        parameters pooled per device type are current, every device when they
        are due again (see :data:`tsfleet.power.forecast.REFIT_DAYS`).
        """
        n = len(self.forecast(30, devices))
        self.replacement_plan(30)
        self.attribution()
        return n

    def summary(self) -> list[str]:
        rows = self.fleet.query(
            "select power_state, count(*) as n from battery_state group by 1 order by 1")
        counts = {r["power_state"]: r["n"] for r in rows}
        lines = [", ".join(f"{n} {s}" for s, n in counts.items()) + " battery devices"]
        first = self.fleet.query(
            "select device_id, empty_at from battery_forecast where days_to_empty <= 30 "
            "order by empty_at limit 1")
        n30 = self.fleet.query("select count(*) as n from battery_forecast "
                               "where days_to_empty <= 30")[0]["n"]
        if first:
            lines.append(f"{plural(n30, 'device')} will be empty within 30 days; first: "
                         f"{first[0]['device_id']} on {first[0]['empty_at']:%Y-%m-%d}")
        # Replacements are dated and batched by the one maintenance plan (tsfleet
        # workorders / power plan), never here: a summary must not show a second schedule.
        fb = self.fleet.query("select count(*) as n from battery_forecast "
                              "where method <> 'holt_winters'")[0]["n"]
        lines.append(f"{fb} forecasts use a fallback (see battery_forecast.reason)")
        return lines


#: The scores of each method in a backtest's summary (:func:`summarize_backtest`).
BACKTEST_SCORES = ("within_10", "within_15", "median_error_pct")


def summarize_backtest(bt: pd.DataFrame) -> dict:
    s = bt[bt["is_scored"]]
    out = {"n_devices": len(bt), "n_scored": len(s)}
    for name, col in (("model", "error_pct_of_drop"), ("line14", "line14_error_pct_of_drop"),
                      ("mean_rate", "mean_rate_error_pct_of_drop")):
        e = s[col]
        out[name] = dict(zip(BACKTEST_SCORES, (float((e <= 10).mean()),
                                               float((e <= 15).mean()), float(e.median())),
                             strict=True))
    return out
