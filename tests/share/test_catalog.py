"""The catalog view lists every published table and view, with grain and columns."""

from __future__ import annotations

import duckdb

from tsfleet import Fleet
from tsfleet.results import write_result


def _catalog(fleet: Fleet) -> dict[tuple[str, str], dict]:
    return {(r["schema_name"], r["name"]): r for r in fleet.query("select * from catalog")}


def test_catalog_lists_every_table_and_view_with_a_grain(live):
    cat = _catalog(live)
    # An independent source: the SQL-standard information schema.
    expected = {(r["table_schema"], r["table_name"]): r["table_type"] for r in live.query(
        "select table_schema, table_name, table_type from information_schema.tables "
        "where table_catalog = current_database()")}
    internal = {("main", r["name"]) for r in live.query(
        "select name from published_objects where kind = 'internal_view'")}
    assert internal, "the power refresh's helper views are internal"
    assert set(cat) == set(expected) - internal
    for key, table_type in expected.items():
        if key in internal:
            continue
        assert cat[key]["kind"] == ("view" if table_type == "VIEW" else "table"), key
    published = {r["name"] for r in live.query(
        "select name from published_objects where kind = 'view'")}
    assert published <= {name for (schema, name) in cat if schema == "main"}
    # Every object tsfleet publishes in main states its grain: the contract for all domains.
    no_grain = [name for (schema, name), r in cat.items() if schema == "main" and not r["grain"]]
    assert no_grain == []
    assert cat[("main", "readings")]["grain"] == (
        "one row per device, metric and observation time (UTC)")
    assert cat[("main", "readings")]["description"].startswith("value is in the unit")


def test_catalog_columns_match_the_information_schema(live):
    cat = _catalog(live)
    for (schema, name), row in cat.items():
        cols = live.query("select column_name, data_type from information_schema.columns "
                          "where table_catalog = current_database() and table_schema = ? "
                          "and table_name = ? order by ordinal_position", [schema, name])
        assert row["n_columns"] == len(cols)
        assert row["columns"] == ", ".join(f"{c['column_name']} {c['data_type'].lower()}"
                                           for c in cols)
    n = live.query("select count(*) as n from catalog_columns")[0]["n"]
    assert n == sum(r["n_columns"] for r in cat.values())


def test_a_future_domains_tables_and_views_appear_without_editing_the_catalog(fleet):
    fleet.con.execute("create table future_forecast (device_id varchar, days_to_empty double, "
                      "computed_at timestamp, params varchar)")
    fleet.con.execute("comment on table future_forecast is 'Grain: one row per device. "
                      "days_to_empty is the forecast horizon to 0 %, days.'")
    fleet.con.execute("comment on column future_forecast.days_to_empty is 'days, from now'")
    fleet.con.execute("create table loose_notes (note varchar)")
    fleet.con.execute("comment on table loose_notes is 'Free text without a grain.'")
    fleet.con.execute("create view future_findings as select device_id from future_forecast")
    fleet.con.execute("insert into published_objects values ('future_findings', 'view', "
                      "'one row per open battery problem.', 'Future findings.', "
                      "'300_future_findings.sql')")
    write_result(fleet.con, "future_forecast", {"device_id": ["a"], "days_to_empty": [3.5]},
                 params={"horizon_days": 90})
    cat = _catalog(fleet)
    forecast = cat[("main", "future_forecast")]
    assert (forecast["grain"], forecast["description"], forecast["is_result"]) == (
        "one row per device", "days_to_empty is the forecast horizon to 0 %, days.", True)
    notes = cat[("main", "loose_notes")]
    assert (notes["grain"], notes["description"], notes["is_result"]) == (
        None, "Free text without a grain.", False)
    findings = cat[("main", "future_findings")]
    assert (findings["kind"], findings["grain"], findings["source_file"]) == (
        "view", "one row per open battery problem", "300_future_findings.sql")
    assert fleet.query("select comment from catalog_columns where object_name = 'future_forecast' "
                       "and column_name = 'days_to_empty'") == [{"comment": "days, from now"}]
    assert not cat[("main", "readings")]["is_result"]


def test_published_views_run_in_a_plain_sql_client_without_tsfleet(live, tmp_path):
    path = live.path
    live.close()
    with duckdb.connect(path, read_only=True) as con:  # no tsfleet, no Python functions
        views = [r[0] for r in con.execute("select name from published_objects").fetchall()]
        assert {"catalog", "catalog_columns"} <= set(views)
        for view in views:
            con.execute(f'select * from "{view}" limit 5').fetchall()
        n = con.execute("select count(*) from catalog where name = 'readings'").fetchone()[0]
        assert n == 1
