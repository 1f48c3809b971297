"""Known-truth exposure cells drawn for the model's statistical tests: zones, each at its
own temperature level with hourly noise, binned by 1 degC, one device type."""

from __future__ import annotations

import numpy as np
import pandas as pd

N_ZONES, HOURS = 20, 720


def zone_cells(seed: int, log_rate, *, devices: float = 50.0) -> pd.DataFrame:
    """``N_ZONES`` zones of ``HOURS`` hours; failures Poisson with log rate ``log_rate(x)``
    (per device-year: 2 per year times exp of it) at each hour's temperature ``x``."""
    rng = np.random.default_rng(seed)
    rows = []
    for level in rng.uniform(15, 35, N_ZONES):
        x = level + rng.normal(0, 1.5, HOURS)
        b = np.floor(x)
        for v in np.unique(b):
            m = b == v
            hours = m.sum() * devices
            lam = (hours / 8760) * np.mean(2 * np.exp(log_rate(x[m])))
            rows.append(dict(device_type="pump", device_hours=hours, temperature_c=x[m].mean(),
                             age_years=1.0, n_failures=rng.poisson(lam), n_reboots=0))
    return pd.DataFrame(rows)
