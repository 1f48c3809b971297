"""Effects of the environment: rank correlations (SQL) and GLM effects, with
p-values corrected for the number of factors and outcomes tested."""

from __future__ import annotations

import numpy as np
from scipy import stats

from tsfleet.environment.model import Fit, effect_rows
from tsfleet.environment.multitest import fdr_bh, holm

ALPHA = 0.05
#: the corrections ``adjust`` knows, by statsmodels' names
ADJUST = {"holm": holm, "fdr_bh": fdr_bh}


def spearman_rows(rows: list[dict]) -> list[dict]:
    """Add p-values (t approximation) and Fisher-z 95% CIs to rank correlations."""
    out = []
    z = stats.norm.ppf(0.975)
    for r in rows:
        rho, n = r["spearman_rho"], int(r["n_devices"])
        row = dict(method="spearman", outcome=r["outcome"], factor=r["factor"], device_type=None,
                   n=n, unit="rank correlation over devices",
                   note="marginal association, not adjusted")
        if rho is None or n < 4 or not np.isfinite(rho):
            out.append({**row, "note": "not enough variation to rank"})
            continue
        rho = float(np.clip(rho, -0.999999, 0.999999))
        t = rho * np.sqrt((n - 2) / (1 - rho**2))
        se = 1.0 / np.sqrt(n - 3)
        row.update(estimate=rho, ci_low=float(np.tanh(np.arctanh(rho) - z * se)),
                   ci_high=float(np.tanh(np.arctanh(rho) + z * se)),
                   p_value=float(2 * stats.t.sf(abs(t), n - 2)))
        out.append(row)
    return out


def adjust(rows: list[dict], method: str = "holm") -> list[dict]:
    """Correct p-values within each method family; mark what stays significant.

    A test is one (outcome, factor, device type): the linear and the threshold
    row of a factor share their joint test and count once. A row is significant
    when its test's adjusted p is below ``ALPHA`` and its own 95% interval excludes
    zero and the term is in the model. Rows noted as adjustments (age) are reported but
    not part of the family.
    """
    for family in {r["method"] for r in rows}:
        tests: dict[tuple, list[int]] = {}
        for i, r in enumerate(rows):
            if (r["method"] == family and r.get("p_value") is not None
                    and np.isfinite(r["p_value"])
                    and not str(r.get("note", "")).startswith("adjustment")):
                tests.setdefault((r["outcome"], r["factor"], r.get("device_type")), []).append(i)
        if tests:
            keys = list(tests)
            p_adj = ADJUST[method]([rows[tests[k][0]]["p_value"] for k in keys])
            for k, p in zip(keys, p_adj, strict=True):
                for i in tests[k]:
                    r = rows[i]
                    r["p_adjusted"] = float(p)
                    excludes_zero = r.get("ci_low") is None or not (
                        r["ci_low"] <= 0 <= r["ci_high"])
                    # a term left out of the model (an unsupported hinge) is never significant
                    r["is_significant"] = bool(p < ALPHA and excludes_zero
                                               and r.get("in_model", True))
    for r in rows:
        if r.get("p_adjusted") is None and r.get("p_value") is not None:
            r["p_adjusted"] = r["p_value"]
            r["is_significant"] = None
    return rows


def all_effects(models: list[Fit], rank_rows: list[dict]) -> list[dict]:
    """GLM and rank-correlation effects, Holm-corrected per method."""
    rows = [r for m in models for r in effect_rows(m)] + spearman_rows(rank_rows)
    return adjust(rows)
