"""Issue 27: the per-device analyses on Dask distributed over the partitioned lake.

The requirement: a distributed run (LocalCluster, 2 workers, 16 buckets) gives the same
verdicts and forecasts as the single-node ``fleet.analyze``, attached as the usual
tables; a bucket that fails twice is reported while the others land; re-running is
idempotent; a bad scheduler address is one error line.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from tsfleet import Fleet
from tsfleet.cli import main
from tsfleet.errors import InvalidParameter
from tsfleet.scaleout import SchedulerUnreachable, analyze_bucket, engine, run_dask
from tsfleet.share.partition import device_bucket
from tsfleet.simulate import SimConfig, simulated_fleet

pytest.importorskip("distributed")

SIM = SimConfig(n_devices=80, days=24, seed=5)
BUCKETS = 16
#: the daily sums are added in another order on another partition of the readings,
#: so floating-point results agree to this relative tolerance, not to the bit
RTOL = 1e-5


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One simulated store analysed twice: on one node (``single``) and on a
    LocalCluster of 2 workers over its 16-bucket lake (``dask``)."""
    tmp = tmp_path_factory.mktemp("dask")
    src = tmp / "single.duckdb"
    fleet = simulated_fleet(SIM, path=str(src))
    fleet.export(tmp / "lake", buckets=BUCKETS)
    fleet.close()
    shutil.copyfile(src, tmp / "dask.duckdb")
    single, dask = Fleet(str(src)), Fleet(str(tmp / "dask.duckdb"))
    single_results = single.analyze(only="power,calibration", force=True)
    run = run_dask(dask, tmp / "lake", only="power,calibration", workers=2, processes=False)
    yield dict(single=single, dask=dask, run=run, lake=tmp / "lake", tmp=tmp,
               single_results=single_results)
    single.close()
    dask.close()


def frames(a: Fleet, b: Fleet, table: str, key: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    sql = f"select * exclude (computed_at, params) from {table} order by all"
    x, y = a.frame(sql), b.frame(sql)
    return (x.sort_values(key).reset_index(drop=True), y.sort_values(key).reset_index(drop=True))


def assert_same(x: pd.DataFrame, y: pd.DataFrame, table: str) -> None:
    assert list(x.columns) == list(y.columns), table
    assert len(x) == len(y) > 0, table
    for col in x.columns:
        a, b = x[col], y[col]
        if pd.api.types.is_float_dtype(a):
            np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=RTOL,
                                       atol=1e-9, equal_nan=True, err_msg=f"{table}.{col}")
        elif pd.api.types.is_datetime64_any_dtype(a):
            # a date from a rate: the same rate tolerance over the days ahead
            both = a.notna() & b.notna()
            assert (a.isna() == b.isna()).all(), f"{table}.{col}"
            ahead = (a[both] - a[both].min()).dt.total_seconds().abs() + 86400
            gap = (a[both] - b[both]).dt.total_seconds().abs()
            assert (gap <= ahead * 10 * RTOL + 1).all(), f"{table}.{col}"
        else:
            assert a.astype(object).where(a.notna(), None).tolist() == \
                b.astype(object).where(b.notna(), None).tolist(), f"{table}.{col}"


def test_the_run_used_two_workers_and_sixteen_buckets(runs):
    run = runs["run"]
    assert run.n_workers == 2
    assert run.n_tasks == 2 * 2 * BUCKETS       # two domains, two phases
    assert run.failures == []
    assert [r.status for r in run.results] == ["ok", "ok"]
    assert [(r.failed_buckets, r.n_conflicts) for r in run.results] == [(None, 0)] * 2
    for table in ("battery_forecast", "sensor_drift"):
        parts = sorted((runs["lake"] / "results" / table).glob("bucket=*/data.parquet"))
        assert len(parts) == BUCKETS


def test_same_forecasts_as_one_node(runs):
    single, dask = runs["single"], runs["dask"]
    x, y = frames(single, dask, "battery_forecast", ["device_id"])
    assert x["method"].nunique() >= 2           # fallbacks as well as fitted devices
    assert_same(x, y, "battery_forecast")
    assert_same(*frames(single, dask, "battery_patterns", ["device_id"]), "battery_patterns")
    # the fleet steps on the collected results: pooled parameters, plan, attribution
    assert_same(*frames(single, dask, "battery_holt_params", ["device_type"]),
                "battery_holt_params")
    assert_same(*frames(single, dask, "replacement_plan", ["rank"]), "replacement_plan")
    assert_same(*frames(single, dask, "drain_attribution", ["factor"]), "drain_attribution")


def test_same_verdicts_as_one_node(runs):
    single, dask = runs["single"], runs["dask"]
    x, y = frames(single, dask, "sensor_drift", ["device_id", "metric"])
    assert x["verdict"].nunique() >= 2           # drifting sensors as well as clean ones
    assert_same(x, y, "sensor_drift")
    for table, key in (("sensor_faults", ["device_id", "fault"]),
                       ("calibration_peer_exclusions", ["device_id"]),
                       ("calibration_schedule", ["rank"]),
                       ("calibration_stability", ["factor"])):
        a, b = frames(single, dask, table, key)
        if len(a) or len(b):
            assert_same(a, b, table)
    a, b = frames(single, dask, "sensor_outliers", ["device_id", "hour_at"])
    assert len(a) == len(b)


