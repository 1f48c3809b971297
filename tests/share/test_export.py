"""The Parquet export: hive layout by date and device bucket, idempotent per range."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsfleet.errors import InvalidParameter
from tsfleet.share import device_bucket
from tsfleet.share.partition import BUCKET_SQL

KEY = "device_id, observed_at, metric"


def _lake(directory) -> duckdb.DuckDBPyRelation:
    con = duckdb.connect()
    return con, f"read_parquet('{directory}/readings/*/*/*.parquet', hive_partitioning = true)"


def _live_rows(live, since: str, until: str) -> set:
    return set(live.con.execute(f"select {KEY}, value from readings where observed_at >= ? "
                                "and observed_at < ?", [since, until]).fetchall())


def _lake_rows(directory) -> list:
    con, src = _lake(directory)
    return con.execute(f"select {KEY}, value from {src}").fetchall()


def test_layout_is_hive_by_date_and_stable_device_bucket(live, tmp_path):
    out = tmp_path / "lake"
    report = live.export(out, since="2026-06-03", until="2026-06-06", buckets=8)
    assert (report.first_day, report.end_day, report.n_days) == (
        date(2026, 6, 3), date(2026, 6, 6), 3)
    days = sorted(p.name for p in (out / "readings").iterdir())
    assert days == ["date=2026-06-03", "date=2026-06-04", "date=2026-06-05"]
    con = duckdb.connect()
    rows = con.execute(f"select filename, device_id, observed_at from read_parquet("
                       f"'{out}/readings/*/*/*.parquet', filename = true, "
                       "hive_partitioning = false)").fetchall()
    by_file: dict[str, list] = {}
    for filename, device_id, at in rows:
        by_file.setdefault(filename, []).append((device_id, at))
    for filename, file_rows in by_file.items():
        part = Path(filename)
        day, bucket = part.parent.parent.name[5:], int(part.parent.name[7:])
        # the bucket is md5-based, computed here independently of the SQL that wrote it
        assert {int(hashlib.md5(d.encode()).hexdigest()[:8], 16) % 8
                for d, _ in file_rows} == {bucket}
        assert {at.date().isoformat() for _, at in file_rows} == {day}
    n_files = len(list((out / "readings").glob("date=*/bucket=*/*.parquet")))
    assert n_files == len(by_file)
    assert n_files == report.n_partitions > 3
    assert sorted(_lake_rows(out)) == sorted(_live_rows(live, "2026-06-03", "2026-06-06"))
    for table in ("devices", "gateways", "device_latest", "ingest_batches", "catalog"):
        n = duckdb.connect().execute(f"select count(*) from '{out}/{table}/data.parquet'"
                                     ).fetchone()[0]
        assert n == live.query(f"select count(*) as n from {table}")[0]["n"], table
    assert not (out / "readings_table").exists() and not (out / "readings" / "data.parquet"
                                                            ).exists()


def test_rerunning_a_range_replaces_partitions_without_duplicates(live, tmp_path):
    out = tmp_path / "lake"
    live.export(out, since="2026-06-02", until="2026-06-05")
    live.export(out, since="2026-06-02", until="2026-06-05")
    live.export(out, since="2026-06-04", until="2026-06-07")  # overlapping range
    rows = _lake_rows(out)
    assert len(rows) == len(set(rows))
    assert set(rows) == _live_rows(live, "2026-06-02", "2026-06-07")
    manifest = (out / "_tsfleet_export.json").read_text()
    assert manifest.count('"first_day"') == 3


def test_a_range_covers_whole_days_and_picks_up_changes(live, tmp_path, reading_batch):
    out = tmp_path / "lake"
    live.export(out, since="2026-06-03T12:00", until="2026-06-04T00:00:01")
    assert set(_lake_rows(out)) == _live_rows(live, "2026-06-03", "2026-06-05")
    devices = [r["device_id"] for r in live.query("select device_id from devices limit 3")]
    live.ingest("readings", reading_batch(devices, datetime(2026, 6, 4, 0, 30), 5))
    live.con.execute("delete from readings where observed_at >= '2026-06-03' "
                     "and observed_at < '2026-06-04'")
    report = live.export(out, since="2026-06-03", until="2026-06-05")
    assert report.n_readings == len(_live_rows(live, "2026-06-03", "2026-06-05"))
    assert set(_lake_rows(out)) == _live_rows(live, "2026-06-04", "2026-06-05")
    # a day that no longer holds readings loses its partition
    assert sorted(p.name for p in (out / "readings").iterdir()) == ["date=2026-06-04"]
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_without_a_range_the_whole_store_is_exported_and_pandas_reads_it(live, tmp_path):
    out = tmp_path / "lake"
    report = live.export(out)
    n = live.query("select count(*) as n from readings")[0]["n"]
    assert report.n_readings == n and report.n_days == 12 and report.readings_per_s > 0
    assert str(report).startswith(f"export {out}: {n:,} readings (2026-06-01 .. 2026-06-12")
    frame = pd.read_parquet(out / "readings")
    assert len(frame) == n
    assert {"date", "bucket", "device_id", "value"} <= set(frame.columns)
    devices = pd.read_parquet(out / "devices" / "data.parquet")
    assert len(devices) == live.query("select count(*) as n from devices")[0]["n"]


def test_export_refuses_mismatched_buckets_foreign_folders_and_bad_times(live, tmp_path):
    out = tmp_path / "lake"
    live.export(out, since="2026-06-02", until="2026-06-03", buckets=4)
    with pytest.raises(InvalidParameter, match="exported with 4 device buckets"):
        live.export(out, since="2026-06-02", until="2026-06-03", buckets=8)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"x")
    with pytest.raises(InvalidParameter, match="is not empty"):
        live.export(foreign)
    with pytest.raises(InvalidParameter, match="since must be an ISO date"):
        live.export(tmp_path / "x", since="yesterday")
    with pytest.raises(InvalidParameter, match="until must be after since"):
        live.export(tmp_path / "x", since="2026-06-03", until="2026-06-02")
    with pytest.raises(InvalidParameter, match="buckets must be an integer"):
        live.export(tmp_path / "x", buckets=0)


def test_an_empty_store_exports_its_tables_only(fleet, tmp_path):
    report = fleet.export(tmp_path / "lake")
    assert (report.n_readings, report.n_partitions, report.first_day) == (0, 0, None)
    assert "no readings" in str(report)
    assert (tmp_path / "lake" / "devices" / "data.parquet").is_file()


def test_unmapped_keeps_its_place_and_columns_in_the_lake(fleet, tmp_path):
    """Migration 950 split the table unmapped in two behind a view of the same name: the
    lake still has unmapped/ with every column, the payload on each row, and not the two."""
    fleet.con.execute("insert into unmapped_payload_rows values ('s1', 'the payload', NULL)")
    fleet.con.execute("insert into unmapped_item_rows values ('s1', 0, '2026-01-01 00:00:00+00', "
                      "'mqtt', 't', 'senml+json', 'd', null, 'x', '1', null, 'unknown_metric', "
                      "null, null, null)")
    fleet.export(tmp_path / "lake")
    lake = tmp_path / "lake"
    got = duckdb.sql(f"select * from '{lake / 'unmapped' / 'data.parquet'}'")
    assert got.columns == [r["column_name"] for r in fleet.query(
        "select column_name from duckdb_columns() where table_name = 'unmapped' "
        "order by column_index")]
    assert got.fetchall()[0][-1] == "the payload"
    assert not any((lake / t).exists() for t in ("unmapped_items", "unmapped_payloads",
                                                  "unmapped_item_rows", "unmapped_payload_rows",
                                                  "text_pieces"))
    assert (lake / "devices" / "data.parquet").is_file()


def test_quarantine_keeps_its_place_and_columns_in_the_lake(fleet, tmp_path):
    """Migration 991 put quarantine behind a view (a live payload's text in text_pieces):
    the lake still has quarantine/ with every column and the raw text whole."""
    from tsfleet.live.texts import store_texts

    text = '{"payload": "' + "x" * 1000 + '"}'
    [text_id] = store_texts(fleet.con, [text])
    fleet.con.execute("insert into quarantine_rows (batch_id, kind, source, reason, "
                      "quarantined_at, raw_text_id) values (1, 'payload', 'mqtt', "
                      "'invalid_json', '2026-01-01 00:00:00+00', ?)", [text_id])
    fleet.export(tmp_path / "lake")
    lake = tmp_path / "lake"
    got = duckdb.sql(f"select * from '{lake / 'quarantine' / 'data.parquet'}'")
    assert got.columns == ["batch_id", "kind", "source", "reason", "detail", "raw",
                           "quarantined_at"]
    assert got.fetchall()[0][5] == text
    assert not (lake / "quarantine_rows").exists() and not (lake / "text_pieces").exists()


_CON = duckdb.connect()


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=40), st.integers(min_value=1, max_value=4096))
def test_the_bucket_is_the_same_in_python_and_duckdb(device_id, buckets):
    con = _CON
    sql_bucket = con.execute(f"select {BUCKET_SQL} from (select ? as device_id)",
                             [buckets, device_id]).fetchone()[0]
    assert sql_bucket == device_bucket(device_id, buckets)


def test_a_device_written_around_ingest_still_gets_its_bucket(fleet, tmp_path):
    # readings inserted by SQL, not through ingest, have no device_latest row
    fleet.con.execute("insert into readings values ('side-door-1', '2026-06-02 10:00', "
                      "'co2_ppm', 500, 0), ('side-door-2', '2026-06-02 11:00', 'co2_ppm', 510, 0)")
    fleet.export(tmp_path / "lake", buckets=32)
    con, src = _lake(tmp_path / "lake")
    got = dict(con.execute(f"select device_id, bucket from {src}").fetchall())
    assert got == {d: device_bucket(d, 32) for d in ("side-door-1", "side-door-2")}
