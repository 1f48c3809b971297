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
values in a row; equal or empty repeats are fine). The pipeline adds, for JSON
objects, ``too_many_fields`` and ``duplicate_field`` (a key given twice).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import pyarrow as pa

#: The longest row (CSV row, JSON line, element of a JSON array) read whole.
MAX_ROW_BYTES = 16 << 20
#: A chunk is cut when its text reaches this size, whatever its row count.
MAX_CHUNK_BYTES = 64 << 20
#: How much of a row that is too large is kept in quarantine.
SAMPLE_BYTES = 4096
#: Bytes read from a file at a time.
READ_BYTES = 8 << 20

Quarantined = tuple[str, str, str]  # (reason, detail, raw JSON)


def mib_text(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n:,} bytes"


def escaped(data: bytes) -> str:
    """Text of ``data`` with invalid UTF-8 bytes as lone surrogates (round-trips)."""
    return data.decode("utf-8", "surrogateescape")


def too_large(where: str, sample: bytes, size: int) -> Quarantined:
    """The quarantine entry of a row longer than ``MAX_ROW_BYTES``: its start and size."""
    detail = (f"{where}: a row of {mib_text(size)} is longer than the limit of "
              f"{mib_text(MAX_ROW_BYTES)}; its first {min(len(sample), SAMPLE_BYTES)} "
              "bytes are kept")
    raw = json.dumps({"truncated_row": escaped(sample[:SAMPLE_BYTES]), "n_bytes": size})
    return ("row_too_large", detail, raw)


def bad_utf8(where: str, data: bytes, exc: UnicodeDecodeError, raw: str) -> Quarantined:
    bad = data[exc.start:exc.start + 1].hex()
    return ("invalid_utf8",
            f"{where}: invalid UTF-8 (byte 0x{bad} at offset {exc.start}); the raw row keeps "
            "the bytes as \\udcXX escapes", raw)



@dataclass
class Chunk:
    """One piece of input for :func:`tsfleet.ingest.pipeline.ingest_chunk`."""

    table: pa.Table
    json_lines: bool = False
    pre_quarantined: list[tuple[str, str, str]] = field(default_factory=list)


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


def lines_chunk(lines: list[str], bad: list[Quarantined]) -> Chunk:
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
                bad.append(bad_utf8("a row", data, _decode_error(data), ascii_json(line)))
        col = pa.array(good, pa.string())
    return Chunk(pa.table({"_line": col}), json_lines=True, pre_quarantined=bad)


def _decode_error(data: bytes) -> UnicodeDecodeError:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError("valid UTF-8")  # pragma: no cover - callers pass invalid text


def ascii_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), ensure_ascii=True)
    except ValueError:
        return json.dumps(text, ensure_ascii=True)
