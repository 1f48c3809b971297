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
from tsfleet.scaleout.plan import DISTRIBUTED
from tsfleet.share.partition import device_bucket
from tsfleet.simulate import SimConfig, simulated_fleet

pytest.importorskip("distributed")

SIM = SimConfig(n_devices=80, days=24, seed=5)
BUCKETS = 16
#: the daily sums are added in another order on another partition of the readings,
#: so floating-point results agree to this relative tolerance, not to the bit
RTOL = 1e-5
#: every distributed analysis, in the registry's run order
ALL = "firmware,power,calibration,environment"


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
    single_results = single.analyze(only=ALL, force=True)
    run = run_dask(dask, tmp / "lake", workers=2, processes=False)
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
    # power and calibration: two phases; firmware and environment: one
    assert run.n_tasks == (2 * 2 + 2) * BUCKETS
    assert run.failures == []
    # the coordinator's order: the longest serial fleet step first (engine.COORDINATOR_ORDER)
    assert [r.analysis for r in run.results] == list(engine.COORDINATOR_ORDER)
    assert [r.status for r in run.results] == ["ok"] * 4
    assert [(r.failed_buckets, r.n_conflicts) for r in run.results] == [(None, 0)] * 4
    for table in ("battery_forecast", "sensor_drift", "firmware_device_health",
                  "environment_monitor_hours", "environment_device_outcomes"):
        parts = sorted((runs["lake"] / "results" / table).glob("bucket=*/data.parquet"))
        assert len(parts) == BUCKETS


def test_the_coordinator_order_names_every_distributed_domain_once():
    # a domain added to the dask engine must be given its place in the coordinator's order
    assert sorted(engine.COORDINATOR_ORDER) == sorted(DISTRIBUTED)


def test_the_domains_overlap_on_the_workers(runs):
    """The workers are not left idle while the coordinator works through the domains:
    every domain's first bucket phase is submitted before the coordinator's first step,
    and the priorities keep the coordinator's order (an earlier domain's tasks, second
    phase and fits before a later domain's first phase). Read from the run's log, not
    from timings; the analysis_runs rows say the domains overlapped."""
    run, names = runs["run"], list(engine.COORDINATOR_ORDER)
    log = run.log
    at = {(e.domain, e.what, e.phase): i for i, e in reversed(list(enumerate(log)))}
    first_step = min(i for i, e in enumerate(log) if e.what == "start")
    assert log[first_step].domain == "environment"
    assert all(at[(d, "submit", "stats")] < first_step for d in names)
    # what a domain's second phase needs is kept: it is submitted after its fleet step
    for d in ("power", "calibration"):
        assert at[(d, "end", "fleet")] < at[(d, "submit", "apply")]
    # the coordinator still takes the domains one after the other, in COORDINATOR_ORDER
    steps = [e.domain for e in log if e.what != "submit"]
    assert [d for i, d in enumerate(steps) if i == 0 or steps[i - 1] != d] == names
    low = {(e.domain, e.phase): e.priority[0] for e in log if e.what == "submit"}
    high = {(e.domain, e.phase): e.priority[1] for e in log if e.what == "submit"}
    for i, d in enumerate(names):
        mine = [k for k in high if k[0] == d]
        for later in names[i + 1:]:
            assert min(low[k] for k in mine) > high[(later, "stats")], (d, later)
    assert low[("power", "fits")] > high[("power", "apply")]
    assert low[("environment", "fits")] > high[("environment", "stats")]
    spans = run.spans()
    assert {(d, p) for d, p, _, _ in spans} == {
        (d, p) for d in names for p in ("stats", "apply", "fits")
        if (d, "submit", p) in at}
    assert all(a < b for _, _, a, b in spans)
    rows = runs["dask"].query(
        "select analysis, started_at, finished_at from analysis_runs order by run_id "
        "limit 4")
    assert [r["analysis"] for r in rows] == names
    # every domain started when the run did, before the first one's results were in
    assert all(r["started_at"] < rows[0]["finished_at"] for r in rows)
    assert [r["finished_at"] for r in rows] == sorted(r["finished_at"] for r in rows)


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


#: environment's result tables and their keys (all written by the fleet step once)
ENVIRONMENT_TABLES = (
    ("environment_device_exposure", ["device_id"]),
    ("environment_zone_hourly", ["zone", "hour_at"]),
    ("environment_zone_factor_hourly", ["zone", "factor", "hour_at"]),
    ("environment_gaps", ["zone", "metric", "gap_from"]),
    ("environment_monitor_faults", ["device_id", "metric", "fault", "from_at"]),
    ("environment_model", ["outcome", "term"]),
    ("environment_effects", ["method", "outcome", "factor", "device_type", "term"]),
    ("environment_envelopes", ["device_type", "factor", "band_low"]),
    ("environment_limits", ["outcome", "factor", "device_type"]),
    ("environment_recommendations", ["rank"]),
)


