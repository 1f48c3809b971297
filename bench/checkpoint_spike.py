"""The RSS spike of a DuckDB checkpoint as quarantine-like rows accumulate (issue 22).

    PYTHONPATH=. python bench/checkpoint_spike.py   # 16 batches of 900 rows
    PYTHONPATH=. python bench/checkpoint_spike.py --short   # same text, 1.6-3.2 KB texts
    PYTHONPATH=. python bench/checkpoint_spike.py --setting "memory_limit='200MB'"
    PYTHONPATH=. python bench/checkpoint_spike.py --row-group-size 16384
    PYTHONPATH=. python bench/checkpoint_spike.py --pieces 64 --batches 32   # migration 991

One table shaped like ``quarantine`` in a fresh store file; each batch appends rows whose
``raw`` column is a JSON text of 8-16 KB of repeated characters (like the hostile soak's
oversized and long-name payloads; ``--short``: five times as many rows of 1.6-3.2 KB, the
same text volume, below DuckDB's 4 KiB string block so no overflow strings), then runs
``CHECKPOINT`` (automatic checkpoints off) while a thread samples this process's RSS every
5 ms. Printed per batch: the rows held, RSS before the checkpoint, the rise to the peak
during it (MB), and the row groups of the table holding the text (a drop is a merge).
``--setting`` (repeatable) applies ``SET ...`` first, e.g.
``allocator_background_threads=true``, ``threads=1``, ``max_vacuum_tasks=0``; ``--zstd``
stores ``raw`` with ``USING COMPRESSION zstd``; ``--pieces N`` stores ``raw`` as serve does
since migration 991: NULL in the row, the text in a table of pieces of at most N
characters (``text_pieces``), in the same transaction.

Session 12 (docs/live.md): the rise is 0-20 MB at most checkpoints and 40-140 MB when the
rows held pass about 3,600, 7,200 and 14,400 (it follows the text held, not the string
length); none of the settings above removed it.

Session 26: those are DuckDB's merges of a table's last row groups (after a checkpoint the
next append starts a row group; a checkpoint merges the last ones, in memory, once they
hold twice the rows of the first): the row groups printed drop to 1 at each large rise.
``--setting max_vacuum_tasks=0`` removes them (no merges at all: every table then keeps a
row group per checkpoint); ``--pieces 64`` bounds them (a row group of pieces holds at
most 122,880 x 64 characters).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa


def rss_mb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=16)
    ap.add_argument("--short", action="store_true",
                    help="1.6-3.2 KB texts, five times as many rows (same text volume)")
    ap.add_argument("--zstd", action="store_true", help="raw USING COMPRESSION zstd")
    ap.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--row-group-size", type=int, default=None, metavar="ROWS",
                    help="create the store with this row group size (DuckDB's default 122,880)")
    ap.add_argument("--pieces", type=int, default=None, metavar="CHARS",
                    help="raw in a table of pieces of at most CHARS characters (991)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.005)

    with tempfile.TemporaryDirectory(prefix="tsfleet-ckpt-") as d:
        if args.row_group_size:  # fixed when a store file is created: ATTACH's option
            con = duckdb.connect()
            con.execute(f"attach '{Path(d) / 'spike.duckdb'}' as spike "
                        f"(row_group_size {int(args.row_group_size)})")
            con.execute("use spike")
        else:
            con = duckdb.connect(str(Path(d) / "spike.duckdb"))
        comp = " using compression zstd" if args.zstd else ""
        con.execute("create table q (batch_id bigint, kind text, source text, reason text, "
                    f"detail text, raw text{comp}, quarantined_at timestamp, raw_text_id bigint)")
        con.execute("create table p (text_id bigint, piece integer, text varchar)")
        held = "p" if args.pieces else "q"
        con.execute("set wal_autocheckpoint = '1TB'")
        for s in args.setting:
            con.execute(f"set {s}")
        rng = random.Random(args.seed)
        threading.Thread(target=sample, daemon=True).start()
        n_rows, text = 0, 0
        per, lo, hi = (4500, 1600, 3200) if args.short else (900, 8000, 16000)
        print(f"settings: {args.setting or 'DuckDB defaults'}; {'zstd' if args.zstd else 'auto'}"
              f" compression; {per} rows of {lo}-{hi} chars a batch; row group size "
              f"{args.row_group_size or 'default'}; "
              f"{f'pieces of {args.pieces}' if args.pieces else 'raw in the row'}")
        print(" batch    rows  text MB  RSS MB  checkpoint rise MB  s  row groups")
        for b in range(args.batches):
            raws = [json.dumps({"transport": "mqtt", "source": f"fleet/{rng.random()}",
                                "payload": rng.choice("[ 9nx") * rng.randrange(lo, hi)
                                + str(rng.random())}) for _ in range(per)]
            text += sum(map(len, raws))
            n_rows += per
            con.register("_rows", pa.table({"raw": raws, "id": range(n_rows - per, n_rows)}))
            con.execute("begin")
            if args.pieces:
                k = int(args.pieces)
                con.execute("insert into p select id, (generate_subscripts(l, 1) - 1)::integer, "
                            "unnest(l) from (select id, regexp_extract_all(raw, "
                            f"'(?s).{{1,{k}}}') as l from _rows)")  # as tsfleet.live.texts
                con.execute("insert into q select ?, 'payload', 'x', 'r', 'd', NULL, now(), id "
                            "from _rows", [b])
            else:
                con.execute("insert into q select ?, 'payload', 'x', 'r', 'd', raw, now(), "
                            "NULL from _rows", [b])
            con.execute("commit")
            con.unregister("_rows")
            del raws
            time.sleep(0.3)
            before = rss_mb()
            peak[0] = before
            t = time.perf_counter()
            con.execute("checkpoint")
            dt = time.perf_counter() - t
            time.sleep(0.3)
            groups = con.execute("select count(distinct row_group_id) from "
                                 f"pragma_storage_info('{held}')").fetchall()[0][0]
            print(f"{b:6d} {n_rows:7,} {text / 1e6:8.0f} {before:7d} {peak[0] - before:19d} "
                  f"{dt:5.2f} {groups:11d}", flush=True)
        stop.set()
        con.close()


if __name__ == "__main__":
    main()
