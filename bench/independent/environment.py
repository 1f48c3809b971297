"""A second environment generator, apart from ``tsfleet/simulate``.

Own physics, constants and quirks, chosen to differ from the simulator's:

* Zones have a climate from a seasonal drift plus a diurnal cycle whose amplitude
  (the daily swing) is the zone's own, plus AR(1) weather noise; humidity falls
  when the zone warms (anti-correlated with the diurnal cycle) around the zone's
  own damp level; vibration follows a work-shift schedule (machines on 06-22 h
  local, off at night and on Sundays) with a lognormal zone level.
* Device types ``valve``, ``meter``, ``beacon``, ``drive``; the profile has only
  device_id, device_type, site, zone and installed_at (no manufacturer, model).
* Monitors are device type ``climate_probe`` declared with
  ``is_environment_monitor`` (not the ``env_monitor`` type); they report every
  30 minutes, temperature quantized to 0.5 degC and humidity to 1 %RH; faults:
  one humidity sensor sticks at its value, one monitor goes silent for good,
  one reports 0 %RH bursts (a broken probe).
* The true hazard (failures per device-hour), with the factors and types where
  the simulator has none of them:

      base * type_factor * exp(0.15*age + 0.07*[meter]*max(0, H - 75)
                               + 1.5*max(0, V - 0.6) + 0.04*[drive]*(T - 20))

  humidity above 75 %RH for meters only, vibration above 0.6 g for every type,
  a straight temperature slope for drives only, and the daily swing with no
  effect at all (the null factor).
* Confounding through zones: vibrating zones host older devices and mostly
  drives; damp zones mostly meters.

``generate(n_devices, days, seed)`` returns a :class:`Generated` with the tables
as dicts of columns, the truth (``effects``: one row per factor, device type and
term, coefficient 0 where there is no effect) and per-zone true rate ratios;
``write(fleet)`` ingests it through the public API.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TYPES = ("valve", "meter", "beacon", "drive")
TYPE_FACTOR = {"valve": 1.0, "meter": 0.7, "beacon": 0.5, "drive": 1.4}
AGE_BETA = 0.15
HUMIDITY = dict(device_type="meter", threshold=75.0, beta=0.07)
VIBRATION = dict(device_type=None, threshold=0.6, beta=1.5)
TEMPERATURE = dict(device_type="drive", center=20.0, beta=0.04)
MONITOR_TYPE = "climate_probe"


@dataclass
class Generated:
    devices: dict
    readings: dict
    events: dict
    effects: list[dict]
    zones: dict
    start: np.datetime64

    def write(self, fleet) -> None:
        """Ingest the devices, monitor readings and failures through ``fleet.ingest``."""
        fleet.ingest("devices", self.devices, label="independent-devices")
        fleet.ingest("readings", self.readings, label="independent-readings")
        fleet.ingest("device_events", self.events, label="independent-events")


def _log_hazard(dtype: np.ndarray, temp, hum, vib) -> np.ndarray:
    is_m = (dtype == HUMIDITY["device_type"])[:, None]
    is_d = (dtype == TEMPERATURE["device_type"])[:, None]
    return (HUMIDITY["beta"] * is_m * np.maximum(hum - HUMIDITY["threshold"], 0)
            + VIBRATION["beta"] * np.maximum(vib - VIBRATION["threshold"], 0)
            + TEMPERATURE["beta"] * is_d * (temp - TEMPERATURE["center"]))


def _climate(rng, n_zones: int, n_hours: int) -> dict[str, np.ndarray]:
    h = np.arange(n_hours)
    day = h / 24.0
    hour_of_day = h % 24
    mean_t = rng.uniform(8, 30, n_zones)[:, None]
    amp = rng.gamma(4.0, 1.2, n_zones)[:, None]           # half the daily swing
    season = 4 * np.sin(2 * np.pi * day / 365 + rng.uniform(0, 6.3))
    noise = np.zeros((n_zones, n_hours))
    e = rng.normal(0, 0.6, (n_zones, n_hours))
    for i in range(1, n_hours):
        noise[:, i] = 0.97 * noise[:, i - 1] + e[:, i]
    diurnal = np.sin(2 * np.pi * (hour_of_day - 9) / 24)[None, :]
    temp = mean_t + season + amp * diurnal + noise
    damp = rng.beta(2.5, 2.0, n_zones)[:, None] * 60 + 35  # 35..95 %RH
    hum = np.clip(damp - 1.5 * amp * diurnal - 0.8 * noise
                  + rng.normal(0, 2.0, (n_zones, n_hours)), 5, 100)
    level = rng.lognormal(np.log(0.25), 0.8, n_zones)[:, None]
    shift = ((hour_of_day >= 6) & (hour_of_day < 22) & ((h // 24) % 7 != 6)).astype(float)
    vib = level * (0.25 + 0.75 * shift)[None, :] * rng.lognormal(0, 0.15, (n_zones, n_hours))
    return {"temperature_c": temp, "humidity_pct": hum, "vibration_g": vib}


def generate(n_devices: int = 6000, days: int = 90, seed: int = 1, n_zones: int = 40,
             base_failures_per_year: float = 1.0) -> Generated:
    rng = np.random.default_rng(seed)
    n_hours = days * 24
    start = np.datetime64("2026-01-05T00:00:00")
    env = _climate(rng, n_zones, n_hours)
    zones = np.array([f"site{z % 3}/area-{z:02d}" for z in range(n_zones)], dtype=object)
    sites = np.array([f"site{z % 3}" for z in range(n_zones)], dtype=object)
    mean_v = env["vibration_g"].mean(axis=1)
    mean_h = env["humidity_pct"].mean(axis=1)
    # Confounding: vibrating zones get drives and old devices, damp zones get meters.
    zone = rng.integers(0, n_zones, n_devices)
    w = np.ones((n_zones, len(TYPES)))
    w[:, TYPES.index("drive")] += 3 * (mean_v > np.median(mean_v))
    w[:, TYPES.index("meter")] += 3 * (mean_h > np.median(mean_h))
    p = w[zone] / w[zone].sum(axis=1, keepdims=True)
    dtype = np.array(TYPES, dtype=object)[(p.cumsum(axis=1) > rng.random((n_devices, 1)))
                                          .argmax(axis=1)]
    age0 = rng.gamma(2.0, 0.6, n_devices) + 1.2 * (mean_v[zone] > np.median(mean_v))
    installed = start - (age0 * 365.25 * 86400).astype("timedelta64[s]")
    dev_ids = np.array([f"u{i:05d}" for i in range(n_devices)], dtype=object)
    # Failures: Poisson per device-hour from the true hazard, in chunks.
    ev_dev, ev_hour = [], []
    for lo in range(0, n_devices, 1000):
        idx = np.arange(lo, min(lo + 1000, n_devices))
        zi = zone[idx]
        age = age0[idx][:, None] + np.arange(n_hours)[None, :] / (24 * 365.25)
        lam = (base_failures_per_year / 8760 * np.array([TYPE_FACTOR[t] for t in dtype[idx]])
               [:, None] * np.exp(AGE_BETA * age + _log_hazard(
                   dtype[idx], env["temperature_c"][zi], env["humidity_pct"][zi],
                   env["vibration_g"][zi])))
        k = rng.poisson(lam)
        r, c = np.nonzero(k)
        ev_dev.append(np.repeat(idx[r], k[r, c]))
        ev_hour.append(np.repeat(c, k[r, c]))
    ev_dev, ev_hour = np.concatenate(ev_dev), np.concatenate(ev_hour)
    ev_at = (start + ev_hour.astype("timedelta64[h]")
             + rng.integers(0, 3600, len(ev_dev)).astype("timedelta64[s]"))
    # Monitors: two per zone (one in a few zones), every 30 minutes, quantized, faults.
    n_mon = np.where(rng.random(n_zones) < 0.15, 1, 2)
    mon_zone = np.repeat(np.arange(n_zones), n_mon)
    mon_ids = np.array([f"probe-{i:03d}" for i in range(len(mon_zone))], dtype=object)
    half = np.arange(2 * n_hours)
    at = start + (half * 30).astype("timedelta64[m]")
    cols = {"device_id": [], "observed_at": [], "metric": [], "value": []}
    stuck, dead, broken = rng.choice(len(mon_zone), 3, replace=False)
    for m, zi in enumerate(mon_zone):
        keep = np.ones(len(half), bool)
        if m == dead:
            keep[int(len(half) * rng.uniform(0.3, 0.6)):] = False
        for metric, q, sd in (("temperature_c", 0.5, 0.3), ("humidity_pct", 1.0, 1.5),
                              ("vibration_g", 0.01, 0.02)):
            v = env[metric][zi][half // 2] + rng.normal(0, sd, len(half))
            v = np.clip(np.round(v / q) * q, 0 if metric != "temperature_c" else -80, 100)
            if metric == "humidity_pct" and m == stuck:
                s = int(len(half) * rng.uniform(0.2, 0.5))
                v[s:] = v[s]
            if metric == "humidity_pct" and m == broken:
                burst = rng.random(len(half)) < 0.02
                v[burst] = 0.0
            cols["device_id"].append(np.full(keep.sum(), mon_ids[m], dtype=object))
            cols["observed_at"].append(at[keep])
            cols["metric"].append(np.full(keep.sum(), metric, dtype=object))
            cols["value"].append(v[keep])
    readings = {k: np.concatenate(v) for k, v in cols.items()}
    devices = {
        "device_id": np.concatenate([dev_ids, mon_ids]),
        "device_type": np.concatenate([dtype, np.full(len(mon_ids), MONITOR_TYPE, object)]),
        "site": np.concatenate([sites[zone], sites[mon_zone]]),
        "zone": np.concatenate([zones[zone], zones[mon_zone]]),
        "installed_at": np.concatenate([installed, np.full(len(mon_ids), start)]),
        "is_environment_monitor": np.concatenate([np.zeros(n_devices, bool),
                                                  np.ones(len(mon_ids), bool)]),
    }
    events = {"device_id": dev_ids[ev_dev], "event_at": ev_at,
              "event": np.full(len(ev_dev), "failure", dtype=object)}
    effects = []
    for t in TYPES:
        for factor in ("temperature_c", "humidity_pct", "vibration_g", "daily_swing_c"):
            lin, above, thr = 0.0, 0.0, None
            if factor == "humidity_pct" and t == HUMIDITY["device_type"]:
                above, thr = HUMIDITY["beta"], HUMIDITY["threshold"]
            if factor == "vibration_g":
                above, thr = VIBRATION["beta"], VIBRATION["threshold"]
            if factor == "temperature_c" and t == TEMPERATURE["device_type"]:
                lin = TEMPERATURE["beta"]
            effects.append(dict(factor=factor, device_type=t, term="linear", coefficient=lin,
                                threshold=None))
            effects.append(dict(factor=factor, device_type=t, term="above", coefficient=above,
                                threshold=thr))
    # True zone rate ratio against reference conditions (every factor within its limits).
    ratio = np.zeros(n_zones)
    for zi in range(n_zones):
        ds = dtype[zone == zi]
        if not len(ds):
            continue
        t, h, v = (env[f][zi][None, :] for f in ("temperature_c", "humidity_pct",
                                                  "vibration_g"))
        act = np.exp(_log_hazard(ds, t, h, v)).mean()
        ref = np.exp(_log_hazard(ds, np.minimum(t, TEMPERATURE["center"]),
                                 np.minimum(h, HUMIDITY["threshold"]),
                                 np.minimum(v, VIBRATION["threshold"]))).mean()
        ratio[zi] = act / ref
    return Generated(devices, readings, events, effects,
                     {"zone": zones, "true_rate_ratio": ratio,
                      "n_devices": np.bincount(zone, minlength=n_zones)}, start)
