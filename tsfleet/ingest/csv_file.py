"""CSV and TSV files -> chunks of text columns, one bad row at a time.

Rows are cut from the byte stream by :class:`_RowSplitter` (quote parity, so a
row longer than the limit is never held whole) and parsed by pyarrow as binary
columns; :func:`_check_csv_rows` then takes out the rows with invalid UTF-8, a
value under an empty header name, or two different values under one name. See
:mod:`tsfleet.ingest.files` for the limits and reasons.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from tsfleet.errors import IngestError
from tsfleet.ingest import files as limits
from tsfleet.ingest.files import (
    SAMPLE_BYTES,
    Chunk,
    Quarantined,
    bad_utf8,
    escaped,
    mib_text,
    too_large,
)


class _RowSplitter:
    """Cut a CSV byte stream into whole rows, never holding more than one long row.

    A newline ends a row when the number of quotes before it is even (RFC 4180
    quoting, which is also pyarrow's). A row longer than ``MAX_ROW_BYTES`` is
    reported and skipped up to the end of its first physical line, and reading
    resumes there: an unclosed quote costs one line, not the rest of the file.
    """

    def __init__(self, fh):
        self.fh = fh
        self.carry = b""
        self.eof = False
        self.row_no = 0  # rows seen so far, header included

    def _fill(self) -> bool:
        """Append the next block to ``carry``; False at the end of the file."""
        block = b"" if self.eof else self.fh.read(limits.READ_BYTES)
        if not block:
            self.eof = True
            return False
        self.carry += block
        return True

    def pieces(self) -> Iterator[tuple[str, object]]:
        """Yields ("rows", (buffer, n_rows, first_row_no)) and ("bad", Quarantined)."""
        while True:
            data = self.carry
            if self.eof and data and not data.endswith(b"\n"):
                data = self.carry = data + b"\n"
            arr = np.frombuffer(data, dtype=np.uint8)
            parity = np.cumsum(arr == 0x22, dtype=np.uint8) & 1  # mod 256 keeps parity
            ends = np.flatnonzero((arr == 0x0A) & (parity == 0))
            if len(ends):
                starts = np.concatenate(([0], ends[:-1] + 1))
                lengths = ends - starts + 1
                lo = 0
                for i in np.flatnonzero(lengths > limits.MAX_ROW_BYTES):
                    if i > lo:
                        yield "rows", (data[starts[lo]:ends[i - 1] + 1], int(i - lo),
                                       self.row_no + 1)
                        self.row_no += int(i - lo)
                    self.row_no += 1
                    yield "bad", too_large(f"row {self.row_no}",
                                            data[starts[i]:starts[i] + SAMPLE_BYTES],
                                            int(lengths[i]))
                    lo = i + 1
                if lo < len(ends):
                    yield "rows", (data[starts[lo]:ends[-1] + 1], int(len(ends) - lo),
                                   self.row_no + 1)
                    self.row_no += int(len(ends) - lo)
                self.carry = data[ends[-1] + 1:]
            elif len(data) > limits.MAX_ROW_BYTES or (self.eof and data):
                yield "bad", self._skip_line()
            elif not self._fill():
                if not self.carry:
                    return

    def _skip_line(self) -> Quarantined:
        """Drop the current row up to the end of its first physical line: a row
        longer than the limit, or one whose quote is never closed."""
        self.row_no += 1
        where = f"row {self.row_no}"
        sample = self.carry[:SAMPLE_BYTES]
        size = 0
        while True:
            nl = self.carry.find(b"\n")
            if nl >= 0:
                size += nl + 1
                self.carry = self.carry[nl + 1:]
                break
            size += len(self.carry)
            self.carry = b""
            if not self._fill():
                break
        if size > limits.MAX_ROW_BYTES:
            return too_large(where, sample, size)
        return ("malformed_csv", f"{where}: a quote is never closed (the row would run on to "
                "the end of the file or past the row limit); this line is quarantined and "
                "reading resumes on the next line", json.dumps({"line": escaped(sample)}))


def csv_chunks(path: Path, chunk_rows: int, delimiter: str) -> Iterator:
    """Chunks of a CSV/TSV file, every column as text; bad rows pre-quarantined."""
    with path.open("rb") as fh:
        splitter = _RowSplitter(fh)
        pieces = splitter.pieces()
        header_buf, pending = _csv_header(path, pieces)
        names, columns = _column_names(path, header_buf, delimiter)
        bad: list[Quarantined] = []
        bufs: list[bytes] = []
        n = size = 0
        first_row = 2

        def flush():
            return _csv_chunk(b"".join(bufs), first_row, names, columns, delimiter, bad)

        for kind, item in pending:
            if kind == "bad":
                bad.append(item)
                continue
            buf, n_rows, row_no = item
            if not bufs:
                first_row = row_no
            bufs.append(buf)
            n += n_rows
            size += len(buf)
            if n >= chunk_rows or size >= limits.MAX_CHUNK_BYTES:
                yield flush()
                bufs, bad, n, size = [], [], 0, 0
        yield flush()


def _csv_header(path: Path, pieces: Iterator) -> tuple[bytes, Iterator]:
    """The header row, and the rest of the pieces (the header's leftovers first)."""
    for kind, item in pieces:
        if kind == "bad":
            raise IngestError(f"cannot read {path}: the header line is longer than "
                              f"{mib_text(limits.MAX_ROW_BYTES)}")
        buf, n_rows, row_no = item
        cut = _first_row_end(buf)
        rest = buf[cut:]
        head = [("rows", (rest, n_rows - 1, row_no + 1))] if n_rows > 1 else []

        def chain(head=head):
            yield from head
            yield from pieces
        return buf[:cut], chain()
    raise IngestError(f"cannot read {path}: the CSV file has no header line")


def _first_row_end(buf: bytes) -> int:
    arr = np.frombuffer(buf, dtype=np.uint8)
    parity = np.cumsum(arr == 0x22, dtype=np.uint8) & 1  # mod 256 keeps parity
    return int(np.flatnonzero((arr == 0x0A) & (parity == 0))[0]) + 1


def _column_names(path: Path, header: bytes, delimiter: str) -> tuple[list[str], list[str]]:
    """(unique Arrow column names, header names as written) of a CSV header.

    An empty header cell becomes ``_unnamed_<position>`` and a repeated name
    ``_repeat_<position>``: the pipeline ignores ``_`` columns, and
    :func:`_csv_chunk` quarantines the rows that hold a value under them."""
    if header.startswith(b"\xef\xbb\xbf"):
        header = header[3:]
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(f"cannot read {path}: the header line is not valid UTF-8 "
                          f"(byte 0x{header[exc.start:exc.start + 1].hex()} at offset "
                          f"{exc.start})") from None
    try:
        cells = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    except csv.Error as exc:
        raise IngestError(f"cannot read {path}: the header line is not CSV ({exc})") from None
    written = [c.strip() for c in cells]
    if not any(written):
        raise IngestError(f"cannot read {path}: the CSV file has no header line")
    names, seen = [], set()
    for i, name in enumerate(written, start=1):
        if not name:
            names.append(f"_unnamed_{i}")
        elif name in seen:
            names.append(f"_repeat_{i}")
        else:
            seen.add(name)
            names.append(name)
    return names, written


def _csv_chunk(buf: bytes, first_row: int, names: list[str], written: list[str],
               delimiter: str, bad: list[Quarantined]):
    malformed: list[Quarantined] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        where = f"row {first_row + row.number - 1}" if row.number > 0 else "a row"
        malformed.append(("malformed_csv",
                          f"{where}: expected {row.expected_columns} columns, "
                          f"got {row.actual_columns}",
                          json.dumps({"line": escaped(row.text.encode("utf-8", "surrogateescape")
                                                       if isinstance(row.text, str) else row.text)
                                      })))
        return "skip"

    if not buf:
        empty = pa.table({h: pa.array([], pa.string()) for h in names})
        return Chunk(empty, pre_quarantined=bad)
    table = pacsv.read_csv(
        pa.BufferReader(buf),
        read_options=pacsv.ReadOptions(column_names=names, block_size=max(len(buf) + 1, 1 << 20),
                                       use_threads=False),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                         invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(column_types={h: pa.binary() for h in names},
                                             strings_can_be_null=True),
    )
    # Row numbers below are exact only without malformed rows before them.
    table, rejected = _check_csv_rows(table, first_row, names, written)
    return Chunk(table, pre_quarantined=bad + malformed + rejected)


def _row_raw(table: pa.Table, i: int, written: list[str]) -> str:
    values = [table.column(j)[i].as_py() for j in range(table.num_columns)]
    pairs = [json.dumps(k, ensure_ascii=True) + ": " + json.dumps(
        None if v is None else escaped(v), ensure_ascii=True)
        for k, v in zip(written, values, strict=True)]
    return "{" + ", ".join(pairs) + "}"


def _check_csv_rows(table: pa.Table, first_row: int, names: list[str], written: list[str]
                    ) -> tuple[pa.Table, list[Quarantined]]:
    """Text columns from the binary ones; rows with invalid UTF-8, unnamed or
    conflicting repeated values are taken out and quarantined."""
    n = table.num_rows
    reasons: dict[int, Quarantined] = {}
    cols: list[pa.Array] = []
    for j in range(len(names)):
        col = table.column(j).combine_chunks()
        try:
            cols.append(col.cast(pa.string()))
            continue
        except pa.ArrowInvalid:
            pass
        values = col.to_pylist()
        for i, v in enumerate(values):
            if v is None or i in reasons:
                continue
            try:
                v.decode("utf-8")
            except UnicodeDecodeError as exc:
                reasons[i] = bad_utf8(f"row {first_row + i}, column {written[j] or j + 1}", v,
                                       exc, "")
        cols.append(pa.array([None if v is None or i in reasons else v.decode("utf-8")
                              for i, v in enumerate(values)], pa.string()))
    text = pa.table(cols, names=names)
    first = {w: j for j, w in reversed(list(enumerate(written)))}
    for j, name in enumerate(names):
        if not name.startswith(("_unnamed_", "_repeat_")):
            continue
        col = pc.utf8_trim_whitespace(text.column(j))
        has = pc.fill_null(pc.not_equal(col, ""), False)
        if name.startswith("_repeat_"):
            orig = pc.utf8_trim_whitespace(text.column(first[written[j]]))
            has = pc.and_(has, pc.fill_null(pc.not_equal(col, orig), True))
        for i in np.flatnonzero(has.to_numpy(zero_copy_only=False)):
            i = int(i)
            if i in reasons:
                continue
            where = f"row {first_row + i}, column {j + 1}"
            if name.startswith("_unnamed_"):
                reasons[i] = ("unnamed_field", f"{where} holds a value but its header is empty",
                              "")
            else:
                reasons[i] = ("duplicate_field",
                              f"{where}: {written[j]} is named twice in the header (columns "
                              f"{first[written[j]] + 1} and {j + 1}) and the two values differ",
                              "")
    if not reasons:
        return text, []
    out = [(r, d, raw or _row_raw(table, i, written)) for i, (r, d, raw) in sorted(reasons.items())]
    keep = np.ones(n, dtype=bool)
    keep[list(reasons)] = False
    return text.filter(pa.array(keep)), out
