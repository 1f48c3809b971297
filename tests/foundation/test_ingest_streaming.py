"""The streaming readers against the general ones (json.load, csv.reader), with read
blocks and row limits made tiny so that every element, quote and escape crosses a
block boundary somewhere."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsfleet.ingest import chunks
from tsfleet.ingest import files as files_mod

TEXT = st.text(alphabet=st.sampled_from('ab"\\,[]{}\n é€😀'), max_size=12)
OBJ = st.dictionaries(st.sampled_from(["device_id", "metric", "x", "y"]),
                      st.one_of(TEXT, st.integers(-5, 5), st.lists(TEXT, max_size=3)),
                      max_size=4)
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def tiny_blocks(monkeypatch):
    monkeypatch.setattr(files_mod, "READ_BYTES", 7)


def lines_of(path, chunk_rows=3):
    out, bad = [], []
    for c in chunks(path, chunk_rows):
        out += [json.loads(v) for v in c.table.column("_line").to_pylist()]
        bad += c.pre_quarantined
    return out, bad


@SETTINGS
@given(st.lists(OBJ, max_size=12), st.sampled_from(["", " ", "\n  "]))
def test_a_streamed_json_array_gives_the_elements_json_load_gives(tmp_path, tiny_blocks,
                                                                  rows, sep):
    path = tmp_path / "a.json"
    path.write_text(sep + "[" + ("," + sep).join(json.dumps(r, ensure_ascii=False)
                                                 for r in rows) + sep + "]" + sep)
    got, bad = lines_of(path)
    assert got == json.loads(path.read_text()) and bad == []


@SETTINGS
@given(st.lists(OBJ, min_size=1, max_size=8), st.integers(0, 7))
def test_an_array_element_over_the_limit_is_the_only_one_quarantined(tmp_path, monkeypatch,
                                                                     rows, at):
    monkeypatch.setattr(files_mod, "READ_BYTES", 5)
    monkeypatch.setattr(files_mod, "MAX_ROW_BYTES", 200)
    at = min(at, len(rows))
    giant = {"device_id": "g", "pad": ["[\\\"{" * 20] * 5}
    text = "[" + ", ".join(json.dumps(r) for r in rows[:at] + [giant] + rows[at:]) + "]"
    path = tmp_path / "g.json"
    path.write_text(text)
    got, bad = lines_of(path)
    assert got == [r for r in rows if len(json.dumps(r)) <= 200]
    assert [b[0] for b in bad].count("row_too_large") == 1 + len(rows) - len(got)


def test_a_broken_array_element_is_skipped_to_its_end(tmp_path, tiny_blocks):
    good = [{"device_id": "d", "n": i} for i in range(3)]
    path = tmp_path / "b.json"
    path.write_text('[{"device_id": "d", "n": 0}, {"a": "x\\"]}", "b": [1, 2} ], oops, '
                    '"s\\"tr", {"device_id": "d", "n": 1}, {"device_id": "d", "n": 2}]')
    got, bad = lines_of(path)
    assert [g for g in got if isinstance(g, dict)] == good
    assert [b[0] for b in bad] == ["invalid_json", "invalid_json"]



def test_an_element_nested_too_deeply_is_the_only_one_quarantined(tmp_path):
    """Python's JSON parser stops at about a thousand levels (RecursionError): that element
    is quarantined, one line, and the rows either side of it land."""
    deep = '{"x": ' + "[" * 5000 + "]" * 5000 + "}"
    path = tmp_path / "deep.json"
    path.write_text('[{"device_id": "d", "n": 0}, ' + deep + ', {"device_id": "d", "n": 1}]')
    got, bad = lines_of(path)
    assert got == [{"device_id": "d", "n": 0}, {"device_id": "d", "n": 1}]
    assert [(b[0], b[1]) for b in bad] == [
        ("invalid_json", "element 2 of the array is nested too deeply to read")]

CELL = st.text(alphabet=st.sampled_from('ab", \né\r'), max_size=6)


@SETTINGS
@given(st.lists(st.tuples(CELL, CELL, CELL), max_size=10), st.booleans())
def test_streamed_csv_gives_the_rows_csv_reader_gives(tmp_path, tiny_blocks, rows, final_nl):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(["a", "b", "c"])
    w.writerows(rows)
    text = buf.getvalue() if final_nl else buf.getvalue()[:-2]
    path = tmp_path / "c.csv"
    path.write_bytes(text.encode())
    got = []
    for c in chunks(path, 4):
        assert c.pre_quarantined == []
        got += [tuple(v or "" for v in r.values()) for r in c.table.to_pylist()]
    want = [tuple(r) for r in csv.reader(io.StringIO(text, newline=""))][1:]
    assert got == want


def test_a_json_line_over_the_limit_is_quarantined_with_its_size(tmp_path, monkeypatch):
    monkeypatch.setattr(files_mod, "MAX_ROW_BYTES", 100)
    monkeypatch.setattr(files_mod, "READ_BYTES", 16)
    path = tmp_path / "l.jsonl"
    path.write_text('{"a": 1}\n{"pad": "' + "z" * 500 + '"}\n{"a": 2}\n')
    got, bad = lines_of(path)
    assert got == [{"a": 1}, {"a": 2}]
    (reason, detail, raw) = bad[0]
    assert detail.startswith("line 2: a row of 512 bytes is longer than the limit of 100 bytes")
    assert reason == "row_too_large" and json.loads(raw)["n_bytes"] == 512  # with its newline
