"""``fleet.environment``: the environment domain's public API."""

from __future__ import annotations

import os
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import pandas as pd
from threadpoolctl import threadpool_limits

from tsfleet.environment import queries, zone_env
from tsfleet.environment.cells import model_cells
from tsfleet.environment.correlation import all_effects
from tsfleet.environment.envelope import ALL_TYPES, envelopes
from tsfleet.environment.limits import COLUMNS as LIMIT_COLUMNS
from tsfleet.environment.limits import limits
from tsfleet.environment.model import FACTORS, Block, Fit, exposure_ranges, fit_outcome
from tsfleet.environment.recommend import recommend
from tsfleet.environment.stress import device_stress
from tsfleet.errors import InvalidParameter, UnknownDevice, check_count
from tsfleet.results import now_utc, write_result
from tsfleet.words import plural

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet

OUTCOMES = ("failure", "reboot")
#: Why a monitor's hours are left out (environment_monitor_faults.fault).
MONITOR_FAULTS = ("dead", "out_of_range", "stuck")


class Environment:
    """Environmental exposure, its effects on failures and performance,
    operating envelopes, stress and recommendations.

    >>> from tsfleet.simulate import SimConfig, simulated_fleet
    >>> fleet = simulated_fleet(SimConfig(n_devices=200, days=30, seed=2))
    >>> fleet.environment.analyze()     # (60 devices have too few failures for a model)
    >>> len(fleet.environment.summary()) >= 2
    True
    """

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.con = fleet.con
        #: what ``analyze(threads=None)`` uses (None: one per core with ``map``); serve's
        #: analysis thread sets 1, so that ingest keeps a core (tsfleet.service.worker)
        self.threads: int | None = None

    # -- analysis ------------------------------------------------------------------
    def analyze(self, *, max_gap_hours: int = 4, dead_after_hours: int = 24,
                p_fail_threshold: float = 0.35, ea_ev: float = 0.7,
                cycle_swing_c: float = 8.0, map_fn=map, threads: int | None = None) -> None:
        """Run the full analysis and write the environment_* result tables.

        ``max_gap_hours``: the longest run of hours without monitor data that is
        interpolated; longer gaps stay gaps. ``p_fail_threshold``: a device whose
        predicted 30-day failure probability reaches it becomes a finding.
        ``map_fn``: how the models of the outcomes (independent fits on the same cells)
        are run: ``map``, or an engine's map that runs them apart (a distributed run's
        fleet step fits them on the workers, :mod:`tsfleet.scaleout.plan`).
        ``threads``: how many independent refits within a model run side by side (default:
        :attr:`threads`, else one per core with ``map`` and one with an engine's map, as on
        a worker); the results do not depend on it.
        """
        if not (0 <= max_gap_hours <= 168):
            raise InvalidParameter(f"max_gap_hours must be within 0..168, got {max_gap_hours}")
        if not (0 < p_fail_threshold < 1):
            raise InvalidParameter(f"p_fail_threshold must be within (0, 1), got "
                                   f"{p_fail_threshold}")
        if threads is None:
            threads = self.threads
        if threads is None:
            threads = len(os.sched_getaffinity(0)) if map_fn is map else 1
        if threads < 1:
            raise InvalidParameter(f"threads must be >= 1, got {threads}")
        params = dict(max_gap_hours=max_gap_hours, dead_after_hours=dead_after_hours,
                      p_fail_threshold=p_fail_threshold, ea_ev=ea_ev,
                      cycle_swing_c=cycle_swing_c)
        # Small matrices: one BLAS thread is much faster than several on a busy machine.
        with threadpool_limits(1):
            self._analyze(params, map_fn, threads)

    def _analyze(self, params: dict, map_fn=map, threads: int = 1) -> None:
        max_gap_hours, dead_after_hours = params["max_gap_hours"], params["dead_after_hours"]
        p_fail_threshold, ea_ev = params["p_fail_threshold"], params["ea_ev"]
        cycle_swing_c = params["cycle_swing_c"]
        con = self.con
        stamp = now_utc()
        lap = self._stopwatch()
        declared = queries.run(con, "declared_factors").to_pylist()
        factors = [*FACTORS, *(d["metric"] for d in declared)]
        window, zone_hours = zone_env.build(
            con, max_gap_hours=max_gap_hours, dead_after_hours=dead_after_hours,
            params=params, declared=tuple(d["metric"] for d in declared))
        lap("zone environment")
        start = window.start if window else stamp
        end = window.end if window else stamp
        p = {"start": start, "end": end}
        hours = window.hours if window else 0.0

        exposure = queries.run(con, "device_exposure", {"start": start, "ea_ev": ea_ev,
                                                        "cycle_swing_c": cycle_swing_c}
                               ).to_pandas()
        cells, zone_parts = model_cells(con, zone_hours, factors, start, end, with_zones=True)
        #: the exposure cells the models were fitted on (for inspection and the bench)
        self.cells = cells
        #: per cell and zone, the zone's device-hours and events (cells pool zones)
        self.zone_parts = zone_parts
        lap("exposure and cells")
        units = {d["metric"]: d["unit"] for d in declared}
        labels = {d["metric"]: d["quantity"] for d in declared}
        fits = (list(map_fn(partial(fit_outcome, cells, factors=tuple(factors), units=units,
                                    labels=labels, zone_parts=zone_parts, threads=threads),
                                OUTCOMES))
                if len(cells)
                else [Fit(o, reason="no environment data") for o in OUTCOMES])
        env = envelopes(cells, factors) if len(cells) else pd.DataFrame(
            columns=["device_type", "factor", "band_low", "band_high", "status"])
        write_result(con, "environment_envelopes", env, params=params, computed_at=stamp)
        self._write_model(fits, params, stamp)
        lap("models and envelopes")

        fail_fit = fits[0] if fits[0].ok else None
        stressed = device_stress(exposure, zone_hours, env, fail_fit, hours)
        stressed["p_fail_threshold"] = p_fail_threshold
        write_result(con, "environment_device_exposure", stressed, params=params,
                     computed_at=stamp)
        lap("stress")

        ranks = self.fleet.query("select * from environment_rank_correlations")
        effects = all_effects(fits, ranks, exposure_ranges(cells, factors))
        write_result(con, "environment_effects", pd.DataFrame(effects), params=params,
                     computed_at=stamp)
        lim = pd.concat([limits(m, effects) for m in fits], ignore_index=True) if fits else \
            pd.DataFrame(columns=LIMIT_COLUMNS)
        write_result(con, "environment_limits", lim, params=params, computed_at=stamp)
        lap("rank correlations, effects and limits")
        failures = queries.run(con, "zone_failures", p).to_pandas()
        recs = recommend(zone_hours, stressed, failures, fail_fit,
                         lim[lim["outcome"] == "failure"])
        write_result(con, "environment_recommendations", recs, params=params, computed_at=stamp)
        lap("recommendations")

    def _stopwatch(self):
        """A lap timer filling ``self.timings`` (seconds per analysis step)."""
        self.timings: dict[str, float] = {}
        last = [time.perf_counter()]

        def lap(name: str) -> None:
            now = time.perf_counter()
            self.timings[name] = now - last[0]
            last[0] = now
        return lap

    def _write_model(self, fits: list[Fit], params: dict, stamp) -> None:
        rows = []
        for f in (f for f in fits if f.ok):
            blocks = {_name(b): b for b in f.blocks}
            for n, b, se in zip(f.names, f.params, f.bse, strict=True):
                blk = blocks.get(n.rpartition(":")[0])
                above = blk is not None and n.endswith(":above")
                rows.append(dict(
                    outcome=f.outcome, term=n, coefficient=float(b),
                    factor=blk.factor if blk else None, device_type=blk.device_type if blk
                    else None, std_error=float(se), center=f.centers.get(blk.factor) if blk
                    else None, threshold=blk.threshold if above else None,
                    threshold_ci_low=blk.threshold_ci[0] if above else None,
                    threshold_ci_high=blk.threshold_ci[1] if above else None,
                    threshold_c=blk.threshold if above and blk.factor == "temperature_c"
                    and blk.device_type is None else None))
        cols = ["outcome", "term", "coefficient", "factor", "device_type", "std_error", "center",
                "threshold", "threshold_ci_low", "threshold_ci_high", "threshold_c"]
        write_result(self.con, "environment_model", pd.DataFrame(rows, columns=cols),
                     params=params, computed_at=stamp)

    # -- reading results ----------------------------------------------------------------
    def effects(self, method: str | None = None, outcome: str | None = None) -> list[dict]:
        """Effects of each factor on each outcome (GLM and rank correlation): the term,
        estimate, interval, rate ratio (blank where it is not a finding; see the note),
        Holm-adjusted p and verdict first."""
        return self.fleet.query(
            "select method, outcome, factor, device_type, term, estimate, ci_low, ci_high, "
            "rate_ratio, p_adjusted, is_significant, threshold, "
            "* exclude (params, method, outcome, factor, device_type, term, estimate, ci_low, "
            "ci_high, rate_ratio, p_adjusted, is_significant, threshold) "
            "from environment_effects "
            "where (? is null or method = ?) and (? is null or outcome = ?) "
            "order by method, outcome, factor, device_type nulls first, term",
            [method, method, outcome, outcome])

    def _check_type(self, device_type: str | None) -> None:
        """A device type the store has, the fleet of every type, or None."""
        if device_type != ALL_TYPES:
            self.fleet.check_known("device_type", device_type, ("devices",),
                                   "device of type")

    def limits(self, device_type: str | None = None) -> list[dict]:
        """The operating limits that follow from the fitted form of each significant effect
        (keep_below a fitted threshold, or lower_is_better), with a sentence each."""
        self._check_type(device_type)
        return self.fleet.query(
            "select * exclude (params) from environment_limits "
            "where ? is null or device_type = ? or device_type is null "
            "order by outcome, factor, device_type nulls first", [device_type, device_type])

    def envelopes(self, device_type: str | None = None) -> list[dict]:
        """Failure rates by band of each factor per device type, with status."""
        self._check_type(device_type)
        return self.fleet.query(
            "select * exclude (params) from environment_envelopes "
            "where ? is null or device_type = ? order by device_type, factor, band_low "
            "nulls first", [device_type, device_type])

    def maintenance(self, limit: int | None = 20) -> list[dict]:
        """Devices ranked by predicted 30-day failure probability, then stress: the first
        ``limit`` (a whole number from 1; None: every device)."""
        if limit is not None:
            check_count("limit", limit)
        return self.fleet.query(
            "select maintenance_rank, device_id, device_type, site, zone, p_fail_30d, "
            "stress_index, share_hours_outside_envelope, thermal_cycles_per_30d, "
            "arrhenius_acceleration, vibration_dose_g2h_per_day, env_source "
            "from environment_device_exposure order by maintenance_rank limit ?",
            [limit if limit is not None else 2**31 - 1])

    def recommendations(self) -> list[dict]:
        """Problem zones with evidence, expected gain and a sentence, best first."""
        return self.fleet.query("select * exclude (params, computed_at) "
                                "from environment_recommendations order by rank")

    def report(self) -> list[str]:
        """The recommendations as readable sentences."""
        return [r["sentence"] for r in self.recommendations()]

    def device_environment(self, device_id: str, start=None, end=None) -> list[dict]:
        """The device's environment per hour (own readings first, else its zone's)."""
        if not self.fleet.query("select 1 from devices where device_id = ?", [device_id]):
            raise UnknownDevice(f"no device {device_id!r} in the store")
        return self.fleet.query(
            "select * from environment_device_hourly where device_id = ? "
            "and (?::timestamp is null or hour_at >= ?) and (?::timestamp is null or hour_at < ?) "
            "order by hour_at", [device_id, start, start, end, end])

    def figures(self) -> dict[str, Any]:
        """The last analysis's key figures, one record: findings that no monitor covers the
        fleet, operating limits on failure, problem zones (and the first), devices likely
        to fail within 30 days, the riskiest device and its probability, devices without
        environment data, and the monitors excluded per fault.
        ``tsfleet environment analyze --format table|csv|json`` prints it."""
        return self._headline()[0]

    def summary(self) -> list[str]:
        """Headline lines for ``tsfleet demo`` (the sentences of :meth:`figures`)."""
        return self._headline()[1]

    def _headline(self) -> tuple[dict[str, Any], list[str]]:
        errors = [r["summary"] for r in self.fleet.query(
            "select summary from environment_findings "
            "where finding = 'environment_no_monitors'")]
        lines = [f"ERROR: {e}" for e in errors]
        sig = self.fleet.query(
            "select sentence from environment_limits where outcome = 'failure' "
            "order by p_adjusted, factor, device_type nulls first")
        lines += [r["sentence"] for r in sig[:3]]
        recs = self.recommendations()
        if recs:
            lines.append(f"{len(recs)} problem zones; top: {recs[0]['sentence']}")
        row = self.fleet.query(
            "select count(*) filter (where p_fail_30d >= p_fail_threshold) as n_high, "
            "count(*) filter (where env_source = 'none') as n_none, "
            "arg_max(device_id, p_fail_30d) as top, max(p_fail_30d) as p "
            "from environment_device_exposure")
        r = row[0] if row else {"n_high": 0, "n_none": 0, "top": None, "p": None}
        if r["top"] is not None:
            lines.append(f"{plural(r['n_high'], 'device')} likely to fail within 30 days; highest: "
                         f"{r['top']} (p={r['p'] or 0:.2f}); {r['n_none']} without environment "
                         "data")
        faults = {f["fault"]: f["n"] for f in self.fleet.query(
            "select fault, count(distinct device_id) as n "
            "from environment_monitor_faults group by fault order by fault")}
        if faults:
            lines.append("environment monitors excluded: " + ", ".join(
                f"{n} {fault}" for fault, n in faults.items()))
        figures = {"no_monitor_findings": len(errors), "failure_limits": len(sig),
                   "problem_zones": len(recs),
                   "top_problem_zone": recs[0]["zone"] if recs else None,
                   "likely_to_fail_30d": r["n_high"], "highest_risk_device": r["top"],
                   "highest_p_fail_30d": r["p"], "without_environment_data": r["n_none"],
                   **{f"monitors_{fault}": faults.get(fault, 0)
                      for fault in sorted({*MONITOR_FAULTS, *faults})}}
        return figures, lines or ["no environment analysis yet: run fleet.environment.analyze()"]


def _name(b: Block) -> str:
    return b.factor if b.device_type is None else f"{b.factor}[{b.device_type}]"
