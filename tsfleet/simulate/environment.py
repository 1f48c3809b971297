"""Environment monitors and the environmental hazard of the fleet.

Environment monitors (EM-4, device_type ``env_monitor``) report their zone's
temperature, humidity and vibration hourly, with noise and quantization, and
with faults: a sensor stuck at one value, a sensor reporting impossible values
(out of range) and a dead monitor that stops reporting. Whole-zone blackouts
leave gaps (one short, one long), and one normal zone loses all its monitors
from the start (a zone without environment data).

Devices fail and reboot with a known hourly hazard (:class:`HazardModel`):

    failures/h = base/8760 * type_factor * exp(b_age*age_years
                  + b_T*max(0, T - threshold) + b_V*V + [type == humidity_type]*b_H*(H - 50)
                  + b_swing*daily_swing)

with ``b_swing = 0``: the daily temperature swing has no effect at all (the
null factor), although it is correlated with heat across zones. Reboots
depend on vibration only. Events go to ``device_events``.

Ground truth: ``sim.environment_hazard`` (the coefficients, one row per
outcome and term), ``sim.environment_zones`` (kind, monitor data, true rate
ratio against reference conditions, expected avoidable failures a year,
``is_problem``), ``sim.environment_monitor_faults`` and ``sim.environment_gaps``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tsfleet.simulate.output import SimOutput
from tsfleet.simulate.skeleton import Skeleton

HOURS_PER_YEAR = 8760.0
METRICS = (("temperature_c", 0.15, 0.1), ("humidity_pct", 0.8, 0.1), ("vibration_g", None, 0.001))
#: What an out-of-range sensor reports: impossible, yet inside the ingest catalog's range.
OUT_OF_RANGE = {"temperature_c": 125.0, "humidity_pct": 0.0, "vibration_g": 50.0}


@dataclass(frozen=True)
class HazardModel:
    """The true environmental hazard. ``None`` of the analysis sees these numbers."""

    base_failures_per_year: float = 1.5
    temperature_threshold_c: float = 30.0
    beta_temperature: float = 0.12      # log rate per degC above the threshold
    beta_vibration: float = 1.0         # log rate per g RMS
    humidity_type: str = "temp_humidity"
    humidity_reference_pct: float = 50.0
    beta_humidity: float = 0.03         # log rate per %RH, humidity_type only
    beta_swing: float = 0.0             # the factor with no effect
    beta_age: float = 0.2               # log rate per year of age
    type_factor: dict[str, float] = field(default_factory=lambda: {
        "temp_humidity": 1.0, "humidity": 0.8, "vibration": 1.3, "pressure": 1.1, "gas": 1.5,
        "temperature": 0.7})
    base_reboots_per_year: float = 4.0
    reboot_beta_vibration: float = 0.8
    problem_rate_ratio: float = 1.5     # a zone is a problem zone above this true ratio


@dataclass(frozen=True)
class MonitorFaults:
    share_faulty: float = 0.08
    short_gap_hours: int = 3
    long_gap_hours: int = 30


HAZARD = HazardModel()
FAULTS = MonitorFaults()


def generate(sk: Skeleton, out: SimOutput, hazard: HazardModel = HAZARD,
             faults: MonitorFaults = FAULTS) -> None:
    rng = sk.rng("environment")
    zone_has_data = _monitors(sk, out, rng, faults)
    _hazard(sk, out, rng, hazard, zone_has_data)
    out.add_truth("zones", sk.zones)


# -- environment monitors ---------------------------------------------------------------
def _monitors(sk: Skeleton, out: SimOutput, rng: np.random.Generator,
              faults: MonitorFaults) -> np.ndarray:
    d, z = sk.devices, sk.zones
    n_zones, n_h = len(z["zone"]), sk.n_hours
    monitors = np.flatnonzero(d["device_type"] == "env_monitor")
    zones = d["zone_idx"][monitors]
    grids = {}
    for metric, sigma, q in METRICS:
        true = sk.env[metric][zones]
        if metric == "vibration_g":  # relative noise: a quiet zone is not buried in it
            g = true * (1 + rng.normal(0, 0.05, true.shape)) + rng.normal(0, 0.001, true.shape)
        else:
            g = true + rng.normal(0, sigma, size=true.shape)
        grids[metric] = np.round(np.maximum(g, -80 if metric == "temperature_c" else 0) / q) * q

    # One normal zone (when there are two or more) loses all monitors from the start.
    has_monitor = np.bincount(zones, minlength=n_zones) > 0
    normal = np.flatnonzero((z["kind"] == "normal") & has_monitor)
    dark_zone = normal[-1] if len(normal) >= 2 else -1
    f_dev, f_kind, f_metric, f_from, f_to = [], [], [], [], []
    for i in np.flatnonzero(zones == dark_zone):
        for metric in grids:
            grids[metric][i, :] = np.nan
        f_dev.append(i), f_kind.append("dead"), f_metric.append(None)
        f_from.append(0), f_to.append(n_h)

    # Faulty monitors elsewhere: stuck, out of range, dead.
    candidates = np.flatnonzero(zones != dark_zone)
    n_faulty = min(len(candidates), max(3, int(round(faults.share_faulty * len(monitors)))))
    chosen = rng.choice(candidates, size=n_faulty, replace=False) if n_faulty else []
    kinds = ["stuck", "out_of_range", "dead"]
    for k, i in enumerate(chosen):
        kind = kinds[k % 3]
        start = int(rng.integers(int(0.1 * n_h), int(0.7 * n_h)))
        metric = [m for m, _, _ in METRICS][int(rng.integers(3))]
        if kind == "stuck":
            end = min(n_h, start + int(rng.integers(48, 240)))  # >= 12 readings
            grids[metric][i, start:end] = grids[metric][i, start]
        elif kind == "out_of_range":
            end = min(n_h, start + int(rng.integers(24, 120)))
            grids[metric][i, start:end] = OUT_OF_RANGE[metric]
        else:
            end, metric = n_h, None
            for m in grids:
                grids[m][i, start:] = np.nan
        f_dev.append(i), f_kind.append(kind), f_metric.append(metric)
        f_from.append(start), f_to.append(end)

    # Whole-zone blackouts: one short (to be interpolated) and one long (to stay a gap).
    zone_has_data = has_monitor.copy()
    if dark_zone >= 0:
        zone_has_data[dark_zone] = False
    g_zone, g_from, g_to = [], [], []
    live = np.flatnonzero(zone_has_data)
    if len(live) >= 2 and n_h > 200:
        for zi, length in zip(rng.choice(live, size=2, replace=False),
                              (faults.short_gap_hours, faults.long_gap_hours), strict=True):
            start = int(rng.integers(48, max(49, n_h - length - 48)))
            for metric in grids:
                grids[metric][zones == zi, start:start + length] = np.nan
            g_zone.append(zi), g_from.append(start), g_to.append(start + length)

    for metric, grid in grids.items():
        out.add_grid(metric, monitors, grid)
    hours = sk.hours
    out.add_truth("environment_monitor_faults", dict(
        device_id=d["device_id"][monitors[np.array(f_dev, dtype=int)]],
        zone=z["zone"][zones[np.array(f_dev, dtype=int)]].astype(object),
        fault=np.array(f_kind, dtype=object), metric=np.array(f_metric, dtype=object),
        from_at=hours[np.array(f_from, dtype=int)],
        to_at=hours[0] + np.array(f_to, dtype=np.int64) * np.timedelta64(3600, "s")))
    out.add_truth("environment_gaps", dict(
        zone=z["zone"][np.array(g_zone, dtype=int)].astype(object),
        from_at=hours[np.array(g_from, dtype=int)],
        to_at=hours[0] + np.array(g_to, dtype=np.int64) * np.timedelta64(3600, "s"),
        hours=np.array(g_to, dtype=int) - np.array(g_from, dtype=int)))
    return zone_has_data


# -- hazard: failures and reboots ---------------------------------------------------------
def daily_swing(temperature: np.ndarray) -> np.ndarray:
    """Per hour, the max - min temperature of its calendar day (same shape)."""
    n, n_h = temperature.shape
    days = n_h // 24
    t = temperature[:, : days * 24].reshape(n, days, 24)
    swing = np.repeat(t.max(axis=2) - t.min(axis=2), 24, axis=1)
    if n_h > days * 24:
        tail = temperature[:, days * 24:]
        rest = np.repeat((tail.max(axis=1) - tail.min(axis=1))[:, None], n_h - days * 24, axis=1)
        swing = np.concatenate([swing, rest], axis=1)
    return swing


def log_env_hazard(h: HazardModel, temperature, humidity, vibration, swing, is_humidity_type):
    """log multiplier of the hourly failure rate from the environment."""
    return (h.beta_temperature * np.maximum(temperature - h.temperature_threshold_c, 0)
            + h.beta_vibration * vibration + h.beta_swing * swing
            + np.where(is_humidity_type,
                       h.beta_humidity * (humidity - h.humidity_reference_pct), 0))


def _hazard(sk: Skeleton, out: SimOutput, rng: np.random.Generator, h: HazardModel,
            zone_has_data: np.ndarray) -> None:
    d, z, env = sk.devices, sk.zones, sk.env
    n_h = sk.n_hours
    swing = daily_swing(env["temperature_c"])
    # Reference conditions: below the threshold, a normal zone's vibration and humidity.
    ref = dict(temperature=np.minimum(env["temperature_c"], h.temperature_threshold_c),
               humidity=np.full_like(env["humidity_pct"], 45.0),
               vibration=np.full_like(env["vibration_g"], 0.04), swing=swing)
    devs = np.flatnonzero(d["device_type"] != "env_monitor")
    hour_age = ((sk.hours[None, :] - d["installed_at"][devs][:, None])
                / np.timedelta64(1, "D") / 365.25)
    ev_dev, ev_hour, ev_kind = [], [], []
    zone_rate = np.zeros(len(z["zone"]))
    zone_ref = np.zeros(len(z["zone"]))
    for lo in range(0, len(devs), 1500):
        idx = devs[lo:lo + 1500]
        zi = d["zone_idx"][idx]
        is_h = (d["device_type"][idx] == h.humidity_type)[:, None]
        base = (h.base_failures_per_year / HOURS_PER_YEAR
                * np.array([h.type_factor.get(t, 1.0) for t in d["device_type"][idx]])[:, None]
                * np.exp(h.beta_age * hour_age[lo:lo + 1500]))
        rate = base * np.exp(log_env_hazard(h, env["temperature_c"][zi], env["humidity_pct"][zi],
                                            env["vibration_g"][zi], swing[zi], is_h))
        rate_ref = base * np.exp(log_env_hazard(h, ref["temperature"][zi], ref["humidity"][zi],
                                                ref["vibration"][zi], swing[zi], is_h))
        np.add.at(zone_rate, zi, rate.sum(axis=1))
        np.add.at(zone_ref, zi, rate_ref.sum(axis=1))
        fail = rng.random(rate.shape) < rate
        reboot_rate = (h.base_reboots_per_year / HOURS_PER_YEAR
                       * np.exp(h.reboot_beta_vibration * env["vibration_g"][zi]))
        reboot = rng.random(rate.shape) < reboot_rate
        for mask, kind in ((fail, "failure"), (reboot, "reboot")):
            r, c = np.nonzero(mask)
            ev_dev.append(idx[r]), ev_hour.append(c), ev_kind.append(np.full(len(r), kind, object))
    ev_dev, ev_hour, ev_kind = (np.concatenate(a) for a in (ev_dev, ev_hour, ev_kind))
    at = sk.hours[ev_hour] + rng.integers(0, 3600, len(ev_dev)).astype("timedelta64[s]")
    detail = np.where(ev_kind == "failure", "device failed (simulated environmental hazard)",
                      "unexpected reboot")
    out.add_rows("device_events", dict(device_id=d["device_id"][ev_dev], event_at=at,
                                       event=ev_kind, detail=detail.astype(object)))

    n_in_zone = np.bincount(d["zone_idx"][devs], minlength=len(z["zone"]))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(zone_ref > 0, zone_rate / zone_ref, np.nan)
    avoidable = (zone_rate - zone_ref) / n_h * HOURS_PER_YEAR
    out.add_truth("environment_zones", dict(
        zone=z["zone"], site=z["site"], kind=z["kind"], n_devices=n_in_zone,
        has_monitor_data=zone_has_data, true_rate_ratio=ratio,
        true_avoidable_failures_per_year=avoidable,
        is_problem=np.nan_to_num(ratio) >= h.problem_rate_ratio))
    terms = [("failure", "temperature_excess_c", h.beta_temperature, None),
             ("failure", "vibration_g", h.beta_vibration, None),
             ("failure", "humidity_pct", h.beta_humidity, h.humidity_type),
             ("failure", "daily_swing_c", h.beta_swing, None),
             ("failure", "age_years", h.beta_age, None),
             ("reboot", "vibration_g", h.reboot_beta_vibration, None),
             ("reboot", "temperature_excess_c", 0.0, None),
             ("reboot", "daily_swing_c", 0.0, None)]
    out.add_truth("environment_hazard", dict(
        outcome=np.array([t[0] for t in terms], dtype=object),
        term=np.array([t[1] for t in terms], dtype=object),
        coefficient=np.array([t[2] for t in terms]),
        device_type=np.array([t[3] for t in terms], dtype=object),
        threshold_c=np.where([t[1] == "temperature_excess_c" for t in terms],
                             h.temperature_threshold_c, np.nan),
        base_failures_per_year=np.full(len(terms), h.base_failures_per_year)))