def test_same_environment_as_one_node(runs):
    """Zone environment, monitor faults, the fitted models, effects, envelopes, per-device
    exposure, stress and failure probabilities: as on one node."""
    single, dask = runs["single"], runs["dask"]
    x, y = frames(single, dask, "environment_device_exposure", ["device_id"])
    assert x["p_fail_30d"].notna().sum() > 0 and x["env_source"].nunique() >= 1
    assert_same(x, y, "environment_device_exposure")
    checked = 0
    for table, key in ENVIRONMENT_TABLES[1:]:
        a, b = frames(single, dask, table, key)
        assert len(a) == len(b), table
        if len(a):
            assert_same(a, b, table)
            checked += 1
    assert checked >= 6          # zone hours, gaps, faults, model, effects, envelopes


def test_same_firmware_health_as_one_node(runs):
    """Each device's post-update health, computed in its bucket, is what the usual view
    ``firmware_update_device_health`` returns after the run, and equals the single node's;
    the release verdicts of ``firmware_update_health`` (and ``fleet.firmware.health()``)
    pooled over them equal the single node's."""
    single, dask = runs["single"], runs["dask"]
    for view in ("firmware_update_device_health", "firmware_update_health"):
        sql = f"select * from {view} order by all"
        x = single.frame(sql)
        assert_same(x, dask.frame(sql), view)
    assert {"healthy", "unhealthy"} <= set(x["verdict"])
    assert [r["verdict"] for r in single.firmware.health()] == [
        r["verdict"] for r in dask.firmware.health()]
    for view in ("firmware_campaign_progress", "firmware_device_status"):
        sql = f"select * from {view} order by all"
        assert_same(single.frame(sql), dask.frame(sql), view)


def test_firmware_health_is_read_from_the_workers_rows(runs):
    """After a distributed run the views read the per-device health the buckets computed
    (the coordinator scans no readings for it): with the store's readings gone they
    answer the same; a single-node firmware run computes from the readings again."""
    dask = runs["dask"]
    sql = "select * from firmware_update_health order by all"
    before = dask.frame(sql)
    stored = dask.frame("select * exclude (computed_at, params) from firmware_device_health "
                        "order by all")
    assert_same(dask.frame("select * from firmware_update_device_health order by all"),
                stored, "firmware_device_health")
    assert dask.query("select engine from firmware_health_source") == [{"engine": "dask"}]
    dask.con.execute("checkpoint")
    copy = runs["tmp"] / "no_readings.duckdb"
    shutil.copyfile(runs["tmp"] / "dask.duckdb", copy)
    with Fleet(str(copy)) as fleet:
        fleet.con.execute("delete from readings")
        fleet.con.execute("delete from readings_hourly_rollup")
        assert_same(before, fleet.frame(sql), "firmware_update_health without readings")
        fleet.firmware.analyze()                # one node: from the readings (none) again
        assert fleet.frame(sql)["n_with_battery"].sum() == 0
        assert fleet.query("select count(*) as n from firmware_device_health") == [{"n": 0}]


def test_views_and_findings_work_unchanged(runs):
    single, dask = runs["single"], runs["dask"]
    for view in ("power_findings", "calibration_findings", "battery_state",
                 "environment_findings", "firmware_findings"):
        sql = f"select * from {view} order by all"
        # observed_at: a finding without an hour of its own is stamped with computed_at
        cols = [c for c in single.frame(sql).columns
                if c not in ("computed_at", "opened_at", "as_of", "value")
                and not (c == "observed_at" and view == "environment_findings")]
        assert single.frame(sql)[cols].equals(dask.frame(sql)[cols]), view
    fresh = dask.query("select analysis, status from analysis_runs order by run_id")
    assert [(r["analysis"], r["status"]) for r in fresh] == [
        (a, "ok") for a in engine.COORDINATOR_ORDER]
    assert {r.analysis: r.n_findings for r in runs["run"].results} == {
        r.analysis: r.n_findings for r in runs["single_results"]}


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


