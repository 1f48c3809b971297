"""Replacement plan: devices whose battery reaches critical within the window,
batched into site visits.

Greedy per site, earliest deadline first: a visit is scheduled at the earliest
(lower-interval) critical date of the devices not yet covered, then takes
every other device of the site whose critical date falls within
``batch_days`` after it, so a team makes few trips and no device goes dark
before its visit (a visit is never after any of its devices' critical dates).
Inside a visit, devices rank by deadline, then by importance (criticality).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from tsfleet.words import plural

COLUMNS = ("visit_id", "visit_at", "site", "device_id", "zone", "device_type", "criticality",
           "level_now_pct", "critical_at", "empty_at", "days_left", "pattern", "method",
           "reason", "deadline")


def build(frame: pd.DataFrame, horizon_days: int, batch_days: float, now) -> pd.DataFrame:
    """``frame``: one row per device with site, zone, criticality, critical_at,
    critical_lo_at, critical_hi_at, empty_at, level_now_pct, days_to_critical, pattern,
    method."""
    end = pd.Timestamp(now) + timedelta(days=horizon_days)
    due = frame.copy()
    due["deadline"] = due["critical_lo_at"].fillna(due["critical_at"])
    due = due[due["deadline"].notna() & (due["deadline"] <= end)]
    due["deadline"] = due["deadline"].clip(lower=pd.Timestamp(now))
    if due.empty:
        return pd.DataFrame()
    due = due.sort_values(["deadline", "criticality"], ascending=[True, False])
    # per site (in name order), earliest deadline first: a visit at the first deadline
    # left takes every device due within batch_days after it, a run of the sorted rows
    deadline = due["deadline"].to_numpy("datetime64[ns]")
    site = due["site"].to_numpy(object)
    batch = np.timedelta64(int(round(batch_days * 86400e9)), "ns")
    visit = np.zeros(len(due), dtype=int)
    visit_at = deadline.copy()
    n_visits = 0
    for name in sorted(set(site)):
        rows = np.flatnonzero(site == name)
        at = deadline[rows]
        i = 0
        while i < len(rows):
            j = i + int(np.searchsorted(at[i:], at[i] + batch, side="right"))
            n_visits += 1
            visit[rows[i:j]] = n_visits
            visit_at[rows[i:j]] = at[i]
            i = j
    order = np.argsort(visit, kind="stable")     # visit by visit, each in deadline order
    plan = due.iloc[order].assign(visit_id=visit[order], visit_at=visit_at[order],
                                  criticality=lambda d: d["criticality"].astype(int))
    plan["reason"] = [f"{lvl:.0f}% now, critical in {plural(left, 'day')} ({_d(lo)}..{_d(hi)}), "
                      f"pattern {pat}, {meth}" for lvl, left, lo, hi, pat, meth in zip(
                          plan["level_now_pct"], plan["days_to_critical"],
                          plan["critical_lo_at"], plan["critical_hi_at"], plan["pattern"],
                          plan["method"], strict=True)]
    plan = plan.rename(columns={"days_to_critical": "days_left"})[list(COLUMNS)]
    plan = plan.sort_values(["visit_at", "site", "deadline", "criticality"],
                            ascending=[True, True, True, False]).reset_index(drop=True)
    plan["rank"] = range(1, len(plan) + 1)
    return plan.drop(columns="deadline")


def _d(t) -> str:
    return "?" if pd.isna(t) else pd.Timestamp(t).strftime("%Y-%m-%d")
