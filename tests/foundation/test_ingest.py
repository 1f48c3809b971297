"""Ingest: every format, every quarantine reason, duplicates, lateness, units."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tsfleet import Fleet, IngestError, UnknownKind

ROWS = [
    {"device_id": "pump-17", "observed_at": "2026-03-01T10:00:00Z", "metric": "battery_pct",
     "value": 87.0},
    {"device_id": "pump-17", "observed_at": "2026-03-01T11:00:00Z", "metric": "battery_pct",
     "value": 86.0},
    {"device_id": "pump-18", "observed_at": "2026-03-01T10:00:00Z", "metric": "temperature_c",
     "value": 21.5},
]


def stored(fleet: Fleet) -> list[tuple]:
    return [tuple(r.values()) for r in fleet.query(
        "select device_id, observed_at, metric, value from readings order by all")]


EXPECTED = [
    ("pump-17", datetime(2026, 3, 1, 10), "battery_pct", 87.0),
    ("pump-17", datetime(2026, 3, 1, 11), "battery_pct", 86.0),
    ("pump-18", datetime(2026, 3, 1, 10), "temperature_c", 21.5),
]


def write(path, rows, fmt):
    if fmt == "csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    elif fmt == "tsv":
        pd.DataFrame(rows).to_csv(path, index=False, sep="\t")
    elif fmt in ("jsonl", "ndjson"):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "json":
        path.write_text(json.dumps(rows))
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "ndjson", "json", "parquet"])
def test_every_file_format_lands_the_same_rows(fleet, tmp_path, fmt):
    path = write(tmp_path / f"batch.{fmt}", ROWS, fmt)
    report = fleet.ingest("readings", path)
    assert (report.n_rows, report.n_accepted, report.n_quarantined) == (3, 3, 0)
    assert stored(fleet) == EXPECTED


@pytest.mark.parametrize("make", [
    lambda: pd.DataFrame(ROWS),
    lambda: pa.Table.from_pylist(ROWS),
    lambda: pa.RecordBatch.from_pylist(ROWS),
    lambda: {k: [r[k] for r in ROWS] for k in ROWS[0]},
    lambda: list(ROWS),
    lambda: (r for r in ROWS),
], ids=["dataframe", "arrow-table", "record-batch", "dict-of-columns", "list", "generator"])
def test_every_python_source_lands_the_same_rows(fleet, make):
    assert fleet.ingest("readings", make()).n_accepted == 3
    assert stored(fleet) == EXPECTED


def test_reingesting_the_same_file_changes_nothing(fleet, tmp_path):
    path = write(tmp_path / "b.csv", ROWS, "csv")
    fleet.ingest("readings", path)
    before = stored(fleet)
    again = fleet.ingest("readings", path)
    assert (again.n_accepted, again.n_duplicates, again.n_quarantined) == (0, 3, 0)
    assert stored(fleet) == before
    assert fleet.query("select count(*) as n from quarantine")[0]["n"] == 0


def test_reingesting_a_file_holds_its_rejected_rows_once(fleet, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("device_id,observed_at,metric,value\n"
                    "pump-1,2026-03-01T10:00Z,battery_pct,5\n"
                    "pump-1,yesterday,battery_pct,5\n"
                    "pump-1,2026-03-01T11:00Z,mood_pct,1\n")
    held = "select reason, raw from quarantine order by reason"
    first = fleet.ingest("readings", path)
    assert first.quarantined_by_reason == {"bad_timestamp": 1, "unknown_metric": 1}
    rows = fleet.query(held)
    again = fleet.ingest("readings", path)
    # the report still says what the file holds; the quarantine holds each row once
    assert again.quarantined_by_reason == first.quarantined_by_reason
    assert fleet.query(held) == rows and len(rows) == 2
    other = tmp_path / "other.csv"                  # the same rows from another file: held
    other.write_text(path.read_text())
    fleet.ingest("readings", other)
    assert len(fleet.query(held)) == 4
    # rows handed over in memory (the live service's batches) are held each time: their
    # source is one label, and a check per batch would read all of its quarantine
    bad = [{"device_id": "pump-1", "observed_at": "yesterday", "metric": "battery_pct",
            "value": 5}]
    fleet.ingest("readings", bad)
    fleet.ingest("readings", bad)
    assert len(fleet.query(held)) == 6


def test_duplicates_inside_one_batch_are_absorbed(fleet):
    report = fleet.ingest("readings", ROWS + ROWS[:2])
    assert (report.n_accepted, report.n_duplicates) == (3, 2)
    assert stored(fleet) == EXPECTED


def test_same_key_with_another_value_is_quarantined_and_first_value_kept(fleet):
    fleet.ingest("readings", ROWS)
    changed = dict(ROWS[0], value=55.0)
    report = fleet.ingest("readings", [changed])
    assert report.quarantined_by_reason == {"conflicting_duplicate": 1}
    assert stored(fleet) == EXPECTED
    raw = json.loads(fleet.query("select raw from quarantine")[0]["raw"])
    assert raw["value"] == 55.0


def test_late_and_out_of_order_rows_are_accepted_and_latest_state_follows_time(fleet):
    fleet.ingest("readings", [ROWS[1]])           # 11:00 arrives first
    fleet.ingest("readings", [ROWS[0]])           # 10:00 arrives late
    latest = fleet.query("select observed_at, value, n_readings, first_observed_at "
                         "from device_latest where device_id = 'pump-17'")[0]
    assert latest == {"observed_at": datetime(2026, 3, 1, 11), "value": 86.0, "n_readings": 2,
                      "first_observed_at": datetime(2026, 3, 1, 10)}


def test_timestamps_are_normalized_to_utc(fleet):
    rows = [
        {"device_id": "d", "observed_at": "2026-03-01T12:00:00+02:00", "metric": "battery_pct",
         "value": 1},
        {"device_id": "d", "observed_at": "2026-03-01 11:00:00", "metric": "battery_pct",
         "value": 2},   # naive means UTC
        {"device_id": "d", "observed_at": epoch(12), "metric": "battery_pct", "value": 3},
        {"device_id": "d", "observed_at": str(epoch(13)), "metric": "battery_pct", "value": 4},
    ]
    assert fleet.ingest("readings", rows).n_accepted == 4
    got = [r["observed_at"] for r in fleet.query(
        "select observed_at from readings order by value")]
    assert got == [datetime(2026, 3, 1, h) for h in (10, 11, 12, 13)]


def epoch(hour: int) -> int:
    return int(datetime(2026, 3, 1, hour, tzinfo=UTC).timestamp())


def test_ids_are_trimmed_and_unit_variants_converted(fleet):
    fleet.ingest("readings", [
        {"device_id": "  pump-17 ", "observed_at": "2026-03-01T10:00Z",
         "metric": "battery_voltage_mv", "value": 3600},
        {"device_id": "pump-17", "observed_at": "2026-03-01T10:00Z", "metric": "Temperature_F",
         "value": 212},
        {"device_id": "pump-17", "observed_at": "2026-03-01T10:00Z", "metric": "vibration_ms2",
         "value": 9.80665},
    ])
    got = {r["metric"]: r["value"] for r in fleet.query(
        "select device_id, metric, value from readings where device_id = 'pump-17'")}
    assert got == pytest.approx({"battery_voltage_v": 3.6, "temperature_c": 100.0,
                                 "vibration_g": 1.0})


def test_wide_csv_with_unit_in_column_names(fleet, tmp_path):
    path = tmp_path / "vendor.csv"
    path.write_text("device_id,observed_at,battery_mv,temperature_f\n"
                    "pump-17,2026-03-01T10:00Z,3600,32\n"
                    "pump-17,2026-03-01T11:00Z,3590,\n")
    report = fleet.ingest("readings", path)
    assert (report.n_rows, report.n_accepted) == (3, 3)
    got = fleet.query("select metric, value from readings order by observed_at, metric")
    assert got == [{"metric": "battery_voltage_v", "value": pytest.approx(3.6)},
                   {"metric": "temperature_c", "value": pytest.approx(0.0)},
                   {"metric": "battery_voltage_v", "value": pytest.approx(3.59)}]


BAD = [
    ({"observed_at": "2026-03-01T10:00Z", "metric": "battery_pct", "value": 1}, "missing_field"),
    ({"device_id": "d", "observed_at": "yesterday", "metric": "battery_pct", "value": 1},
     "bad_timestamp"),
    ({"device_id": "d", "observed_at": "1e15", "metric": "battery_pct", "value": 1},
     "bad_timestamp"),
    # Unix seconds beyond what SQL converts: once, they failed the whole batch
    ({"device_id": "d", "observed_at": 1e20, "metric": "battery_pct", "value": 1},
     "bad_timestamp"),
    ({"device_id": "d", "observed_at": "99999999999999999999", "metric": "battery_pct",
      "value": 1}, "bad_timestamp"),
    ({"device_id": "d", "observed_at": "2026-03-01T10:00Z", "metric": "battery_pct",
      "value": "lots"}, "bad_number"),
    ({"device_id": "d", "observed_at": "2026-03-01T10:00Z", "metric": "battery_pct",
      "value": "NaN"}, "nan_value"),
    ({"device_id": "d", "observed_at": "2026-03-01T10:00Z", "metric": "battery_pct",
      "value": 180.5}, "out_of_range"),
    ({"device_id": "d", "observed_at": "2026-03-01T10:00Z", "metric": "mood_pct", "value": 1},
     "unknown_metric"),
    # an id must be one value of bounded length (a list landed as its JSON text)
    ({"device_id": ["d"], "observed_at": "2026-03-01T10:00Z", "metric": "battery_pct",
      "value": 1}, "bad_value"),
    ({"device_id": "d" * 257, "observed_at": "2026-03-01T10:00Z", "metric": "battery_pct",
      "value": 1}, "bad_value"),
]


@pytest.mark.parametrize(("row", "reason"), BAD, ids=[r for _, r in BAD])
def test_each_invalid_row_is_quarantined_with_its_reason_and_the_rest_lands(fleet, row, reason):
    report = fleet.ingest("readings", ROWS + [row])
    assert report.n_accepted == 3
    assert report.quarantined_by_reason == {reason: 1}
    q = fleet.query("select kind, source, reason, detail, raw from quarantine")[0]
    assert (q["kind"], q["source"], q["reason"]) == ("readings", "list", reason)
    assert json.loads(q["raw"]) == row
    assert q["detail"]


def test_out_of_range_message_names_value_limits_device_and_time(fleet):
    fleet.ingest("readings", [{"device_id": "pump-17", "observed_at": "2026-03-01T10:00Z",
                               "metric": "battery_pct", "value": 180.5}])
    assert fleet.query("select detail from quarantine")[0]["detail"] == (
        "battery_pct must be within 0..100, got 180.5 for pump-17 at 2026-03-01T10:00:00Z")


def test_invalid_json_line_and_malformed_csv_row_are_quarantined(fleet, tmp_path):
    jl = tmp_path / "b.jsonl"
    jl.write_text(json.dumps(ROWS[0]) + "\n{\"device_id\": \"d\", trunc\n[1, 2]\n")
    r = fleet.ingest("readings", jl)
    assert (r.n_accepted, r.quarantined_by_reason) == (1, {"invalid_json": 2})
    csv = tmp_path / "b.csv"
    csv.write_text("device_id,observed_at,metric,value\n"
                   "pump-18,2026-03-01T10:00Z,battery_pct,5\n"
                   "pump-18,2026-03-01T11:00Z,battery_pct,5,extra,cols\n")
    r = fleet.ingest("readings", csv)
    assert (r.n_accepted, r.quarantined_by_reason) == (1, {"malformed_csv": 1})
    assert "extra,cols" in fleet.query(
        "select raw from quarantine where reason = 'malformed_csv'")[0]["raw"]


def test_unknown_device_policy(fleet):
    fleet.ingest("devices", [{"device_id": "pump-17", "device_type": "pump", "manufacturer": "A",
                              "model": "M", "site": "s", "zone": "z"}])
    accepted = fleet.ingest("readings", ROWS)                       # default: accept
    assert accepted.n_accepted == 3
    strict = Fleet(memory=True, unknown_devices="quarantine")
    strict.ingest("devices", [{"device_id": "pump-17", "device_type": "pump",
                               "manufacturer": "A", "model": "M", "site": "s", "zone": "z"}])
    r = strict.ingest("readings", ROWS)
    assert (r.n_accepted, r.quarantined_by_reason) == (2, {"unknown_device": 1})


def test_dimension_rows_upsert_and_validate_choices_and_bounds(fleet):
    base = {"device_id": "pump-17", "device_type": "pump", "manufacturer": "A", "model": "M",
            "site": "s", "zone": "z"}
    # any battery chemistry lands (issue #16: power_findings names one without a curve)
    r = fleet.ingest("devices", [base, dict(base, device_id="x", battery_chemistry="Zinc_Air"),
                                 dict(base, device_id="y", criticality=9),
                                 dict(base, device_id="z", is_reference="perhaps")])
    assert r.quarantined_by_reason == {"out_of_range": 1, "bad_boolean": 1}
    assert fleet.query("select battery_chemistry from devices where device_id = 'x'") == [
        {"battery_chemistry": "zinc_air"}]
    fleet.con.execute("delete from devices where device_id = 'x'")
    assert fleet.ingest("devices", [base]).n_duplicates == 1        # unchanged: absorbed
    r = fleet.ingest("devices", [dict(base, zone="z2", battery_chemistry="LI_SOCL2")])
    assert r.n_accepted == 1
    assert fleet.query("select zone, battery_chemistry, criticality from devices") == [
        {"zone": "z2", "battery_chemistry": "li_socl2", "criticality": 3}]


def test_a_field_a_row_does_not_give_keeps_its_stored_value(fleet, tmp_path):
    """Upsert kinds: a partial row changes only what it gives; a new key takes the defaults;
    the rows of one key in one batch apply in order; a row that changes nothing is a
    duplicate."""
    full = {"device_id": "em-5", "device_type": "env_monitor", "manufacturer": "Fenwick",
            "model": "EM-4", "site": "plant-a", "zone": "z1", "battery_chemistry": "mains"}
    fleet.ingest("devices", [full])
    path = tmp_path / "crit.csv"
    path.write_text("device_id,criticality,zone\nem-5,5,\nnew-1,4,\n")
    r = fleet.ingest("devices", path)
    assert (r.n_accepted, r.n_duplicates) == (2, 0)
    cols = "device_type, manufacturer, model, site, zone, battery_chemistry, criticality"
    assert fleet.query(f"select device_id, {cols} from devices order by device_id") == [
        dict(full, criticality=5),
        {"device_id": "new-1", "device_type": "unspecified", "manufacturer": "unknown",
         "model": "unknown", "site": "unknown", "zone": "unknown", "battery_chemistry": None,
         "criticality": 4}]
    again = fleet.ingest("devices", [{"device_id": "em-5", "criticality": 5}])
    assert (again.n_accepted, again.n_duplicates) == (0, 1)
    both = fleet.ingest("devices", [{"device_id": "g-1", "site": "s2", "zone": "z9"},
                                    {"device_id": "g-1", "criticality": 1}])
    assert (both.n_accepted, both.n_duplicates) == (1, 1)
    assert fleet.query("select site, zone, criticality from devices where device_id = 'g-1'"
                       ) == [{"site": "s2", "zone": "z9", "criticality": 1}]
    fleet.ingest("gateways", [{"gateway_id": "gw1", "site": "s", "capacity_devices": 50,
                               "removed_at": "2026-03-01T00:00Z"}])
    fleet.ingest("gateways", [{"gateway_id": "gw1", "site": "s", "capacity_devices": 50,
                               "zone": "z1"}])
    assert fleet.query("select site, zone, capacity_devices, removed_at is not null as gone "
                       "from gateways") == [
        {"site": "s", "zone": "z1", "capacity_devices": 50, "gone": True}]


@pytest.mark.parametrize("kind, row", [
    ("gateways", {"gateway_id": "gw1", "site": "s", "capacity_devices": 100}),
    ("firmware_reports", {"device_id": "d", "reported_at": "2026-03-01T10:00Z",
                          "version": "1.2.3"}),
    ("firmware_releases", {"manufacturer": "A", "model": "M", "version": "1.2.3",
                           "status": "target"}),
    ("update_events", {"campaign_id": "c1", "device_id": "d", "event_at": "2026-03-01T10:00Z",
                       "state": "succeeded"}),
    ("calibrations", {"device_id": "d", "calibrated_at": "2026-03-01T10:00Z",
                      "reference_value": 20.0, "measured_value": 20.4}),
    ("connections", {"device_id": "d", "gateway_id": "gw1", "event_at": "2026-03-01T10:00Z",
                     "event": "heard", "rssi_dbm": -90}),
    ("gateway_stats", {"gateway_id": "gw1", "observed_at": "2026-03-01T10:00Z", "cpu_pct": 40}),
    ("device_events", {"device_id": "d", "event_at": "2026-03-01T10:00Z", "event": "failure"}),
])
def test_every_kind_ingests_and_deduplicates(fleet, kind, row):
    assert fleet.ingest(kind, [row]).n_accepted == 1
    again = fleet.ingest(kind, [row])
    assert (again.n_accepted, again.n_duplicates) == (0, 1)


def test_a_whole_number_beyond_64_bits_is_quarantined_and_the_rest_lands(fleet, tmp_path):
    path = tmp_path / "gw.csv"
    path.write_text("gateway_id,site,capacity_devices\ngwA,s1,10\ngwB,s1,1e20\n"
                    "gwC,s1,99999999999999999999\ngwD,s1,+25\n")
    r = fleet.ingest("gateways", path)
    assert (r.n_accepted, r.quarantined_by_reason) == (2, {"bad_number": 2})
    assert fleet.query("select detail from quarantine order by detail")[0]["detail"] == (
        "capacity_devices must be a whole number of at most 18 digits, got 1e20 for gwB")


def test_a_metric_whose_range_is_empty_is_quarantined_and_named(fleet):
    """fleet.metrics.add refuses min >= max; the metrics kind reported such a row accepted,
    stored it, and never declared it."""
    r = fleet.ingest("metrics", [
        {"metric": "flow_lpm", "unit": "l/min", "min_value": 0, "max_value": 500},
        {"metric": "bad_range", "unit": "u", "min_value": 100, "max_value": 0},
        {"metric": "no_max", "unit": "u", "min_value": 1}])
    assert (r.n_accepted, r.quarantined_by_reason) == (1, {"out_of_range": 1,
                                                           "missing_field": 1})
    assert [q["detail"] for q in fleet.query("select detail from quarantine order by detail")] \
        == ["max_value is required and missing for no_max",
            "min_value must be below max_value, got 100 and 0 for bad_range"]
    assert fleet.query("select metric from metric_declarations") == [{"metric": "flow_lpm"}]


def test_report_counts_add_up_and_batches_are_recorded(fleet):
    report = fleet.ingest("readings", ROWS + ROWS + [BAD[0][0]], chunk_rows=2)
    assert report.n_rows == report.n_accepted + report.n_duplicates + report.n_quarantined == 7
    assert len(report.batch_ids) == 4
    batches = fleet.query("select sum(n_rows) as n, sum(n_accepted) as a from ingest_batches")[0]
    assert batches == {"n": 7, "a": 3}
    assert "3 accepted" in str(report)
    assert report.as_dict()["quarantined_by_reason"] == {"missing_field": 1}


def test_unreadable_sources_are_one_clear_error(fleet, tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        fleet.ingest("readings", tmp_path / "missing.csv")
    bad = tmp_path / "x.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(IngestError, match="cannot read"):
        fleet.ingest("readings", bad)
    other = tmp_path / "x.xlsx"
    other.write_bytes(b"")
    with pytest.raises(IngestError, match="unknown file type"):
        fleet.ingest("readings", other)
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(IngestError, match="no header"):
        fleet.ingest("readings", empty)
    with pytest.raises(IngestError, match="cannot ingest"):
        fleet.ingest("readings", 42)
    with pytest.raises(UnknownKind, match="unknown ingest kind 'reading'"):
        fleet.ingest("reading", ROWS)
    assert fleet.query("select count(*) as n from readings")[0]["n"] == 0


def test_large_file_streams_in_chunks(fleet, tmp_path):
    rows = [dict(ROWS[0], observed_at=f"2026-03-01T{h:02d}:00Z", value=float(h))
            for h in range(24)]
    path = write(tmp_path / "b.parquet", rows, "parquet")
    report = fleet.ingest("readings", path, chunk_rows=5)
    assert len(report.batch_ids) == 5 and report.n_accepted == 24
