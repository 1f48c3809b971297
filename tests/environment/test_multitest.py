"""Holm and Benjamini-Hochberg: statsmodels' adjusted p-values, without its full
garbage collection (which stalls serve's writer while an analysis runs beside it)."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from tests.environment.test_threshold_test import _null_cells
from tsfleet.environment.model import fit_outcome
from tsfleet.environment.multitest import fdr_bh, holm


@pytest.mark.parametrize("n", [1, 2, 7, 50, 400])
def test_same_adjusted_p_values_as_statsmodels(n, monkeypatch):
    # statsmodels' Holm ends in gc.collect(), which its values do not depend on; a full
    # collection of the whole suite's heap costs up to 0.3 s per call
    monkeypatch.setattr(gc, "collect", lambda generation=2: 0)
    rng = np.random.default_rng(n)
    for _ in range(10):
        p = rng.uniform(0, 1, n) ** rng.uniform(0.5, 6)
        p[rng.uniform(size=n) < 0.2] = p[0]                      # ties
        assert np.allclose(holm(p), multipletests(p, method="holm")[1], rtol=0, atol=1e-15)
        assert np.allclose(fdr_bh(p), multipletests(p, method="fdr_bh")[1], rtol=0, atol=1e-15)


def test_textbook_example():
    """Holm: sorted p times (m, m-1, ...), running maximum; BH: times m/rank, running
    minimum from the top; both capped at 1 and returned in the input order."""
    p = [0.04, 0.001, 0.03, 0.8]
    assert holm(p).tolist() == pytest.approx([0.09, 0.004, 0.09, 0.8])
    assert fdr_bh(p).tolist() == pytest.approx([0.04 * 4 / 3, 0.004, 0.04 * 4 / 3, 0.8])
    assert holm([0.6, 0.7]).tolist() == [1.0, 1.0]


def test_bad_p_values_are_refused():
    for bad in ([0.1, float("nan")], [[0.1, 0.2]], [0.1, float("inf")]):
        with pytest.raises(ValueError, match="finite"):
            holm(bad)


def test_a_fit_runs_no_full_collection():
    """statsmodels' Holm runs gc.collect() on every call: 0.3 s of GIL on a large heap."""
    cells = _null_cells(3)
    full = []

    def watch(phase, info):
        if phase == "start" and info["generation"] == 2:
            full.append(info)

    thresholds = gc.get_threshold()
    gc.set_threshold(0)                       # no automatic collection can run either
    gc.callbacks.append(watch)
    try:
        fit = fit_outcome(cells, "failure", factors=("temperature_c",))
    finally:
        gc.callbacks.remove(watch)
        gc.set_threshold(*thresholds)
    assert fit.blocks and full == []
