"""Operating limits that follow the fitted form of each significant effect.

A factor whose above-threshold term is significantly positive gets a
``keep_below`` limit at the fitted threshold (with its interval); one with only a
significant positive linear term gets ``lower_is_better``. A device type's own
block decides for that type; the shared block for the other types (the rows with
device_type NULL).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tsfleet.environment.model import LABELS, Fit

COLUMNS = ["outcome", "device_type", "factor", "kind", "limit_value", "limit_ci_low",
           "limit_ci_high", "log_rate_ratio", "ci_low", "ci_high", "p_adjusted", "sentence"]


def label(factor: str) -> str:
    """The word for a built-in factor (a declared one: ``Fit.label``)."""
    return LABELS.get(factor, factor)


def _x(b: float) -> str:
    return f"x{np.exp(b):.2f}"


def limits(model: Fit, effects: list[dict]) -> pd.DataFrame:
    """One row per block of ``model`` with a significant positive effect."""
    if not model.ok:
        return pd.DataFrame(columns=COLUMNS)
    by = {(r["device_type"], r["factor"], r.get("term")): r for r in effects
          if r["method"] == "glm_poisson" and r["outcome"] == model.outcome}
    rows = []
    for blk in model.blocks:
        dtype, f = blk.device_type, blk.factor
        others = sorted(b.device_type for b in model.blocks if b.factor == f and b.device_type)
        who = (f"type {dtype}" if dtype else "all device types" if not others else
               "device types other than " + ", ".join(others))
        above, lin = by.get((dtype, f, "above")), by.get((dtype, f, "linear"))
        unit, word = model.unit(f), model.label(f)
        base = dict(outcome=model.outcome, device_type=dtype, factor=f)
        if above and above.get("is_significant") and above["estimate"] > 0:
            tau, lo, hi = above["threshold"], above["threshold_ci_low"], above["threshold_ci_high"]
            rows.append(dict(
                base, kind="keep_below", limit_value=tau, limit_ci_low=lo, limit_ci_high=hi,
                log_rate_ratio=above["estimate"], ci_low=above["ci_low"],
                ci_high=above["ci_high"], p_adjusted=above["p_adjusted"],
                sentence=f"{word} above {tau:g} {unit} (95% CI {lo:g}-{hi:g}) raises the "
                         f"{model.outcome} rate of {who} {_x(above['estimate'])} per {unit} "
                         f"(95% CI {_x(above['ci_low'])}-{_x(above['ci_high'])}); keep {who} "
                         f"below {tau:g} {unit}"))
        elif lin and lin.get("is_significant") and lin["estimate"] > 0:
            rows.append(dict(
                base, kind="lower_is_better", log_rate_ratio=lin["estimate"],
                ci_low=lin["ci_low"], ci_high=lin["ci_high"], p_adjusted=lin["p_adjusted"],
                sentence=f"higher {word} raises the {model.outcome} rate of {who} "
                         f"{_x(lin['estimate'])} per {unit} (95% CI {_x(lin['ci_low'])}-"
                         f"{_x(lin['ci_high'])}), with no threshold found; keep {word} as "
                         f"low as practical for {who}"))
    return pd.DataFrame(rows, columns=COLUMNS)


def limit_for(lim: pd.DataFrame, model: Fit, device_type: str, factor: str) -> dict | None:
    """The limit that applies to ``device_type``: from its own block where it has one."""
    blk = model.block(factor, device_type)
    scope = blk.device_type if blk is not None else None
    m = lim[(lim["factor"] == factor) & (lim["outcome"] == model.outcome)
            & (lim["device_type"].isna() if scope is None else lim["device_type"] == scope)]
    return m.iloc[0].to_dict() if len(m) else None
