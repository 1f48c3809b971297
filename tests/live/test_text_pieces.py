"""A rejected live payload keeps its whole text (up to 16 KiB) in ``quarantine.raw``, and a
payload with unmapped fields in ``unmapped.payload``, stored in pieces (``text_pieces``,
migrations 991 and 993) so that a DuckDB checkpoint, which rewrites a table's last row
groups in memory, never copies more than a few MB at once however long the payloads held
(docs/live.md, "memory")."""

from __future__ import annotations

import json

from tests.live.test_hostile import Run
from tsfleet.live.texts import PIECE_CHARS, store_texts
from tsfleet.live.writer import MAX_KEPT_PAYLOAD

#: Rows of a DuckDB row group (DuckDB's default; a checkpoint merges whole row groups).
ROW_GROUP_ROWS = 122_880


def _raw(topic: str, text: str) -> str:
    return json.dumps({"transport": "mqtt", "source": topic, "payload": text})


def test_a_rejected_payload_keeps_its_whole_text_in_quarantine():
    long = b"[x" + b"\xc3\xa9" * 9000                     # 18,002 bytes of broken JSON
    cut = long[:MAX_KEPT_PAYLOAD].decode()                # 16 KiB: 8,191 characters e
    payloads = [(b"[\"not json", None), (long, None), (b"\xff\xfe\x00garbage", None),
                (b"", None)]
    run = Run()
    run.send(payloads)
    assert run.writer.error is None and sorted(run.acked) == [0, 1, 2, 3]
    got = {r["raw"] for r in run.fleet.query("select raw from quarantine where kind = 'payload'")}
    assert got == {_raw("fleet/d/senml", '["not json'),
                   _raw("fleet/d/senml", f"{cut} [cut: 18002 bytes received]"),
                   _raw("fleet/d/senml", "base64://4AZ2FyYmFnZQ=="),
                   _raw("fleet/d/senml", "")}
    pieces = run.fleet.query("select max(length(text)) as n, count(distinct text_id) as texts "
                             "from text_pieces")
    assert pieces == [{"n": PIECE_CHARS, "texts": 4}]


def test_any_text_comes_back_whole_from_its_pieces():
    texts = ["", "a", "x" * PIECE_CHARS, "x" * (PIECE_CHARS + 1), "é\n\U0001F600" * 100,
             "\n" * 200, "base64:" + "A/+=" * 500]
    run = Run()
    ids = store_texts(run.fleet.con, texts)
    got = run.fleet.con.execute(
        "select text_id, string_agg(text, '' order by piece), max(length(text)) "
        "from text_pieces group by all").fetchall()
    assert {i: (t, n) for i, t, n in got} == {
        i: (t, max(min(len(t), PIECE_CHARS), 0)) for i, t in zip(ids, texts, strict=True)}


def test_a_payload_and_its_text_are_stored_together_or_not_at_all():
    run = Run()
    run.fleet.con.execute("alter table quarantine_rows rename to quarantine_away")
    run.send([(b"[\"not json", None)])
    assert run.writer.stats.n_unstorable == 1  # logged, counted, acknowledged
    assert run.fleet.query("select count(*) as n from text_pieces") == [{"n": 0}]


def test_a_payload_with_unmapped_fields_keeps_its_whole_text():
    pack = b'[{"bn":"d/","bt":1780000000,"n":"mystery","u":"furlong","v":1}' + b" " * 3000
    payloads = [(pack + b"]", None), (pack + b"\n]", None)]
    run = Run()
    run.send(payloads)
    got = run.fleet.query("select field, payload from unmapped order by strlen(payload)")
    assert [(r["field"], r["payload"]) for r in got] == [
        ("d/mystery", p.decode()) for p, _ in payloads]
    assert run.fleet.query("select count(distinct text_id) as n from text_pieces") == [{"n": 2}]
    [line] = run.fleet.query("select n_fields, example_payload from unmapped_fields")
    assert line["n_fields"] == 2 and line["example_payload"] in {p.decode() for p, _ in payloads}


def test_an_unmapped_name_value_or_unit_of_any_length_comes_back_whole():
    name, unit, value = "n" * 10_000, "u" * 2000, "x" * 3000
    pack = [{"bn": "d/", "bt": 1780000000, "n": name, "u": unit, "v": 1},
            {"n": "state", "vs": value}, {"n": "short", "u": "furlong", "v": 2}]
    run = Run()
    run.send([(json.dumps(pack).encode(), None)])
    got = run.fleet.query("select field, value, unit from unmapped order by item")
    assert [(r["field"], r["value"], r["unit"]) for r in got] == [
        ("d/" + name, "1", unit), ("d/state", value, None), ("d/short", "2", "furlong")]
    inline = run.fleet.query("select count(*) as n from unmapped_item_rows where field is null "
                             "or unit_text_id is not null or value_text_id is not null")
    assert inline == [{"n": 2}]  # the short ones stay in the row


def test_no_row_group_holds_more_than_a_few_mb_of_kept_payload_text():
    """2,000 distinct rejected payloads of 16 KiB and 1,000 with unmapped fields (48 MB of
    text): every table's row groups (122,880 rows each) hold at most 10 MB of text
    between them, so what a checkpoint merges at once stays small. Before 991 and 993
    quarantine and unmapped_payloads held them all in one row group each."""
    run = Run()
    filler = b" " * (MAX_KEPT_PAYLOAD - 100)
    unmapped = [(b'[{"bn":"d/","bt":1780000000,"n":"mystery%04d","u":"furlong","v":1}' % i
                 + filler + b"]", None) for i in range(1000)]
    run.send([(b"[" + filler + b"broken %05d" % i, None) for i in range(2000)] + unmapped)
    assert run.writer.error is None and len(run.acked) == 3000
    con = run.fleet.con
    worst = {}
    for (table,) in con.execute("select table_name from duckdb_tables() "
                                "where database_name = current_database()").fetchall():
        cols = [c for (c,) in con.execute(
            "select column_name from duckdb_columns() where table_name = ? and "
            "data_type = 'VARCHAR' and database_name = current_database()", [table]).fetchall()]
        if cols:
            text = " + ".join(f'coalesce(strlen("{c}"), 0)' for c in cols)
            worst[table] = con.execute(
                f'select coalesce(max(b), 0) from (select sum({text}) as b from "{table}" '
                f"group by rowid // {ROW_GROUP_ROWS})").fetchall()[0][0]
    assert max(worst.values()) <= 10_000_000, sorted(worst.items(), key=lambda kv: -kv[1])[:3]
    n = run.fleet.query("select count(*) as n, min(strlen(raw)) as shortest from quarantine")
    whole = len(_raw("fleet/d/senml", "[" + filler.decode() + "broken 00000"))
    assert n == [{"n": 2000, "shortest": whole}]  # every text whole
    n = run.fleet.query("select count(*) as n, min(strlen(payload)) as shortest "
                        "from unmapped_payloads")
    assert n == [{"n": 1000, "shortest": len(unmapped[0][0])}]
