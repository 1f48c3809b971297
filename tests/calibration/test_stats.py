"""The vectorized tests equal the textbook ones."""

from __future__ import annotations

import numpy as np
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from tsfleet.calibration import stats


def _ar1(rng, n, phi=0.9):
    e = rng.normal(0, 1, n)
    out = np.empty(n)
    out[0] = e[0]
    for i in range(1, n):
        out[i] = phi * out[i - 1] + e[i]
    return out


def test_trend_test_equals_statsmodels_newey_west():
    rng = np.random.default_rng(3)
    x = np.stack([_ar1(rng, 500) + 0.01 * i * np.arange(500) for i in range(4)])
    r = stats.trend_test(x, maxlags=24)
    for i in range(4):
        X = sm.add_constant(np.arange(500.0))
        fit = sm.OLS(x[i], X).fit(cov_type="HAC", cov_kwds={"maxlags": 24,
                                                             "use_correction": False})
        assert np.isclose(r.slope[i], fit.params[1])
        assert np.isclose(r.se[i], fit.bse[1], rtol=1e-8)
        assert np.isclose(r.p[i], fit.pvalues[1], rtol=1e-6, atol=1e-300)


def test_trend_test_size_under_autocorrelation():
    rng = np.random.default_rng(4)
    x = np.stack([_ar1(rng, 2000, 0.8) for _ in range(300)])
    x[:, rng.random(2000) < 0.1] = np.nan          # gaps
    r = stats.trend_test(x, maxlags=72)
    assert (r.p < 0.01).mean() < 0.04


def test_cusum_finds_a_step_and_is_quiet_without_one():
    rng = np.random.default_rng(5)
    x = rng.normal(0, 0.5, (2, 1000))
    x[0, 600:] += 1.0
    r = stats.cusum_test(x, maxlags=10)
    assert r.p[0] < 1e-10 and r.p[1] > 0.01
    assert abs(r.at[0] - 600) <= 5
    assert abs(r.size[0] - 1.0) < 0.15


def test_empty_rows_give_no_evidence():
    x = np.full((1, 50), np.nan)
    assert stats.trend_test(x, 5).p[0] == 1.0
    r = stats.cusum_test(x, 5)
    assert r.at[0] == -1 and r.p[0] == 1.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=60))
def test_bh_cutoff_rejects_what_statsmodels_rejects(p):
    p = np.array(p)
    cut = stats.bh_cutoff(p, 0.05)
    rejected = multipletests(p, alpha=0.05, method="fdr_bh")[0]
    assert (p <= cut).sum() == rejected.sum() if rejected.any() else cut == 0.0


def test_bh_cutoff_of_nothing_rejects_nothing():
    assert stats.bh_cutoff(np.array([]), 0.05) == 0.0
