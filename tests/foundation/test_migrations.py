"""Migrations can be trusted: never edited once released, and old stores upgrade whole."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest

from tsfleet import Fleet, StoreError
from tsfleet import store as store_mod

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "upgrade"


def _fixture_tool():
    spec = importlib.util.spec_from_file_location("upgrade_fixture",
                                                  ROOT / "scripts" / "upgrade_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_migration_matches_the_checksum_recorded_at_release():
    lock = json.loads((ROOT / "sql" / "migrations.lock.json").read_text())["migrations"]
    files = {f.path.name: f for f in store_mod.sql_files("tables")}
    unrecorded = sorted(set(files) - set(lock))
    assert not unrecorded, (f"new migrations not in sql/migrations.lock.json: {unrecorded}; "
                            "run `python scripts/migrations_lock.py`")
    removed = sorted(set(lock) - set(files))
    assert not removed, f"released migrations deleted or renamed: {removed}"
    edited = sorted(name for name, f in files.items()
                    if hashlib.sha256(f.text.encode()).hexdigest() != lock[name]["sha256"])
    assert not edited, f"released migrations edited (add a new one instead): {edited}"


def test_the_lock_script_refuses_an_edited_migration(tmp_path):
    # A copy of the project's sql/ with one released migration edited.
    root = tmp_path / "proj"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "migrations_lock.py").write_text(
        (ROOT / "scripts" / "migrations_lock.py").read_text())
    (root / "sql" / "tables").mkdir(parents=True)
    (root / "sql" / "migrations.lock.json").write_text(
        (ROOT / "sql" / "migrations.lock.json").read_text())
    for f in store_mod.sql_files("tables"):
        (root / "sql" / "tables" / f.path.name).write_text(f.text)
    meta = root / "sql" / "tables" / "010_meta.sql"
    meta.write_text(meta.read_text() + "\n-- edited\n")
    run = subprocess.run(["python3", str(root / "scripts" / "migrations_lock.py")],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert "010_meta.sql" in run.stdout


def test_opening_a_store_whose_applied_migration_was_edited_names_the_file(tmp_path):
    path = tmp_path / "plant.duckdb"
    with Fleet(path) as f:
        f.con.execute("update schema_version set checksum = 'deadbeef' where version = 50")
    with pytest.raises(StoreError, match=r"050_facts\.sql was edited"):
        Fleet(path)
    with pytest.raises(StoreError, match=r"050_facts\.sql was edited"):
        Fleet(path, read_only=True)


def test_a_store_that_applied_an_early_text_of_an_edited_migration_opens(tmp_path):
    """Stores made before the lock existed recorded the early texts of 102 and 300."""
    path = tmp_path / "plant.duckdb"
    lock = store_mod.migrations_lock()
    with Fleet(path) as f:
        for version, name in ((102, "102_power_day_stats.sql"), (300, "300_calibration.sql")):
            f.con.execute("update schema_version set checksum = ? where version = ?",
                          [lock[name]["superseded"][0], version])
    with Fleet(path) as f:
        assert f.applied_migrations == []


@pytest.mark.parametrize("release", sorted(p.name for p in FIXTURES.iterdir()))
def test_a_store_of_a_previous_release_upgrades_without_losing_rows(tmp_path, release):
    """A store written by the release's own code (tests/fixtures/upgrade/<release>, made by
    scripts/upgrade_fixture.py) migrates, keeps every row, gives the same answers from
    the views that depend on the readings alone, and every analysis runs on it."""
    tool = _fixture_tool()
    path = tmp_path / "old.duckdb"
    answers = tool.load(FIXTURES / release, path)
    with Fleet(path) as f:
        assert f.applied_migrations, "the fixture is older than the code: migrations apply"
        for qualified, n in answers["row_counts"].items():
            schema, table = qualified.split(".", 1)
            if table in ("schema_version", "published_objects"):
                continue  # grow with the new migrations and views
            if not f.query("select count(*) as n from duckdb_tables() where schema_name = ? "
                           "and table_name = ?", [schema, table])[0]["n"]:
                # 950 made the table unmapped a view of the same columns over two tables,
                # 991 quarantine one over quarantine_rows and text_pieces: their rows are
                # counted through the view below.
                became_view = table in ("unmapped", "quarantine") and f.query(
                    "select count(*) as n from duckdb_views() where view_name = ?",
                    [table])[0]["n"]
                # Only the device card's copies of views may go (922 replaced them by
                # card_findings and card_state, re-made by the next analysis run).
                assert became_view or table.startswith("card_"), f"{qualified} was dropped"
                if not became_view:
                    continue
            kept = f.con.execute(
                f"select count(*) from {store_mod.quote_ident(schema)}."
                f"{store_mod.quote_ident(table)}").fetchone()[0]
            if table == "metric_catalog":  # migrations may add metrics (720: link_margin_db)
                assert kept >= n, f"{qualified}: {n} rows before the upgrade, {kept} after"
                continue
            # 106_power_curves adds the built-in chemistries li_mno2 and nimh
            grown = {"battery_chemistries": 2}.get(table, 0)
            assert kept == n + grown, f"{qualified}: {n} rows before the upgrade, {kept} after"
        for view, expected in answers["views"].items():
            assert tool.view_answer(f.con, view) == expected, view
        runs = f.analyze(force=True)
        assert [r.status for r in runs] == ["ok"] * len(runs), [
            (r.analysis, r.error) for r in runs if r.status != "ok"]
        assert f.query("select count(*) as n from power_findings")[0]["n"] > 0


def test_a_reading_command_upgrades_a_store_of_a_previous_release(tmp_path, capsys):
    """`tsfleet info` (which opens read-only) on a store of an earlier release applies its
    migrations, says so in one line on stderr, and answers; the Python API's read-only
    open still refuses (it never writes behind the caller's back)."""
    from tsfleet.cli import main

    release = sorted(p.name for p in FIXTURES.iterdir())[-1]
    path = tmp_path / "old.duckdb"
    _fixture_tool().load(FIXTURES / release, path)
    with pytest.raises(StoreError, match="needs migrations"):
        Fleet(path, read_only=True)
    assert main(["--db", str(path), "info"]) == 0
    out, err = capsys.readouterr()
    [line] = err.splitlines()
    assert re.fullmatch(r"tsfleet: upgraded .*old\.duckdb to this version's schema "
                        r"\(\d+ migrations? applied\)", line)
    assert "schema version" in out
    with Fleet(path, read_only=True) as f:
        assert not store_mod.pending_migrations(f.con)


def _before_994(con) -> None:
    """Put the fields of unmapped payloads back in a table of their own, as before 994:
    994 runs again on the next open (after the migrations a test re-applies)."""
    con.execute("drop view unmapped_items cascade")
    con.execute("create table unmapped_items as select payload_sha256, item, received_at, "
                "transport, source, format, device_id, observed_at, field, value, unit, "
                "reason from unmapped_item_rows")
    con.execute("drop table unmapped_item_rows")
    con.execute("delete from schema_version where name = 'unmapped_item_pieces'")


def _before_993(con) -> None:
    """Put the payloads of unmapped fields back in a table of their own, as before 993:
    993 runs again on the next open (after the migrations a test re-applies)."""
    con.execute("drop view unmapped_payloads cascade")
    con.execute("create table unmapped_payloads as select payload_sha256, payload "
                "from unmapped_payload_rows")
    con.execute("drop table unmapped_payload_rows")
    con.execute("delete from schema_version where name = 'unmapped_payload_pieces'")


def _before_pieces(con) -> None:
    """Both unmapped tables back as they were before 993 and 994 (the view over them
    dropped): the start of an older migration's upgrade test."""
    con.execute("drop view unmapped cascade")
    _before_994(con)
    _before_993(con)


def test_950_keeps_every_unmapped_row_and_its_payload_once(tmp_path):
    """A store from before 950 (unmapped a table, the payload on every row) upgrades:
    every row is still in the view unmapped with its payload, each payload stored once."""
    path = tmp_path / "store.duckdb"
    with Fleet(path) as f:  # made current, then put back to the state before 950
        con = f.con
        _before_pieces(con)
        con.execute("drop table unmapped_items")
        con.execute("drop table unmapped_payloads")
        old = (store_mod.sql_root() / "tables" / "700_live.sql").read_text()
        con.execute(old[old.index("create table unmapped"):old.index(");") + 2])
        rows = [(f"sha{p}", i, "2026-01-01 00:00:00+00", "mqtt", "t", "senml+json", "d", None,
                 f"x{i}", "1", None, "unknown_metric", f"payload {p}")
                for p in range(3) for i in range(4)]
        con.executemany("insert into unmapped values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        rows)
        con.execute("delete from schema_version where name = 'unmapped_payloads'")
        con.execute("delete from schema_views")  # the views are re-made on the next open
    with Fleet(path) as f:
        assert f.applied_migrations == ["unmapped_payloads", "unmapped_payload_pieces",
                                        "unmapped_item_pieces"]
        got = f.query("select payload_sha256 as s, item, field, payload from unmapped "
                      "order by 1, 2")
        assert [(r["s"], r["item"], r["field"], r["payload"]) for r in got] == [
            (s, i, fld, p) for s, i, *_, fld, _v, _u, _r, p in rows]
        assert f.query("select count(*) as n from unmapped_payloads")[0]["n"] == 3
        assert f.query("select count(*) as n from unmapped_fields")[0]["n"] == 4


def test_990_keeps_every_unmapped_row_and_moves_the_keys_to_unmapped_keys(tmp_path):
    """A store from before 990 (unmapped_items and unmapped_payloads with primary keys, an
    index entry per payload kept for ever) upgrades: every row is kept, the tables lose
    their keys, and unmapped_keys holds one key per payload with its newest reception."""
    path = tmp_path / "store.duckdb"
    with Fleet(path) as f:  # made current, then put back to the state before 990
        con = f.con
        _before_pieces(con)
        for t in ("unmapped_items", "unmapped_payloads", "unmapped_keys"):
            con.execute(f"drop table {t}")
        old = (store_mod.sql_root() / "tables" / "950_unmapped_payloads.sql").read_text()
        for start in ("create table unmapped_payloads", "create table unmapped_items"):
            con.execute(old[old.index(start):old.index(");", old.index(start)) + 2])
        items = [(f"sha{p}", i, f"2026-01-0{1 + i} 00:00:00+00", "mqtt", "t", "senml+json",
                  "d", None, f"x{i}", "1", None, "unknown_metric")
                 for p in range(3) for i in range(4)]
        con.executemany("insert into unmapped_items values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        items)
        con.executemany("insert into unmapped_payloads values (?, ?)",
                        [(f"sha{p}", f"payload {p}") for p in range(3)])
        con.execute("delete from schema_version where name = 'payload_keys_bounded'")
        con.execute("delete from schema_views")  # the views are re-made on the next open
    with Fleet(path) as f:
        assert f.applied_migrations == ["payload_keys_bounded", "unmapped_payload_pieces",
                                        "unmapped_item_pieces"]
        got = f.query("select payload_sha256 as s, item, payload from unmapped order by 1, 2")
        assert [(r["s"], r["item"], r["payload"]) for r in got] == [
            (s, i, f"payload {s[3:]}") for s, i, *_ in items]
        keys = f.query("select payload_sha256 as s, received_at::varchar as t "
                       "from unmapped_keys order by 1")
        assert [(r["s"], r["t"]) for r in keys] == [
            (f"sha{p}", "2026-01-04 00:00:00+00") for p in range(3)]
        constraints = f.query("select table_name as t from duckdb_constraints() "
                              "where constraint_type = 'PRIMARY KEY' and table_name in "
                              "('unmapped_item_rows', 'unmapped_payload_rows', 'unmapped_keys')")
        assert [r["t"] for r in constraints] == ["unmapped_keys"]


def test_992_folds_declarations_that_differ_in_case_keeping_the_one_in_effect(tmp_path):
    """A store from before 992 holds 'Flow_LPM' and 'flow_lpm' as two declarations (the
    catalog took one of them). The upgrade keeps one row per lower-case name: the one the
    catalog holds (here the older batch), and a name declared once only in capitals is kept
    in lower case with every column."""
    path = tmp_path / "store.duckdb"
    with Fleet(path) as f:  # made current, then put back to the state before 992
        con = f.con
        con.execute("drop view if exists calibration_sensors cascade")
        con.execute("drop table metric_declarations")
        old = (store_mod.sql_root() / "tables" / "302_calibration_anchors.sql").read_text()
        start = old.index("create table metric_declarations")
        con.execute(old[start:old.index(");", start) + 2])
        con.execute("alter table metric_declarations add column is_environmental boolean")
        con.executemany("insert into metric_declarations values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            ("Flow_LPM", "l/min", "flow", 0.0, 500.0, None, 3.0, None, 7, None),
            ("flow_lpm", "m3/h", "flow", 0.0, 30.0, None, None, None, 9, None),
            ("CO2_PPM", "ppm", "co2", 0.0, 5000.0, "air", 2.5, 400.0, 8, True)])
        con.execute("insert or replace into metric_catalog values "
                    "('flow_lpm', 'l/min', 'flow', 0, 500, 'declared by a user'), "
                    "('co2_ppm', 'ppm', 'co2', 0, 5000, 'air')")
        con.execute("delete from schema_version where name = 'metric_declarations_lower'")
        con.execute("delete from schema_views")  # the views are re-made on the next open
    with Fleet(path) as f:
        assert f.applied_migrations == ["metric_declarations_lower"]
        got = f.query("select * from metric_declarations order by metric")
        assert [(r["metric"], r["unit"], r["max_value"], r["batch_id"]) for r in got] == [
            ("co2_ppm", "ppm", 5000.0, 8), ("flow_lpm", "l/min", 500.0, 7)]
        assert (got[0]["drift_tolerance_pct"], got[0]["min_scale"], got[0]["is_environmental"],
                got[0]["description"]) == (2.5, 400.0, True, "air")
        assert f.query("select count(*) as n from duckdb_constraints() where table_name = "
                       "'metric_declarations' and constraint_type = 'PRIMARY KEY'")[0]["n"] == 1


def test_991_keeps_every_quarantine_row_and_its_raw_text(tmp_path):
    """A store from before 991 (quarantine a table with raw on every row) upgrades: every
    row is still in the view quarantine with its raw text as it was, 16 KiB included, and
    the readers of quarantine answer as before."""
    path = tmp_path / "store.duckdb"
    raws = ['{"device_id": "d1", "metric": "temp", "value": 900}',
            json.dumps({"transport": "mqtt", "source": "fleet/x/senml",
                        "payload": "[" + "é" * 16_000 + " [cut: 40000 bytes received]"}),
            "", "\u00fcnicode \U0001F600 and a quote ' and \\"]
    with Fleet(path) as f:  # made current, then put back to the state before 991
        con = f.con
        con.execute("drop view quarantine cascade")
        for t in ("quarantine_rows", "text_pieces"):
            con.execute(f"drop table {t}")
        con.execute("drop sequence text_id_seq")
        old = (store_mod.sql_root() / "tables" / "010_meta.sql").read_text()
        start = old.index("create table quarantine")
        con.execute(old[start:old.index(");", start) + 2])
        rows = [(b, k, "file.csv", r, f"detail {b}", raw, f"2026-01-0{b} 00:00:00+00")
                for b, (k, r, raw) in enumerate(
                    [("readings", "out_of_range", raws[0]), ("payload", "invalid_json", raws[1]),
                     ("payload", "empty_payload", raws[2]), ("devices", "bad_value", raws[3])],
                    start=1)]
        con.executemany("insert into quarantine values (?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("delete from schema_version where name = 'text_pieces'")
        con.execute("delete from schema_views")  # the views are re-made on the next open
    with Fleet(path) as f:
        assert f.applied_migrations == ["text_pieces"]
        got = f.con.execute("select * from quarantine order by batch_id").fetchall()
        assert [(b, k, s, r, d, raw, str(at)) for b, k, s, r, d, raw, at in got] == [
            (*row[:6], f"2026-01-0{row[0]} 00:00:00+00:00") for row in rows]
        assert [c for (c,) in f.con.execute("select column_name from duckdb_columns() "
                                            "where table_name = 'quarantine'").fetchall()] == [
            "batch_id", "kind", "source", "reason", "detail", "raw", "quarantined_at"]
        assert f.query("select count(*) as n from text_pieces") == [{"n": 0}]  # left in place
        assert f.query("select sum(n_rows) as n from ingest_quality") == [{"n": 4}]


def test_993_keeps_every_unmapped_payload_and_its_text(tmp_path):
    """A store from before 993 (unmapped_payloads a table with the text on every row)
    upgrades: every payload is still in unmapped_payloads and unmapped, text as it was."""
    path = tmp_path / "store.duckdb"
    texts = {"sha0": "payload 0", "sha1": "[" + "é" * 16_000 + " [cut: 40000 bytes received]",
             "sha2": "base64:AAEC", "sha3": ""}
    with Fleet(path) as f:  # made current, then put back to the state before 993
        con = f.con
        _before_993(con)
        con.executemany("insert into unmapped_payloads values (?, ?)", list(texts.items()))
        con.executemany("insert into unmapped_item_rows values (?, 0, '2026-01-01 00:00:00+00', "
                        "'mqtt', 't', 'senml+json', 'd', NULL, 'x', '1', NULL, "
                        "'unknown_metric', NULL, NULL, NULL)", [[s] for s in texts])
        con.execute("delete from schema_views")  # the views are re-made on the next open
    with Fleet(path) as f:
        assert f.applied_migrations == ["unmapped_payload_pieces"]
        for view in ("unmapped_payloads", "unmapped"):
            got = f.con.execute(f"select payload_sha256, payload from {view}").fetchall()
            assert dict(got) == texts, view
        assert f.query("select count(*) as n from unmapped_payload_rows "
                       "where payload_text_id is null") == [{"n": 4}]


def test_994_keeps_every_unmapped_field_and_its_texts(tmp_path):
    """A store from before 994 (unmapped_items a table with every name, value and unit in
    the row) upgrades: every field is still in unmapped_items and unmapped, texts as they
    were, a name of 10,000 characters included."""
    path = tmp_path / "store.duckdb"
    fields = [("n" * 10_000, "1", "u" * 2000), ("temp", None, None), ("é\U0001F600", "", "Cel")]
    with Fleet(path) as f:  # made current, then put back to the state before 994
        con = f.con
        _before_994(con)
        con.executemany("insert into unmapped_items values ('s', ?, '2026-01-01 00:00:00+00', "
                        "'mqtt', 't', 'senml+json', 'd', NULL, ?, ?, ?, 'unknown_metric')",
                        [(i, *fvu) for i, fvu in enumerate(fields)])
        con.execute("delete from schema_views")  # the views are re-made on the next open
    with Fleet(path) as f:
        assert f.applied_migrations == ["unmapped_item_pieces"]
        for view in ("unmapped_items", "unmapped"):
            got = f.con.execute(f"select field, value, unit from {view} order by item").fetchall()
            assert got == fields, view
        assert f.query("select count(*) as n from unmapped_fields") == [{"n": 3}]


def test_a_store_that_applied_the_text_migrations_under_their_first_numbers_opens(tmp_path):
    """Session 26 merged two lines of work that had both numbered a migration 992: the
    second line's 992 (unmapped payloads in pieces) and 993 (unmapped fields in pieces)
    became 993 and 994, text unchanged. A store of that line recorded them as 992 and 993;
    it opens, keeps every row, records them at their numbers now, and gets the 992 and 995
    it never applied."""
    path = tmp_path / "second-line.duckdb"
    files = {f.number: f for f in store_mod.sql_files("tables")}
    first_numbers = [(n, f) for n, f in sorted(files.items()) if n <= 991] + [
        (992, files[993]), (993, files[994])]
    con = store_mod.connect(str(path))
    for number, f in first_numbers:
        con.execute(f.text)
        con.execute("insert into schema_version (version, name, checksum, applied_at) "
                    "values (?, ?, ?, now())", [number, f.name, store_mod.checksum(f.text)])
    con.execute("insert into unmapped_payload_rows values ('sha-1', '{\"x\": 1}', NULL)")
    con.execute("insert into quarantine_rows values (1, 'readings', 'a.csv', 'bad_number', "
                "'not a number', '{}', now(), NULL)")
    con.close()
    # without the renumbering: "992_metric_declarations_lower.sql was edited"
    with pytest.raises(StoreError, match=r"needs migrations \(992_metric_declarations_lower"
                                         r"\.sql, 995_retention_quarantine\.sql\)"):
        Fleet(path, read_only=True)
    with Fleet(path) as f:
        assert f.applied_migrations == ["metric_declarations_lower", "retention_quarantine"]
        rows = f.query("select version, name, checksum from schema_version "
                       "where version >= 991 order by version")
        assert [(r["version"], r["name"]) for r in rows] == [
            (991, "text_pieces"), (992, "metric_declarations_lower"),
            (993, "unmapped_payload_pieces"), (994, "unmapped_item_pieces"),
            (995, "retention_quarantine")]
        assert all(r["checksum"] == store_mod.checksum(files[r["version"]].text) for r in rows)
        assert f.query("select payload_sha256, payload from unmapped_payloads") == [
            {"payload_sha256": "sha-1", "payload": '{"x": 1}'}]
        assert f.query("select reason from quarantine") == [{"reason": "bad_number"}]
    with Fleet(path, read_only=True) as f:
        assert not store_mod.pending_migrations(f.con)
