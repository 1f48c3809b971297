"""Files as a careless user or a hostile sender writes them: a bad row affects
only itself, a bad header refuses the file before anything lands, and memory
stays bounded (the bounded part is measured in bench/ingest.py --hostile)."""

from __future__ import annotations

import json
import math

import pyarrow as pa
import pytest

from tests.foundation.cli_support import run
from tsfleet import Fleet, IngestError
from tsfleet.ingest.files import MAX_ROW_BYTES
from tsfleet.ingest.pipeline import MAX_COLUMNS, MAX_FIELDS

HEADER = b"device_id,observed_at,metric,value\n"


def row(i: int, device: str = "pump-1") -> bytes:
    at = f"2026-03-01T{i // 60 % 24:02d}:{i % 60:02d}:00Z"
    return f"{device},{at},battery_pct,{i % 100}\n".encode()


def n_readings(fleet: Fleet) -> int:
    return fleet.query("select count(*) as n from readings")[0]["n"]


def quarantined(fleet: Fleet) -> list[dict]:
    return fleet.query("select reason, detail, raw from quarantine order by all")


def test_invalid_utf8_byte_quarantines_its_row_and_every_other_row_lands(fleet, tmp_path):
    rows = [row(i) for i in range(300)]
    rows[150] = b"pump-\xff,2026-03-01T02:30:00Z,battery_pct,5\n"
    path = tmp_path / "latin.csv"
    path.write_bytes(HEADER + b"".join(rows))
    report = fleet.ingest("readings", path, chunk_rows=64)  # the bad row is mid-file
    assert (report.n_rows, report.n_accepted, report.n_quarantined) == (300, 299, 1)
    assert n_readings(fleet) == 299
    (q,) = quarantined(fleet)
    assert q["reason"] == "invalid_utf8"
    assert "row 152" in q["detail"] and "0xff" in q["detail"]   # line 152 of the file
    raw = json.loads(q["raw"])                                  # valid JSON, bytes kept
    assert raw["device_id"].encode("utf-8", "surrogateescape") == b"pump-\xff"


def test_invalid_utf8_in_json_lines_and_arrays_affects_only_that_row(fleet, tmp_path):
    good = json.dumps({"device_id": "d", "observed_at": "2026-03-01T10:00Z",
                       "metric": "battery_pct", "value": 5}).encode()
    bad = b'{"device_id": "d\xc3(", "observed_at": "2026-03-01T11:00Z", "metric": "battery_pct"}'
    (tmp_path / "a.jsonl").write_bytes(good + b"\n" + bad + b"\n")
    r = fleet.ingest("readings", tmp_path / "a.jsonl")
    assert (r.n_accepted, dict(r.quarantined_by_reason)) == (1, {"invalid_utf8": 1})
    (tmp_path / "a.json").write_bytes(b"[" + bad + b", " + good.replace(b"10:00", b"12:00")
                                      + b"]")
    r = fleet.ingest("readings", tmp_path / "a.json")
    assert (r.n_accepted, dict(r.quarantined_by_reason)) == (1, {"invalid_utf8": 1})
    for q in quarantined(fleet):
        assert json.loads(q["raw"])["device_id"].encode("utf-8", "surrogateescape") == b"d\xc3("


