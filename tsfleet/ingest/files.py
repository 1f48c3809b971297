"""Files -> bounded chunks, row by row tolerant.

A bad row of a file affects that row only: it becomes a quarantine entry of the
chunk (``Chunk.pre_quarantined``) and the rest of the file lands. Only a header
that cannot be read refuses a file, and that is decided before any chunk is
yielded, so nothing of a refused file is ever committed.

Memory is bounded by the chunk: a chunk holds at most ``chunk_rows`` rows and
about :data:`MAX_CHUNK_BYTES` of text, plus one row of at most
:data:`MAX_ROW_BYTES`. A longer row (a giant field, or an unclosed quote in a
CSV file) is quarantined as ``row_too_large`` with its first
:data:`SAMPLE_BYTES` and its size, and is never held whole.

Reasons added here: ``invalid_utf8`` (the raw text keeps the bytes as
``\\udcXX`` escapes, so ``json.loads(raw)`` then
``.encode("utf-8", "surrogateescape")`` gives them back), ``row_too_large``,
``unnamed_field`` (a value in a column whose header is empty) and
``duplicate_field`` (a column named twice in the header with two different
values in a row; equal or empty repeats are fine).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from tsfleet.errors import IngestError

#: The longest row (CSV row, JSON line, element of a JSON array) read whole.
MAX_ROW_BYTES = 16 << 20
#: A chunk is cut when its text reaches this size, whatever its row count.
MAX_CHUNK_BYTES = 64 << 20
#: How much of a row that is too large is kept in quarantine.
SAMPLE_BYTES = 4096
_READ_BYTES = 8 << 20

Quarantined = tuple[str, str, str]  # (reason, detail, raw JSON)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n:,} bytes"


def _escaped(data: bytes) -> str:
    """Text of ``data`` with invalid UTF-8 bytes as lone surrogates (round-trips)."""
    return data.decode("utf-8", "surrogateescape")


def _too_large(where: str, sample: bytes, size: int, why: str = "") -> Quarantined:
    detail = (f"{where}: a row of {_mib(size)} is longer than the limit of "
              f"{_mib(MAX_ROW_BYTES)}{why}; its first {min(len(sample), SAMPLE_BYTES)} "
              "bytes are kept")
    raw = json.dumps({"truncated_row": _escaped(sample[:SAMPLE_BYTES]), "n_bytes": size})
    return ("row_too_large", detail, raw)


def _bad_utf8(where: str, data: bytes, exc: UnicodeDecodeError, raw: str) -> Quarantined:
    bad = data[exc.start:exc.start + 1].hex()
    return ("invalid_utf8",
            f"{where}: invalid UTF-8 (byte 0x{bad} at offset {exc.start}); the raw row keeps "
            "the bytes as \\udcXX escapes", raw)


# -- CSV ---------------------------------------------------------------------------

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
        block = b"" if self.eof else self.fh.read(_READ_BYTES)
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
                for i in np.flatnonzero(lengths > MAX_ROW_BYTES):
                    if i > lo:
                        yield "rows", (data[starts[lo]:ends[i - 1] + 1], int(i - lo),
                                       self.row_no + 1)
                        self.row_no += int(i - lo)
                    self.row_no += 1
                    yield "bad", _too_large(f"row {self.row_no}",
                                            data[starts[i]:starts[i] + SAMPLE_BYTES],
                                            int(lengths[i]))
                    lo = i + 1
                if lo < len(ends):
                    yield "rows", (data[starts[lo]:ends[-1] + 1], int(len(ends) - lo),
                                   self.row_no + 1)
                    self.row_no += int(len(ends) - lo)
                self.carry = data[ends[-1] + 1:]
            elif len(data) > MAX_ROW_BYTES or (self.eof and data):
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
        if size > MAX_ROW_BYTES:
            return _too_large(where, sample, size)
        return ("malformed_csv", f"{where}: a quote is never closed (the row would run on to "
                "the end of the file or past the row limit); this line is quarantined and "
                "reading resumes on the next line", json.dumps({"line": _escaped(sample)}))


def csv_chunks(path: Path, chunk_rows: int, delimiter: str) -> Iterator:
    """Chunks of a CSV/TSV file, every column as text; bad rows pre-quarantined."""
    from tsfleet.ingest.sources import Chunk

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
            return _csv_chunk(Chunk, b"".join(bufs), first_row, names, columns, delimiter, bad)

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
            if n >= chunk_rows or size >= MAX_CHUNK_BYTES:
                yield flush()
                bufs, bad, n, size = [], [], 0, 0
        yield flush()


def _csv_header(path: Path, pieces: Iterator) -> tuple[bytes, Iterator]:
    """The header row, and the rest of the pieces (the header's leftovers first)."""
    for kind, item in pieces:
        if kind == "bad":
            raise IngestError(f"cannot read {path}: the header line is longer than "
                              f"{_mib(MAX_ROW_BYTES)}")
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


def _csv_chunk(chunk_cls, buf: bytes, first_row: int, names: list[str], written: list[str],
               delimiter: str, bad: list[Quarantined]):
    malformed: list[Quarantined] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        where = f"row {first_row + row.number - 1}" if row.number > 0 else "a row"
        malformed.append(("malformed_csv",
                          f"{where}: expected {row.expected_columns} columns, "
                          f"got {row.actual_columns}",
                          json.dumps({"line": _escaped(row.text.encode("utf-8", "surrogateescape")
                                                       if isinstance(row.text, str) else row.text)
                                      })))
        return "skip"

    if not buf:
        empty = pa.table({h: pa.array([], pa.string()) for h in names})
        return chunk_cls(empty, pre_quarantined=bad)
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
    return chunk_cls(table, pre_quarantined=bad + malformed + rejected)


def _row_raw(table: pa.Table, i: int, written: list[str]) -> str:
    values = [table.column(j)[i].as_py() for j in range(table.num_columns)]
    pairs = [json.dumps(k, ensure_ascii=True) + ": " + json.dumps(
        None if v is None else _escaped(v), ensure_ascii=True)
        for k, v in zip(written, values, strict=True)]
    return "{" + ", ".join(pairs) + "}"


def _check_csv_rows(table: pa.Table, first_row: int, names: list[str], written: list[str]
                    ) -> tuple[pa.Table, list[Quarantined]]:
    """Text columns from the binary ones; rows with invalid UTF-8, unnamed or
    conflicting repeated values are taken out and quarantined."""
    import pyarrow.compute as pc

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
                reasons[i] = _bad_utf8(f"row {first_row + i}, column {written[j] or j + 1}", v,
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


# -- JSON ---------------------------------------------------------------------------

_CONSTANT = re.compile(rb"NaN|Infinity")


def json_text(obj: object) -> str:
    """One row as JSON text; NaN and infinities become the strings "NaN",
    "Infinity" and "-Infinity" (valid JSON, and a true ``got`` in messages)."""
    try:
        return json.dumps(obj, default=str, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(obj), default=str, ensure_ascii=False, allow_nan=False)


def _finite(obj: object) -> object:
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def lines_chunk(chunk_cls, lines: list[str], bad: list[Quarantined]):
    """A JSON-lines chunk; a line holding text that is not UTF-8 is quarantined."""
    try:
        col = pa.array(lines, pa.string())
    except UnicodeEncodeError:  # lone surrogates: invalid UTF-8 read with surrogateescape
        good = []
        for line in lines:
            try:
                line.encode("utf-8")
                good.append(line)
            except UnicodeEncodeError:
                data = line.encode("utf-8", "surrogateescape")
                bad.append(_bad_utf8("a row", data, _decode_error(data), _ascii_json(line)))
        col = pa.array(good, pa.string())
    return chunk_cls(pa.table({"_line": col}), json_lines=True, pre_quarantined=bad)


def _decode_error(data: bytes) -> UnicodeDecodeError:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError("valid UTF-8")  # pragma: no cover - callers pass invalid text


def _ascii_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), ensure_ascii=True)
    except ValueError:
        return json.dumps(text, ensure_ascii=True)


