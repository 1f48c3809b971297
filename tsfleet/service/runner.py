"""Run the domain analyses, incrementally, and record each run in ``analysis_runs``.

An analysis runs when ingest batches arrived since its last successful run.
Domains whose ``analyze`` accepts ``devices=`` (or ``gateways=``) get only the
devices (gateways) with new data (an incremental merge); the others recompute
in full. A failed run is
recorded with its error and retried at the next cadence; it never stops
ingestion, and one domain's failure does not stop the others.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from tsfleet.errors import InvalidParameter
from tsfleet.results import now_utc
from tsfleet.service.snapshots import refresh_card_tables
from tsfleet.store import quote_ident

log = logging.getLogger("tsfleet.service")

#: Analyses in the order they run: the alert rules read the others' findings.
ANALYSES = ("firmware", "power", "calibration", "environment", "network", "alerts")

#: Analyses whose models pool parameters over a group of devices (a ``devices`` column).
#: An incremental run recomputes every device of a group with new data: fitted on a
#: subset, the pooled parameters would differ from a full run's. (Power caches its
#: pooled parameters per device type, so it recomputes only the devices with new data.)
POOLED_BY: dict[str, str] = {}


@dataclass
class RunResult:
    analysis: str
    status: str          # ok, failed, skipped
    duration_s: float
    n_items: int | None = None
    error: str | None = None


def available() -> tuple[str, ...]:
    """The analyses whose domain package is installed in this build (in run order)."""
    return tuple(n for n in ANALYSES if importlib.util.find_spec(f"tsfleet.{n}") is not None)


def parse_only(only: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"power,calibration"`` -> ("power", "calibration"), validated.

    ``None`` means every available analysis; naming one whose package is not
    installed is refused.
    """
    if only is None:
        return available()
    names = [n.strip() for n in (only.split(",") if isinstance(only, str) else only) if n.strip()]
    unknown = sorted(set(names) - set(ANALYSES))
    if unknown:
        raise InvalidParameter(f"unknown analysis {', '.join(unknown)}; expected some of "
                               f"{', '.join(ANALYSES)}")
    missing = sorted(set(names) - set(available()))
    if missing:
        raise InvalidParameter(f"analysis {', '.join(missing)} is not installed in this build; "
                               f"available: {', '.join(available())}")
    return tuple(n for n in ANALYSES if n in names)


def run_analyses(fleet, only: str | Iterable[str] | None = None, *,
                 force: bool = False) -> list[RunResult]:
    """Run each analysis that has new data (all of them with ``force``)."""
    return [run_one(fleet, name, force=force) for name in parse_only(only)]


def run_one(fleet, name: str, *, force: bool = False) -> RunResult:
    con = fleet.con
    max_batch = con.execute("select coalesce(max(batch_id), 0) from ingest_batches").fetchone()[0]
    last, last_ok_at = con.execute(
        "select max(to_batch_id), max(finished_at) from analysis_runs where analysis = ? "
        "and status = 'ok'", [name]).fetchone()
    if not force and last is not None and last >= max_batch and not _inputs_changed(
            con, name, last_ok_at):
        return RunResult(name, "skipped", 0.0, 0)
    started = now_utc()
    t0 = time.perf_counter()
    devices = None
    try:
        domain = getattr(fleet, name)
        subset = _subset_parameter(domain)
        incremental = last is not None and not force and subset is not None
        if incremental:
            devices = CHANGED[subset](con, last, POOLED_BY.get(name))
            done = domain.analyze(**{subset: devices})
        else:
            done = domain.analyze()
        refresh_card_tables(con, name)
        n_items = len(devices) if devices is not None else None
        if devices is not None and isinstance(done, int) and done > len(devices):
            n_items = done       # the domain widened the incremental run (power: a refit)
        status, error = "ok", None
    except Exception as exc:  # noqa: BLE001 - recorded, logged and retried by design
        log.exception("analysis %s failed", name)
        status, error, n_items = "failed", f"{type(exc).__name__}: {exc}", None
        incremental = False
        _rollback(con)
    duration = time.perf_counter() - t0
    until = con.execute("select max(max_observed_at) from ingest_batches where batch_id <= ?",
                        [max_batch]).fetchone()[0]
    con.execute(
        "insert into analysis_runs values (nextval('analysis_run_seq'), ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?)",
        [name, started, now_utc(), duration, status, error, n_items, incremental,
         last, max_batch, until])
    return RunResult(name, status, duration, n_items, error)


def changed_devices(con, since_batch: int, pooled_by: str | None = None) -> list[str]:
    """Devices with readings, events or registry rows in batches after ``since_batch``;
    with ``pooled_by`` (a ``devices`` column), every device sharing a value with one of them."""
    changed = ("select device_id from readings where batch_id > $b union "
               "select device_id from device_events where batch_id > $b union "
               "select device_id from devices where batch_id > $b")
    if pooled_by is not None:
        col = quote_ident(pooled_by)
        changed += (f" union select device_id from devices where {col} in "
                    f"(select {col} from devices where device_id in ({changed}))")
    return sorted(r[0] for r in con.execute(changed, {"b": since_batch}).fetchall())


def changed_gateways(con, since_batch: int, pooled_by: str | None = None) -> list[str]:
    """Gateways with connections, statistics or registry rows in batches after
    ``since_batch``."""
    return sorted(r[0] for r in con.execute(
        "select gateway_id from connections where batch_id > $b union "
        "select gateway_id from gateway_stats where batch_id > $b union "
        "select gateway_id from gateways where batch_id > $b", {"b": since_batch}).fetchall())


#: The subset parameter a domain's ``analyze`` may accept -> the items with new data.
CHANGED = {"devices": changed_devices, "gateways": changed_gateways}


def _inputs_changed(con, name: str, last_ok_at) -> bool:
    """The alert rules read the other analyses' results: they are due again when another
    analysis succeeded after their last successful run, even without new ingest."""
    if name != "alerts":
        return False
    return con.execute("select count(*) > 0 from analysis_runs where analysis <> 'alerts' "
                       "and status = 'ok' and finished_at > ?", [last_ok_at]).fetchone()[0]


def _rollback(con) -> None:
    """A failed domain may leave a transaction open; ingest must find the connection usable."""
    try:
        con.execute("ROLLBACK")
    except Exception:  # noqa: BLE001 - "no transaction is active": nothing to undo
        pass


def _subset_parameter(domain) -> str | None:
    """``devices`` or ``gateways`` when the domain's ``analyze`` accepts it, else None."""
    try:
        params = inspect.signature(domain.analyze).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins only
        return None
    return next((p for p in CHANGED if p in params), None)
