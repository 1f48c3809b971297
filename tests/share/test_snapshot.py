"""Snapshots: consistent while the writer writes, atomically replaced, views materialized."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime

import duckdb
import pytest

from tsfleet.errors import InvalidParameter, StoreError
from tsfleet.share import SnapshotScheduler, take_snapshot


def _add_analytic_view(fleet, name="fleet_daily_counts", sql=None):
    """A view the way a domain publishes one: created, and registered in published_objects."""
    sql = sql or ("select cast(observed_at as date) as day, count(*) as n_readings "
                  "from readings group by all")
    fleet.con.execute(f"create view {name} as {sql}")
    fleet.con.execute("insert into published_objects values (?, 'view', ?, ?, ?)",
                      [name, "one row per day.", "Readings per UTC day.", f"899_{name}.sql"])


def _tables(con) -> dict[str, int]:
    return {name: con.execute(f'select count(*) from "{name}"').fetchone()[0]
            for (name,) in con.execute("select table_name from duckdb_tables() where "
                                       "database_name = current_database() and "
                                       "schema_name = 'main'").fetchall()}


def _internal(fleet) -> set[str]:
    return {r["name"] for r in fleet.query(
        "select name from published_objects where kind = 'internal_view'")}


def test_snapshot_copies_tables_and_materializes_views(live, tmp_path):
    _add_analytic_view(live)
    out = tmp_path / "share.duckdb"
    n_live_views = live.query("select count(*) as n from duckdb_views() "
                              "where database_name = current_database() and not internal")[0]["n"]
    n_live_views -= len(_internal(live))  # helper views of the code are not shared
    report = live.snapshot(out, views="materialize")
    assert (report.n_materialized, report.n_views) == (n_live_views - 2, 2)
    assert report.n_readings == live.query("select count(*) n from readings")[0]["n"]
    live_tables = _tables(live.con)
    with duckdb.connect(str(out), read_only=True) as snap:
        snap_tables = _tables(snap)
        assert {k: v for k, v in snap_tables.items() if k in live_tables} == live_tables
        live_views = {r["name"] for r in live.query(
            "select name from published_objects where kind = 'view'")}
        assert set(snap_tables) - set(live_tables) == (
            live_views - {"catalog", "catalog_columns"} | {"snapshot_info"})
        assert sorted(snap.execute("select * from fleet_daily_counts").fetchall()) == sorted(
            live.con.execute("select * from fleet_daily_counts").fetchall())
        cat = {r[0]: r[1:] for r in snap.execute(
            "select name, kind, grain, description from catalog "
            "where schema_name = 'main'").fetchall()}
        # the catalog describes the snapshot: the view is a table there, with its grain
        assert cat["fleet_daily_counts"][:2] == ("table", "one row per day")
        assert cat["fleet_daily_counts"][2].startswith("Readings per UTC day.")
        assert cat["snapshot_info"][1] == "one row"
        assert cat["catalog"][0] == "view"
        assert all(cat[name][1] for name in live_tables), "table comments were lost"
        info = snap.execute("select source, storage_version, views, n_readings "
                            "from snapshot_info").fetchone()
        assert info == (live.path, "latest", "materialize", report.n_readings)


def test_views_are_kept_as_views_by_default(live, tmp_path):
    _add_analytic_view(live)
    out = tmp_path / "keep.duckdb"
    report = live.snapshot(out)
    n_live_views = live.query("select count(*) as n from published_objects "
                              "where kind = 'view'")[0]["n"]
    assert (report.n_materialized, report.n_views) == (0, n_live_views)
    with duckdb.connect(str(out), read_only=True) as snap:
        kinds = dict(snap.execute("select name, kind from catalog").fetchall())
        assert kinds["fleet_daily_counts"] == "view"
        assert snap.execute("select sum(n_readings) from fleet_daily_counts").fetchone()[0] == \
            report.n_readings


def test_snapshot_is_consistent_while_the_writer_keeps_writing(live, tmp_path, busy_writer,
                                                               invariants):
    out = tmp_path / "share.duckdb"
    seen = []
    with busy_writer(live) as writer:
        for _ in range(3):
            before = writer.n_batches
            take_snapshot(live.con, out, source=live.path)
            with duckdb.connect(str(out), read_only=True) as snap:
                counts = invariants(snap)
            seen.append(counts["readings"])
            # readings, the ingest log and device_latest were read at one instant
            assert counts["readings"] == counts["accepted"] == counts["latest"], counts
            while writer.n_batches == before:  # let the writer commit between snapshots
                time.sleep(0.01)
    assert writer.n_batches > 3
    assert len(set(seen)) >= 3, f"the writer did not write between snapshots: {seen}"
    assert invariants(live.con)["readings"] > max(seen)


_READER = textwrap.dedent("""
    import json, sys, time, duckdb
    path, deadline = sys.argv[1], time.time() + float(sys.argv[2])
    taken, n_reads, errors = set(), 0, []
    while time.time() < deadline and len(taken) < 3:
        try:
            with duckdb.connect(path, read_only=True) as con:
                r, a, l = con.execute(
                    "select (select count(*) from readings), "
                    "(select sum(n_accepted) from ingest_batches where kind = 'readings'), "
                    "(select sum(n_readings) from device_latest)").fetchone()
                if not r == a == l:
                    errors.append(f"inconsistent {r} {a} {l}")
                taken.add(str(con.execute("select taken_at from snapshot_info").fetchone()[0]))
                n_reads += 1
        except Exception as exc:
            errors.append(repr(exc))
        time.sleep(0.02)
    print(json.dumps({"taken": sorted(taken), "n_reads": n_reads, "errors": errors}))
