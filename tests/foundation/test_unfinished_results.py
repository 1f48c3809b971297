"""DuckDB 2 refuses relation work (``con.sql``, ``con.register``) on a connection that
holds an unfinished result of ``execute()``: a ``fetchone()`` leaves one. The package
reads every result whole, so no call leaves the shared connection blocked."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from tsfleet import Fleet

PACKAGE = Path(__file__).resolve().parents[2] / "tsfleet"


def test_relation_work_after_the_calls_that_read_one_row(tmp_path):
    db = str(tmp_path / "s.duckdb")
    with Fleet(db) as fleet:
        fleet.ingest("readings", [{"device_id": "d-1", "observed_at": "2026-03-01T10:00Z",
                                   "metric": "battery_pct", "value": 87}])
    with Fleet(db) as fleet:  # opening checks the views' checksum
        assert fleet.con.sql("select count(*) from readings").fetchall() == [(1,)]
        fleet.info()
        fleet.con.register("t_probe", pa.table({"a": [1]}))
        assert fleet.con.sql("select a from t_probe").fetchall() == [(1,)]
        fleet.con.unregister("t_probe")
        fleet.analyze()
        assert fleet.con.sql("select 1").fetchall() == [(1,)]


def test_the_package_never_reads_half_a_result():
    found = [f"{p.relative_to(PACKAGE.parent)}:{n}" for p in PACKAGE.rglob("*.py")
             for n, line in enumerate(p.read_text().splitlines(), 1)
             if re.search(r"\.fetchone\(\)|\.fetchmany\(", line)]
    assert found == []
