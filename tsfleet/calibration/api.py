"""``fleet.calibration``: expected values, drift, faults, registry, schedule."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from tsfleet.calibration.detect import DriftParams, detect_drift
from tsfleet.calibration.schedule import batch_visits
from tsfleet.calibration.series import grid_from_arrow
from tsfleet.calibration.stability import FACTORS, stability_table
from tsfleet.calibration.verdict import crossing_dates, verdicts
from tsfleet.errors import InvalidParameter, UnknownDevice
from tsfleet.results import write_result

METHOD = "ols_newey_west_trend+cusum_step, bh_fdr"


class Calibration:
    """Sensor quality for a :class:`~tsfleet.fleet.Fleet`.

    >>> from tsfleet.simulate import SimConfig, simulated_fleet
    >>> fleet = simulated_fleet(SimConfig(n_devices=60, days=20, seed=2))
    >>> fleet.calibration.detect() > 0
    True
    >>> sorted({r["verdict"] for r in fleet.query("select verdict from sensor_drift")}) != []
    True
    """

    def __init__(self, fleet):
        self.fleet = fleet
        self.con = fleet.con
        self.timings: dict[str, float] = {}

    # -- settings and registry -----------------------------------------------------
    def set_tolerance(self, device_type: str, tolerance_pct: float,
                      watch_pct: float | None = None) -> None:
        """Set the recalibration tolerance (% of scale) of one device type."""
        if not 0 < tolerance_pct <= 100:
            raise InvalidParameter(f"tolerance_pct must be within 0..100, got {tolerance_pct} "
                                   f"for device type {device_type}")
        if watch_pct is not None and not 0 < watch_pct <= tolerance_pct:
            raise InvalidParameter(f"watch_pct must be within 0..tolerance_pct "
                                   f"({tolerance_pct}), got {watch_pct}")
        self.con.execute("insert or replace into calibration_tolerances values (?, ?, ?)",
                         [device_type, tolerance_pct, watch_pct])

    def history(self, device_id: str) -> list[dict]:
        """The calibration records of one sensor, oldest first, with the error found."""
        self._known(device_id)
        return self.fleet.query("select * from calibration_checks where device_id = ? "
                                "order by calibrated_at", [device_id])

    def expected(self, device_id: str) -> list[dict]:
        """Hour by hour: what the sensor read, what it should have, and from which source."""
        self._known(device_id)
        return self.fleet.query(
            "select hour_at, value, expected, expected_source, n_peers from calibration_expected "
            "where device_id = ? order by hour_at", [device_id])

    def _known(self, device_id: str) -> None:
        if not self.fleet.query("select 1 from calibration_sensors where device_id = ?",
                                [device_id]):
            raise UnknownDevice(f"device {device_id!r} is not a sensor in devices (no measures)")

    # -- analysis ------------------------------------------------------------------
    def faults(self, devices: Sequence[str] | None = None) -> int:
        """Write ``sensor_faults`` and ``sensor_outliers``; returns the number of faults."""
        where, params = _subset(devices)
        t0 = time.perf_counter()
        faults = self.fleet.con.sql(f"select * from calibration_fault_checks {where}",
                                    params=params or None).to_arrow_table()
        spikes = self.fleet.con.sql(
            "select device_id, metric, hour_at, value, expected, residual_pct, robust_z "
            f"from calibration_spikes {where}", params=params or None).to_arrow_table()
        key = ["device_id"] if devices is not None else None
        run = {"devices": None if devices is None else len(devices)}
        if devices is not None:
            self._delete_subset(["sensor_faults", "sensor_outliers"], devices)
        write_result(self.con, "sensor_faults", faults, params=run, key=key)
        write_result(self.con, "sensor_outliers", spikes, params=run, key=key)
        self.timings["faults_s"] = time.perf_counter() - t0
        return faults.num_rows

    def _delete_subset(self, tables: list[str], devices: Sequence[str]) -> None:
        for table in tables:  # names are ours, never user input
            self.con.execute(f"delete from {table} where device_id in (select unnest(?))",
                             [list(devices)])

    def detect(self, devices: Sequence[str] | None = None, *, fdr: float = 0.01,
               maxlags_h: int = 72) -> int:
        """Test every sensor for drift and steps; write ``sensor_drift``. Returns rows written.

        A full run has two passes: the first finds drifting, stepped and faulty
        sensors, which are then left out of their peers' consensus
        (``calibration_peer_exclusions``) for the second, so that drifting
        neighbours do not drag the median. With ``devices`` only those sensors
        are recomputed (one pass, with the stored exclusions) and merged; the
        fleet-wide Benjamini-Hochberg control then uses the stored p-values of
        the other sensors.
        """
        if not 0 < fdr < 1:
            raise InvalidParameter(f"fdr must be within 0..1, got {fdr}")
        params = DriftParams(fdr=fdr, maxlags_h=maxlags_h)
        run = dict(fdr=fdr, maxlags_h=maxlags_h, devices=None if devices is None else len(devices))
        if devices is None:
            self.con.execute("delete from calibration_peer_exclusions")
            first = self._pass(None, params, run)
            flagged = _exclusions(first, self.fleet.frame(
                "select zone, metric, count(*) n from calibration_sensors group by all"))
            write_result(self.con, "calibration_peer_exclusions",
                         pa.Table.from_pandas(flagged[["device_id", "verdict"]],
                                              preserve_index=False), params=run)
            self.timings = {f"pass1_{k}": v for k, v in self.timings.items()}
        out = self._pass(devices, params, run)
        table = pa.Table.from_pandas(out, preserve_index=False)
        return write_result(self.con, "sensor_drift", table, params=run,
                            key=["device_id"] if devices is not None else None)

    def _pass(self, devices: Sequence[str] | None, params: DriftParams,
              run: dict) -> pd.DataFrame:
        """Residuals, faults and tests of (a subset of) the fleet -> sensor_drift rows."""
        where, qp = _subset(devices)
        t0 = time.perf_counter()
        resid = self.fleet.con.sql(
            "select device_id, metric, site, zone, hour_at, value, expected, expected_source, "
            f"n_peers, scale, residual_pct from calibration_residuals {where}",
            params=qp or None).to_arrow_table()
        self.timings["residuals_s"] = time.perf_counter() - t0
        if devices is not None:
            self._delete_subset(["sensor_residuals"], devices)
        write_result(self.con, "sensor_residuals", resid, params=run,
                     key=["device_id"] if devices is not None else None)
        self.faults(devices)
        sensors = self.fleet.frame(f"select * from calibration_sensors {where} order by device_id",
                                   qp)
        t1 = time.perf_counter()
        grid = grid_from_arrow(resid)
        del resid
        meta = sensors.set_index("device_id").reindex(grid.device_ids)
        others = self._stored_p(devices)
        r = detect_drift(grid, meta["watch_pct"].to_numpy(float), params, others)
        faulty = set(self.fleet.frame("select distinct device_id from sensor_faults")["device_id"])
        fault = np.isin(grid.device_ids, list(faulty))
        tol = meta["tolerance_pct"].to_numpy(float)
        verdict = verdicts(r, tol, meta["watch_pct"].to_numpy(float), fault)
        recent = (verdict == "no_expectation") & meta["last_calibrated_at"].notna().to_numpy() \
            & (r.n_hours > 0)
        verdict[recent] = "ok"   # just calibrated: too little data since to test, nothing to fix
        crossing = crossing_dates(r, verdict, tol)
        fault_kinds = self.fleet.frame("select device_id, string_agg(fault, ',' order by fault) f "
                                       "from sensor_faults group by device_id"
                                       ).set_index("device_id")["f"]
        reason = np.where(verdict == "fault",
                          pd.Series(grid.device_ids).map(fault_kinds).to_numpy(object),
                          np.where(verdict == "no_expectation",
                                   [f"only {k} hours with an expectation" for k in r.n_hours],
                                   np.where(recent, [f"calibrated recently: {k} hours since, too "
                                                     "few to test" for k in r.n_hours], None)))
        out = pd.DataFrame(dict(
            device_id=grid.device_ids, metric=meta["metric"].to_numpy(object),
            device_type=meta["device_type"].to_numpy(object), site=meta["site"].to_numpy(object),
            zone=meta["zone"].to_numpy(object), expected_source=r.expected_source,
            segment_start_at=r.segment_start_at, last_calibrated_at=meta["last_calibrated_at"],
            n_hours=r.n_hours, drift_pct=r.drift_pct, offset_pct=r.offset_pct,
            drift_rate_pct_per_day=r.rate_pct_per_day, trend_t=r.trend_t, trend_p=r.trend_p,
            step_stat=r.step_stat, step_p=r.step_p,
            step_at=np.where(verdict == "step", r.step_at, np.datetime64("NaT")),
            step_pct=np.where(verdict == "step", r.step_pct, np.nan),
            p_value=r.p_value, q_value=r.q_value, method=METHOD, verdict=verdict, reason=reason,
            first_detectable_at=r.first_detectable_at, tolerance_pct=tol,
            crosses_tolerance_at=crossing, as_of=r.as_of))
        out = pd.concat([out, self._without_residuals(sensors, set(grid.device_ids), faulty,
                                                      r.as_of)], ignore_index=True)
        out = out.replace({np.nan: None})
        self.timings["tests_s"] = time.perf_counter() - t1
        run["p_cutoff"] = r.p_cutoff
        return out

    def _stored_p(self, devices: Sequence[str] | None) -> np.ndarray:
        if devices is None:
            return np.array([])
        rows = self.fleet.frame("select p_value from sensor_drift where p_value is not null and "
                                "device_id not in (select unnest(?))", [list(devices)])
        return rows["p_value"].to_numpy(float)

    def _without_residuals(self, sensors: pd.DataFrame, tested: set, faulty: set,
                           as_of) -> pd.DataFrame:
        """Sensors with no expectation: their calibration checks, else 'no_expectation'."""
        rest = sensors[~sensors["device_id"].isin(tested)]
        if rest.empty:
            return pd.DataFrame()
        checks = self.fleet.frame("select device_id, calibrated_at, error_pct, is_adjustment "
                                  "from calibration_checks where is_latest")
        rest = rest.merge(checks, on="device_id", how="left")
        drift = np.where(rest["is_adjustment"].fillna(False).astype(bool), 0.0, rest["error_pct"])
        has = rest["calibrated_at"].notna().to_numpy()
        tol, watch = rest["tolerance_pct"].to_numpy(float), rest["watch_pct"].to_numpy(float)
        big = np.abs(np.nan_to_num(drift.astype(float)))
        verdict = np.select([rest["device_id"].isin(faulty), ~has, big >= tol, big >= watch],
                            ["fault", "no_expectation", "needs_recalibration", "drifting"], "ok")
        return pd.DataFrame(dict(
            device_id=rest["device_id"], metric=rest["metric"], device_type=rest["device_type"],
            site=rest["site"], zone=rest["zone"],
            expected_source=np.where(has, "calibration_record", None),
            segment_start_at=rest["calibrated_at"], last_calibrated_at=rest["last_calibrated_at"],
            n_hours=0, drift_pct=np.where(has, drift, np.nan),
            method=np.where(has, "calibration_check", METHOD), verdict=verdict,
            reason=np.where(has, "no reference and fewer than 3 peers: latest calibration check",
                            "no reference, fewer than 3 peers and no calibration check"),
            tolerance_pct=tol,
            crosses_tolerance_at=np.where(verdict == "needs_recalibration",
                                          rest["calibrated_at"], pd.NaT),
            as_of=as_of))

    def schedule(self, horizon_days: float = 90, visit_window_days: float = 14) -> list[dict]:
        """Sensors whose drift crosses tolerance within the horizon, batched by site visit.

        Writes ``calibration_schedule`` and returns its rows in rank order.
        """
        if horizon_days <= 0 or visit_window_days < 0:
            raise InvalidParameter(f"horizon_days must be > 0 and visit_window_days >= 0, got "
                                   f"{horizon_days} and {visit_window_days}")
        due = self.fleet.frame(
            "select device_id, site, zone, metric, greatest(crosses_tolerance_at, "
            "least(as_of, crosses_tolerance_at)) as due_at, drift_pct, drift_rate_pct_per_day, "
            "verdict, as_of from sensor_drift where crosses_tolerance_at is not null "
            "and crosses_tolerance_at <= as_of + to_days(cast(? as integer))",
            [int(np.ceil(horizon_days))])
        plan = batch_visits(due.drop(columns="as_of"), visit_window_days)
        write_result(self.con, "calibration_schedule", pa.Table.from_pandas(
            plan, preserve_index=False), params=dict(horizon_days=horizon_days,
                                                     visit_window_days=visit_window_days))
        return self.fleet.query("select * exclude (computed_at, params) from calibration_schedule "
                                "order by rank")

    def stability(self) -> list[dict]:
        """Drift rate against zone exposure; writes ``calibration_stability``."""
        df = self.fleet.frame(
            "select d.device_id, case when d.verdict in ('drifting', 'needs_recalibration', "
            "'watch') then abs(d.drift_rate_pct_per_day) else 0 end as wear_pct_per_day, "
            f"{', '.join('e.' + f for f in FACTORS)} from sensor_drift d "
            "join calibration_exposure e on e.zone = d.zone "
            "where d.verdict not in ('fault', 'no_expectation')")
        table = stability_table(df)
        write_result(self.con, "calibration_stability", pa.Table.from_pandas(
            table, preserve_index=False), params={})
        return table.to_dict("records")

    def analyze(self, devices: Sequence[str] | None = None) -> None:
        """Faults, drift, stability and the schedule (the demo's and service's entry)."""
        self.detect(devices)
        self.stability()
        self.schedule()

    def summary(self) -> list[str]:
        """Headline lines read from the result tables."""
        counts = {r["verdict"]: r["n"] for r in self.fleet.query(
            "select verdict, count(*) n from sensor_drift group by verdict")}
        total = sum(counts.values())
        lines = [f"{total} sensors checked: " + ", ".join(
            f"{counts[v]} {v.replace('_', ' ')}" for v in
            ("needs_recalibration", "drifting", "step", "watch", "fault", "no_expectation")
            if counts.get(v))]
        first = self.fleet.query("select device_id, due_at, visit_id from calibration_schedule "
                                 "order by rank limit 1")
        n_visits = self.fleet.query("select count(distinct visit_id) n, count(*) m "
                                    "from calibration_schedule")[0]
        if first:
            lines.append(f"{n_visits['m']} sensors to recalibrate in {n_visits['n']} site visits; "
                         f"first: {first[0]['device_id']} due {_day(first[0]['due_at'])}")
        worst = self.fleet.query("select factor, coef_per_sd, p_value from calibration_stability "
                                 "where p_value < 0.05 order by coef_per_sd desc limit 1")
        if worst:
            lines.append(f"drift wears fastest with {worst[0]['factor']} "
                         f"(+{worst[0]['coef_per_sd']:.3f} %/day per SD)")
        return lines


def _exclusions(first: pd.DataFrame, sizes: pd.DataFrame, min_left: int = 4) -> pd.DataFrame:
    """Sensors to leave out of the consensus: flagged in the first pass, in zones
    and metrics that keep at least ``min_left`` unflagged sensors (3 peers and
    the sensor itself); elsewhere the consensus stays as it was."""
    flagged = first[first["verdict"].isin(["drifting", "needs_recalibration", "step", "fault"])]
    per = flagged.groupby(["zone", "metric"]).size().rename("n_flagged").reset_index()
    ok = per.merge(sizes, on=["zone", "metric"])
    ok = ok[ok["n"] - ok["n_flagged"] >= min_left]
    return flagged.merge(ok[["zone", "metric"]], on=["zone", "metric"])


def _day(v: datetime | None) -> str:
    return v.date().isoformat() if v else "?"


def _subset(devices: Sequence[str] | None) -> tuple[str, list]:
    if devices is None:
        return "", []
    if isinstance(devices, str):
        raise InvalidParameter(f"devices must be a list of device ids, got the string {devices!r}")
    return "where device_id in (select unnest(?))", [list(devices)]
