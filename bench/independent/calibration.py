"""A second plant generator for calibration drift, written apart from tsfleet/simulate.

Used only to *evaluate* tsfleet.calibration (bench/calibration.py); no detector
constant is chosen on it. Its physics, constants and quirks differ on purpose:

- Metrics: ``co2_ppm`` (occupancy-driven daily and weekly cycles),
  ``pressure_kpa`` (process set-points with slow wander) and ``flow_lpm``
  (batch pulses; *not* in tsfleet's catalog: its readings are quarantined as
  ``unknown_metric`` until the bench declares the metric, which re-ingests them).
- Zones of 2 to 16 sensors of one metric. Every zone's true process has
  common-mode changes (real set-point steps of 2-8% and ramps seen by every
  sensor, references included), an Ornstein-Uhlenbeck wander and a seasonal
  ambient temperature that bends each sensor's gain by its own coefficient.
- Drift is a *gain* error (proportional to the reading), shaped as a
  saturating exponential or an accelerating power curve, reaching +-2.5 to 7%
  (some only 0.5-1.5%, never reaching 2%). Drifting shares per zone: none, one
  sensor, a quarter, half, or a majority (three quarters).
- Noise is Student-t (5 degrees of freedom), 0.35% of the level; references
  0.07%. Readings every 30 or 60 minutes with jitter, phase offsets and 1.5%
  random losses; per-metric quantization.
- References in about a third of the zones (some with two). A quarter of the
  reference zones have a reference that drifts; half of those got a lab check
  that found it off and corrected nothing (a failed check), the others did not.
- Faults: stuck (the value freezes), dead (stops reporting), spiking (bursts
  of +-20-40% readings).

Truth per sensor: ``kind`` (clean, drift, small_drift, stuck, dead, spikes),
``reaches_2pct_at`` (first time |gain error| >= 2%), the zone's size and
drifting share, and ``is_reference``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

METRICS = {   # level range, quantum, daily amplitude (share), unit of flow for declaration
    "co2_ppm": ((450.0, 1400.0), 1.0, 0.22),
    "pressure_kpa": ((150.0, 900.0), 0.1, 0.025),
    "flow_lpm": ((40.0, 400.0), 0.5, 0.12),
}
SIZES = np.array([2, 3, 4, 5, 6, 8, 10, 12, 16])
SIZE_P = np.array([0.14, 0.14, 0.12, 0.1, 0.12, 0.14, 0.08, 0.08, 0.08])
SHARES = ("none", "one", "quarter", "half", "majority")
SHARE_P = (0.36, 0.2, 0.16, 0.16, 0.12)
P_REF_ZONE, P_TWO_REFS, P_REF_DRIFT, P_REF_CHECKED = 0.33, 0.15, 0.25, 0.5
P_STUCK, P_DEAD, P_SPIKES = 0.012, 0.012, 0.012
NOISE, REF_NOISE, T_DF = 0.0035, 0.0007, 5
START = np.datetime64("2026-01-05T00:00", "s")


@dataclass
class Plant:
    devices: pd.DataFrame
    readings: pd.DataFrame
    calibrations: pd.DataFrame
    truth: pd.DataFrame


def _process(rng, hours: np.ndarray, metric: str, level: float, days: int) -> np.ndarray:
    """The zone's true value per hour (float hours since start)."""
    (_, _), _, amp = METRICS[metric]
    day = 2 * np.pi * hours / 24
    if metric == "co2_ppm":      # occupancy: weekday daytime bump
        weekday = ((hours // 24) % 7) < 5
        occ = np.clip(np.sin(day - np.pi / 2 + rng.uniform(-0.4, 0.4)), 0, None) ** 1.5
        shape = 1 + amp * occ * np.where(weekday, 1.0, 0.35)
    elif metric == "pressure_kpa":
        shape = 1 + amp * np.sin(day + rng.uniform(0, 2 * np.pi))
    else:                        # flow: batches of a few hours
        period = rng.uniform(5, 11)
        shape = 1 + amp * (np.sin(2 * np.pi * hours / period) > 0.3)
    # Ornstein-Uhlenbeck wander, tau 30 h, 1.5% of level
    n = len(hours)
    ou = np.zeros(n)
    a = np.exp(-1 / 30)
    e = rng.normal(0, 0.015 * np.sqrt(1 - a * a), n)
    for i in range(1, n):
        ou[i] = a * ou[i - 1] + e[i]
    # common-mode process changes: 0-3 set-point steps and maybe one ramp
    change = np.zeros(n)
    for _ in range(rng.integers(0, 4)):
        at = rng.uniform(3, days - 2) * 24
        change += (hours >= at) * rng.choice([-1, 1]) * rng.uniform(0.02, 0.08)
    if rng.random() < 0.3:
        at, span = rng.uniform(5, days - 10) * 24, rng.uniform(2, 8) * 24
        change += np.clip((hours - at) / span, 0, 1) * rng.choice([-1, 1]) * rng.uniform(0.03, 0.1)
    return level * shape * (1 + ou) * (1 + change)


def _gain_drift(rng, hours: np.ndarray, days: int, small: bool) -> tuple[np.ndarray, float]:
    onset = rng.uniform(8, days - 18) * 24
    final = rng.uniform(0.5, 1.5) if small else rng.uniform(2.5, 7.0)
    final *= rng.choice([-1, 1]) / 100
    t = np.clip(hours - onset, 0, None) / (hours[-1] - onset)
    if rng.random() < 0.5:       # saturating
        tau = rng.uniform(0.3, 1.0)
        g = (1 - np.exp(-t / tau)) / (1 - np.exp(-1 / tau))
    else:                        # accelerating
        g = t ** rng.uniform(1.3, 2.2)
    return final * g, onset


def generate(seed: int, n_zones: int = 150, days: int = 60) -> Plant:
    """A plant of ``n_zones`` zones (about 7 sensors each) over ``days`` days."""
    rng = np.random.default_rng(seed)
    hours = np.arange(days * 24 + 1, dtype=float)
    dev, reads, cals, truth = [], [], [], []
    metric_names = list(METRICS)
    k = 0
    for z in range(n_zones):
        metric = metric_names[z % 3]
        (lo, hi), quantum, _ = METRICS[metric]
        size = int(rng.choice(SIZES, p=SIZE_P))
        level = rng.uniform(lo, hi)
        proc = _process(rng, hours, metric, level, days)
        ambient = 14 + 9 * np.sin(2 * np.pi * (hours / 24 + rng.uniform(0, 365)) / 365) \
            + 3 * np.sin(2 * np.pi * hours / 24)
        n_ref = 0
        if rng.random() < P_REF_ZONE and size >= 3:
            n_ref = 2 if rng.random() < P_TWO_REFS and size >= 5 else 1
        share = SHARES[rng.choice(len(SHARES), p=SHARE_P)]
        n_peer = size - n_ref
        n_drift = {"none": 0, "one": 1, "quarter": max(1, n_peer // 4),
                   "half": n_peer // 2, "majority": int(np.ceil(0.75 * n_peer))}[share]
        n_drift = min(n_drift, n_peer)
        drifting = set(rng.choice(n_peer, n_drift, replace=False).tolist())
        ref_drifts = n_ref > 0 and rng.random() < P_REF_DRIFT
        site = f"plant-{z // 25}"
        zone = f"{site}/z{z:03d}"
        for j in range(size):
            is_ref = j >= n_peer
            did = f"{metric[:2]}-{seed}-{k:05d}"
            k += 1
            interval = 1800.0 if rng.random() < 0.5 else 3600.0
            phase = rng.uniform(0, interval)
            ts = np.arange(phase, days * 86400, interval) + rng.normal(0, 40, 1)[0]
            ts = ts[(ts > 0) & (rng.random(len(ts)) > 0.015)]
            h = ts / 3600
            true = np.interp(h, hours, proc)
            amb = np.interp(h, hours, ambient)
            kind, reach, onset, drift_end = "clean", None, None, 0.0
            gain = rng.normal(0, 0.00012) * (amb - 14)        # temperature coefficient
            offset = rng.normal(0, 0.004) * level
            if (not is_ref and j in drifting) or (is_ref and ref_drifts and j == n_peer):
                small = (not is_ref) and rng.random() < 0.12
                g, onset = _gain_drift(rng, h, days, small)
                gain = gain + g
                kind = "small_drift" if small else "drift"
                drift_end = float(100 * g[-1])
                hit = np.flatnonzero(np.abs(g) >= 0.02)
                if len(hit):
                    reach = START + np.timedelta64(int(ts[hit[0]]), "s")
            elif not is_ref:
                u = rng.random()
                if u < P_STUCK:
                    kind = "stuck"
                elif u < P_STUCK + P_DEAD:
                    kind = "dead"
                elif u < P_STUCK + P_DEAD + P_SPIKES:
                    kind = "spikes"
            noise_sd = (REF_NOISE if is_ref else NOISE) * level
            value = true * (1 + gain) + offset + rng.standard_t(T_DF, len(h)) * noise_sd / 1.29
            if kind == "stuck":
                at = int(len(value) * rng.uniform(0.4, 0.85))
                value[at:] = value[at]
            elif kind == "spikes":
                idx = rng.choice(len(value), 10, replace=False)
                value[idx] *= 1 + rng.choice([-1, 1], 10) * rng.uniform(0.2, 0.4, 10)
            elif kind == "dead":
                keep = h < rng.uniform(0.3, 0.8) * days * 24
                ts, value = ts[keep], value[keep]
            value = np.round(value / quantum) * quantum
            reads.append(pd.DataFrame(dict(
                device_id=did, observed_at=START + ts.astype("timedelta64[s]"),
                metric=metric, value=value)))
            dev.append(dict(device_id=did, device_type=f"{metric.split('_')[0]}_sensor",
                            manufacturer="Indep", model=f"X-{metric[:2]}", site=site,
                            zone=zone, measures=metric, is_reference=bool(is_ref),
                            reporting_interval_s=interval))
            if is_ref and kind == "drift" and rng.random() < P_REF_CHECKED:
                at = days - 3
                err = float(np.interp(at * 24, h, gain)) * level
                cals.append(dict(device_id=did, calibrated_at=START + np.timedelta64(at, "D"),
                                 reference_value=level, measured_value=level + err,
                                 offset_applied=0.0, gain_applied=1.0, performed_by="lab"))
            truth.append(dict(device_id=did, zone=zone, metric=metric, zone_size=size,
                              n_ref=n_ref, drifting_share=share, n_drifting=n_drift
                              + int(ref_drifts), is_reference=bool(is_ref), kind=kind,
                              onset_at=None if onset is None
                              else START + np.timedelta64(int(onset * 3600), "s"),
                              reaches_2pct_at=reach, drift_end_pct=drift_end))
    readings = pd.concat(reads, ignore_index=True)
    readings["observed_at"] = readings["observed_at"].astype("datetime64[us]")
    t = pd.DataFrame(truth)
    for c in ("onset_at", "reaches_2pct_at"):
        t[c] = pd.to_datetime(t[c])
    return Plant(pd.DataFrame(dev), readings, pd.DataFrame(cals), t)


def write(plant: Plant, fleet) -> dict:
    """Ingest the plant as a user would: devices, readings (flow_lpm is quarantined
    as unknown_metric), then declare flow_lpm (which re-ingests them), calibrations.
    The truth goes to table ``indep.sensor_truth``."""
    fleet.ingest("devices", plant.devices)
    first = fleet.ingest("readings", plant.readings)
    retry = fleet.metrics.add("flow_lpm", "l/min", 0, 5000, drift_tolerance_pct=2.0,
                              quantity="flow", description="Volumetric flow, litres per minute.")
    if len(plant.calibrations):
        fleet.ingest("calibrations", plant.calibrations)
    fleet.con.execute("create schema if not exists indep")
    fleet.con.register("_indep_truth", plant.truth)
    fleet.con.execute("create or replace table indep.sensor_truth as select * from _indep_truth")
    fleet.con.unregister("_indep_truth")
    return dict(readings=len(plant.readings), accepted_first=first.n_accepted,
                quarantined_first=first.quarantined_by_reason.get("unknown_metric", 0),
                reingested=retry.n_accepted)
