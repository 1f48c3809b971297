"""Ingest-time checks of firmware reports: unexpected changes raised at once.

:func:`check_reports` looks only at the reports of the given ingest batches
(and, for each of their devices, the report before), so it runs in the
ingest path in well under a second for a live batch. It

1. ranks any version string not seen before (``firmware_versions``),
2. finds untargeted changes, downgrades, image hash mismatches, versions
   missing from the catalog and unparsable versions
   (``tsfleet/firmware/sql/check_reports.sql``),
3. moves reports whose version the model's scheme cannot read to
   ``quarantine`` (reason ``unparsable_version``), keeping the ingest batch
   counts true, and
4. merges the events into ``firmware_security_events``: a new event is
   inserted with ``detected_at``; a repeat of an open one extends its
   ``last_reported_at``, and
5. brings ``firmware_device_state`` (the inventory's current version per
   device) up to date for the batch's devices.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import duckdb

from tsfleet.firmware.catalog import sync_versions
from tsfleet.firmware.queries import query
from tsfleet.results import now_utc
from tsfleet.store import QUARANTINE_INTO, transaction


@dataclass
class CheckResult:
    """What one :func:`check_reports` call did."""

    batch_ids: list[int] = field(default_factory=list)
    n_reports: int = 0
    n_new_events: int = 0
    n_quarantined: int = 0
    elapsed_ms: float = 0.0
    events: list[dict] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"checked {self.n_reports} firmware reports of {len(self.batch_ids)} batches in "
                f"{self.elapsed_ms:.0f} ms: {self.n_new_events} new security events, "
                f"{self.n_quarantined} unparsable versions quarantined")


def unchecked_batches(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Ingest batches of firmware reports that no check has looked at yet."""
    return [r[0] for r in con.execute(
        "select batch_id from ingest_batches where kind = 'firmware_reports' and n_accepted > 0 "
        "and batch_id not in (select batch_id from firmware_checked_batches) order by batch_id"
    ).fetchall()]


def check_reports(con: duckdb.DuckDBPyConnection, batch_ids: list[int]) -> CheckResult:
    """Check the firmware reports of ``batch_ids``; see the module docstring."""
    t0 = time.perf_counter()
    result = CheckResult(batch_ids=[int(b) for b in batch_ids])
    if not result.batch_ids:
        return result
    batches = result.batch_ids
    sync_versions(con, batches)
    now = now_utc()
    with transaction(con):
        con.execute("create or replace temp table _fw_events as " + query("check_reports"),
                    {"batches": batches})
        result.n_reports = con.execute(
            "select count(*) from firmware_reports where list_contains(?, batch_id)",
            [batches]).fetchall()[0][0]
        # A known event seen again: extend it.
        con.execute(
            "update firmware_security_events e set last_reported_at = n.last_at "
            "from (select device_id, kind, version, image_hash, max(reported_at) as last_at "
            "      from _fw_events group by all) n "
            "where e.device_id = n.device_id and e.kind = n.kind and e.version = n.version "
            "and e.image_hash is not distinct from n.image_hash "
            "and n.last_at > e.last_reported_at")
        result.n_quarantined = _quarantine_unparsable(con)
        rows = con.execute(
            "insert into firmware_security_events "
            "select n.device_id, n.kind, n.version, n.image_hash, n.previous_version, "
            "n.expected_hash, n.first_at, n.last_at, ?, n.detail, n.batch_id from ("
            "  select device_id, kind, version, image_hash, "
            "  arg_min(previous_version, reported_at) as previous_version, "
            "  arg_min(expected_hash, reported_at) as expected_hash, "
            "  min(reported_at) as first_at, max(reported_at) as last_at, "
            "  arg_min(detail, reported_at) as detail, min(batch_id) as batch_id "
            "  from _fw_events group by device_id, kind, version, image_hash) n "
            "where not exists (select 1 from firmware_security_events e "
            "  where e.device_id = n.device_id and e.kind = n.kind and e.version = n.version "
            "  and e.image_hash is not distinct from n.image_hash) "
            "returning device_id, kind, version, image_hash, detail", [now]).fetchall()
        con.execute("insert or replace into firmware_device_state " + query("device_state"),
                    {"batches": batches, "now": now})
        # Every later report still showing an event's version and image keeps it open.
        con.execute(
            "update firmware_security_events e set last_reported_at = n.last_at "
            "from (select device_id, version, image_hash, max(reported_at) as last_at "
            "      from firmware_reports where list_contains(?, batch_id) group by all) n "
            "where e.device_id = n.device_id and e.version = n.version "
            "and e.image_hash is not distinct from n.image_hash "
            "and n.last_at > e.last_reported_at", [batches])
        result.n_new_events = len(rows)
        result.events = [dict(zip(("device_id", "kind", "version", "image_hash", "detail"), r,
                                  strict=True)) for r in rows]
        result.elapsed_ms = (time.perf_counter() - t0) * 1000
        con.execute(
            "insert or replace into firmware_checked_batches "
            "select unnest(?::BIGINT[]), ?, ?, ?, ?",
            [batches, result.n_reports, result.n_new_events, now, result.elapsed_ms])
        con.execute("drop table _fw_events")
    return result


def _quarantine_unparsable(con: duckdb.DuckDBPyConnection) -> int:
    """Move reports with an unparsable version to quarantine; fix their batches' counts."""
    n = con.execute(
        f"insert into {QUARANTINE_INTO} select r.batch_id, 'firmware_reports', "
        "coalesce(b.source, 'firmware check'), 'unparsable_version', e.detail, "
        "to_json(struct_pack(device_id := r.device_id, reported_at := r.reported_at, "
        "version := r.version, image_hash := r.image_hash))::VARCHAR, now() "
        "from firmware_reports r join _fw_events e on e.kind = 'unparsable' "
        "and e.device_id = r.device_id and e.reported_at = r.reported_at "
        "left join ingest_batches b on b.batch_id = r.batch_id").fetchall()[0][0]
    if not n:
        return 0
    con.execute(
        "update ingest_batches b set n_accepted = b.n_accepted - q.n, "
        "n_quarantined = b.n_quarantined + q.n from (select batch_id, count(*) as n "
        "from _fw_events where kind = 'unparsable' group by batch_id) q "
        "where b.batch_id = q.batch_id")
    con.execute("delete from firmware_reports r using _fw_events e where e.kind = 'unparsable' "
                "and e.device_id = r.device_id and e.reported_at = r.reported_at")
    return n
