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


def all_effects(models: list[Fit], rank_rows: list[dict],
                ranges: dict[str, tuple[float, float]] | None = None) -> list[dict]:
    """GLM and rank-correlation effects, Holm-corrected per method; ``ranges`` (factor ->
    the fleet's exposure-weighted 5% and 99% quantiles) explain the ratios not given."""
    rows = [r for m in models for r in effect_rows(m)] + spearman_rows(rank_rows)
    return present_ratios(adjust(rows), models, ranges or {})


#: A term's rate ratio (per unit of its factor) is not given when its 95% interval spans
#: more than this factor: the data do not tell the size of the effect.
MAX_RATIO_SPAN = 100.0


def present_ratios(rows: list[dict], models: list[Fit],
                   ranges: dict[str, tuple[float, float]]) -> list[dict]:
    """Blank the ``rate_ratio`` of GLM terms where it is not a finding, saying why in the
    note; the estimate (log rate ratio per unit) and its interval stay.

    ``rate_ratio`` is ``exp(estimate)``: the rate ratio per one unit of the factor (1 degC,
    1 %RH, 1 g RMS). It is left out for a term not in the model (an unsupported hinge) and
    for one whose interval spans more than ``MAX_RATIO_SPAN`` (session 23: on the demo
    fleet vibration, 0.015-0.13 g in every zone, got 17.8 [-4.5, 85] per g, shown as a rate
    ratio of 52,307,563, and an above-threshold -51.3 [-168, -17.3], shown as 0.00). Where
    the factor spans less than one unit in the fleet the note says so: a ratio per unit
    then lies beyond the data."""
    fits = {m.outcome: m for m in models}
    for r in rows:
        fit = fits.get(r.get("outcome"))
        if (r.get("method") != "glm_poisson" or fit is None or r.get("term") not in
                ("linear", "above") or r["factor"] not in fit.centers
                or r.get("estimate") is None):
            continue
        unit, word = fit.unit(r["factor"]), fit.label(r["factor"])
        if not r.get("in_model", True):
            why = "not given: the term is not in the model"
        elif r["ci_high"] - r["ci_low"] > np.log(MAX_RATIO_SPAN):
            why = (f"not estimable: per {unit} its 95% interval spans "
                   f"x{np.exp(r['ci_low']):.2g} to x{np.exp(r['ci_high']):.2g}")
            lo, hi = ranges.get(r["factor"], (np.nan, np.nan))
            start = r["threshold"] if r["term"] == "above" else lo
            span = hi - start
            if np.isfinite(span) and span < 1:
                where, of = (("exceeds its threshold by at most", "99% quantile")
                             if r["term"] == "above" else ("spans only", "5%-99% quantiles"))
                why += (f"; {word} {where} {max(span, 0):.2g} {unit} in this fleet ({of} of "
                        f"device-hours), so a ratio per {unit} lies beyond the data")
        else:
            continue
        r["rate_ratio"] = None
        r["note"] = f"{r['note']}; rate ratio {why}"
    return rows
