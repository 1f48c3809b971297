"""Imbalance indices of gateway utilization, per group (site), in bulk.

>>> import numpy as np
>>> m = imbalance(np.array([0.5, 0.5, 1.0, 0.0]), np.array([0, 0, 1, 1]))
>>> [round(float(v), 3) for v in m["jain"]]
[1.0, 0.5]
"""

from __future__ import annotations

import numpy as np


def imbalance(utilization: np.ndarray, group: np.ndarray | None = None,
              n_groups: int | None = None) -> dict[str, np.ndarray]:
    """Jain's index, Gini, CV, max/mean, max utilization and min headroom per group.

    ``group`` holds integer group codes 0..n_groups-1 (all zero when omitted).
    Jain's index is (sum u)^2 / (n sum u^2): 1 when all gateways carry the same
    share of their capacity, 1/n when one carries everything. Gini is 0 when even.
    Indices of a group whose utilizations are all zero are NaN.
    """
    u = np.asarray(utilization, dtype=float)
    g = np.zeros(len(u), dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64)
    k = int(n_groups if n_groups is not None else (g.max() + 1 if len(g) else 0))
    n = np.bincount(g, minlength=k).astype(float)
    s1 = np.bincount(g, weights=u, minlength=k)
    s2 = np.bincount(g, weights=u * u, minlength=k)
    order = np.lexsort((u, g))
    start = np.r_[0, np.cumsum(n)[:-1]].astype(np.int64)
    rank = np.empty(len(u))
    rank[order] = np.arange(len(u)) - start[g[order]] + 1
    gini_num = np.bincount(g, weights=(2 * rank - n[g] - 1) * u, minlength=k)
    mx = np.full(k, -np.inf)
    np.maximum.at(mx, g, u)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s1 / n
        jain = np.where(s2 > 0, s1 * s1 / (n * s2), np.nan)
        gini = np.where(s1 > 0, gini_num / (n * s1), np.nan)
        var = np.maximum(s2 / n - mean * mean, 0)
        cv = np.where(mean > 0, np.sqrt(var) / mean, np.nan)
        max_over_mean = np.where(mean > 0, mx / mean, np.nan)
    mx = np.where(n > 0, mx, np.nan)
    return dict(n=n, mean=mean, jain=jain, gini=gini, cv=cv, max_over_mean=max_over_mean,
                max_utilization=mx, min_headroom=1 - mx)


def jain_index(utilization: np.ndarray) -> float:
    """Jain's fairness index of one set of utilizations (NaN if all are zero)."""
    return float(imbalance(np.asarray(utilization, dtype=float))["jain"][0])
