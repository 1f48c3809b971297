"""Primary sensor readings with calibration phenomena and their ground truth.

Every sensor (all devices but the zone environment monitors) measures its
zone's quantity: the shared zone signal (``sk.env``: daily and seasonal
cycles, weather) plus local variation (a fixed placement offset and a slow
AR(1) wander of its own), noise of 0.5% of the reading, and the vendor's
quantization. On top of that, per sensor, at most one of:

- ``drift``: a gradual drift of 1, 2 or 5% spread over 2-6 weeks that keeps
  growing at that rate, from a known start (faster in hot and vibrating zones);
- ``drift_reset``: such a drift, then a calibration that removes it;
- ``step``: a sudden offset of 2-6%;
- ``stuck``: the value freezes; ``dead``: the sensor stops reporting;
- ``spikes``: isolated wild readings, a few of them out of physical range.

Drift and offsets are in percent of the sensor's *scale*: the mean absolute
true value of its zone and quantity, at least ``MIN_SCALE`` of the metric (so
2% of a 2 degC cold room is not 0.04 degC). tsfleet's analysis uses the same
definition (table ``calibration_metric_scales``).

Some zones have a reference instrument per quantity (``is_reference``): low
noise, no drift. Calibration events (ingest kind ``calibrations``) reset drift
and remove the placement offset. Truth: ``sim.sensor_truth``, one row per
sensor, and ``sim.calibration_truth``, the drift probability and rate factor
per zone kind.
"""

from __future__ import annotations

import numpy as np

from tsfleet.simulate.output import SimOutput
from tsfleet.simulate.skeleton import Skeleton

QUANTUM = {"temperature_c": 0.1, "humidity_pct": 0.1, "vibration_g": 0.001,
           "pressure_kpa": 0.01, "co2_ppm": 1.0}
#: Smallest scale a metric's percentages refer to (its unit). Same numbers as
#: sql/tables/300_calibration.sql.
MIN_SCALE = {"temperature_c": 20.0, "humidity_pct": 20.0, "vibration_g": 0.05,
             "pressure_kpa": 50.0, "co2_ppm": 200.0}
NOISE = 0.005             # noise, share of the reading
REFERENCE_NOISE = 0.001   # reference instruments
LOCAL_PHI, LOCAL_SD = 0.95, 0.002   # local AR(1) wander, share of scale
PLACEMENT_SD = 0.003      # fixed placement offset, share of scale
REFERENCE_ZONE_SHARE = 0.4
#: Zone kind -> (drift probability factor, drift rate factor).
WEAR = {"normal": (0.7, 1.0), "cold": (0.7, 0.8), "humid": (1.3, 1.3),
        "hot": (1.6, 1.6), "vibrating": (1.6, 1.8)}
P_DRIFT, P_RESET, P_STEP, P_STUCK, P_DEAD, P_SPIKES = 0.10, 0.03, 0.03, 0.015, 0.015, 0.01
ROUTINE_CALIBRATION = 0.15   # share of clean sensors with a routine calibration record
ERROR_CODE = -999.0          # what a spiking sensor sometimes sends: out of physical range


def true_signal(sk: Skeleton, metric: str, device_idx: np.ndarray) -> np.ndarray:
    """(len(device_idx), n_hours) true value of ``metric`` where the devices are."""
    zones = sk.devices["zone_idx"][device_idx]
    if metric in sk.env:
        return sk.env[metric][zones]
    t = sk.env["temperature_c"][zones]
    if metric == "pressure_kpa":  # process pressure following load (temperature)
        return 350.0 + 2.0 * (t - 20.0)
    if metric == "co2_ppm":
        return 600.0 + 15.0 * (t - 20.0)
    raise ValueError(f"no simulated signal for {metric}")


def _ar1(rng: np.random.Generator, shape: tuple[int, int], phi: float, sd: float) -> np.ndarray:
    eps = rng.normal(0, sd * np.sqrt(1 - phi**2), shape)
    out = np.empty(shape)
    out[:, 0] = rng.normal(0, sd, shape[0])
    for t in range(1, shape[1]):
        out[:, t] = phi * out[:, t - 1] + eps[:, t]
    return out


