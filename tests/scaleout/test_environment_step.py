"""Environment's distributed path on a fleet with problem zones and limits, without a
cluster: the bucket tasks called in-process, then the coordinator's fleet step.

The Dask test's fleet (80 devices) has no significant effect, so its limits and
recommendations are empty there; this fleet has both, and they must come out as on one
node: the same limits, the same zones in the same order (ranked by the model's rate
ratio), the same sentences."""

from __future__ import annotations

import shutil

import pytest

from tests.scaleout.test_dask import assert_same, frames
from tsfleet import Fleet
from tsfleet.scaleout import plan
from tsfleet.scaleout.tasks import analyze_bucket
from tsfleet.simulate import SimConfig, simulated_fleet

BUCKETS = 4


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("envstep")
    src = tmp / "single.duckdb"
    fleet = simulated_fleet(SimConfig(n_devices=500, days=20, seed=5), path=str(src))
    fleet.export(tmp / "lake", buckets=BUCKETS)
    fleet.close()
    shutil.copyfile(src, tmp / "step.duckdb")
    single, step = Fleet(str(src)), Fleet(str(tmp / "step.duckdb"))
    single.environment.analyze()
    for b in range(BUCKETS):
        analyze_bucket(tmp / "lake", b, "environment", phase="stats", buckets=BUCKETS)
    n = plan.environment_fleet_step(step, tmp / "lake", list(range(BUCKETS)))
    yield single, step, n
    single.close()
    step.close()


def test_limits_and_problem_zones_as_on_one_node(pair):
    single, step, n = pair
    assert n == single.query("select count(*) as n from environment_device_exposure")[0]["n"]
    for table, key in (("environment_limits", ["outcome", "factor", "device_type"]),
                       ("environment_recommendations", ["rank"]),
                       ("environment_effects", ["method", "outcome", "factor", "device_type",
                                                "term"])):
        a, b = frames(single, step, table, key)
        assert len(a) > 0, table
        assert_same(a, b, table)
    zones = [r["zone"] for r in step.environment.recommendations()]
    assert zones == [r["zone"] for r in single.environment.recommendations()]
