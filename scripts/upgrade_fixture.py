"""Write (or load) an upgrade fixture: a store's tables as SQL and Parquet, no binary.

At a release, build a small store with that release's code (``tsfleet demo --devices 40
--days 21 --seed 3 --db old.duckdb``) and record it:

    python scripts/upgrade_fixture.py write old.duckdb tests/fixtures/upgrade/<release>

The folder holds ``schema.sql`` (schemas, sequences at their current value and tables,
no views: views hold no data and are re-created by the migration step), one Parquet
file per table, and ``answers.json`` (row counts of every table). The upgrade test loads
it with :func:`load` into a new file, opens it with the current code and checks that
nothing is lost. Nothing here is imported by tsfleet.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def write(db: str, out: str) -> None:
    con = duckdb.connect(db, read_only=True)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    statements = [f"create schema if not exists {_ident(s)};" for (s,) in con.execute(
        "select schema_name from duckdb_schemas() where not internal "
        "and database_name = current_database() and schema_name <> 'main'").fetchall()]
    for name, start in con.execute(
            "select sequence_name, coalesce(last_value, start_value - 1) + 1 "
            "from duckdb_sequences() where database_name = current_database()").fetchall():
        statements.append(f"create sequence {_ident(name)} start {int(start)};")
    counts = {}
    for schema, table, sql in con.execute(
            "select schema_name, table_name, sql from duckdb_tables() "
            "where database_name = current_database() order by schema_name, table_name"
    ).fetchall():
        statements.append(sql.rstrip(";") + ";")
        qualified = f"{_ident(schema)}.{_ident(table)}"
        file = folder / f"{schema}.{table}.parquet"
        con.execute(f"copy (select * from {qualified}) to '{file}' "
                    "(format parquet, compression zstd)")
        counts[f"{schema}.{table}"] = con.execute(
            f"select count(*) from {qualified}").fetchone()[0]
    (folder / "schema.sql").write_text("\n".join(statements) + "\n", encoding="utf-8")
    views = {v: view_answer(con, v) for v in ANSWER_VIEWS}
    (folder / "answers.json").write_text(json.dumps(
        {"row_counts": counts, "views": views}, indent=1, sort_keys=True) + "\n",
        encoding="utf-8")


#: Views whose answers an upgrade must not change (they depend on the readings alone).
ANSWER_VIEWS = ("readings_hourly", "readings_daily")


def view_answer(con, view: str) -> list:
    """Row count and an MD5 of the view's rows, sorted, as text."""
    n, digest = con.execute(
        f"select count(*), md5(coalesce(string_agg(t::varchar, '|' order by t::varchar), '')) "
        f"from {_ident(view)} t").fetchone()
    return [n, digest]


def load(folder: str | Path, db: str | Path) -> dict:
    """Create ``db`` from a fixture folder; returns its ``answers.json``."""
    folder = Path(folder)
    answers = json.loads((folder / "answers.json").read_text(encoding="utf-8"))
    con = duckdb.connect(str(db))
    con.execute("SET TimeZone = 'UTC'")
    con.execute((folder / "schema.sql").read_text(encoding="utf-8"))
    for qualified in answers["row_counts"]:
        schema, table = qualified.split(".", 1)
        file = (folder / f"{qualified}.parquet").as_posix()
        con.execute(f"insert into {_ident(schema)}.{_ident(table)} "
                    f"select * from read_parquet('{file}')")
    con.execute("delete from schema_views")   # the fixture holds no views: make them anew
    con.close()
    return answers


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "write":
        sys.exit("usage: python scripts/upgrade_fixture.py write STORE.duckdb FOLDER")
    write(sys.argv[2], sys.argv[3])
