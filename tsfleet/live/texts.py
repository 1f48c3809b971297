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
        con.execute(
            "insert into text_pieces select t.text_id, p.piece::integer, "
            "substr(t.text, p.piece * $k + 1, $k) from _live_texts as t, "
            "lateral (select range as piece from "
            "range(greatest(1, (length(t.text) + $k - 1) // $k))) as p",
            {"k": PIECE_CHARS}).fetchall()
    finally:
        con.unregister("_live_texts")
    return ids
