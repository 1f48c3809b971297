"""Run the domain analyses, incrementally, and record each run in ``analysis_runs``.

An analysis runs when ingest batches arrived since its last successful run.
Domains that declare a subset in the registry (:data:`tsfleet.domain.DOMAINS`) get only
the devices (gateways) with new data (an incremental merge); the others recompute
in full. A failed run is recorded with its error and retried at the next cadence; it
never stops ingestion, and one domain's failure does not stop the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tsfleet.domain import BY_NAME, DOMAINS, DomainSpec, RunResult, run_domain
from tsfleet.errors import InvalidParameter
from tsfleet.results import now_utc
from tsfleet.service.snapshots import finding_keys, refresh_card_tables

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet

log = logging.getLogger("tsfleet.service")

#: Analyses in the order they run (the registry's order: the alert rules read the others').
ANALYSES = tuple(d.name for d in DOMAINS)

__all__ = ["ANALYSES", "RunResult", "is_conflict", "parse_only", "run_analyses", "run_one"]


def parse_only(only: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"power,calibration"`` -> ("power", "calibration"), validated, in run order.

    ``None`` means every registered analysis.
    """
    if only is None:
        return ANALYSES
    names = [n.strip() for n in (only.split(",") if isinstance(only, str) else only) if n.strip()]
    unknown = sorted(set(names) - set(ANALYSES))
    if unknown:
        raise InvalidParameter(f"unknown analysis {', '.join(unknown)}; expected some of "
                               f"{', '.join(ANALYSES)}")
    return tuple(n for n in ANALYSES if n in names)


def run_analyses(fleet: Fleet, only: str | Iterable[str] | None = None, *,
                 force: bool = False) -> list[RunResult]:
    """Run each analysis that has new data (all of them with ``force``)."""
    return [run_one(fleet, name, force=force) for name in parse_only(only)]


def run_one(fleet: Fleet, name: str, *, force: bool = False,
            conflict_retries: int = 0) -> RunResult:
    """Run analysis ``name`` when it has new data (or ``force``) and record the run.

    ``conflict_retries``: how many times an attempt that meets a write-write conflict
    with another connection of the process (``tsfleet serve`` runs analyses beside
    ingest, :mod:`tsfleet.service.worker`) is rolled back and run again before the run
    counts as failed; an analysis recomputes its results from the store, so a new
    attempt is safe. The run is recorded once, with the time of all its attempts.
    """
    spec: DomainSpec = BY_NAME[name]
    con = fleet.con
    max_batch = con.execute(
        "select coalesce(max(batch_id), 0) from ingest_batches").fetchall()[0][0]
    last, last_ok_at = con.execute(
        "select max(to_batch_id), max(finished_at) from analysis_runs where analysis = ? "
        "and status = 'ok'", [name]).fetchall()[0]
    if not force and last is not None and last >= max_batch and not _inputs_changed(
            con, name, last_ok_at):
        return RunResult(name, "skipped", 0.0, 0)
    started = now_utc()
    t0 = time.perf_counter()
    items = None
    if last is not None and not force and spec.subset is not None:
        items = CHANGED[spec.subset](con, last)
    n_conflicts = 0
    while True:
        try:
            before = finding_keys(con, name)
            result = run_domain(fleet, spec, items)
            refresh_card_tables(con, name)
            after = finding_keys(con, name)
            result.n_findings = len(after)
            result.n_opened, result.n_closed = len(after - before), len(before - after)
            break
        except Exception as exc:  # noqa: BLE001 - recorded, logged and retried by design
            _rollback(con)
            if is_conflict(exc) and n_conflicts < conflict_retries:
                n_conflicts += 1
                log.info("analysis %s met a write conflict (%s); running it again (%d)",
                         name, str(exc).splitlines()[0][:200], n_conflicts)
                time.sleep(min(0.1 * n_conflicts, 1.0))
                continue
            log.exception("analysis %s failed", name)
            result = RunResult(name, "failed", 0.0, None, f"{type(exc).__name__}: {exc}")
            break
    result.duration_s = time.perf_counter() - t0
    result.n_conflicts = n_conflicts
    until = con.execute("select max(max_observed_at) from ingest_batches where batch_id <= ?",
                        [max_batch]).fetchall()[0][0]
    con.execute(
        "insert into analysis_runs values (nextval('analysis_run_seq'), ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?)",
        [name, started, now_utc(), result.duration_s, result.status, result.error,
         result.n_items, result.incremental, last, max_batch, until])
    return result


def is_conflict(exc: BaseException) -> bool:
    """A DuckDB write-write conflict between two transactions (not the analysis's fault)."""
    import duckdb
    return isinstance(exc, duckdb.TransactionException) and "conflict" in str(exc).lower()


def changed_devices(con, since_batch: int) -> list[str]:
    """Devices with readings, events or registry rows in batches after ``since_batch``."""
    return sorted(r[0] for r in con.execute(
        "select device_id from readings where batch_id > $b union "
        "select device_id from device_events where batch_id > $b union "
        "select device_id from devices where batch_id > $b", {"b": since_batch}).fetchall())


def changed_gateways(con, since_batch: int) -> list[str]:
    """Gateways with connections, statistics or registry rows in batches after
    ``since_batch``."""
    return sorted(r[0] for r in con.execute(
        "select gateway_id from connections where batch_id > $b union "
        "select gateway_id from gateway_stats where batch_id > $b union "
        "select gateway_id from gateways where batch_id > $b", {"b": since_batch}).fetchall())


#: A domain's declared subset (:attr:`DomainSpec.subset`) -> the items with new data.
CHANGED = {"devices": changed_devices, "gateways": changed_gateways}


def _inputs_changed(con, name: str, last_ok_at) -> bool:
    """The alert rules read the other analyses' results: they are due again when another
    analysis succeeded after their last successful run, even without new ingest."""
    if name != "alerts":
        return False
    return con.execute("select count(*) > 0 from analysis_runs where analysis <> 'alerts' "
                       "and status = 'ok' and finished_at > ?", [last_ok_at]).fetchall()[0][0]


def _rollback(con) -> None:
    """A failed domain may leave a transaction open; ingest must find the connection usable."""
    try:
        con.execute("ROLLBACK")
    except Exception:  # noqa: BLE001 - "no transaction is active": nothing to undo
        pass
