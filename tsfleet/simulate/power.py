"""Battery levels of the simulated fleet, with ground truth in ``sim.battery``
and ``sim.battery_daily``.

What the generator models, per battery device:

* consumption in percent of capacity per hour: a base rate (per chemistry,
  lognormal across devices) times a temperature factor ``exp(k * (T - 20))``
  at the device's zone temperature (``k`` is large for *temperature-sensitive*
  devices), times a duty-cycle factor ``0.35 + 0.65 * interval0 / interval``
  (a device whose reporting interval is shortened mid-history gets a *step
  change*), times the firmware's ``battery_drain_factor`` when the firmware
  generator left one in ``sk.extra``;
* the reported level as a function of the charge used: linear, except that the
  Li-SOCl2 gauge falls ever faster below its *knee* (about 20 %):
  ``dL/dC = -(1 + a * (knee - L) / knee)``, solved in closed form;
* resets: primary batteries replaced when low (``device_events``
  ``battery_replaced``), Li-ion devices charged back up (a ramp of a few hours);
* reports: integer (or half-percent) quantized percentages with gauge noise;
  the PX-3 reports only a voltage through the chemistry's open-circuit curve,
  minus a temperature-dependent load sag, with noise, in millivolts;
  a few *erratic* devices with a noisy gauge; a few devices with a short
  history (onboarded in the last days); the daily ``reporting_interval_s``.

Truth: ``sim.battery`` (one row per battery device: parameters and flags) and
``sim.battery_daily`` (true level at each day boundary, through 120 days past
the end of history, assuming no intervention after the end; the future
temperature factor is the mean of the last 7 days').
"""

from __future__ import annotations

import numpy as np

from tsfleet.simulate.output import SimOutput
from tsfleet.simulate.skeleton import Skeleton

#: Open-circuit voltage (V) at state of charge 0, 10, ..., 100 % per chemistry.
DISCHARGE_CURVES: dict[str, tuple[float, ...]] = {
    "li_socl2": (2.90, 3.30, 3.45, 3.52, 3.56, 3.58, 3.60, 3.61, 3.62, 3.63, 3.66),
    "alkaline": (2.00, 2.20, 2.36, 2.48, 2.58, 2.66, 2.74, 2.82, 2.90, 3.00, 3.20),
    "li_ion":   (3.00, 3.45, 3.60, 3.68, 3.74, 3.79, 3.85, 3.92, 4.00, 4.08, 4.20),
    "lifepo4":  (2.50, 3.00, 3.15, 3.20, 3.23, 3.26, 3.28, 3.30, 3.32, 3.35, 3.60),
}
#: Median base consumption, % of capacity per day at 20 C and the nominal interval.
BASE_RATE_PCT_PER_DAY = {"li_socl2": 0.30, "alkaline": 0.35, "li_ion": 1.6, "lifepo4": 0.4}
#: Gauge knee (level, %) and the extra slope at 0 % (``a``) of each chemistry.
KNEE = {"li_socl2": (20.0, 3.0)}
FUTURE_DAYS = 120
CHARGE_PCT_PER_HOUR = 20.0


def voltage_from_level(chemistry: str, level_pct: np.ndarray) -> np.ndarray:
    curve = DISCHARGE_CURVES[chemistry]
    return np.interp(level_pct, np.linspace(0, 100, len(curve)), curve)


def _knee_rate(knee, gain):
    return np.where(knee > 0, gain / np.where(knee > 0, knee, 1.0), 0.0)


def charge_from_level(level, knee, gain):
    """Charge-equivalent level: linear in the charge used (equals the level above the knee)."""
    r = _knee_rate(knee, gain)
    u = np.maximum(knee - level, 0.0)
    return np.where((r > 0) & (u > 0), knee - np.log1p(r * u) / np.where(r > 0, r, 1.0), level)


