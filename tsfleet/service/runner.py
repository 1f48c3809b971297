"""Run the domain analyses, incrementally, and record each run in ``analysis_runs``.

An analysis runs when ingest batches arrived since its last successful run.
Domains whose ``analyze`` accepts ``devices=`` get only the devices with new
data (an incremental merge); the others recompute in full. A failed run is
recorded with its error and retried at the next cadence; it never stops
ingestion, and one domain's failure does not stop the others.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from tsfleet.errors import InvalidParameter
from tsfleet.results import now_utc

log = logging.getLogger("tsfleet.service")

#: Analyses in the order they run: the alert rules read the others' findings.
ANALYSES = ("firmware", "power", "calibration", "environment", "network", "alerts")


@dataclass
class RunResult:
    analysis: str
    status: str          # ok, failed, skipped
    duration_s: float
    n_items: int | None = None
    error: str | None = None


def parse_only(only: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"power,calibration"`` -> ("power", "calibration"), validated."""
    if only is None:
        return ANALYSES
    names = [n.strip() for n in (only.split(",") if isinstance(only, str) else only) if n.strip()]
    unknown = sorted(set(names) - set(ANALYSES))
    if unknown:
        raise InvalidParameter(f"unknown analysis {', '.join(unknown)}; expected some of "
                               f"{', '.join(ANALYSES)}")
    return tuple(n for n in ANALYSES if n in names)


def run_analyses(fleet, only: str | Iterable[str] | None = None, *,
                 force: bool = False) -> list[RunResult]:
    """Run each analysis that has new data (all of them with ``force``)."""
    return [run_one(fleet, name, force=force) for name in parse_only(only)]


def run_one(fleet, name: str, *, force: bool = False) -> RunResult:
    con = fleet.con
    max_batch = con.execute("select coalesce(max(batch_id), 0) from ingest_batches").fetchone()[0]
    last = con.execute("select max(to_batch_id) from analysis_runs where analysis = ? "
                       "and status = 'ok'", [name]).fetchone()[0]
    if not force and last is not None and last >= max_batch:
        return RunResult(name, "skipped", 0.0, 0)
    started = now_utc()
    t0 = time.perf_counter()
    devices = None
    try:
        domain = getattr(fleet, name)
        incremental = last is not None and not force and _accepts_devices(domain)
        if incremental:
            devices = [r[0] for r in con.execute(
                "select distinct device_id from readings where batch_id > ? union "
                "select distinct device_id from device_events where batch_id > ?",
                [last, last]).fetchall()]
            domain.analyze(devices=devices)
        else:
            domain.analyze()
        n_items = len(devices) if devices is not None else None
        status, error = "ok", None
    except Exception as exc:  # noqa: BLE001 - recorded, logged and retried by design
        log.exception("analysis %s failed", name)
        status, error, n_items = "failed", f"{type(exc).__name__}: {exc}", None
        incremental = False
    duration = time.perf_counter() - t0
    until = con.execute("select max(max_observed_at) from ingest_batches where batch_id <= ?",
                        [max_batch]).fetchone()[0]
    con.execute(
        "insert into analysis_runs values (nextval('analysis_run_seq'), ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?)",
        [name, started, now_utc(), duration, status, error, n_items, incremental,
         last, max_batch, until])
    return RunResult(name, status, duration, n_items, error)


def _accepts_devices(domain) -> bool:
    try:
        return "devices" in inspect.signature(domain.analyze).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins only
        return False