def json_chunks(path: Path, chunk_rows: int) -> Iterator:
    """Chunks of a JSON-lines file or of a file holding one JSON array (streamed)."""
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip()
        fh.seek(0)
        if head.startswith(b"\xef\xbb\xbf"):
            head = head[3:].lstrip()
            fh.read(3)
        if head.startswith(b"["):
            yield from _array_chunks(path, fh, chunk_rows)
        else:
            yield from _jsonl_chunks(fh, chunk_rows)


def _jsonl_chunks(fh, chunk_rows: int) -> Iterator:
    from tsfleet.ingest.sources import Chunk

    lines: list[str] = []
    bad: list[Quarantined] = []
    size = line_no = 0
    while True:
        data = fh.readline(MAX_ROW_BYTES + 1)
        if not data:
            break
        line_no += 1
        if len(data) > MAX_ROW_BYTES and not data.endswith(b"\n"):
            sample, n = data[:SAMPLE_BYTES], len(data)
            while data and not data.endswith(b"\n"):
                data = fh.readline(_READ_BYTES)
                n += len(data)
            bad.append(_too_large(f"line {line_no}", sample, n))
            continue
        data = data.strip()
        if not data:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad.append(_bad_utf8(f"line {line_no}", data, exc, _ascii_json(_escaped(data))))
            continue
        if _CONSTANT.search(data):
            try:
                text = json_text(json.loads(text, parse_constant=str))
            except ValueError:
                pass  # not JSON: quarantined as invalid_json with the line as it is
        lines.append(text)
        size += len(data)
        if len(lines) >= chunk_rows or size >= MAX_CHUNK_BYTES:
            yield lines_chunk(Chunk, lines, bad)
            lines, bad, size = [], [], 0
    yield lines_chunk(Chunk, lines, bad)


