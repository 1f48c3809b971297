"""One detect() run on the sensor grid: expectations, faults, tests, verdicts.

A run has two passes. The first, cheap one finds the sensors that must not
vote in their peers' consensus (:mod:`tsfleet.calibration.consensus`):
faulty (dead, out of range, stuck), or outside the zone's largest coherent
set of drift estimates; zones where no such set is identified are
ambiguous. The excluded sensors are stored in
``calibration_peer_exclusions``, every peer group (zone and metric) gets its
leave-one-out expectations without them, and the tests run once, on those
residuals. With ``devices``, only those sensors are tested (their peer
groups are read and go through both passes).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from tsfleet.calibration.consensus import Consensus, consensus, drift_noise
from tsfleet.calibration.detect import (
    DriftParams,
    DriftResult,
    RowTests,
    drift_levels,
    finish,
    row_tests,
)
from tsfleet.calibration.expect import PEERS, REFERENCE, SOURCES, Residuals, expectations
from tsfleet.calibration.faults import GridFaults, grid_faults
from tsfleet.calibration.grid import SensorGrid
from tsfleet.calibration.verdict import crossing_dates, verdicts

THREADS = 2            # the design machine's cores; numpy releases the GIL
BLOCK_ROWS = 2500      # sensors per block (bounded temporaries)


@dataclass
class Outcome:
    """What a run found about the tested rows of the grid."""

    rows: np.ndarray          # grid rows tested
    result: DriftResult       # datetimes, per tested row
    verdict: np.ndarray
    reason: np.ndarray
    crossing: np.ndarray
    faults: pd.DataFrame      # sensor_faults rows of the tested sensors
    outliers: pd.DataFrame    # sensor_outliers rows of the tested sensors
    confidence: np.ndarray    # 'high' | 'medium' | 'low' | None
    n_voters: np.ndarray      # who judged it at its last hour (anchors or peers)


class Engine:
    def __init__(self, grid: SensorGrid, sql_faults: pd.DataFrame, as_of_clock,
                 params: DriftParams, timings: dict[str, float]):
        self.grid = grid
        self.sql_faults = sql_faults
        self.clock = as_of_clock
        self.params = params
        self.timings = timings
        s = grid.sensors
        self.watch = s["watch_pct"].to_numpy(float)
        self.tol = s["tolerance_pct"].to_numpy(float)

    def _lap(self, name: str, t0: float) -> float:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - t0
        return now

    def residuals(self, excluded: np.ndarray, rows: np.ndarray | None = None,
                  loo: bool = True) -> Residuals:
        t = time.perf_counter()
        res = expectations(self.grid, excluded, rows, loo)
        self._lap("expected_s", t)
        return res

    def test(self, res: Residuals, rows: np.ndarray) -> tuple[RowTests, GridFaults]:
        """Row tests and grid faults of ``rows``, in blocks of rows on two threads."""
        t = time.perf_counter()
        blocks = np.array_split(rows, max(1, int(np.ceil(len(rows) / BLOCK_ROWS))))
        with ThreadPoolExecutor(THREADS) as pool:
            rts = list(pool.map(lambda b: row_tests(res.x[b], self.watch[b], self.params),
                                blocks))
            t = self._lap("tests_s", t)
            gfs = list(pool.map(lambda b: grid_faults(self.grid.value[b], res.expected[b],
                                                      res.x[b], res.scale[b]), blocks))
        self._lap("faults_s", t)
        return _concat(rts), _concat_faults(gfs, [len(b) for b in blocks])

    def suspects(self, res: Residuals) -> Consensus:
        """First pass: who votes in each zone's consensus, and which zones are
        ambiguous (:mod:`tsfleet.calibration.consensus`)."""
        t = time.perf_counter()
        drift, enough = drift_levels(res.x, self.params)
        gf = grid_faults(self.grid.value, res.expected, res.x, res.scale, spikes=False)
        # Out-of-range readings alone do not keep a sensor from voting: near a
        # physical limit (humidity at 100 %RH) a whole zone's sensors have some.
        hard = self.sql_faults.loc[self.sql_faults["fault"] != "out_of_range", "device_id"]
        fault = gf.stuck | np.isin(self.grid.device_ids, hard.to_numpy(object))
        g = self.grid
        anchored = np.bincount(g.group, weights=g.is_reference,
                               minlength=g.group.max(initial=0) + 1)[g.group] > 0
        if "is_check_failed" in g.sensors:   # a failed, uncorrected check: off, not voting
            fault = fault | g.sensors["is_check_failed"].fillna(False).to_numpy(bool)
        out = consensus(g.sensors, np.where(enough, drift, np.nan), fault, self.watch, anchored,
                        drift_noise(res.x, self.params.k_hourly,
                                    int(g.t0.astype("datetime64[h]").astype(np.int64))))
        self._lap("first_pass_s", t)
        return out

    def decide(self, res: Residuals, rows: np.ndarray, rt: RowTests, gf: GridFaults,
               other_p: np.ndarray | None = None,
               ambiguous: np.ndarray | None = None,
               doubted: np.ndarray | None = None,
               pair_refs: np.ndarray | None = None) -> Outcome:
        """Verdicts of ``rows`` (with their row tests ``rt`` and faults ``gf``)."""
        g, s = self.grid, self.grid.sensors.iloc[rows]
        faults, outliers = self._fault_rows(rows, res, gf)
        r = finish(rt, self.params, other_p)
        last = np.maximum(rt.last_col, 0)
        r = replace(
            r, device_id=g.device_ids[rows],
            expected_source=SOURCES[res.source[rows, last]],
            segment_start_at=g.hour_at(r.segment_start_at), step_at=g.hour_at(r.step_at),
            first_detectable_at=g.hour_at(r.first_detectable_at),
            as_of=g.hour_at(np.array([g.n_hours - 1]))[0])
        tol, watch = self.tol[rows], self.watch[rows]
        # Readings beyond the physical range of a sensor that drifts there are
        # the drift's symptom: its verdict stays the drift's (the fault is listed).
        hard = faults.loc[faults["fault"] != "out_of_range", "device_id"].to_numpy(object)
        oor = faults.loc[faults["fault"] == "out_of_range", "device_id"].to_numpy(object)
        drifts = r.significant & (np.abs(np.nan_to_num(r.drift_pct)) >= watch)
        faulty = np.isin(r.device_id, hard) | (np.isin(r.device_id, oor) & ~drifts)
        verdict = verdicts(r, tol, watch, faulty)
        recent = ((verdict == "no_expectation") & s["last_calibrated_at"].notna().to_numpy()
                  & (r.n_hours > 0))
        verdict[recent] = "ok"   # just calibrated: too little data since to test
        minor = verdict == "watch"
        verdict[minor] = "ok"    # significant, but below the watch level
        by_peers = res.source[rows, last] == PEERS
        amb = (np.zeros(len(rows), bool) if ambiguous is None else ambiguous[rows]) & by_peers
        lone_ref = np.zeros(len(rows), bool) if doubted is None else doubted[rows]
        two = ((np.zeros(len(rows), bool) if pair_refs is None else pair_refs[rows])
               & (res.source[rows, last] == REFERENCE))
        unsure = ((amb | lone_ref | two)
                  & np.isin(verdict, ["drifting", "step", "needs_recalibration"]))
        verdict[unsure] = "zone_ambiguous"
        kinds = faults.groupby("device_id")["fault"].agg(lambda f: ",".join(sorted(f)))
        n_peer = res.n_peers[rows, last].astype(int)
        reason = np.select(
            [verdict == "fault", verdict == "no_expectation", recent, unsure, minor,
             np.isin(r.device_id, oor) & ~faulty],
            [pd.Series(r.device_id).map(kinds).to_numpy(object),
             np.array([f"only {k} hours with an expectation" for k in r.n_hours], object),
             np.array([f"calibrated recently: {k} hours since, too few to test"
                       for k in r.n_hours], object),
             np.where(two, np.array([
                 f"reference instrument {d:+.2f}% away from the zone's other reference, and "
                 "no consensus of 3+ peers sides with either: a calibration check tells"
                 for d in r.drift_pct], object), np.where(lone_ref,
                      np.array([f"reference instrument {d:+.2f}% away from the consensus of "
                                f"its {k} peers, which agree with each other: the reference or "
                                "all of them drifted; a calibration check tells"
                                for d, k in zip(r.drift_pct, n_peer, strict=True)], object),
                      np.array([f"drifts {d:+.2f}% against {k} peer(s), but no reference, "
                                "valid calibration check or majority of its zone agrees: "
                                "which sensors drift cannot be told from a change the zone "
                                "shares" for d, k in zip(r.drift_pct, n_peer, strict=True)],
                               object))),
             np.array([f"a significant trend of {d:+.2f}%, below the watch level"
                       for d in np.nan_to_num(r.drift_pct)], object),
             "drifted beyond the physical range: out_of_range readings rejected"],
            None).astype(object)
        confidence = np.select(
            [r.n_hours == 0, res.source[rows, last] == REFERENCE, n_peer >= 3, n_peer == 2,
             n_peer == 1], [None, "high", "high", "medium", "low"], None).astype(object)
        confidence[np.isin(verdict, ["fault", "no_expectation"])] = None
        return Outcome(rows, r, verdict, reason, crossing_dates(r, verdict, tol), faults,
                       outliers, confidence, n_peer)

    def _fault_rows(self, rows: np.ndarray, res: Residuals, gf: GridFaults):
        g = self.grid
        s = g.sensors.iloc[rows].reset_index(drop=True)
        ids = set(s["device_id"])
        sql = self.sql_faults[self.sql_faults["device_id"].isin(ids)]
        st = np.flatnonzero(gf.stuck)
        stuck = pd.DataFrame(dict(
            device_id=s["device_id"].to_numpy(object)[st], fault="stuck",
            since_at=g.hour_at(gf.stuck_since[st]), value=gf.stuck_n[st].astype(float),
            detail=[f"reads {v:g} for {n} readings in a row since {pd.Timestamp(t)}"
                    for v, n, t in zip(gf.stuck_value[st], gf.stuck_n[st],
                                       g.hour_at(gf.stuck_since[st]), strict=True)]))
        sp = np.flatnonzero(gf.n_spikes >= 3)
        spikes = pd.DataFrame(dict(
            device_id=s["device_id"].to_numpy(object)[sp], fault="spikes",
            since_at=g.hour_at(gf.first_spike[sp]), value=gf.n_spikes[sp].astype(float),
            detail=[f"{n} isolated spikes against its expectation since {pd.Timestamp(t)}"
                    for n, t in zip(gf.n_spikes[sp], g.hour_at(gf.first_spike[sp]),
                                    strict=True)]))
        meta = s[["device_id", "metric", "site", "zone"]]
        grid_rows = pd.concat([stuck, spikes], ignore_index=True).merge(meta, on="device_id")
        grid_rows["as_of"] = self.clock
        faults = pd.concat([sql, grid_rows[sql.columns]], ignore_index=True)
        faults["since_at"] = pd.to_datetime(faults["since_at"])
        faults["as_of"] = pd.to_datetime(faults["as_of"])
        gr = rows[gf.spike_row]
        outliers = pd.DataFrame(dict(
            device_id=g.device_ids[gr], metric=g.sensors["metric"].to_numpy(object)[gr],
            hour_at=g.hour_at(gf.spike_col), value=g.value[gr, gf.spike_col],
            expected=res.expected[gr, gf.spike_col], residual_pct=res.x[gr, gf.spike_col],
            robust_z=gf.spike_z))
        return faults, outliers


def _concat(parts: list[RowTests]) -> RowTests:
    vals = {f.name: (np.concatenate([getattr(p, f.name) for p in parts])
                     if isinstance(getattr(parts[0], f.name), np.ndarray)
                     else getattr(parts[0], f.name)) for f in fields(RowTests)}
    return RowTests(**vals)


def _concat_faults(parts: list[GridFaults], sizes: list[int]) -> GridFaults:
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    cat = {f.name: np.concatenate([getattr(p, f.name) for p in parts])
           for f in fields(GridFaults)}
    cat["spike_row"] = np.concatenate([p.spike_row + o for p, o in zip(parts, offsets,
                                                                       strict=True)])
    return GridFaults(**cat)
