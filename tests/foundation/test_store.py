"""The store: migrations, views, read-only opening, the entry object."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tsfleet import Fleet, ReadOnlyStore, StoreError
from tsfleet import store as store_mod


def test_new_store_applies_every_migration_once(tmp_path):
    path = tmp_path / "plant.duckdb"
    with Fleet(path) as f:
        applied = f.applied_migrations
        versions = [r["version"] for r in f.query("select version from schema_version order by 1")]
    assert applied == [m.name for m in store_mod.sql_files("tables")]
    assert versions == [m.number for m in store_mod.sql_files("tables")]
    with Fleet(path) as f:  # reopening re-runs nothing
        assert f.applied_migrations == []
        assert f.query("select count(*) as n from schema_version")[0]["n"] == len(versions)


def test_pending_migration_is_applied_to_an_existing_file(tmp_path):
    path = tmp_path / "plant.duckdb"
    with Fleet(path) as f:
        f.ingest("readings", [{"device_id": "d1", "observed_at": "2026-01-01T00:00Z",
                               "metric": "battery_pct", "value": 50}])
        # Pretend the newest migration that creates tables without moving rows into them
        # was never applied (a file from an older release; 950 moves the rows of a table
        # it drops, test_migrations.py upgrades a store through it).
        newest = [m for m in store_mod.sql_files("tables")
                  if re.search(r"create table \w+\s*\(", m.text, flags=re.I)
                  and not re.search(r"insert into \w+\s+select", m.text, flags=re.I)][-1]
        f.con.execute("delete from schema_version where version = ?", [newest.number])
        for name in re.findall(r"create table (\w+)\s*\(", newest.text, flags=re.I):
            f.con.execute(f"drop table {name}")
        for name in re.findall(r"create sequence (\w+)", newest.text, flags=re.I):
            f.con.execute(f"drop sequence {name}")
    with Fleet(path) as f:
        assert f.applied_migrations == [newest.name]
        assert f.query("select count(*) as n from readings")[0]["n"] == 1  # data kept


def test_read_only_open_reads_and_refuses_writes(tmp_path):
    path = tmp_path / "plant.duckdb"
    with Fleet(path) as f:
        f.ingest("readings", [{"device_id": "d1", "observed_at": "2026-01-01T00:00Z",
                               "metric": "battery_pct", "value": 50}])
    with Fleet(path, read_only=True) as ro:
        assert ro.query("select value from readings") == [{"value": 50.0}]
        with pytest.raises(ReadOnlyStore, match="read-only"):
            ro.ingest("readings", [])


def test_read_only_open_of_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no such file"):
        Fleet(tmp_path / "nope.duckdb", read_only=True)


def test_read_only_refuses_a_store_with_pending_migrations(tmp_path):
    path = tmp_path / "plant.duckdb"
    with Fleet(path) as f:
        f.con.execute("delete from schema_version where version = (select max(version) "
                      "from schema_version)")
    with pytest.raises(StoreError, match="needs migrations"):
        Fleet(path, read_only=True)


def test_memory_and_path_are_exclusive():
    with pytest.raises(StoreError):
        Fleet("x.duckdb", memory=True)
    with pytest.raises(StoreError):
        Fleet(memory=True, read_only=True)


def test_views_are_recreated_when_their_files_change(fleet):
    fleet.con.execute("update schema_views set checksum = 'old'")
    assert store_mod.views_outdated(fleet.con)
    store_mod.migrate(fleet.con)
    assert not store_mod.views_outdated(fleet.con)
    names = {r["name"] for r in fleet.query("select name from published_objects")}
    assert names == {f.name for f in store_mod.sql_files("views")}


def test_every_table_has_a_grain_comment(fleet):
    rows = fleet.query("select table_name, comment from duckdb_tables() "
                       "where schema_name = 'main' and not temporary")
    missing = [r["table_name"] for r in rows if not (r["comment"] or "").startswith("Grain:")]
    assert missing == []


def test_no_extension_is_downloaded(fleet):
    settings = {r["name"]: r["value"] for r in fleet.query(
        "select name, value from duckdb_settings() where name like 'auto%extensions'")}
    assert settings == {"autoinstall_known_extensions": "false",
                        "autoload_known_extensions": "false"}


def test_quote_ident_escapes_and_rejects_empty():
    assert store_mod.quote_ident('a"b') == '"a""b"'
    with pytest.raises(StoreError):
        store_mod.quote_ident("")


def test_sql_files_ship_inside_the_wheel(tmp_path):
    """An installed wheel finds sql/ without the checkout."""
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                          "-q", "-w", str(tmp_path), "."], capture_output=True, text=True)
    if out.returncode != 0 and "hatchling" in out.stderr:
        pytest.skip("hatchling not importable for a no-isolation build")
    assert out.returncode == 0, out.stderr
    import zipfile
    wheel = next(tmp_path.glob("tsfleet-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "tsfleet/sql/tables/010_meta.sql" in names
    assert any(n.startswith("tsfleet/sql/views/") for n in names) or not store_mod.sql_files(
        "views")


def test_internal_helper_views_are_left_out_of_the_catalog(fleet):
    internal = {r["name"] for r in fleet.query(
        "select name from published_objects where kind = 'internal_view'")}
    assert {"power_refresh_rows", "battery_day_pending", "temperature_day_pending"} <= internal
    listed = {r["name"] for r in fleet.query("select name from catalog")}
    assert not internal & listed
    assert {"battery_state", "readings_daily", "power_findings"} <= listed
    # Every internal view says why in its file's header.
    for f in store_mod.sql_files("views"):
        assert (f.name in internal) == bool(f.header["internal"]), f.name


def test_a_transaction_opened_inside_another_joins_it():
    con = store_mod.connect(None)
    con.execute("create table t (x int)")
    with store_mod.transaction(con):
        con.execute("insert into t values (1)")
        with store_mod.transaction(con):
            con.execute("insert into t values (2)")
        # the inner block committed nothing of its own: a rollback now takes both rows
        con.execute("rollback")
        con.execute("begin transaction")
    assert con.execute("select count(*) from t").fetchall()[0][0] == 0


def test_a_failing_joined_block_rolls_the_whole_transaction_back_and_it_cannot_commit():
    con = store_mod.connect(None)
    con.execute("create table t (x int primary key)")
    with pytest.raises(StoreError, match="rolled back"):
        with store_mod.transaction(con):
            con.execute("insert into t values (1)")
            try:
                with store_mod.transaction(con):
                    con.execute("insert into t values (1)")  # a key violation
            except Exception:  # noqa: BLE001 - swallowed: the outer block must still refuse
                pass
            con.execute("select 1")  # runs outside any transaction now
    assert con.execute("select count(*) from t").fetchall()[0][0] == 0
    with store_mod.transaction(con):  # and the connection is usable again
        con.execute("insert into t values (2)")
    assert con.execute("select x from t").fetchall() == [(2,)]