def test_views_and_findings_work_unchanged(runs):
    single, dask = runs["single"], runs["dask"]
    for view in ("power_findings", "calibration_findings", "battery_state"):
        sql = f"select * from {view} order by all"
        cols = [c for c in single.frame(sql).columns
                if c not in ("computed_at", "opened_at", "as_of", "value")]
        assert single.frame(sql)[cols].equals(dask.frame(sql)[cols]), view
    fresh = dask.query("select analysis, status from analysis_runs order by run_id")
    assert [(r["analysis"], r["status"]) for r in fresh] == [("power", "ok"),
                                                              ("calibration", "ok")]
    assert [r.n_findings for r in runs["run"].results] == [
        r.n_findings for r in runs["single_results"]]


def test_a_failing_bucket_is_reported_and_the_rest_lands(runs, capsys):
    """A bucket whose readings are unreadable fails twice (Dask's retry), is named on
    one line with its error, the exit is non-zero, and the other buckets' results are
    attached."""
    tmp = runs["tmp"]
    store = tmp / "broken.duckdb"
    runs["single"].con.execute("checkpoint")
    shutil.copyfile(tmp / "single.duckdb", store)
    with Fleet(str(store)) as fleet:
        fleet.con.execute("delete from battery_forecast")
        fleet.export(tmp / "lake4", buckets=4)
    for part in (tmp / "lake4" / "readings").glob("date=*/bucket=2/*.parquet"):
        part.write_bytes(b"not a parquet file")
    code = main(["--db", str(store), "analyze", "--engine", "dask", "--lake",
                 str(tmp / "lake4"), "--only", "power", "--workers", "1"])
    out, err = capsys.readouterr()
    assert code != 0
    lines = [ln for ln in out.splitlines() if "bucket" in ln and "failed twice" in ln]
    assert len(lines) == 1 and lines[0].startswith("power bucket 2 failed twice: ")
    assert "parquet" in lines[0].lower() or "magic" in lines[0].lower()
    assert len(err.strip().splitlines()) == 1 and "analysis failed: power" in err
    with Fleet(str(store)) as fleet:
        got = {r[0] for r in fleet.con.execute(
            "select device_id from battery_forecast").fetchall()}
        run = fleet.query("select status, error from analysis_runs order by run_id desc")[0]
    battery = {r[0] for r in runs["single"].con.execute(
        "select device_id from battery_forecast").fetchall()}
    assert got == {d for d in battery if device_bucket(d, 4) != 2}
    assert got and all(device_bucket(d, 4) != 2 for d in got)
    assert run["status"] == "failed" and run["error"].startswith("1 of 4 buckets failed: 2: ")


def test_rerun_is_idempotent(runs):
    """A second run over the same lake replaces every partition and table row: the same
    files, the same answers, nothing left over."""
    dask, lake = runs["dask"], runs["lake"]
    before = dask.frame("select * exclude (computed_at, params) from sensor_drift order by all")
    files = sorted(p.relative_to(lake) for p in (lake / "results").rglob("*") if p.is_file())
    stale = lake / "results" / "sensor_drift" / "bucket=31" / "data.parquet"  # more buckets
    stale.parent.mkdir()
    shutil.copyfile(lake / "results" / "sensor_drift" / "bucket=0" / "data.parquet", stale)
    run = run_dask(dask, lake, only="calibration", workers=2, processes=False)
    assert run.failures == []
    after = dask.frame("select * exclude (computed_at, params) from sensor_drift order by all")
    assert before.equals(after)
    assert files == sorted(p.relative_to(lake) for p in (lake / "results").rglob("*")
                           if p.is_file())
    assert not [p for p in (lake / "results").rglob(".*")]      # no staging files


def test_a_bad_scheduler_is_one_error_line(runs, capsys, monkeypatch):
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT_S", 2)
    for address in ("tcp://127.0.0.1:1", "nonsense"):
        code = main(["--db", str(runs["tmp"] / "dask.duckdb"), "analyze", "--engine", "dask",
                     "--lake", str(runs["lake"]), "--scheduler", address])
        err = capsys.readouterr().err
        assert code != 0
        assert err.count("\n") == 1 and err.startswith(
            f"tsfleet: error: cannot reach the Dask scheduler at '{address}'")

    with pytest.raises(SchedulerUnreachable, match="missing port number"):
        engine.open_client("nonsense", None, False)


def test_bad_task_arguments_are_refused(runs, tmp_path, capsys):
    lake = runs["lake"]
    with pytest.raises(InvalidParameter, match="domain must be one of power, calibration"):
        analyze_bucket(lake, 0, "network", phase="stats")
    with pytest.raises(InvalidParameter, match="phase must be one of stats, apply"):
        analyze_bucket(lake, 0, "power", phase="fit")
    with pytest.raises(InvalidParameter, match="bucket must be within 0..15, got 16"):
        analyze_bucket(lake, 16, "power", phase="stats")
    with pytest.raises(InvalidParameter, match="power apply needs what the fleet step pooled"):
        analyze_bucket(lake, 0, "power")
    with pytest.raises(InvalidParameter, match="holds no _tsfleet_export.json"):
        analyze_bucket(tmp_path, 0, "power", phase="stats")
    with pytest.raises(InvalidParameter, match="the dask engine runs power, calibration"):
        run_dask(runs["dask"], lake, only="network")
    with pytest.raises(InvalidParameter, match="engine='dask' needs lake"):
        runs["dask"].analyze(engine="dask")
    with pytest.raises(InvalidParameter, match="engine must be local or dask"):
        runs["dask"].analyze(engine="spark")
    db = str(runs["tmp"] / "dask.duckdb")
    for argv, says in ((["analyze", "--lake", str(lake)], "need --engine dask"),
                       (["analyze", "--engine", "dask"], "needs --lake DIR")):
        assert main(["--db", db, *argv]) != 0
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err
