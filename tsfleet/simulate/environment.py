"""Zone environment monitors (EM-4): temperature, humidity and vibration."""

from __future__ import annotations

import numpy as np

from tsfleet.simulate.output import SimOutput
from tsfleet.simulate.skeleton import Skeleton


def generate(sk: Skeleton, out: SimOutput) -> None:
    rng = sk.rng("environment")
    d = sk.devices
    monitors = np.flatnonzero(d["device_type"] == "env_monitor")
    if len(monitors) == 0:
        return
    zones = d["zone_idx"][monitors]
    for metric, sigma, q in (("temperature_c", 0.15, 0.1), ("humidity_pct", 0.8, 0.1),
                             ("vibration_g", 0.01, 0.001)):
        grid = sk.env[metric][zones] + rng.normal(0, sigma, size=(len(monitors), sk.n_hours))
        out.add_grid(metric, monitors, np.round(np.maximum(grid, 0 if metric != "temperature_c"
                                                           else -80) / q) * q)
    out.add_truth("zones", sk.zones)
