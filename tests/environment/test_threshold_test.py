"""The test of a factor's block (linear + hinge, threshold searched) holds its level.

A plain chi-square of the likelihood ratio ignores that the threshold was chosen
where it fits best; on zone-level factors (a few dozen zones, each its own narrow
range) the search finds a kink in noise. Davies' bound pays for the search.

Known truth, drawn here: 20 zones, each with its own temperature level and hourly
noise, failures Poisson with NO effect of temperature. Over 120 such fleets the
plain chi-square(3) rejected 15% at the 10% level and 7.5% at 5% (the bound: 7.5%
and 3.3%); the bound must not reject more than the level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from tests.environment.drawn import zone_cells
from tsfleet.environment.model import davies_p, fit_outcome

N_FLEETS = 120


def _null_cells(seed: int) -> pd.DataFrame:
    return zone_cells(seed, lambda t: np.zeros_like(t))


def test_the_block_test_holds_its_level_over_a_searched_threshold():
    p = np.array([fit_outcome(_null_cells(s), "failure", factors=("temperature_c",))
                  .blocks[0].p_value for s in range(N_FLEETS)])
    assert np.all((p > 0) & (p <= 1))
    assert np.mean(p < 0.10) <= 0.10
    assert np.mean(p < 0.05) <= 0.05


def test_a_type_split_is_tried_only_for_a_type_with_enough_events():
    cells = _null_cells(0)
    n = int(cells["n_failures"].sum())
    few = fit_outcome(cells, "failure", factors=("temperature_c",), min_type_events=n + 1)
    assert few.ok and few.selection == [] and all(b.device_type is None for b in few.blocks)
    tried = fit_outcome(cells, "failure", factors=("temperature_c",),
                        min_type_events=n).selection
    assert [(r["factor"], r["device_type"]) for r in tried] == [("temperature_c", "pump")]
    assert not tried[0]["is_selected"]   # the only type: its own block is the shared one


def test_davies_bound_is_the_chi_square_without_search_and_grows_with_the_wiggles():
    u = 9.0
    flat = np.full(5, u)
    assert np.isclose(davies_p(flat, u), stats.chi2.sf(u, 2))   # no variation: no search cost
    rising = np.array([0.0, 1.0, 4.0, 9.0])                      # sqrt rises by 3 in total
    assert np.isclose(davies_p(rising, u), stats.chi2.sf(u, 2) + 3 * 3 * np.exp(-4.5) / 2)
    wiggly = np.array([0.0, 9.0, 0.0, 9.0, 0.0, 9.0])
    assert davies_p(wiggly, u) > davies_p(rising, u) > davies_p(flat, u)
    assert davies_p(np.array([0.0, 0.5, 0.0, 0.5]), 0.5) == 1.0     # a bound, capped at 1


def _cells(seed: int, log_rate) -> pd.DataFrame:
    """20 zones as above; failures Poisson with log rate ``log_rate(temperature)``."""
    return zone_cells(1000 + seed, log_rate)


N_FORM = 60


def test_a_hinge_is_kept_only_where_the_data_support_it():
    """A straight-line effect (0.05 per degC, no threshold) is fitted as a line in at
    least 90% of fleets (the hinge's own test, Davies' bound with 1 df, at 5%), and its
    slope's interval then covers the truth in at least 90%; a clear threshold (0.3 per
    degC above 27 degC, flat below) keeps its hinge in at least 90% of fleets. (A weaker
    one, 0.15 per degC with about 200 failures, kept it in 42 of 60: the power of the
    test, not a rule.)"""
    lines = [fit_outcome(_cells(s, lambda t: 0.05 * (t - 25)), "failure",
                         factors=("temperature_c",)) for s in range(N_FORM)]
    as_line = [f for f in lines if f.blocks[0].is_linear]
    assert len(as_line) >= 0.9 * N_FORM
    covered = [f for f in as_line if f.blocks[0].term_ci["linear"][0] <= 0.05
               <= f.blocks[0].term_ci["linear"][1]]
    assert len(covered) >= 0.9 * len(as_line)
    assert all("temperature_c:above" not in f.names for f in as_line)
    hinges = [fit_outcome(_cells(N_FORM + s, lambda t: 0.3 * np.maximum(t - 27, 0)),
                          "failure", factors=("temperature_c",)) for s in range(N_FORM)]
    kept = [f for f in hinges if not f.blocks[0].is_linear]
    assert len(kept) >= 0.9 * N_FORM
    print(f"line fitted as a line {len(as_line)}/{N_FORM}, slope covered {len(covered)}; "
          f"hinge kept {len(kept)}/{N_FORM}")
