"""A second battery fleet, generated apart from ``tsfleet.simulate`` (issue #16).

Nothing here is imported from tsfleet's simulator or forecaster, and no constant of
the forecaster was chosen on this fleet. Its physics and quirks differ on purpose:

* cells per vendor: each vendor's open-circuit curve of a chemistry differs from
  tsfleet's built-in one (Li-SOCl2 of two vendors, Li-MnO2, alkaline packs of 2 or 3
  cells in series, LiFePO4); the vendor's datasheet curve is published as data
  (:attr:`Fleet.curves`, the ``battery_curves`` ingest kind), as a user would enter it;
* fuel gauges that report a *linear* state of charge (a coulomb counter: no knee),
  with a per-device capacity error, quantised to 1 % or 0.5 %;
* voltage-only devices: pack voltage = cells x (curve + a temperature coefficient per
  cell) minus an IR drop whose resistance grows linearly into the cold, with noise,
  quantised to 1 mV or 10 mV; a diurnal swing of the device temperature;
* a seasonal climate per zone (indoor, outdoor cold, outdoor mild, hot process)
  from a sine of the day of year plus AR(1) weather, history from late August, so
  the 30-day horizon keeps cooling (some zones go below 0 C);
* consumption: sleep current + active drain; the active drain changes with the duty
  cycle at random days (steps up and down); usable capacity shrinks in the cold
  (piecewise linear below 10 C, per chemistry) and self-discharge grows in the heat;
* a battery that falls below a few percent during history is replaced (with a
  ``battery_replaced`` event on 60% of devices, silently on the others),
  reporting intervals from 15 minutes to 3 hours, gaps of days without reports.

Truth: :attr:`Fleet.truth` (true state of charge per device at each midnight
through the horizon, with no intervention after the end of history); :attr:`Fleet.info`
holds each percent gauge's capacity error (its reading is the true level x (1 + it)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

START = pd.Timestamp("2026-08-22")
HISTORY_DAYS = 90
HORIZON_DAYS = 30
STEP_H = 0.25                         # physics step: 15 minutes

#: vendor cell curves: open-circuit volts per cell at 0, 5, 10, 20, ..., 100 % SoC (20 C)
SOC_POINTS = np.array([0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100], float)
VENDOR_CURVES = {
    # chemistry, vendor: (per-cell volts, dV/dT per cell (V/C), R20 per cell (ohm))
    ("li_socl2", "saftish"): (np.array([3.05, 3.38, 3.47, 3.54, 3.57, 3.59, 3.605, 3.615, 3.625,
                                        3.635, 3.645, 3.67]), 0.0007, 9.0),
    ("li_socl2", "evetish"): (np.array([2.95, 3.25, 3.40, 3.50, 3.55, 3.575, 3.59, 3.60, 3.61,
                                        3.625, 3.64, 3.66]), 0.0005, 14.0),
    ("li_mno2", "panaish"): (np.array([2.30, 2.62, 2.72, 2.80, 2.86, 2.90, 2.93, 2.96, 2.99,
                                       3.03, 3.08, 3.22]), 0.0011, 6.0),
    ("alkaline", "durish"): (np.array([0.95, 1.05, 1.11, 1.17, 1.22, 1.26, 1.30, 1.34, 1.38,
                                       1.43, 1.49, 1.58]), 0.0004, 0.25),
    ("lifepo4", "a123ish"): (np.array([2.70, 3.05, 3.15, 3.21, 3.24, 3.27, 3.29, 3.30, 3.31,
                                       3.33, 3.36, 3.45]), 0.0003, 0.05),
}
#: per chemistry: fraction of capacity lost per C below 10 C, self-discharge %/day at 45 C
COLD_LOSS = {"li_socl2": 0.012, "li_mno2": 0.009, "alkaline": 0.022, "lifepo4": 0.008}
HOT_SELF = {"li_socl2": 0.03, "li_mno2": 0.05, "alkaline": 0.08, "lifepo4": 0.06}
#: zones: (mean C, seasonal amplitude C, AR(1) weather SD C, is indoor)
ZONES = {
    "office": (21.0, 1.0, 0.4, True),
    "warehouse": (12.0, 9.0, 1.5, False),
    "yard": (7.0, 14.0, 2.5, False),
    "coldstore": (-8.0, 1.5, 0.8, True),
    "boiler": (38.0, 3.0, 1.0, True),
    "roof": (10.0, 16.0, 3.0, False),
}


@dataclass
class Fleet:
    devices: pd.DataFrame        # the devices ingest kind
    readings: pd.DataFrame       # the readings ingest kind
    events: pd.DataFrame         # device_events (battery_replaced, where logged)
    curves: pd.DataFrame         # battery_curves: each vendor's datasheet curve (20 C)
    truth: pd.DataFrame          # device_id, day_at, level_pct (true SoC, %) per midnight
    info: pd.DataFrame           # per device: chemistry, gauge, cells, zone, flags
    end: pd.Timestamp            # end of history


def _climate(rng, days_total: int) -> dict[str, np.ndarray]:
    """Hourly temperature per zone over the whole span (history and horizon)."""
    hours = np.arange(days_total * 24)
    doy = (START.dayofyear + hours / 24.0)
    out = {}
    for z, (mean, amp, sd, indoor) in ZONES.items():
        season = mean + amp * np.cos(2 * np.pi * (doy - 200) / 365.0)
        w = np.zeros(len(hours))
        phi = 0.995
        e = rng.normal(0, sd * np.sqrt(1 - phi ** 2), len(hours))
        for i in range(1, len(hours)):
            w[i] = phi * w[i - 1] + e[i]
        diurnal = (0.5 if indoor else 3.0) * np.sin(2 * np.pi * (hours % 24 - 9) / 24)
        out[z] = season + w + diurnal
    return out


def generate(n_devices: int = 600, seed: int = 0, history_days: int = HISTORY_DAYS,
             horizon_days: int = HORIZON_DAYS) -> Fleet:
    rng = np.random.default_rng(seed + 7919)
    days_total = history_days + horizon_days
    n_steps = int(days_total * 24 / STEP_H)
    climate = _climate(rng, days_total)
    kinds = list(VENDOR_CURVES)
    zones = list(ZONES)
    dev_rows, read_parts, event_rows, truth_parts, info_rows = [], [], [], [], []
    t_hours = np.arange(n_steps) * STEP_H
    for d in range(n_devices):
        dev_id = f"ind-{d:04d}"
        chem, vendor = kinds[rng.integers(len(kinds))]
        curve, dvdt, r20 = VENDOR_CURVES[(chem, vendor)]
        cells = int(rng.choice([2, 3])) if chem == "alkaline" else 1
        zone = zones[rng.integers(len(zones))]
        gauge = "percent" if rng.random() < 0.55 else "voltage"
        # consumption, % of nominal capacity per day at 20 C and the initial duty cycle
        base = float(np.exp(rng.normal(np.log(0.4), 0.45)))
        sleep_share = rng.uniform(0.05, 0.3)
        duty = np.ones(n_steps)
        n_changes = rng.choice([0, 0, 1, 1, 2])
        for _ in range(n_changes):
            at = int(rng.uniform(0.1, 0.85) * history_days * 24 / STEP_H)
            duty[at:] *= float(np.exp(rng.normal(0, 0.3)))
        temp_h = climate[zone]
        temp = np.repeat(temp_h, int(1 / STEP_H))[:n_steps] + rng.normal(0, 0.3)
        cold = 1.0 - COLD_LOSS[chem] * np.clip(10.0 - temp, 0, None)
        cold = np.clip(cold, 0.3, 1.0)
        self_dis = HOT_SELF[chem] * np.clip((temp - 25.0) / 20.0, 0, None) ** 2
        # drain of *usable* charge, % per step: usable capacity shrinks in the cold
        rate = (base * (sleep_share + (1 - sleep_share) * duty) / cold + self_dis) * STEP_H / 24
        replace_below = rng.uniform(3, 15)
        logged = rng.random() < 0.6
        replaced_at = []
        hist_steps = int(history_days * 24 / STEP_H)
        used = np.cumsum(rate)
        soc = rng.uniform(35, 100) - used
        while True:                       # a battery near empty is replaced
            below = np.flatnonzero(soc[:hist_steps] < replace_below)
            if not len(below):
                break
            i = below[0]
            replaced_at.append(i)
            soc[i:] = rng.uniform(92, 100) - (used[i:] - used[i - 1] if i else used[i:])
        # truth at each midnight (no intervention after the end of history)
        mid = np.arange(days_total + 1) * int(24 / STEP_H)
        mid = np.minimum(mid, n_steps - 1)
        truth_parts.append(pd.DataFrame({"device_id": dev_id,
                                         "day_at": START + pd.to_timedelta(np.arange(
                                             days_total + 1), "D"),
                                         "level_pct": soc[mid]}))
        # reports over the history only
        interval_h = float(rng.choice([0.25, 0.5, 1.0, 1.0, 2.0, 3.0]))
        every = max(int(round(interval_h / STEP_H)), 1)
        idx = np.arange(int(rng.uniform(0, every)), hist_steps, every)
        if rng.random() < 0.4:
            for _ in range(rng.integers(1, 4)):
                g0 = int(rng.uniform(0, hist_steps))
                g1 = g0 + int(rng.uniform(1, 5) * 24 / STEP_H)
                idx = idx[(idx < g0) | (idx >= g1)]
        if rng.random() < 0.1:            # a device onboarded late: a short history
            idx = idx[idx >= hist_steps - int(rng.uniform(3, 12) * 24 / STEP_H)]
        at = START + pd.to_timedelta(t_hours[idx], "h") + pd.to_timedelta(
            rng.uniform(0, 60, len(idx)), "s")
        cap_err = rng.normal(0, 0.04)
        if gauge == "percent":
            q = float(rng.choice([1.0, 0.5]))
            val = np.clip(soc[idx] * (1 + cap_err) + rng.normal(0, 0.25, len(idx)), 0, 100)
            val = np.round(val / q) * q
            metric = "battery_pct"
        else:
            dev_temp = temp[idx] + 2.0 * np.sin(2 * np.pi * (t_hours[idx] % 24 - 14) / 24)
            ocv = np.interp(np.clip(soc[idx], 0, 100), SOC_POINTS, curve) + dvdt * (dev_temp - 20)
            r = r20 * (1 + 0.05 * np.clip(20 - dev_temp, 0, None))
            load_a = 0.004 * (0.5 + duty[idx])
            volts = cells * ocv - cells * r * load_a + rng.normal(0, 0.004, len(idx))
            q = float(rng.choice([0.001, 0.01]))
            val = np.round(np.clip(volts, 0.5, None) / q) * q
            metric = "battery_voltage_v"
        read_parts.append(pd.DataFrame({"device_id": dev_id, "observed_at": at,
                                        "metric": metric, "value": val}))
        if rng.random() < 0.6:            # a temperature sensor beside the battery
            read_parts.append(pd.DataFrame({
                "device_id": dev_id, "observed_at": at, "metric": "temperature_c",
                "value": np.round(temp[idx] + rng.normal(0, 0.2, len(idx)), 2)}))
        for i in replaced_at:
            if logged:
                event_rows.append(dict(device_id=dev_id, event_at=START + pd.to_timedelta(
                    t_hours[i], "h"), event="battery_replaced"))
        dev_rows.append(dict(
            device_id=dev_id, device_type=f"{chem}-{gauge}", manufacturer=vendor,
            model=f"{vendor}-{chem}-{cells}s", site="ind-site", zone=zone,
            battery_chemistry=chem, battery_cells=cells,
            battery_curve=f"{vendor}_{chem}", reporting_interval_s=interval_h * 3600))
        info_rows.append(dict(device_id=dev_id, chemistry=chem, gauge=gauge, cells=cells,
                              zone=zone, n_duty_changes=int(n_changes),
                              n_replacements=len(replaced_at), base_rate=base,
                              capacity_error=cap_err if gauge == "percent" else np.nan))
    curves = pd.DataFrame([dict(curve_id=f"{v}_{c}", level_pct=lv, voltage_v=volt, cells=1,
                                temperature_c=20.0)
                           for (c, v), (cv, _, _) in VENDOR_CURVES.items()
                           for lv, volt in zip(SOC_POINTS, cv, strict=True)])
    return Fleet(pd.DataFrame(dev_rows), pd.concat(read_parts, ignore_index=True),
                 pd.DataFrame(event_rows, columns=["device_id", "event_at", "event"]), curves,
                 pd.concat(truth_parts, ignore_index=True), pd.DataFrame(info_rows),
                 START + pd.Timedelta(days=history_days))


def load_into(fleet, gen: Fleet) -> None:
    """Ingest the generated fleet through tsfleet's public API."""
    fleet.ingest("battery_curves", gen.curves)
    fleet.ingest("devices", gen.devices)
    fleet.ingest("readings", gen.readings)
    if len(gen.events):
        fleet.ingest("device_events", gen.events)
