"""Primary sensor readings: each device measures its zone's quantity plus
local variation and noise (0.5% of reading), quantized as the vendor does."""

from __future__ import annotations

import numpy as np

from tsfleet.simulate.output import SimOutput
from tsfleet.simulate.skeleton import Skeleton

QUANTUM = {"temperature_c": 0.1, "humidity_pct": 0.1, "vibration_g": 0.001,
           "pressure_kpa": 0.01, "co2_ppm": 1.0}


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


def generate(sk: Skeleton, out: SimOutput) -> None:
    rng = sk.rng("calibration")
    d = sk.devices
    sensors = np.flatnonzero(d["device_type"] != "env_monitor")
    for metric in sorted(set(d["measures"][sensors])):
        idx = sensors[d["measures"][sensors] == metric]
        truth = true_signal(sk, metric, idx)
        local = rng.normal(0, 0.002, size=(len(idx), 1)) * np.abs(truth).mean()
        noisy = truth + local + rng.normal(0, 0.005, size=truth.shape) * np.abs(truth)
        q = QUANTUM[metric]
        out.add_grid(metric, idx, np.round(noisy / q) * q)
