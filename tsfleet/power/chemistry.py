"""The battery gauge's knee: levels and their charge-equivalent.

Below a chemistry's knee (Li-SOCl2: about 20 %) the reported level falls ever
faster for the same charge used: ``dL/dC = -(1 + gain * (knee - L) / knee)``.
The *charge-equivalent level* ``Q`` undoes this, so that ``Q`` falls linearly
with the charge used, which is what a trend model can extrapolate. Above the
knee ``Q`` equals the level.

>>> import numpy as np
>>> q = charge_from_level(np.array([50.0, 10.0]), 20.0, 3.0)
>>> bool(np.allclose(level_from_charge(q, 20.0, 3.0), [50.0, 10.0]))
True
"""

from __future__ import annotations

import numpy as np


def _rate(knee, gain):
    knee, gain = np.asarray(knee, float), np.asarray(gain, float)
    return np.where(knee > 0, gain / np.where(knee > 0, knee, 1.0), 0.0)


def charge_from_level(level, knee, gain) -> np.ndarray:
    """Charge-equivalent level (%) of a reported level (%)."""
    r = _rate(knee, gain)
    u = np.maximum(np.asarray(knee, float) - level, 0.0)
    return np.where((r > 0) & (u > 0), knee - np.log1p(r * u) / np.where(r > 0, r, 1.0), level)


def level_from_charge(charge, knee, gain) -> np.ndarray:
    """Reported level (%) of a charge-equivalent level, clipped to 0..100."""
    r = _rate(knee, gain)
    u = np.maximum(np.asarray(knee, float) - charge, 0.0)
    with np.errstate(over="ignore"):
        lv = np.where((r > 0) & (u > 0),
                      knee - np.expm1(np.minimum(r * u, 50.0)) / np.where(r > 0, r, 1.0), charge)
    return np.clip(lv, 0.0, 100.0)
