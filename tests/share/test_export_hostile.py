"""The export against wrong clocks and killed runs: it visits only days with data,
and the staging a killed export leaves behind is cleaned by the next one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tsfleet import Fleet

ROWS = [
    {"device_id": "pump-1", "observed_at": at, "metric": "battery_pct", "value": 50}
    for at in ("1990-01-02T03:00Z", "2026-06-01T10:00Z", "2026-06-01T11:00Z",
               "2026-06-02T10:00Z", "2099-12-30T23:00Z")
]


def dates(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "readings").iterdir())


def test_two_wrong_clocks_cost_two_partitions_not_a_walk_over_a_century(fleet, tmp_path):
    fleet.ingest("readings", ROWS)
    out = tmp_path / "lake"
    report = fleet.export(out)  # 1990-01-02 .. 2099-12-30: 40,176 days of range
    assert report.n_readings == 5 and report.n_partitions == 4
    assert dates(out) == ["date=1990-01-02", "date=2026-06-01", "date=2026-06-02",
                          "date=2099-12-30"]
    # A day of the range without readings any more is still removed on re-export.
    fleet.query("delete from readings where observed_at < '2000-01-01'")
    fleet.export(out, since="1990-01-01", until="2030-01-01")
    assert dates(out) == ["date=2026-06-01", "date=2026-06-02", "date=2099-12-30"]


KILLED_EXPORT = """
import os, sys
import tsfleet.share.export as export
from tsfleet import Fleet
export._copy_tables = lambda *a: os._exit(9)   # die after the readings are staged
Fleet(sys.argv[1]).export(sys.argv[2])
"""


def test_the_staging_of_a_killed_export_is_cleaned_by_the_next(tmp_path):
    db, out = tmp_path / "s.duckdb", tmp_path / "lake"
    with Fleet(db) as fleet:
        fleet.ingest("readings", ROWS[1:4])
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    done = subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(db), str(out)], env=env,
                          timeout=120)
    assert done.returncode == 9
    left = list(out.glob(".staging-*"))
    assert len(left) == 1 and (left[0] / "readings").is_dir()
    running = out / f".staging-{os.getppid()}-0123456789ab"  # a live process: left alone
    running.mkdir()
    with Fleet(db) as fleet:
        report = fleet.export(out)
    assert report.n_readings == 3
    assert list(out.glob(".staging-*")) == [running]
