"""The threshold's 95% interval covers the true threshold.

Known truth, drawn here: 20 zones, each with its own temperature level (15-35 degC) and
hourly noise; failures Poisson with a log rate 0.2 per degC above 28 degC and flat below.
Over the fleets whose fit keeps the hinge, the reported interval must cover 28 degC in at
least 90% (nominal 95%). Session 12: the interval of main 69f6253 (the fine sweep's
points within the chi-square(1) 3.84 of the best) covered 46/55 of these fleets; the
whole grid at 3.84 fewer than 50/55; Hansen's threshold cut-off 7.35 over the whole grid
covers 53/55, and so does the combined interval on main (the converged profile at the
larger of 7.35 and 3.84 x the zone-clustered inflation).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.environment.drawn import zone_cells
from tsfleet.environment.model import THRESHOLD_CUT, fit_outcome, threshold_interval

N_FLEETS = 60
TAU, SLOPE = 28.0, 0.2


def _cells(seed: int) -> pd.DataFrame:
    return zone_cells(seed, lambda t: SLOPE * np.maximum(t - TAU, 0))


def test_the_threshold_interval_covers_the_true_threshold():
    covered = kept = 0
    for seed in range(100, 100 + N_FLEETS):
        blk = fit_outcome(_cells(seed), "failure", factors=("temperature_c",)).blocks[0]
        if blk.is_linear:
            continue
        kept += 1
        lo, hi = blk.threshold_ci
        assert lo <= blk.threshold <= hi
        covered += lo <= TAU <= hi
    assert kept >= 0.8 * N_FLEETS
    assert covered >= 0.9 * kept, f"covered {covered}/{kept}"


def test_the_interval_spans_the_thresholds_within_the_cut_over_the_whole_grid():
    # a profile with two separate regions within the cut: the interval spans both
    process = {20.0: -10.0, 22.0: -10.0 - THRESHOLD_CUT / 2 + 0.1, 24.0: -30.0,
               26.0: -10.0 - THRESHOLD_CUT / 2 + 0.1, 28.0: -40.0}
    assert threshold_interval(process, -10.0, 20.0) == (20.0, 26.0)
    assert threshold_interval(process, -10.0, 20.0, cut=3.84) == (20.0, 20.0)
    assert threshold_interval({}, -10.0, 21.0) == (21.0, 21.0)
    assert 7.3 < THRESHOLD_CUT < 7.4