def test_a_failing_bucket_of_firmware_and_environment(runs, capsys):
    """Firmware: the other buckets' device health lands and the verdicts are pooled over
    it; environment: its fleet step would change every zone's answer on part of the
    monitors, so the store keeps its earlier results. Both runs are reported failed with
    the bucket, and the other buckets' partitions are in the lake."""
    tmp, single = runs["tmp"], runs["single"]

    def ids(sql: str) -> set[str]:
        return {r[0] for r in single.con.execute(sql).fetchall()}

    monitors = ids("select device_id from environment_monitors")
    updated = ids("select device_id from firmware_update_device_health")
    bad = next(b for b in range(4) if any(device_bucket(d, 4) == b for d in monitors)
               and any(device_bucket(d, 4) == b for d in updated))
    store, lake = tmp / "broken_fe.duckdb", tmp / "lake_fe"
    single.con.execute("checkpoint")
    shutil.copyfile(tmp / "single.duckdb", store)
    with Fleet(str(store)) as fleet:
        fleet.export(lake, buckets=4)
        exposure = fleet.frame("select * from environment_device_exposure order by all")
    for part in (lake / "readings").glob(f"date=*/bucket={bad}/*.parquet"):
        part.write_bytes(b"not a parquet file")
    code = main(["--db", str(store), "analyze", "--engine", "dask", "--lake", str(lake),
                 "--only", "environment,firmware", "--workers", "1"])
    out, err = capsys.readouterr()
    assert code != 0
    lines = [ln for ln in out.splitlines() if "failed twice" in ln]
    # in the coordinator's order (engine.COORDINATOR_ORDER)
    assert [ln.split(":")[0] for ln in lines] == [f"environment bucket {bad} failed twice",
                                                  f"firmware bucket {bad} failed twice"]
    assert len(err.strip().splitlines()) == 1 and "analysis failed: environment, firmware" in err
    with Fleet(str(store)) as fleet:
        got = {r[0] for r in fleet.con.execute(
            "select device_id from firmware_device_health").fetchall()}
        # the store read no stored health before: its views keep reading the readings,
        # so the failed bucket's devices keep their health
        assert fleet.query("select count(*) as n from firmware_health_source") == [{"n": 0}]
        assert fleet.frame("select * from firmware_update_health order by all").equals(
            single.frame("select * from firmware_update_health order by all"))
        assert fleet.frame("select * from environment_device_exposure order by all").equals(
            exposure)
        runs_ = fleet.query("select analysis, status, error from analysis_runs "
                            "order by run_id desc limit 2")
    assert got == {d for d in updated if device_bucket(d, 4) != bad}
    # newest first: firmware ran after environment (engine.COORDINATOR_ORDER)
    assert [(r["analysis"], r["status"]) for r in runs_] == [("firmware", "failed"),
                                                              ("environment", "failed")]
    assert all(r["error"].startswith(f"1 of 4 buckets failed: {bad}: ") for r in runs_)
    for table in ("environment_monitor_hours", "firmware_device_health"):
        parts = {p.parent.name for p in (lake / "results" / table).glob("*/data.parquet")}
        assert parts == {f"bucket={b}" for b in range(4) if b != bad}, table


def test_rerun_is_idempotent(runs):
    """A second run over the same lake replaces every partition and table row: the same
    files, the same answers to the bit (the fleet fits do not depend on the order rows
    arrive in), nothing left over."""
    dask, lake = runs["dask"], runs["lake"]
    before = dask.frame("select * exclude (computed_at, params) from sensor_drift order by all")
    files = sorted(p.relative_to(lake) for p in (lake / "results").rglob("*") if p.is_file())
    stale = lake / "results" / "sensor_drift" / "bucket=31" / "data.parquet"  # more buckets
    stale.parent.mkdir()
    shutil.copyfile(lake / "results" / "sensor_drift" / "bucket=0" / "data.parquet", stale)
    others = {t: dask.frame(f"select * exclude (computed_at, params) from {t} order by all")
              for t in ("environment_device_exposure", "environment_effects",
                        "environment_model",
                        "firmware_device_health", "firmware_health_source")}
    run = run_dask(dask, lake, only="calibration,environment,firmware", workers=2,
                   processes=False)
    assert run.failures == []
    after = dask.frame("select * exclude (computed_at, params) from sensor_drift order by all")
    assert before.equals(after)
    for table, rows in others.items():       # bit-identical, not merely close
        again = dask.frame(f"select * exclude (computed_at, params) from {table} order by all")
        assert len(rows) and rows.equals(again), table
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
    with pytest.raises(InvalidParameter, match="domain must be one of power, calibration, "
                                               "environment, firmware"):
        analyze_bucket(lake, 0, "network", phase="stats")
    with pytest.raises(InvalidParameter, match="environment has no apply phase"):
        analyze_bucket(lake, 0, "environment", {})
    with pytest.raises(InvalidParameter, match="phase must be one of stats, apply"):
        analyze_bucket(lake, 0, "power", phase="fit")
    with pytest.raises(InvalidParameter, match="bucket must be within 0..15, got 16"):
        analyze_bucket(lake, 16, "power", phase="stats")
    with pytest.raises(InvalidParameter, match="power apply needs what the fleet step pooled"):
        analyze_bucket(lake, 0, "power")
    with pytest.raises(InvalidParameter, match="holds no _tsfleet_export.json"):
        analyze_bucket(tmp_path, 0, "power", phase="stats")
    with pytest.raises(InvalidParameter, match="the dask engine runs firmware, power, "
                                               "calibration, environment"):
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
