"""Recalibration schedule: sensors ranked by the date their drift crosses
tolerance, batched into site visits (one trip covers every sensor of the
site due within ``visit_window_days`` of the trip's first due date)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def batch_visits(due: pd.DataFrame, visit_window_days: float) -> pd.DataFrame:
    """``due`` has site and due_at; returns it with rank, visit_at and visit_id."""
    if due.empty:
        return due.assign(rank=pd.Series(dtype=int), visit_at=pd.Series(dtype="datetime64[ns]"),
                          visit_id=pd.Series(dtype=object))
    due = due.sort_values(["due_at", "device_id"]).reset_index(drop=True)
    due["rank"] = np.arange(1, len(due) + 1)
    window = pd.Timedelta(days=visit_window_days)
    visit_at = pd.Series(pd.NaT, index=due.index, dtype="datetime64[ns]")
    for _site, idx in due.groupby("site").groups.items():
        start = None
        for i in idx:  # sorted by due_at within the site
            if start is None or due.at[i, "due_at"] > start + window:
                start = due.at[i, "due_at"]
            visit_at[i] = start
    due["visit_at"] = visit_at
    due["visit_id"] = due["site"] + "@" + due["visit_at"].dt.strftime("%Y-%m-%d")
    return due