def test_header_that_cannot_be_read_refuses_the_file_before_anything_lands(fleet, tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes(b"device_id,observ\xe9d_at,metric,value\n" + row(1))
    with pytest.raises(IngestError, match=r"header line is not valid UTF-8 \(byte 0xe9"):
        fleet.ingest("readings", path)
    assert n_readings(fleet) == 0 and quarantined(fleet) == []


def test_trailing_comma_in_header_is_an_unnamed_column_not_a_refused_file(fleet, tmp_path):
    path = tmp_path / "trailing.csv"
    path.write_bytes(b"device_id,observed_at,metric,value,\n"
                     b"p,2026-03-01T10:00Z,battery_pct,5,\n"
                     b"p,2026-03-01T11:00Z,battery_pct,6,surprise\n")
    r = fleet.ingest("readings", path)
    assert (r.n_rows, r.n_accepted, dict(r.quarantined_by_reason)) == (2, 1, {"unnamed_field": 1})
    (q,) = quarantined(fleet)
    assert "column 5 holds a value but its header is empty" in q["detail"]
    assert json.loads(q["raw"])[""] == "surprise"


def test_duplicated_column_quarantines_rows_where_the_two_disagree(fleet, tmp_path):
    path = tmp_path / "dup.csv"
    path.write_bytes(b"device_id,observed_at,metric,value,value\n"
                     b"p,2026-03-01T10:00Z,battery_pct,5,5\n"
                     b"p,2026-03-01T11:00Z,battery_pct,6,\n"
                     b"p,2026-03-01T12:00Z,battery_pct,7,70\n")
    r = fleet.ingest("readings", path)
    assert (r.n_accepted, dict(r.quarantined_by_reason)) == (2, {"duplicate_field": 1})
    (q,) = quarantined(fleet)
    assert "value is named twice in the header (columns 4 and 5)" in q["detail"]
    assert q["raw"] == ('{"device_id": "p", "observed_at": "2026-03-01T12:00Z", '
                        '"metric": "battery_pct", "value": "7", "value": "70"}')


def test_field_over_the_row_limit_is_quarantined_and_the_file_lands(fleet, tmp_path):
    giant = b"p," + b"x" * (MAX_ROW_BYTES + 10) + b",battery_pct,5\n"
    quoted = b'p,"' + b"y" * (MAX_ROW_BYTES + 10) + b'",battery_pct,5\n'
    path = tmp_path / "giant.csv"
    path.write_bytes(HEADER + row(1) + giant + row(2) + quoted + row(3))
    r = fleet.ingest("readings", path)
    assert (r.n_accepted, dict(r.quarantined_by_reason)) == (3, {"row_too_large": 2})
    for q in quarantined(fleet):
        assert "is longer than the limit of 16.0 MiB" in q["detail"]
        assert json.loads(q["raw"])["n_bytes"] > MAX_ROW_BYTES
        assert len(q["raw"]) < 10_000


def test_unclosed_quote_costs_one_line_not_the_rest_of_the_file(fleet, tmp_path):
    path = tmp_path / "quote.csv"
    path.write_bytes(HEADER + row(1) + b'p,"2026-03-01T10:00Z,battery_pct,5\n'
                     + b"".join(row(i) for i in range(2, 40)))
    r = fleet.ingest("readings", path)
    # The quote runs to the end of the file: that row's line is quarantined and
    # reading resumes on the next line.
    assert (r.n_accepted, dict(r.quarantined_by_reason)) == (39, {"malformed_csv": 1})
    assert "a quote is never closed" in quarantined(fleet)[0]["detail"]


def test_json_line_with_too_many_keys_is_quarantined_alone(fleet, tmp_path):
    good = [{"device_id": "d", "observed_at": f"2026-03-01T1{i}:00Z", "metric": "battery_pct",
             "value": i} for i in range(3)]
    hostile = {"device_id": "d", "observed_at": "2026-03-01T09:00Z"}
    hostile |= {f"k{i}": i for i in range(MAX_FIELDS + 5)}
    path = tmp_path / "keys.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [good[0], hostile, good[1], good[2]]))
    r = fleet.ingest("readings", path)
    assert (r.n_rows, r.n_accepted, dict(r.quarantined_by_reason)) == (
        4, 3, {"too_many_fields": 1})
    assert f"an object of {MAX_FIELDS + 7} fields" in quarantined(fleet)[0]["detail"]


def test_wide_json_lines_read_a_bounded_number_of_columns(fleet, tmp_path):
    # Each row is valid on its own, but together they name more metrics than a
    # chunk turns into columns: the rows with the rarest names are quarantined.
    rows = [{"device_id": "d", "observed_at": "2026-03-01T10:00Z", "battery_pct": 50}] * 2
    rows += [{"device_id": "d", "observed_at": "2026-03-01T11:00Z", f"m{i}": 1}
             for i in range(MAX_COLUMNS)]
    rows += [{"device_id": "d", "": 3, "observed_at": "2026-03-01T12:00Z", "battery_pct": 5}]
    path = tmp_path / "wide.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    r = fleet.ingest("readings", path)
    assert r.quarantined_by_reason["unnamed_field"] == 1
    assert r.quarantined_by_reason["too_many_fields"] == 3  # the 3 rarest of 1,025 names
    assert r.n_accepted == 1 and r.n_duplicates == 1
    assert r.n_rows == r.n_accepted + r.n_duplicates + r.n_quarantined


def test_json_array_is_streamed_and_a_broken_element_affects_only_itself(fleet, tmp_path):
    good = [json.dumps({"device_id": "d", "observed_at": f"2026-03-01T{h:02d}:00Z",
                        "metric": "battery_pct", "value": h}) for h in range(20)]
    broken = '{"device_id": "d", "observed_at": [1, "]"], oops}'
    giant = json.dumps({"device_id": "d", "pad": "z" * (MAX_ROW_BYTES + 5)})
    text = "[" + ", ".join(good[:7] + [broken] + good[7:14] + [giant, "17"] + good[14:]) + "]"
    path = tmp_path / "array.json"
    path.write_text(text)
    r = fleet.ingest("readings", path, chunk_rows=4)
    assert r.n_accepted == 20 and len(r.batch_ids) >= 5
    assert dict(r.quarantined_by_reason) == {"invalid_json": 2, "row_too_large": 1}
    assert n_readings(fleet) == 20


def test_nan_is_named_in_the_detail_and_raw_stays_json(fleet, tmp_path):
    table = pa.table({"device_id": ["d", "d"], "observed_at": ["2026-03-01T10:00Z"] * 2,
                      "metric": ["battery_pct", "temperature_c"],
                      "value": [math.nan, math.inf]})
    fleet.ingest("readings", table)
    path = tmp_path / "nan.jsonl"
    path.write_text('{"device_id": "e", "observed_at": "2026-03-01T10:00Z", '
                    '"metric": "battery_pct", "value": NaN}\n')
    fleet.ingest("readings", path)
    rows = quarantined(fleet)
    assert [r["reason"] for r in rows] == ["nan_value"] * 3
    details = sorted(r["detail"].split(" for ")[0] for r in rows)
    assert details == ["value must be a finite number, got NaN",
                       "value must be a finite number, got inf",
                       "value must be a finite number, got nan"]
    for r in rows:
        json.loads(r["raw"], parse_constant=lambda c: pytest.fail(f"{c} in raw"))


# -- the CLI: wrong columns, nothing accepted, each bad line once ----------------------

def test_wrong_columns_are_refused_whole_with_expected_and_found(tmp_path, capsys):
    db = str(tmp_path / "s.duckdb")
    path = tmp_path / "wrongcols.csv"
    path.write_text("foo,bar,baz\n1,2,3\n4,5,6\n")
    code, out, err = run(capsys, "ingest", "readings", str(path), "--db", db)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "has the columns foo, bar, baz" in err
    assert "needs device_id, observed_at, metric, value" in err
    readings = tmp_path / "readings.csv"
    readings.write_bytes(HEADER + row(1) + row(2))
    code, out, err = run(capsys, "ingest", "devices", str(readings), "--db", db)
    assert code == 2 and "only device_id is a devices field" in err
    with Fleet(db, read_only=True) as f:
        assert f.query("select count(*) as n from quarantine")[0]["n"] == 0
        assert f.query("select count(*) as n from ingest_batches")[0]["n"] == 0


def test_a_run_with_nothing_accepted_exits_2_and_each_bad_line_is_quarantined_once(
        tmp_path, capsys):
    db = str(tmp_path / "s.duckdb")
    path = tmp_path / "wide.csv"  # wide readings, both lines without a device
    path.write_text("device_id,observed_at,battery_pct,temperature_c,rssi_dbm\n"
                    ",2026-03-01T10:00Z,50,20,-70\n,2026-03-01T11:00Z,49,20,-71\n")
    code, out, err = run(capsys, "ingest", "readings", str(path), "--db", db)
    assert code == 2
    assert "2 rows, 0 accepted, 0 duplicates, 2 quarantined (missing_field: 2)" in " ".join(
        line.strip() for line in out.splitlines())       # wrapped at 120 columns
    assert err.strip() == ("tsfleet: error: nothing was accepted as readings: 2 rows read, "
                           "all quarantined (see the quarantine table)")
    good = tmp_path / "good.csv"
    good.write_bytes(HEADER + row(1))
    assert run(capsys, "ingest", "readings", str(good), "--db", db)[0] == 0
    assert run(capsys, "ingest", "readings", str(good), "--db", db)[0] == 0  # all duplicates


def test_a_json_key_given_twice_quarantines_that_row_not_the_first_value_silently(
        fleet, tmp_path):
    path = tmp_path / "dupkeys.jsonl"
    path.write_text('{"device_id": "d", "observed_at": "2026-03-01T10:00Z", '
                    '"metric": "battery_pct", "value": 5}\n'
                    '{"device_id": "d", "observed_at": "2026-03-01T11:00Z", '
                    '"metric": "battery_pct", "value": 5, "value": 50}\n')
    r = fleet.ingest("readings", path)
    assert (r.n_rows, r.n_accepted, dict(r.quarantined_by_reason)) == (
        2, 1, {"duplicate_field": 1})
    assert quarantined(fleet)[0]["detail"] == "field value appears more than once in the object"