""")


def test_a_second_process_reads_the_snapshot_while_the_writer_writes(live, tmp_path,
                                                                   busy_writer):
    out = tmp_path / "share.duckdb"
    script = tmp_path / "reader.py"
    script.write_text(_READER)
    live.snapshot(out)
    with busy_writer(live), SnapshotScheduler(live, out, every=0.3) as scheduler:
        reader = subprocess.run([sys.executable, str(script), str(out), "90"],
                                capture_output=True, text=True, timeout=120)
    assert reader.returncode == 0, reader.stderr
    result = json.loads(reader.stdout)
    assert result["errors"] == []
    assert len(result["taken"]) >= 3, "the reader did not see the snapshot being replaced"
    assert scheduler.n_taken >= 3 and scheduler.last_error is None


def test_replace_is_atomic_an_open_reader_keeps_the_old_file(live, tmp_path, reading_batch):
    out = tmp_path / "share.duckdb"
    live.snapshot(out)
    inode = os.stat(out).st_ino
    old = duckdb.connect(str(out), read_only=True)
    n_old = old.execute("select count(*) from readings").fetchone()[0]
    devices = [r["device_id"] for r in live.query("select device_id from devices limit 5")]
    live.ingest("readings", reading_batch(devices, datetime(2026, 8, 1), 10))
    live.snapshot(out)
    assert os.stat(out).st_ino != inode, "the target was rewritten in place, not renamed"
    assert old.execute("select count(*) from readings").fetchone()[0] == n_old
    old.close()
    with duckdb.connect(str(out), read_only=True) as new:
        assert new.execute("select count(*) from readings").fetchone()[0] == n_old + 50
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_failed_snapshot_leaves_the_previous_one_and_no_debris(live, tmp_path):
    out = tmp_path / "share.duckdb"
    live.snapshot(out)
    before = (os.stat(out).st_ino, out.read_bytes())
    _add_analytic_view(live, "broken_view", "select cast('not a number' as integer) as n")
    with pytest.raises(StoreError, match="snapshot to .* failed: Conversion Error"):
        live.snapshot(out, views="materialize")
    assert (os.stat(out).st_ino, out.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("live.")) == [
        "share.duckdb"]
    live.query("select count(*) from readings")  # the live connection is usable again


def test_snapshot_refuses_unsafe_targets_and_bad_arguments(live, tmp_path):
    with pytest.raises(InvalidParameter, match="is the store itself"):
        live.snapshot(live.path)
    with pytest.raises(InvalidParameter, match="is a directory"):
        live.snapshot(tmp_path)
    out = tmp_path / "s.duckdb"
    (tmp_path / "s.duckdb.wal").write_bytes(b"x")
    with pytest.raises(StoreError, match="opened the snapshot read-write"):
        live.snapshot(out)
    with pytest.raises(InvalidParameter, match="storage version must look like"):
        live.snapshot(tmp_path / "t.duckdb", storage_version="1.0")
    with pytest.raises(InvalidParameter, match="views must be one of"):
        live.snapshot(tmp_path / "t.duckdb", views="copy")
    with pytest.raises(StoreError, match="failed"):
        live.snapshot(tmp_path / "t.duckdb", storage_version="v0.0.1")
    assert not out.exists() and not (tmp_path / "t.duckdb").exists()
