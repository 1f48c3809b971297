"""Every kind of input -> a stream of Arrow chunks for the pipeline.

Files are chosen by extension: ``.parquet``/``.pq``, ``.csv``/``.tsv``,
``.jsonl``/``.ndjson`` (one JSON object per line) and ``.json`` (lines, or
one array of objects). Files are streamed (see :mod:`tsfleet.ingest.files`):
no more than ``chunk_rows`` rows, and a bounded amount of text, are in memory
at once, and a bad row affects only itself. Python objects (DataFrame, Arrow table or record
batch, dict of columns, iterable of dicts) are accepted as they are. Dicts go
through the JSON-lines path, so that a row of the wrong shape is quarantined
with its payload rather than failing the whole batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tsfleet.errors import IngestError
from tsfleet.ingest.csv_file import csv_chunks
from tsfleet.ingest.files import Chunk, json_text, lines_chunk
from tsfleet.ingest.json_file import json_chunks

DEFAULT_CHUNK_ROWS = 1_000_000


def describe(source: object) -> str:
    """A short label of a source for reports and the quarantine table."""
    if isinstance(source, (str, Path)):
        return str(source)
    return type(source).__name__


def chunks(source: object, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
    """Split ``source`` into chunks of at most ``chunk_rows`` rows."""
    if isinstance(source, (str, Path)):
        yield from _file_chunks(Path(source), chunk_rows)
    elif isinstance(source, pa.Table):
        yield from _table_chunks(source, chunk_rows)
    elif isinstance(source, pa.RecordBatch):
        yield from _table_chunks(pa.Table.from_batches([source]), chunk_rows)
    elif _is_dataframe(source):
        try:
            table = pa.Table.from_pandas(source, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in an object column
            yield from _dict_chunks(source.to_dict("records"), chunk_rows)
            return
        yield from _table_chunks(table, chunk_rows)
    elif isinstance(source, Mapping):
        try:
            table = pa.table({k: np.asarray(v) if not isinstance(v, pa.Array) else v
                              for k, v in source.items()})
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
            raise IngestError(f"a dict source must map column names to equal-length arrays: {exc}"
                              ) from exc
        yield from _table_chunks(table, chunk_rows)
    elif isinstance(source, Iterable) and not isinstance(source, (bytes, bytearray)):
        yield from _dict_chunks(source, chunk_rows)
    else:
        raise IngestError(f"cannot ingest a {type(source).__name__}: expected a file path, "
                          "DataFrame, Arrow table, dict of columns or iterable of dicts")


def _is_dataframe(obj: object) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "to_dict")


def _table_chunks(table: pa.Table, chunk_rows: int) -> Iterator[Chunk]:
    for start in range(0, max(table.num_rows, 1), chunk_rows):
        yield Chunk(table.slice(start, chunk_rows))


def _dict_chunks(rows: Iterable, chunk_rows: int) -> Iterator[Chunk]:
    lines: list[str] = []
    for row in rows:
        try:
            lines.append(json_text(row))
        except (TypeError, ValueError):
            lines.append(json.dumps(repr(row)))  # not an object: quarantined as invalid_json
        if len(lines) >= chunk_rows:
            yield lines_chunk(lines, [])
            lines = []
    if lines:
        yield lines_chunk(lines, [])


def _file_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    if not path.is_file():
        raise IngestError(f"cannot read {path}: no such file")
    ext = path.suffix.lower()
    try:
        if ext in (".parquet", ".pq"):
            yield from _parquet_chunks(path, chunk_rows)
        elif ext in (".csv", ".tsv"):
            yield from csv_chunks(path, chunk_rows, "\t" if ext == ".tsv" else ",")
        elif ext in (".jsonl", ".ndjson", ".json"):
            yield from json_chunks(path, chunk_rows)
        else:
            raise IngestError(f"cannot read {path}: unknown file type {ext!r} "
                              "(expected .parquet, .csv, .tsv, .jsonl, .ndjson or .json)")
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise IngestError(f"cannot read {path}: {str(exc).splitlines()[0]}") from exc


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    pf = pq.ParquetFile(path)
    empty = True
    for batch in pf.iter_batches(batch_size=chunk_rows):
        empty = False
        yield Chunk(pa.Table.from_batches([batch]))
    if empty:
        yield Chunk(pf.schema_arrow.empty_table())
