"""``fleet.calibration``: expected values, drift, faults, registry, schedule."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tsfleet.calibration.detect import DriftParams
from tsfleet.calibration.engine import Engine
from tsfleet.calibration.grid import load_grid
from tsfleet.calibration.schedule import batch_visits
from tsfleet.calibration.stability import FACTORS, stability_table
from tsfleet.calibration.verdict import VERDICTS, levels
from tsfleet.errors import InvalidParameter, UnknownDevice, did_you_mean
from tsfleet.results import write_result

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet

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

    def __init__(self, fleet: Fleet):
        self.fleet = fleet
        self.con = fleet.con
        self.timings: dict[str, float] = {}
        self.last_run: tuple | None = None
        self.tested_p: np.ndarray = np.zeros(0)

    # -- settings and registry -----------------------------------------------------
    def set_tolerance(self, device_type: str, tolerance_pct: float,
                      watch_pct: float | None = None,
                      check_valid_days: float | None = None) -> None:
        """Set the recalibration tolerance (% of scale, the ``recalibrate`` level) of one
        device type, its ``watch`` level (default half the tolerance) and how long a
        passed calibration check makes a sensor its small zone's anchor (default 14 days)."""
        if not 0 < tolerance_pct <= 100:
            raise InvalidParameter(f"tolerance_pct must be within 0..100, got {tolerance_pct} "
                                   f"for device type {device_type}")
        if watch_pct is not None and not 0 < watch_pct <= tolerance_pct:
            raise InvalidParameter(f"watch_pct must be within 0..tolerance_pct "
                                   f"({tolerance_pct}), got {watch_pct}")
        if check_valid_days is not None and not check_valid_days >= 0:
            raise InvalidParameter(f"check_valid_days must be >= 0, got {check_valid_days}")
        self.con.execute("insert or replace into calibration_tolerances (device_type, "
                         "tolerance_pct, watch_pct, check_valid_days) values (?, ?, ?, ?)",
                         [device_type, tolerance_pct, watch_pct, check_valid_days])

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
            sensors = [r["device_id"] for r in self.fleet.query(
                "select distinct device_id from calibration_sensors")]
            raise UnknownDevice(f"device {device_id!r} is not a sensor in devices (no measures)"
                                + did_you_mean(device_id, sensors))

    # -- analysis ------------------------------------------------------------------
    def detect(self, devices: Sequence[str] | None = None, *, fdr: float = 0.01,
               maxlags_h: int = 72, other_p: np.ndarray | None = None) -> int:
        """Test every sensor for drift and steps; write ``sensor_drift``,
        ``sensor_faults`` and ``sensor_outliers``. Returns the sensor_drift rows written.

        A run has two passes: the first finds faulty sensors and the sensors
        outside their zone's largest coherent set of drift estimates
        (:mod:`tsfleet.calibration.consensus`); they are left out of their
        peers' consensus (``calibration_peer_exclusions``), so that drifting
        neighbours do not drag the median, and the expectations are computed
        again without them before the tests run. A zone whose
        consensus cannot be identified reports its drifts as
        ``zone_ambiguous``. With ``devices`` only those sensors (and their peer
        groups, for the expectation) are recomputed and merged; the fleet-wide
        Benjamini-Hochberg control then uses the stored p-values of the other
        sensors, or ``other_p`` when given: the p-values of the sensors tested
        elsewhere, as a distributed run's fleet step collects them from every bucket
        (:mod:`tsfleet.scaleout`). The p-values this run tested (those entering the
        control) are left in ``tested_p``.
        """
        if not 0 < fdr < 1:
            raise InvalidParameter(f"fdr must be within 0..1, got {fdr}")
        _subset(devices)             # a single string is an error
        params = DriftParams(fdr=fdr, maxlags_h=maxlags_h)
        run = dict(fdr=fdr, maxlags_h=maxlags_h, devices=None if devices is None else len(devices))
        self.timings = {}
        t0 = time.perf_counter()
        sensors = self.fleet.frame("select * from calibration_sensors order by device_id")
        if devices is not None:   # the sensors asked for and their peer groups
            asked = sensors["device_id"].isin(list(devices))
            groups = sensors.loc[asked, ["zone", "metric"]].drop_duplicates()
            sensors = sensors.merge(groups, on=["zone", "metric"])
        grid = load_grid(self.con, sensors, subset=devices is not None)
        # faults of every sensor read (the peer groups too: a faulty peer does not vote)
        sql_faults = self.fleet.frame("select * from calibration_fault_checks where "
                                      "device_id in (select unnest(?))",
                                      [grid.device_ids.tolist()])
        clock = self.fleet.query("select max(l.observed_at) as t from device_latest l join "
                                 "calibration_sensors s using (device_id, metric)")[0]["t"]
        self.timings["load_s"] = time.perf_counter() - t0
        engine = Engine(grid, sql_faults, clock, params, self.timings)
        ids = grid.device_ids
        # first pass: everyone against one common median per group and hour
        res = engine.residuals(np.zeros(len(ids), bool), loo=False)
        con = engine.suspects(res)
        excluded = con.excluded
        if con.doubted.any():          # doubted references anchor no more
            grid.is_reference = grid.is_reference & ~con.doubted
        if devices is not None:
            self.con.execute("delete from calibration_peer_exclusions where device_id in "
                             "(select unnest(?))", [ids.tolist()])
        write_result(self.con, "calibration_peer_exclusions", dict(
            device_id=ids[excluded], verdict=con.why[excluded]), params=run,
            key=None if devices is None else ["device_id"])
        del res
        res = engine.residuals(excluded)     # the expectations tested: leave-one-out
        if devices is None:
            rows = np.arange(len(ids))
            rt, gf = engine.test(res, rows)
            out = engine.decide(res, rows, rt, gf, other_p, ambiguous=con.ambiguous,
                                doubted=con.doubted_by_peers, pair_refs=con.pair_refs)
        else:
            rows = np.flatnonzero(np.isin(ids, list(devices)))
            rt, gf = engine.test(res, rows)
            out = engine.decide(res, rows, rt, gf,
                                self._stored_p(devices) if other_p is None else other_p,
                                con.ambiguous, con.doubted_by_peers, con.pair_refs)
        self.tested_p = rt.p[rt.enough]
        self.last_run = (grid, res)    # the grid and residuals tested (benchmarks read them)
        t1 = time.perf_counter()
        frame = self._drift_frame(grid, out)
        key = ["device_id"] if devices is not None else None
        if devices is not None:
            self._delete_subset(["sensor_faults", "sensor_outliers"], devices)
        write_result(self.con, "sensor_faults", pa.Table.from_pandas(
            out.faults, preserve_index=False), params=run, key=key)
        write_result(self.con, "sensor_outliers", pa.Table.from_pandas(
            out.outliers, preserve_index=False), params=run, key=key)
        run["p_cutoff"] = out.result.p_cutoff
        n = write_result(self.con, "sensor_drift", pa.Table.from_pandas(
            frame, preserve_index=False), params=run, key=key)
        self.timings["write_s"] = time.perf_counter() - t1
        return n

    def _drift_frame(self, grid, out) -> pd.DataFrame:
        r, s = out.result, grid.sensors.iloc[out.rows].reset_index(drop=True)
        tested = r.n_hours > 0
        v = out.verdict
        frame = pd.DataFrame(dict(
            device_id=r.device_id, metric=s["metric"].to_numpy(object),
            device_type=s["device_type"].to_numpy(object), site=s["site"].to_numpy(object),
            zone=s["zone"].to_numpy(object), expected_source=r.expected_source,
            segment_start_at=r.segment_start_at, last_calibrated_at=s["last_calibrated_at"],
            n_hours=r.n_hours, drift_pct=r.drift_pct, offset_pct=r.offset_pct,
            drift_rate_pct_per_day=r.rate_pct_per_day, trend_t=r.trend_t, trend_p=r.trend_p,
            step_stat=r.step_stat, step_p=r.step_p,
            step_at=np.where(v == "step", r.step_at, np.datetime64("NaT")),
            step_pct=np.where(v == "step", r.step_pct, np.nan),
            p_value=r.p_value, q_value=r.q_value, method=METHOD, verdict=v, reason=out.reason,
            first_detectable_at=r.first_detectable_at,
            tolerance_pct=s["tolerance_pct"].to_numpy(float), crosses_tolerance_at=out.crossing,
            as_of=r.as_of, confidence=out.confidence, n_voters=out.n_voters))[tested]
        faulty = set(out.faults["device_id"])
        rest = self._without_residuals(grid, s[~tested], faulty, r.as_of)
        out_frame = pd.concat([frame, rest], ignore_index=True) if len(rest) else frame
        out_frame = self._failed_checks(out_frame)
        out_frame["level"] = levels(out_frame["verdict"].to_numpy(object),
                                    out_frame["drift_pct"].to_numpy(float),
                                    out_frame["tolerance_pct"].to_numpy(float))
        return out_frame.replace({np.nan: None})

    def _failed_checks(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A sensor whose latest calibration check found it off by the watch level or
        more and corrected nothing stays off: its drift since then adds to that error.
        Tested sensors whose verdict says less get the check's verdict (and reason)."""
        checks = self.fleet.frame(
            "select device_id, error_pct as check_pct, calibrated_at as checked_at "
            "from calibration_checks where is_latest and not is_adjustment "
            "and error_pct is not null")
        f = frame.merge(checks, on="device_id", how="left")
        total = f["check_pct"].fillna(0).to_numpy(float) + np.where(
            f["n_hours"].to_numpy(float) > 0, np.nan_to_num(f["drift_pct"].to_numpy(float)), 0)
        tol = f["tolerance_pct"].to_numpy(float)
        watch = tol / 2
        up = (f["check_pct"].notna().to_numpy() & (f["n_hours"].to_numpy(float) > 0)
              & f["verdict"].isin(["ok", "drifting", "zone_ambiguous"]).to_numpy()
              & (np.abs(total) >= watch))
        new = np.where(np.abs(total) >= tol, "needs_recalibration", "drifting")
        keep = (f["verdict"].to_numpy(object) == "drifting") & (new == "drifting")
        up &= ~keep
        f.loc[up, "verdict"] = new[up]
        f.loc[up, "drift_pct"] = total[up]
        f.loc[up, "reason"] = [f"its latest calibration check ({pd.Timestamp(t).date()}) found "
                               f"{c:+.2f}% and corrected nothing; {d:+.2f}% drift since"
                               for t, c, d in zip(f.loc[up, "checked_at"], f.loc[up, "check_pct"],
                                                  total[up] - f.loc[up, "check_pct"],
                                                  strict=True)]
        f.loc[up, "crosses_tolerance_at"] = np.where(
            new[up] == "needs_recalibration", f.loc[up, "checked_at"], pd.NaT)
        return f.drop(columns=["check_pct", "checked_at"])

    def _stored_p(self, devices: Sequence[str] | None) -> np.ndarray:
        if devices is None:
            return np.array([])
        rows = self.fleet.frame("select p_value from sensor_drift where p_value is not null and "
                                "device_id not in (select unnest(?))", [list(devices)])
        return rows["p_value"].to_numpy(float)

    def _delete_subset(self, tables: list[str], devices: Sequence[str]) -> None:
        for table in tables:  # names are ours, never user input
            self.con.execute(f"delete from {table} where device_id in (select unnest(?))",
                             [list(devices)])

    def _without_residuals(self, grid, rest: pd.DataFrame, faulty: set,
                           as_of) -> pd.DataFrame:
        """Sensors with no expectation: their calibration checks, else a verdict that
        says the true reason (a lone reference, readings in quarantine, no peers)."""
        if rest.empty:
            return pd.DataFrame()
        checks = self.fleet.frame("select device_id, calibrated_at, error_pct, is_adjustment "
                                  "from calibration_checks where is_latest")
        rest = rest.merge(checks, on="device_id", how="left")
        drift = np.where(rest["is_adjustment"].fillna(False).astype(bool), 0.0, rest["error_pct"])
        has = rest["calibrated_at"].notna().to_numpy()
        tol, watch = rest["tolerance_pct"].to_numpy(float), rest["watch_pct"].to_numpy(float)
        big = np.abs(np.nan_to_num(drift.astype(float)))
        ref = rest["is_anchor"].fillna(False).to_numpy(bool)
        verdict = np.select([rest["device_id"].isin(faulty), has & (big >= tol),
                             has & (big >= watch), has | ref], ["fault", "needs_recalibration",
                                                               "drifting", "ok"],
                            "no_expectation")
        why = self._blind_reasons(grid, rest)
        reason = np.where(ref, "reference instrument: it anchors its zone and is judged only "
                          "by a calibration check or another reference"
                          + np.where(has, ": latest calibration check", ""),
                          np.where(has, why + ": latest calibration check", why))
        return pd.DataFrame(dict(
            device_id=rest["device_id"], metric=rest["metric"], device_type=rest["device_type"],
            site=rest["site"], zone=rest["zone"],
            expected_source=np.where(has, "calibration_record", None),
            segment_start_at=rest["calibrated_at"], last_calibrated_at=rest["last_calibrated_at"],
            n_hours=0, drift_pct=np.where(has, drift, np.nan),
            method=np.where(has, "calibration_check", METHOD), verdict=verdict,
            reason=reason, tolerance_pct=tol,
            crosses_tolerance_at=np.where(verdict == "needs_recalibration",
                                          rest["calibrated_at"], pd.NaT),
            as_of=as_of, confidence=np.where(has, "medium", None), n_voters=0))

    def _blind_reasons(self, grid, rest: pd.DataFrame) -> np.ndarray:
        """Why each sensor of ``rest`` had no expectation, in words."""
        row = {d: i for i, d in enumerate(grid.device_ids)}
        n_read = np.isfinite(grid.value).sum(1)
        rows = np.array([row[d] for d in rest["device_id"]], np.int64)
        group = grid.group[rows]
        with_readings = np.bincount(grid.group, weights=n_read > 0,
                                    minlength=grid.group.max(initial=0) + 1)
        size = np.bincount(grid.group, minlength=grid.group.max(initial=0) + 1)
        q = self.fleet.frame("select device_id, reason, n_readings from calibration_quarantined "
                             "where device_id in (select unnest(?))",
                             [rest["device_id"].tolist()])
        quarantined = {(r.device_id): (r.reason, r.n_readings) for r in q.itertuples()
                       if r.reason == "unknown_metric"}
        out = []
        for k, r in enumerate(rest.itertuples()):
            others, seen = size[group[k]] - 1, with_readings[group[k]] - (n_read[rows[k]] > 0)
            if n_read[rows[k]] == 0:
                if r.device_id in quarantined:
                    out.append(f"its {quarantined[r.device_id][1]} readings of {r.metric} are in "
                               "quarantine (unknown_metric): declare the metric (ingest kind "
                               "'metrics' or fleet.metrics.add) to re-ingest them")
                elif not r.is_metric_declared:
                    out.append(f"it measures {r.metric}, which is not a declared metric")
                else:
                    out.append(f"no reading of {r.metric} since its last calibration")
            elif others == 0:
                out.append(f"the only {r.metric} sensor in zone {r.zone}: no peer, no "
                           "reference and no calibration check")
            elif seen == 0:
                out.append(f"its {others} peer(s) in zone {r.zone} have no readings of "
                           f"{r.metric} (none stored; see calibration_quarantined)")
            else:
                out.append(f"its {others} peer(s) in zone {r.zone} read {r.metric} at no hour "
                           "it does, and there is no reference or calibration check")
        return np.array(out, object)

    def schedule(self, horizon_days: float = 90, visit_window_days: float = 14) -> list[dict]:
        """Sensors at the ``recalibrate`` level, and at the ``watch`` level whose drift
        crosses tolerance within the horizon, batched by site visit (due at the crossing).

        Writes ``calibration_schedule`` and returns its rows in rank order.
        """
        if horizon_days <= 0 or visit_window_days < 0:
            raise InvalidParameter(f"horizon_days must be > 0 and visit_window_days >= 0, got "
                                   f"{horizon_days} and {visit_window_days}")
        due = self.fleet.frame(
            "select device_id, site, zone, metric, greatest(crosses_tolerance_at, "
            "least(as_of, crosses_tolerance_at)) as due_at, drift_pct, drift_rate_pct_per_day, "
            "verdict, as_of from sensor_drift where level is not null "
            "and crosses_tolerance_at is not null "
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
            "select d.device_id, case when d.level is not null or d.reason like "
            "'a significant trend%' then abs(d.drift_rate_pct_per_day) else 0 end "
            "as wear_pct_per_day, "
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

    def figures(self) -> dict[str, Any]:
        """The last run's key figures, one record: sensors checked, sensors per verdict
        (every verdict, 0 for none) and the exposure that wears drift fastest (p < 0.05;
        None when none does) with its drift rate per SD of that exposure, %/day.
        ``tsfleet calibration detect --format table|csv|json`` prints it."""
        return self._headline()[0]

    def summary(self) -> list[str]:
        """Headline lines read from the result tables (the sentences of :meth:`figures`)."""
        return self._headline()[1]

    def _headline(self) -> tuple[dict[str, Any], list[str]]:
        counts = {r["verdict"]: r["n"] for r in self.fleet.query(
            "select verdict, count(*) n from sensor_drift group by verdict")}
        worst = self.fleet.query("select factor, coef_per_sd, p_value from calibration_stability "
                                 "where p_value < 0.05 order by coef_per_sd desc limit 1")
        figures = {"sensors": sum(counts.values()),
                   **{v: counts.get(v, 0) for v in VERDICTS},
                   "wears_fastest_with": worst[0]["factor"] if worst else None,
                   "wear_pct_per_day_per_sd": worst[0]["coef_per_sd"] if worst else None}
        total = figures["sensors"]
        words = {"needs_recalibration": ("needs recalibration", "need recalibration"),
                 "drifting": ("drifting", "drifting"), "step": ("step", "steps"),
                 "zone_ambiguous": ("zone ambiguous", "zone ambiguous"),
                 "fault": ("fault", "faults"), "no_expectation": ("no expectation",
                                                                 "no expectation")}
        lines = [f"{total} sensor{'' if total == 1 else 's'} checked: " + ", ".join(
            f"{counts[v]} {words[v][counts[v] != 1]}" for v in words if counts.get(v))]
        # No schedule line here: recalibrations are dated and batched by the one
        # maintenance plan (tsfleet workorders / calibration schedule).
        if worst:
            lines.append(f"drift wears fastest with {worst[0]['factor']} "
                         f"(+{worst[0]['coef_per_sd']:.3f} %/day per SD)")
        return figures, lines


def _day(v: datetime | None) -> str:
    return v.date().isoformat() if v else "?"


def _subset(devices: Sequence[str] | None) -> tuple[str, list]:
    if devices is None:
        return "", []
    if isinstance(devices, str):
        raise InvalidParameter(f"devices must be a list of device ids, got the string {devices!r}")
    return "where device_id in (select unnest(?))", [list(devices)]
