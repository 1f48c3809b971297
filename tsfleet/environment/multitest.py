"""Multiple-testing corrections: Holm's step-down and Benjamini-Hochberg.

The same adjusted p-values as ``statsmodels.stats.multitest.multipletests`` with
``method="holm"`` / ``"fdr_bh"`` (a test compares them), without its side effect:
statsmodels' Holm branch runs a full ``gc.collect()`` on every call, which holds the
GIL for as long as a collection of the whole heap takes (0.3 s measured on a
10,000-device store) and so stalls ``tsfleet serve``'s writer thread while an
environment analysis runs beside it (issue 23).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["fdr_bh", "holm"]


def _as_array(p: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(p, dtype=float)
    if a.ndim != 1 or not np.all(np.isfinite(a)):
        raise ValueError("p-values must be a flat sequence of finite numbers")
    return a


def holm(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), in the input order.

    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    a = _as_array(p)
    m = a.size
    order = np.argsort(a, kind="mergesort")
    adj = np.maximum.accumulate(a[order] * np.arange(m, 0, -1))
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def fdr_bh(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input order.

    >>> fdr_bh([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    a = _as_array(p)
    m = a.size
    order = np.argsort(a, kind="mergesort")
    ranked = a[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out
