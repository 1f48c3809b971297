"""detect() computes on a numpy grid what the SQL views state: same expected
values, residuals and spikes."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _grid_rows(fleet) -> pd.DataFrame:
    grid, res = fleet.calibration.last_run
    rows, cols = np.nonzero(np.isfinite(res.x))
    return pd.DataFrame(dict(
        device_id=grid.device_ids[rows], hour_at=grid.hour_at(cols),
        value=grid.value[rows, cols], expected=res.expected[rows, cols],
        n_peers=res.n_peers[rows, cols].astype(int), residual_pct=res.x[rows, cols]))


def assert_grid_equals_views(fleet) -> None:
    fleet.calibration.detect()
    ours = _grid_rows(fleet).sort_values(["device_id", "hour_at"]).reset_index(drop=True)
    sql = fleet.frame("select device_id, hour_at, value, expected, n_peers, residual_pct "
                      "from sensor_residuals order by device_id, hour_at")
    assert len(ours) == len(sql) > 1000
    assert (ours["device_id"].to_numpy() == sql["device_id"].to_numpy()).all()
    assert (ours["hour_at"].to_numpy() == sql["hour_at"].to_numpy("datetime64[us]")).all()
    for col in ("value", "expected", "residual_pct"):
        assert np.allclose(ours[col], sql[col], rtol=1e-9, atol=1e-9), col
    assert (ours["n_peers"].to_numpy() == sql["n_peers"].to_numpy()).all()


def test_expectations_and_residuals_equal_the_views(cal_fleet):
    # calibration_expected / calibration_residuals, under the stored peer exclusions
    assert cal_fleet.query("select count(*) n from calibration_peer_exclusions")[0]["n"] > 0
    assert_grid_equals_views(cal_fleet)
    sources = {r["expected_source"] for r in cal_fleet.query(
        "select distinct expected_source from sensor_residuals")}
    assert sources == {"reference", "peers"}


def test_spikes_equal_the_view(cal_fleet):
    ours = cal_fleet.frame("select device_id, hour_at, robust_z from sensor_outliers "
                           "order by all")
    sql = cal_fleet.frame("select device_id, hour_at, robust_z from calibration_spikes "
                          "order by all")
    both = ours.merge(sql, on=["device_id", "hour_at"], how="outer", indicator=True)
    same = both[both["_merge"] == "both"]
    assert len(same) > 20
    # DuckDB's parallel sums and numpy's add in different orders (differences ~1e-7), so
    # a jump that sits exactly on one of the rule's thresholds may fall on either side:
    # at most one such hour in fifty, and every hour both flag has the same robust z.
    assert (both["_merge"] != "both").sum() <= max(1, len(both) // 50)
    assert np.allclose(same["robust_z_x"], same["robust_z_y"], rtol=1e-6)