_DECODER = json.JSONDecoder(parse_constant=str)
_WS = re.compile(r"[\s,]*")
_STRUCT = re.compile(r'["\\\[\]{}]')
_BARE_END = re.compile(r"[,\]]")


def _array_chunks(path: Path, fh, chunk_rows: int) -> Iterator:
    """Stream the elements of one top-level JSON array, one element at a time.

    ``raw_decode`` parses an element from a text window that grows until the
    element fits; an element that is malformed or longer than ``MAX_ROW_BYTES``
    is skipped by a structural scan (brackets outside strings) and quarantined.
    """
    from tsfleet.ingest.sources import Chunk

    text = io.TextIOWrapper(fh, encoding="utf-8", errors="surrogateescape")
    buf = text.read(_READ_BYTES)
    pos = buf.index("[") + 1
    eof = False
    lines: list[str] = []
    bad: list[Quarantined] = []
    size = n_elem = 0
    want = _READ_BYTES
    while True:
        pos = _WS.match(buf, pos).end()
        if pos >= len(buf) and not eof:
            buf, pos = buf[pos:] + text.read(_READ_BYTES), 0
            eof = pos >= len(buf)
            continue
        if pos >= len(buf) or buf[pos] == "]":
            break
        try:
            obj, end = _DECODER.raw_decode(buf, pos)
        except json.JSONDecodeError:
            if not eof and len(buf) - pos < MAX_ROW_BYTES:
                more = text.read(want)
                want = min(want * 2, MAX_ROW_BYTES)
                eof = not more
                buf, pos = buf[pos:] + more, 0
                continue
            n_elem += 1
            buf, pos, item, eof = _skip_element(text, buf, pos, n_elem, eof)
            bad.append(item)
            continue
        n_elem += 1
        want = _READ_BYTES
        if end - pos > MAX_ROW_BYTES:
            bad.append(_too_large(f"element {n_elem}", buf[pos:pos + SAMPLE_BYTES].encode(
                "utf-8", "surrogateescape"), end - pos))
            pos = end
            continue
        line = json_text(obj) if isinstance(obj, dict) else json.dumps(json_text(obj))
        lines.append(line)
        size += end - pos
        pos = end
        if pos > _READ_BYTES:
            buf, pos = buf[pos:], 0
        if len(lines) >= chunk_rows or size >= MAX_CHUNK_BYTES:
            yield lines_chunk(Chunk, lines, bad)
            lines, bad, size = [], [], 0
    yield lines_chunk(Chunk, lines, bad)


def _skip_element(text, buf: str, pos: int, n_elem: int, eof: bool):
    """Skip one element that cannot be parsed; returns (buf, pos, quarantined, eof).

    Scans brackets outside strings (a backslash in a string skips the next
    character) up to the end of the element: its closing bracket, or for a bare
    value the next comma or ``]``."""
    sample = buf[pos:pos + SAMPLE_BYTES]
    depth, in_str, size, i = 0, False, 0, pos
    bare = buf[pos:pos + 1] not in ("[", "{", '"')
    pattern = _BARE_END if bare else _STRUCT
    while True:
        m = pattern.search(buf, i)
        if m is None:
            size += len(buf) - pos
            i = max(i - len(buf), 0)
            buf, pos = text.read(_READ_BYTES), 0
            if not buf:
                eof = True
                break
            continue
        c, i = m.group(), m.end()
        if bare:
            i = m.start()
            break
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
                if depth == -1:
                    break
            continue
        if c == '"':
            in_str = True
            if depth == 0:  # a bare string: ends at its closing quote
                depth = -1
        elif c in "[{":
            depth = max(depth, 0) + 1
        elif c in "]}":
            depth -= 1
            if depth <= 0:
                break
    size += i - pos
    sample = sample[:size]
    item = (_too_large(f"element {n_elem}", sample.encode("utf-8", "surrogateescape"), size)
            if size > MAX_ROW_BYTES else
            ("invalid_json", f"element {n_elem} of the array is not valid JSON: "
             + sample[:80].encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
             json.dumps(sample, ensure_ascii=True)))
    return buf, i, item, eof