def level_from_charge(charge, knee, gain):
    """Inverse of :func:`charge_from_level`, clipped to 0..100 %."""
    r = _knee_rate(knee, gain)
    u = np.maximum(knee - charge, 0.0)
    with np.errstate(over="ignore"):
        lv = np.where((r > 0) & (u > 0),
                      knee - np.expm1(np.minimum(r * u, 50.0)) / np.where(r > 0, r, 1.0), charge)
    return np.clip(lv, 0.0, 100.0)


def level_after(l0, used, knee, gain):
    """Level (%) after using ``used`` % of charge from level ``l0`` (broadcasting)."""
    return level_from_charge(charge_from_level(l0, knee, gain) - np.maximum(used, 0.0), knee, gain)


def generate(sk: Skeleton, out: SimOutput) -> None:
    rng = sk.rng("power")
    d = sk.devices
    bat = np.flatnonzero(d["battery_chemistry"] != "mains")
    nb, n_h = len(bat), sk.n_hours
    if nb == 0:
        return
    chem = d["battery_chemistry"][bat].astype(str)
    is_ion = chem == "li_ion"
    interval0 = d["reporting_interval_s"][bat]

    # Consumption per hour ------------------------------------------------------------
    base = np.array([BASE_RATE_PCT_PER_DAY[c] for c in chem]) * rng.lognormal(0, 0.55, nb)
    base *= np.where(interval0 >= 86400, 0.35, 1.0)        # daily reporters sleep more
    temp_sensitive = rng.random(nb) < 0.30
    k = np.where(temp_sensitive, rng.uniform(0.03, 0.06, nb), rng.uniform(0.0, 0.008, nb))
    is_step = (rng.random(nb) < 0.12) & (interval0 < 86400)
    step_hour = np.where(is_step, (rng.uniform(0.15, 0.85, nb) * n_h).astype(int), n_h)
    new_interval = np.where(is_step, interval0 / rng.choice([4.0, 2.0, 0.5], nb), interval0)
    duty_after = 0.35 + 0.65 * interval0 / new_interval
    temp = sk.device_env("temperature_c")[bat]
    hours = np.arange(n_h)
    c_hour = np.exp(k[:, None] * (temp - 20.0))
    c_hour *= (base / 24.0)[:, None]
    c_hour *= np.where(hours[None, :] >= step_hour[:, None], duty_after[:, None], 1.0)
    drain = sk.extra.get("battery_drain_factor")
    fw_step = np.zeros(nb, dtype=bool)
    fw_hour = np.full(nb, n_h)
    if drain is not None:
        drain = np.asarray(drain, dtype=float)[bat]
        c_hour *= drain
        if drain.ndim == 2:          # a firmware update that changes the drain is a step too
            changed = drain != drain[:, :1]
            fw_step = changed.any(axis=1)
            fw_hour = np.where(fw_step, changed.argmax(axis=1), n_h)
    used = np.cumsum(c_hour, axis=1) - c_hour             # charge used before each hour
    used_end = used[:, -1] + c_hour[:, -1]

    # Levels, segment by segment (a segment starts at a reset) ---------------------------
    knee = np.array([KNEE.get(c, (0.0, 0.0))[0] for c in chem]) + np.where(
        chem == "li_socl2", rng.uniform(-2, 2, nb), 0.0)
    gain = np.array([KNEE.get(c, (0.0, 0.0))[1] for c in chem]) * rng.uniform(0.9, 1.1, nb)
    start_level = rng.uniform(25, 100, nb)
    seg_start = np.zeros(nb, dtype=int)
    seg_l0 = start_level.copy()
    level = level_after(start_level[:, None], used, knee[:, None], gain[:, None])
    # Primary batteries: replaced once when low (most), or at a random time (a few).
    lo = rng.uniform(1, 12, nb)
    low_at = np.where((level < lo[:, None]).any(axis=1), (level < lo[:, None]).argmax(axis=1), -1)
    replaced = ~is_ion & (((low_at >= 0) & (rng.random(nb) < 0.75)) | (rng.random(nb) < 0.03))
    repl_hour = np.where(low_at >= 0, low_at + rng.integers(0, 48, nb),
                         rng.integers(n_h // 5, n_h, nb))
    replaced &= repl_hour < n_h - 1
    repl_hour = np.where(replaced, repl_hour, n_h)
    new_l0 = rng.uniform(96, 100, nb)
    if replaced.any():
        r = np.flatnonzero(replaced)
        after = hours[None, :] >= repl_hour[r, None]
        fresh = level_after(new_l0[r, None], used[r] - used[r, repl_hour[r]][:, None],
                            knee[r, None], gain[r, None])
        level[r] = np.where(after, fresh, level[r])
        seg_start[r], seg_l0[r] = repl_hour[r], new_l0[r]
    # Li-ion: charged to hi when it falls to lo, at CHARGE_PCT_PER_HOUR.
    n_charges = np.zeros(nb, dtype=int)
    ion = np.flatnonzero(is_ion)
    ion_lo, ion_hi = rng.uniform(15, 35, nb), rng.uniform(95, 100, nb)
    for _ in range(60):
        if len(ion) == 0:
            break
        seg_used = used[ion] - used[ion, seg_start[ion]][:, None]
        target = seg_l0[ion] - ion_lo[ion]
        past = (seg_used >= target[:, None]) & (hours[None, :] >= seg_start[ion, None])
        hit = past.any(axis=1)
        ion = ion[hit]
        if len(ion) == 0:
            break
        at = past[hit].argmax(axis=1)
        ramp_h = np.ceil((ion_hi[ion] - ion_lo[ion]) / CHARGE_PCT_PER_HOUR).astype(int)
        t = hours[None, :] - at[:, None]
        ramp = np.minimum(ion_lo[ion, None] + CHARGE_PCT_PER_HOUR * t, ion_hi[ion, None])
        level[ion] = np.where((t >= 0) & (t < ramp_h[:, None]), ramp, level[ion])
        new_start = at + ramp_h
        fresh = level_after(ion_hi[ion, None], used[ion] - used[ion, np.minimum(new_start, n_h - 1)
                                                             ][:, None], 0.0, 0.0)
        level[ion] = np.where(t >= ramp_h[:, None], fresh, level[ion])
        n_charges[ion] += 1
        keep = new_start < n_h
        seg_start[ion[keep]], seg_l0[ion[keep]] = new_start[keep], ion_hi[ion[keep]]
        ion = ion[keep]

    # Reported values --------------------------------------------------------------------
    erratic = rng.random(nb) < 0.03
    short = rng.random(nb) < 0.02
    first_hour = np.where(short, np.maximum(0, n_h - rng.integers(24, 6 * 24, nb)), 0)
    voltage_only = d["voltage_only"][bat]
    noise = rng.normal(0, 1, level.shape) * np.where(erratic, 4.0, 0.35)[:, None]
    spikes = erratic[:, None] & (rng.random(level.shape) < 0.05)
    reported = level + noise + spikes * rng.normal(0, 15, level.shape)
    step_q = np.array([0.5 if m == "VB-9" else 1.0 for m in d["model"][bat]])
    pct = np.clip(np.round(reported / step_q[:, None]) * step_q[:, None], 0, 100)
    visible = hours[None, :] >= first_hour[:, None]
    pct_rows = np.flatnonzero(~voltage_only)
    grid = np.where(visible[pct_rows], pct[pct_rows], np.nan)
    out.add_grid("battery_pct", bat[pct_rows], grid)
    for c in np.unique(chem[voltage_only]):
        rows = np.flatnonzero(voltage_only & (chem == c))
        sag = 0.015 * np.exp(-(temp[rows] - 20.0) / 12.0)
        volts = (voltage_from_level(c, np.clip(level[rows] + rng.normal(0, 0.2, level[rows].shape),
                                               0, 100))
                 - sag + rng.normal(0, 0.006, level[rows].shape))
        volts = np.where(visible[rows], np.round(volts, 3), np.nan)
        out.add_grid("battery_voltage_v", bat[rows], volts)
    # The interval the device uses, once a day at its reporting hour.
    step_h = np.maximum(1, (interval0 // 3600).astype(int))
    day_hour = (d["phase_s"][bat] % step_h) % 24
    days = np.arange(sk.config.days)
    rep_h = days[None, :] * 24 + day_hour[:, None]
    iv = np.where(rep_h >= step_hour[:, None], new_interval[:, None], interval0[:, None])
    iv = np.where(rep_h >= first_hour[:, None], iv, np.nan)
    rows, cols = np.nonzero(~np.isnan(iv))
    out.add_readings("reporting_interval_s", bat[rows], rep_h[rows, cols], iv[rows, cols])

    # Events -----------------------------------------------------------------------------
    r = np.flatnonzero(replaced)
    if len(r):
        at = sk.hours[repl_hour[r]] + d["phase_s"][bat[r]].astype("timedelta64[s]")
        out.add_rows("device_events", dict(
            device_id=d["device_id"][bat[r]], event_at=at,
            event=np.full(len(r), "battery_replaced", dtype=object),
            detail=np.full(len(r), "battery swapped by maintenance", dtype=object)))

    # Truth ------------------------------------------------------------------------------
    last = n_h - 1
    tail = slice(max(0, n_h - 7 * 24), n_h)
    future_rate = (c_hour[:, tail].mean(axis=1)) * 24.0     # % per day, last week's mean
    fut_days = np.arange(1, FUTURE_DAYS + 1)
    seg_used_end = used_end - used[np.arange(nb), np.minimum(seg_start, last)]
    if is_ion.any():  # a charging ramp that did not finish: continue from the last level
        charging = is_ion & (seg_start > last)
        seg_l0 = np.where(charging, level[:, last], seg_l0)
        seg_used_end = np.where(charging, 0.0, seg_used_end)
    fut_level = level_after(seg_l0[:, None], seg_used_end[:, None]
                            + future_rate[:, None] * (fut_days[None, :] - 1),
                            knee[:, None], gain[:, None])
    hist_level = level[:, ::24]
    day_at = sk.hours[0] + np.arange(sk.config.days + FUTURE_DAYS) * np.timedelta64(86400, "s")
    all_level = np.concatenate([hist_level, fut_level], axis=1)
    n_days = all_level.shape[1]
    out.add_truth("battery_daily", dict(
        device_id=np.repeat(d["device_id"][bat], n_days),
        day_at=np.tile(day_at, nb),
        level_pct=all_level.ravel(),
        is_history=np.tile(np.arange(n_days) < sk.config.days, nb)))
    is_accel = (knee > 0) & (all_level[:, : sk.config.days + 30].min(axis=1) < knee + 5)
    pattern = np.select(
        [short, erratic, is_ion, is_step | fw_step, temp_sensitive, is_accel],
        ["insufficient_data", "erratic", "charging", "step_change", "temperature_sensitive",
         "accelerating"], "steady")
    out.add_truth("battery", dict(
        device_id=d["device_id"][bat], chemistry=chem, base_rate_pct_per_day=base,
        temp_coef_per_c=k, is_temperature_sensitive=temp_sensitive,
        is_step_change=is_step, is_firmware_drain_step=fw_step,
        firmware_drain_step_at=np.where(fw_step, sk.hours[np.minimum(fw_hour, last)],
                                        np.datetime64("NaT")),
        step_at=np.where(is_step, sk.hours[np.minimum(step_hour, last)],
                         np.datetime64("NaT")),
        step_factor=np.where(is_step, duty_after, 1.0),
        interval_before_s=interval0, interval_after_s=new_interval,
        knee_pct=knee, knee_gain=gain, start_level_pct=start_level,
        is_replaced=replaced,
        replaced_at=np.where(replaced, sk.hours[np.minimum(repl_hour, last)], np.datetime64("NaT")),
        n_charges=n_charges, is_erratic=erratic, is_short_history=short,
        first_report_at=sk.hours[first_hour], future_rate_pct_per_day=future_rate,
        pattern=pattern))
