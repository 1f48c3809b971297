"""From test results to a verdict and a tolerance crossing date per sensor."""

from __future__ import annotations

import numpy as np

from tsfleet.calibration.detect import DriftResult

VERDICTS = ("ok", "drifting", "step", "needs_recalibration", "fault", "no_expectation",
            "zone_ambiguous")

#: The two action levels a drift can reach, by default 1% and 2% of scale.
LEVELS = ("watch", "recalibrate")


def verdicts(r: DriftResult, tolerance_pct: np.ndarray, watch_pct: np.ndarray,
             fault: np.ndarray) -> np.ndarray:
    """A verdict per sensor (fault and missing expectation first); ``watch`` here is
    a significant change below the watch level, which the caller reports as ``ok``."""
    big = np.abs(np.nan_to_num(r.drift_pct))
    return np.select(
        [fault, ~r.enough, r.significant & r.is_step,
         r.significant & (big >= tolerance_pct), r.significant & (big >= watch_pct),
         r.significant],
        ["fault", "no_expectation", "step", "needs_recalibration", "drifting", "watch"],
        default="ok").astype(object)


def levels(verdict: np.ndarray, drift_pct: np.ndarray, tolerance_pct: np.ndarray) -> np.ndarray:
    """The action level per sensor: ``recalibrate`` (needs_recalibration, or a step
    of at least the tolerance), ``watch`` (drifting, or a smaller step), else None.
    A ``zone_ambiguous`` drift reaches no level: which sensor drifts is not known."""
    big = np.abs(np.nan_to_num(drift_pct)) >= tolerance_pct
    return np.select([(verdict == "needs_recalibration") | ((verdict == "step") & big),
                      np.isin(verdict, ["drifting", "step"])], ["recalibrate", "watch"],
                     None).astype(object)


def crossing_dates(r: DriftResult, verdict: np.ndarray, tolerance_pct: np.ndarray) -> np.ndarray:
    """When |drift| crosses tolerance: past (already crossed) or projected, else NaT.

    Already beyond tolerance: a step crossed at the step; a drift at
    ``as_of - (|drift| - tolerance) / rate``. Below tolerance and growing
    (rate pointing away from zero): ``as_of + (tolerance - |drift|) / rate``.
    """
    drift = np.nan_to_num(r.drift_pct)
    speed = np.nan_to_num(r.rate_pct_per_day) * np.sign(drift)   # % per day away from zero
    gap = tolerance_pct - np.abs(drift)
    with np.errstate(invalid="ignore", divide="ignore"):
        days = np.where(gap <= 0, gap / np.where(speed > 0, speed, np.nan),
                        np.where(speed > 0, gap / speed, np.nan))
    days = np.clip(days, -3650, 3650)
    seconds = np.where(np.isfinite(days), days * 86400, 0).astype(np.int64)
    at = r.as_of + seconds.astype("timedelta64[s]")
    at = np.where(np.isfinite(days), at, np.datetime64("NaT"))
    seg = r.segment_start_at.astype("datetime64[s]")
    at = np.where((gap <= 0) & ~np.isnat(at) & (at < seg), seg, at)
    at = np.where((gap <= 0) & np.isnat(at), r.first_detectable_at.astype("datetime64[s]"), at)
    at = np.where(verdict == "step", np.where(gap <= 0, r.step_at.astype("datetime64[s]"), at), at)
    relevant = np.isin(verdict, ["watch", "drifting", "step", "needs_recalibration"])
    return np.where(relevant, at, np.datetime64("NaT"))