def _assign_kinds(rng: np.random.Generator, wear_p: np.ndarray) -> np.ndarray:
    """One phenomenon per sensor; drift probabilities scale with the zone's wear."""
    u = rng.random(len(wear_p))
    kinds = np.full(len(wear_p), "clean", dtype=object)
    edges = np.cumsum(np.stack([P_DRIFT * wear_p, P_RESET * wear_p,
                                np.full(len(wear_p), P_STEP), np.full(len(wear_p), P_STUCK),
                                np.full(len(wear_p), P_DEAD), np.full(len(wear_p), P_SPIKES)]),
                      axis=0)
    names = ["drift", "drift_reset", "step", "stuck", "dead", "spikes"]
    for i in reversed(range(len(names))):
        kinds[u < edges[i]] = names[i]
    return kinds


def generate(sk: Skeleton, out: SimOutput) -> None:
    rng = sk.rng("calibration")
    d = sk.devices
    n_h, days = sk.n_hours, sk.config.days
    sensors = np.flatnonzero(d["device_type"] != "env_monitor")
    zone_kind = sk.zones["kind"]
    ref_zone = rng.random(len(zone_kind)) < REFERENCE_ZONE_SHARE
    truth_parts = []
    cal_parts = []
    for metric in sorted(set(d["measures"][sensors])):
        idx = sensors[d["measures"][sensors] == metric]
        n = len(idx)
        zone = d["zone_idx"][idx]
        truth = true_signal(sk, metric, idx)
        zone_scale = {z: max(np.abs(true_signal(sk, metric, idx[zone == z][:1])).mean(),
                             MIN_SCALE[metric]) for z in np.unique(zone)}
        scale = np.array([zone_scale[z] for z in zone])
        wear = np.array([WEAR[k] for k in zone_kind[zone]])
        kinds = _assign_kinds(rng, wear[:, 0])

        # Reference instruments: one hourly clean sensor per quantity in some zones.
        is_ref = np.zeros(n, bool)
        hourly = d["reporting_interval_s"][idx] <= 3600
        for z in np.unique(zone[ref_zone[zone]]):
            cand = np.flatnonzero((zone == z) & hourly)
            if len(cand):
                pick = cand[rng.integers(len(cand))]
                is_ref[pick] = True
                kinds[pick] = "clean"

        placement = np.where(is_ref, 0.0, rng.normal(0, PLACEMENT_SD, n)) * scale
        local = _ar1(rng, (n, n_h), LOCAL_PHI, LOCAL_SD) * scale[:, None]
        local[is_ref] = 0.0
        noise_sd = np.where(is_ref, REFERENCE_NOISE, NOISE)
        noise = rng.normal(0, 1, (n, n_h)) * noise_sd[:, None] * np.abs(truth)
        t_day = np.arange(n_h)[None, :] / 24.0

        # Gradual drift, in percent of scale.
        magnitude = rng.choice([1.0, 2.0, 5.0], n)
        weeks = rng.choice([2, 3, 4, 6], n)
        sign = rng.choice([-1.0, 1.0], n)
        rate = sign * magnitude / (7.0 * weeks) * wear[:, 1]          # % per day
        start = rng.uniform(3, max(3.0, 0.6 * days), n)  # short test fleets: no room
        drifting = np.isin(kinds, ["drift", "drift_reset"])
        drift = np.where(drifting[:, None], rate[:, None] * np.maximum(t_day - start[:, None], 0),
                         0.0)
        # Calibrations: drift_reset sensors once drift is 1.5-4%, some clean ones routinely.
        cal_day = np.full(n, np.nan)
        reset = kinds == "drift_reset"
        cal_day[reset] = np.minimum(start[reset] + rng.uniform(1.5, 4, reset.sum())
                                    / np.abs(rate[reset]), days - 3)
        routine = (kinds == "clean") & ~is_ref & (rng.random(n) < ROUTINE_CALIBRATION)
        cal_day[routine] = rng.uniform(5, max(5.0, days - 5), routine.sum())
        calibrated = ~np.isnan(cal_day)
        after_cal = t_day >= np.where(calibrated, cal_day, np.inf)[:, None]
        drift = np.where(after_cal, 0.0, drift)
        offset = np.where(after_cal, 0.0, placement[:, None])
        # Steps.
        step_day = np.where(kinds == "step", rng.uniform(5, max(5.0, days - 5), n), np.nan)
        step_pct = np.where(kinds == "step", rng.choice([-1.0, 1.0], n) * rng.uniform(2, 6, n),
                            0.0)
        step = np.where(t_day >= np.nan_to_num(step_day, nan=np.inf)[:, None],
                        step_pct[:, None], 0.0)

        reading = truth + offset + local + noise + (drift + step) / 100.0 * scale[:, None]
        q = QUANTUM[metric]
        reading = np.round(reading / q) * q

        # Faults.
        fault_day = np.where(np.isin(kinds, ["stuck", "dead"]),
                             rng.uniform(5, max(5.0, days - 5), n), np.nan)
        fault_day = np.minimum(fault_day, days * 0.8)            # short fleets: stay inside
        fault_day = np.maximum(fault_day, 1 / 24)
        for i in np.flatnonzero(kinds == "stuck"):
            h0 = int(fault_day[i] * 24)
            reading[i, h0:] = reading[i, h0 - 1]
        for i in np.flatnonzero(kinds == "dead"):
            reading[i, int(fault_day[i] * 24):] = np.nan
        for i in np.flatnonzero(kinds == "spikes"):
            hits = rng.choice(n_h, size=max(3, n_h // 200), replace=False)
            reading[i, hits] += rng.choice([-1, 1], len(hits)) * rng.uniform(0.2, 0.5, len(hits)) \
                * scale[i]
            reading[i, hits[:2]] = ERROR_CODE
        if metric != "temperature_c":
            ok = reading != ERROR_CODE
            reading[ok] = np.maximum(reading[ok], 0.0)
        out.add_grid(metric, idx, reading)
        d["is_reference"][idx[is_ref]] = True

        # Calibration records: reference vs what the sensor read, and the correction.
        ci = np.flatnonzero(calibrated)
        if len(ci):
            hour = np.minimum((cal_day[ci] * 24).astype(int), n_h - 1)
            ref_value = truth[ci, hour]
            before = (placement[ci] + drift_before(rate[ci], start[ci], cal_day[ci], drifting[ci])
                      / 100.0 * scale[ci])
            cal_parts.append(dict(
                device_id=d["device_id"][idx[ci]],
                calibrated_at=sk.hours[hour] + np.timedelta64(20, "m"),
                reference_value=np.round(ref_value, 3),
                measured_value=np.round(ref_value + before, 3),
                offset_applied=np.round(-before, 4), gain_applied=np.ones(len(ci)),
                performed_by=rng.choice(np.array(["j.doe", "a.khan", "metrolab"], dtype=object),
                                        len(ci))))

        # Truth: when the drift of the current calibration period reaches 2%.
        cross_day = start + 2.0 / np.abs(rate)
        cross_ok = (kinds == "drift") & (cross_day < days)
        end_drift = np.where(kinds == "drift", rate * np.maximum(days - start, 0), 0.0)
        truth_parts.append(dict(
            device_id=d["device_id"][idx], metric=np.full(n, metric, dtype=object),
            zone=d["zone"][idx], zone_kind=zone_kind[zone].astype(object),
            is_reference=is_ref, is_hourly=hourly, fault_type=kinds,
            scale=scale, drift_rate_pct_per_day=np.where(drifting, rate, 0.0),
            drift_start_at=_at(sk, np.where(drifting, start, np.nan)),
            drift_reaches_2pct_at=_at(sk, np.where(cross_ok, cross_day, np.nan)),
            drift_end_pct=end_drift,
            step_at=_at(sk, step_day), step_pct=step_pct,
            fault_at=_at(sk, fault_day), calibrated_at=_at(sk, cal_day)))
    if cal_parts:
        out.add_rows("calibrations", {k: np.concatenate([p[k] for p in cal_parts])
                                      for k in cal_parts[0]})
    out.add_truth("sensor_truth", {k: np.concatenate([p[k] for p in truth_parts])
                                   for k in truth_parts[0]})
    out.add_truth("calibration_truth", dict(
        zone_kind=np.array(list(WEAR), dtype=object),
        drift_probability_factor=np.array([v[0] for v in WEAR.values()]),
        drift_rate_factor=np.array([v[1] for v in WEAR.values()])))


def drift_before(rate: np.ndarray, start: np.ndarray, day: np.ndarray,
                 drifting: np.ndarray) -> np.ndarray:
    """Drift (% of scale) accumulated by ``day``."""
    return np.where(drifting, rate * np.maximum(day - start, 0), 0.0)


def _at(sk: Skeleton, day: np.ndarray) -> np.ndarray:
    """Fractional simulation days -> datetime64 (NaT where NaN)."""
    seconds = np.where(np.isnan(day), 0, day * 86400).astype(np.int64)
    at = sk.hours[0] + seconds.astype("timedelta64[s]")
    return np.where(np.isnan(day), np.datetime64("NaT"), at)
