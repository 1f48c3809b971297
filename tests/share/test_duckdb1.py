"""The v1.0.0 snapshot opens, with every view working, in the lowest DuckDB 1.x that
the README promises (:data:`LOWEST`); the default one does not.

DuckDB 1.0.0 opens the file too, but views that use ``getvariable`` or
``arg_max`` by a BOOLEAN or STRUCT (added in 1.1) fail there, so the README states
1.1.0 and this test runs exactly that version; a test keeps README, ``.ci/run``
and this file on one version.

The 1.x reader runs in its own virtual environment, because DuckDB 1.x and 2.x
cannot share one. It is found, in this order, at ``$TSFLEET_DUCKDB1_PYTHON``,
at ``.venv-duckdb1/bin/python`` in the repository (what ``.ci/run`` creates), or
created once by this test in ``~/.cache/tsfleet/venv-duckdb1`` with pip (the
test is skipped, saying why, when PyPI cannot be reached). A candidate of another
version is passed over.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tsfleet" / "venv-duckdb1"
#: The lowest DuckDB that reads a v1.0.0 snapshot with all its views (README, .ci/run).
LOWEST = "1.1.0"
REQUIREMENT = f"duckdb=={LOWEST}"


def _version(python: Path) -> str | None:
    try:
        out = subprocess.run([str(python), "-c", "import duckdb; print(duckdb.__version__)"],
                             capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.fixture(scope="session")
def duckdb1_python() -> Path:
    candidates = [Path(p) for p in [os.environ.get("TSFLEET_DUCKDB1_PYTHON")] if p]
    candidates += [REPO / ".venv-duckdb1" / "bin" / "python", CACHE / "bin" / "python"]
    for python in candidates:
        if python.exists() and _version(python) == LOWEST:
            return python
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(CACHE)], check=True,
                       capture_output=True, timeout=120)
        pip = subprocess.run([str(CACHE / "bin" / "python"), "-m", "pip", "install", "-q",
                              REQUIREMENT], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot create a venv for the DuckDB 1.x reader: {exc}")
    if pip.returncode != 0:
        pytest.skip(f"pip could not install {REQUIREMENT!r} (no PyPI?): "
                    f"{pip.stderr.strip().splitlines()[-1:]}; set TSFLEET_DUCKDB1_PYTHON")
    python = CACHE / "bin" / "python"
    assert _version(python) == LOWEST, _version(python)
    return python


_READER = textwrap.dedent("""
    import json, sys, duckdb

    def run(con, view):
        # every row and column computed in DuckDB and returned as one text: a reader of
        # the file needs no Python module for its types (a timestamptz fetched into Python
        # needs pytz, which this venv lacks: the view itself runs either way)
        try:
            con.execute(f'select md5(coalesce(string_agg(t::varchar, chr(10)), \'\')) '
                        f'from "{view}" as t').fetchall()
            return "ok"
        except Exception as exc:
            return str(exc).splitlines()[0]

    try:
        con = duckdb.connect(sys.argv[1], read_only=True)
    except Exception as exc:
        print(json.dumps({"version": duckdb.__version__, "error": str(exc).splitlines()[0]}))
        raise SystemExit(0)
    print(json.dumps({
        "version": duckdb.__version__,
        "readings": con.execute("select count(*) from readings").fetchone()[0],
        "catalog": con.execute("select count(*) from catalog where grain is not null "
                               "and schema_name = 'main'").fetchone()[0],
        "columns": con.execute("select count(*) from catalog_columns").fetchone()[0],
        "view": con.execute("select sum(n_readings) from fleet_daily_counts").fetchone()[0],
        "info": con.execute("select storage_version from snapshot_info").fetchone()[0],
        "views": {v: run(con, v) for (v,) in con.execute(
            "select name from catalog where kind = 'view'").fetchall()},
    }))
""")


def _read(python: Path, path: Path, tmp_path: Path) -> dict:
    script = tmp_path / "read1x.py"
    script.write_text(_READER)
    out = subprocess.run([str(python), str(script), str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_duckdb_1x_reads_the_v1_snapshot_and_refuses_the_default_one(live, tmp_path,
                                                                    duckdb1_python):
    live.con.execute("create view fleet_daily_counts as select cast(observed_at as date) as day,"
                     " count(*) as n_readings from readings group by all")
    live.con.execute("insert into published_objects values ('fleet_daily_counts', 'view', "
                     "'one row per day', 'Readings per day.', '899_fleet_daily_counts.sql')")
    n = live.query("select count(*) as n from readings")[0]["n"]
    n_main = live.query("select count(*) as n from catalog where schema_name = 'main'")[0]["n"]

    published = {r["name"] for r in live.query(
        "select name from published_objects where kind = 'view'")}
    v1 = live.snapshot(tmp_path / "v1.duckdb", storage_version="v1.0.0")
    got = _read(duckdb1_python, Path(v1.path), tmp_path)
    assert got["version"] == LOWEST
    # every view of every domain is kept as a view and runs in DuckDB 1.x
    assert set(got["views"]) == published
    assert {v: e for v, e in got["views"].items() if e != "ok"} == {}
    # everything in main has a grain there too, plus the snapshot_info table
    assert (got["readings"], got["view"], got["info"], got["catalog"]) == (
        n, n, "v1.0.0", n_main + 1)
    assert got["columns"] > 100

    pinned = live.snapshot(tmp_path / "pinned.duckdb", storage_version="v1.0.0",
                           views="materialize")
    got = _read(duckdb1_python, Path(pinned.path), tmp_path)
    assert (got["readings"], got["view"], set(got["views"])) == (
        n, n, {"catalog", "catalog_columns"})

    latest = live.snapshot(tmp_path / "latest.duckdb")
    refused = _read(duckdb1_python, Path(latest.path), tmp_path)
    assert "version number" in refused["error"]


def test_readme_ci_and_this_test_state_one_lowest_version():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"DuckDB {LOWEST} or later" in readme
    assert f"'{REQUIREMENT}'" in (REPO / ".ci" / "run").read_text(encoding="utf-8")
