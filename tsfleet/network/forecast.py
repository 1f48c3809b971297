"""Overload prediction: when will a gateway's attached devices reach its capacity?

A straight line (statsmodels OLS) through the daily end-of-day device counts of
the last ``window_days`` days. A gateway is ``predicted`` to overload when the
slope is positive and significant (p below ``alpha``) and the line reaches
the capacity in the future; ``over_capacity`` when it already carries more
than its capacity; otherwise ``stable``, or ``insufficient_data`` with fewer
than ``min_days`` days.

>>> import numpy as np
>>> f = trend_to_capacity(np.arange(28) * 0.5 + 20, capacity=40)
>>> f["status"], round(f["days_to_overload"])
('predicted', 13)
"""

from __future__ import annotations

import numpy as np


def trend_to_capacity(counts: np.ndarray, capacity: int, *, alpha: float = 0.01,
                      min_days: int = 7) -> dict:
    """Trend of one gateway's daily counts (oldest first, the last is today)."""
    y = np.asarray(counts, dtype=float)
    out = dict(status="insufficient_data", n_days=len(y), n_attached=None,
               slope_devices_per_day=None, p_value=None, days_to_overload=None)
    if len(y) < min_days:
        return out
    out["n_attached"] = float(y[-1])
    if y[-1] > capacity:
        out["status"] = "over_capacity"
        return out
    t = np.arange(len(y), dtype=float)
    if np.ptp(y) == 0:
        out.update(status="stable", slope_devices_per_day=0.0, p_value=1.0)
        return out
    from statsmodels.regression.linear_model import OLS  # heavy import: only when fitting

    res = OLS(y, np.c_[np.ones(len(t)), t]).fit()
    a, b = (float(v) for v in res.params)
    p = float(res.pvalues[1]) / 2 if b > 0 else 1.0
    out.update(slope_devices_per_day=b, p_value=p, status="stable")
    if b > 0 and p < alpha:
        now = a + b * t[-1]
        out.update(status="predicted", days_to_overload=max(0.0, (capacity - now) / b))
    return out
