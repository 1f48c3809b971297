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

import pandas as pd


def build(frame: pd.DataFrame, horizon_days: int, batch_days: float, now) -> pd.DataFrame:
    """``frame``: one row per device with site, zone, criticality, critical_at,
    critical_lo_at, empty_at, level_now_pct, days_to_critical, pattern, method."""
    end = pd.Timestamp(now) + timedelta(days=horizon_days)
    due = frame.copy()
    due["deadline"] = due["critical_lo_at"].fillna(due["critical_at"])
    due = due[due["deadline"].notna() & (due["deadline"] <= end)]
    due["deadline"] = due["deadline"].clip(lower=pd.Timestamp(now))
    rows = []
    visit_id = 0
    for site, group in due.sort_values(["deadline", "criticality"],
                                       ascending=[True, False]).groupby("site", sort=True):
        left = group
        while len(left):
            visit_at = left["deadline"].min()
            take = left[left["deadline"] <= visit_at + timedelta(days=batch_days)]
            visit_id += 1
            for _, r in take.iterrows():
                rows.append(dict(visit_id=visit_id, visit_at=visit_at, site=site, **_why(r)))
            left = left.drop(take.index)
    plan = pd.DataFrame(rows)
    if plan.empty:
        return plan
    plan = plan.sort_values(["visit_at", "site", "deadline", "criticality"],
                            ascending=[True, True, True, False]).reset_index(drop=True)
    plan["rank"] = range(1, len(plan) + 1)
    return plan.drop(columns="deadline")


def _why(r) -> dict:
    left = r["days_to_critical"]
    reason = (f"{r['level_now_pct']:.0f}% now, critical in {left:.0f} days "
              f"({_d(r['critical_lo_at'])}..{_d(r['critical_hi_at'])}), pattern {r['pattern']}, "
              f"{r['method']}")
    return dict(device_id=r["device_id"], zone=r["zone"], device_type=r["device_type"],
                criticality=int(r["criticality"]), level_now_pct=r["level_now_pct"],
                critical_at=r["critical_at"], empty_at=r["empty_at"], days_left=left,
                pattern=r["pattern"], method=r["method"], reason=reason, deadline=r["deadline"])


def _d(t) -> str:
    return "?" if pd.isna(t) else pd.Timestamp(t).strftime("%Y-%m-%d")
