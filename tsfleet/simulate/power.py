"""Battery readings: state of charge over time per chemistry, reported as a
quantized percentage or, for voltage-only models, as a voltage through the
chemistry's discharge curve. Ground truth: ``sim.battery`` (true level per
device-hour is recomputable from the parameters stored there)."""

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


def voltage_from_level(chemistry: str, level_pct: np.ndarray) -> np.ndarray:
    curve = DISCHARGE_CURVES[chemistry]
    return np.interp(level_pct, np.linspace(0, 100, len(curve)), curve)


def generate(sk: Skeleton, out: SimOutput) -> None:
    rng = sk.rng("power")
    d = sk.devices
    battery = np.flatnonzero(d["battery_chemistry"] != "mains")
    n_h = sk.n_hours
    start = rng.uniform(35, 100, size=len(battery))
    rate = rng.uniform(0.05, 0.6, size=len(battery)) / 24          # % per hour
    t = np.arange(n_h)[None, :]
    level = np.clip(start[:, None] - rate[:, None] * t, 0, 100)
    noise = rng.normal(0, 0.3, size=level.shape)
    for i, dev in enumerate(battery):
        chem = d["battery_chemistry"][dev]
        if d["voltage_only"][dev]:
            v = voltage_from_level(chem, level[i]) + rng.normal(0, 0.01, n_h)
            out.add_readings("battery_voltage_v", np.full(n_h, dev), np.arange(n_h), np.round(v, 3))
        else:
            pct = np.clip(np.round(level[i] + noise[i]), 0, 100)
            out.add_readings("battery_pct", np.full(n_h, dev), np.arange(n_h), pct)
    out.add_truth("battery", dict(device_id=d["device_id"][battery], start_level_pct=start,
                                  rate_pct_per_day=rate * 24))
