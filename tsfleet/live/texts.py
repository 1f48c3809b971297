"""Long texts kept by live ingest, stored in pieces (``text_pieces``, migration 991).

DuckDB merges a table's last row groups at a checkpoint once they hold twice the rows of
the first of them, and rewrites them in memory: about twice their bytes. A row group
holds 122,880 rows whatever their width, so a table of rows with kilobytes of text each
(a rejected payload keeps up to 16 KiB) made checkpoints that copied hundreds of MB, and
more the longer the table's last row group stayed open. Cut into rows of at most
:data:`PIECE_CHARS` characters, the same text makes row groups of a few MB, and what a
checkpoint copies at once no longer grows with the text kept (docs/live.md, "memory").

The views put a text together again: ``string_agg(text, '' order by piece)`` over its
``text_id`` (``quarantine.raw``).

>>> from tsfleet import Fleet
>>> with Fleet(memory=True) as f:
...     [i] = store_texts(f.con, ["x" * 100])
...     f.query("select count(*) as n, string_agg(text, '' order by piece) = ? as same "
...             "from text_pieces where text_id = ?", ["x" * 100, i])
[{'n': 2, 'same': True}]
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

#: The longest piece (characters). A row group of pieces then holds at most 122,880 x 64
#: characters, about 8 MB (up to four times that of non-ASCII text).
PIECE_CHARS = 64


def store_texts(con: duckdb.DuckDBPyConnection, texts: list[str] | pa.Array) -> list[int]:
    """Store ``texts`` as pieces in ``text_pieces`` and return their ids, in order.

    Runs in the caller's transaction (the rows that refer to the ids are stored in the
    same one). An empty text is one empty piece, so that every id has a piece."""
    if not len(texts):
        return []
    ids = [r[0] for r in con.execute("select nextval('text_id_seq') from range(?)",
                                     [len(texts)]).fetchall()]
    if not isinstance(texts, pa.Array):
        texts = pa.array(texts, pa.string())
    con.register("_live_texts", pa.table({"text_id": pa.array(ids, pa.int64()),
                                          "text": texts}))
    try:
        # regexp_extract_all cuts each text once (a lateral join of pieces against the
        # text copied the whole text per piece: 1.2 GB for 5 MB of text)
        con.execute(
            "insert into text_pieces select text_id, (generate_subscripts(l, 1) - 1)::integer, "
            "unnest(l) from (select text_id, case when text = '' then [''] else "
            f"regexp_extract_all(text, '(?s).{{1,{PIECE_CHARS}}}') end as l from _live_texts)"
        ).fetchall()
    finally:
        con.unregister("_live_texts")
    return ids


#: The tables whose rows may keep a text in ``text_pieces``, and their text id columns.
TEXT_OWNERS = {"quarantine_rows": ("raw_text_id",),
               "unmapped_item_rows": ("field_text_id", "value_text_id", "unit_text_id"),
               "unmapped_payload_rows": ("payload_text_id",)}
#: The rows of ``unmapped_payload_rows`` none of whose fields is left in
#: ``unmapped_item_rows`` (a ``where`` for :func:`delete_with_texts`).
ORPHAN_PAYLOADS = ("not exists (select 1 from unmapped_item_rows i "
                   "where i.payload_sha256 = unmapped_payload_rows.payload_sha256)")


def delete_with_texts(con: duckdb.DuckDBPyConnection, table: str, where: str,
                      params: list | None = None) -> int:
    """Delete the rows of ``table`` (one of :data:`TEXT_OWNERS`) that match ``where`` and
    their texts in ``text_pieces``, in the caller's transaction; returns the rows deleted."""
    ids = ", ".join(TEXT_OWNERS[table])
    con.execute(f"delete from text_pieces where text_id in (select unnest([{ids}]) "
                f"from {table} where {where})", params or [])
    return con.execute(f"delete from {table} where {where}", params or []).fetchall()[0][0]
