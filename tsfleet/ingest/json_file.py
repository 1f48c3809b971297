"""JSON-lines files and files of one JSON array -> chunks of JSON lines.

Lines are read as bytes up to the row limit; an array is streamed one element
at a time (``raw_decode`` on a growing window, a structural scan to skip an
element that is malformed or too long). See :mod:`tsfleet.ingest.files` for the
limits and reasons.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

from tsfleet.ingest import files as limits
from tsfleet.ingest.files import (
    SAMPLE_BYTES,
    Quarantined,
    ascii_json,
    bad_utf8,
    escaped,
    json_text,
    lines_chunk,
    too_large,
)

_CONSTANT = re.compile(rb"NaN|Infinity")


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
    lines: list[str] = []
    bad: list[Quarantined] = []
    size = line_no = 0
    while True:
        data = fh.readline(limits.MAX_ROW_BYTES + 1)
        if not data:
            break
        line_no += 1
        if len(data) > limits.MAX_ROW_BYTES and not data.endswith(b"\n"):
            sample, n = data[:SAMPLE_BYTES], len(data)
            while data and not data.endswith(b"\n"):
                data = fh.readline(limits.READ_BYTES)
                n += len(data)
            bad.append(too_large(f"line {line_no}", sample, n))
            continue
        data = data.strip()
        if not data:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad.append(bad_utf8(f"line {line_no}", data, exc, ascii_json(escaped(data))))
            continue
        if _CONSTANT.search(data):
            try:
                text = json_text(json.loads(text, parse_constant=str))
            except ValueError:
                pass  # not JSON: quarantined as invalid_json with the line as it is
        lines.append(text)
        size += len(data)
        if len(lines) >= chunk_rows or size >= limits.MAX_CHUNK_BYTES:
            yield lines_chunk(lines, bad)
            lines, bad, size = [], [], 0
    yield lines_chunk(lines, bad)


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
    text = io.TextIOWrapper(fh, encoding="utf-8", errors="surrogateescape")
    buf = text.read(limits.READ_BYTES)
    pos = buf.index("[") + 1
    eof = False
    lines: list[str] = []
    bad: list[Quarantined] = []
    size = n_elem = 0
    want = limits.READ_BYTES
    while True:
        pos = _WS.match(buf, pos).end()
        if pos >= len(buf) and not eof:
            buf, pos = buf[pos:] + text.read(limits.READ_BYTES), 0
            eof = pos >= len(buf)
            continue
        if pos >= len(buf) or buf[pos] == "]":
            break
        try:
            obj, end = _DECODER.raw_decode(buf, pos)
            # (the row's text: nested deeper than Python's JSON coder goes raises too)
            line = json_text(obj) if isinstance(obj, dict) else json.dumps(json_text(obj))
        except RecursionError:
            n_elem += 1
            buf, pos, item, eof = _skip_element(text, buf, pos, n_elem, eof)
            bad.append(("invalid_json", f"element {n_elem} of the array is nested too deeply "
                        "to read", item[2]) if item[0] == "invalid_json" else item)
            continue
        except json.JSONDecodeError:
            if not eof and len(buf) - pos < limits.MAX_ROW_BYTES:
                more = text.read(want)
                want = min(want * 2, limits.MAX_ROW_BYTES)
                eof = not more
                buf, pos = buf[pos:] + more, 0
                continue
            n_elem += 1
            buf, pos, item, eof = _skip_element(text, buf, pos, n_elem, eof)
            bad.append(item)
            continue
        n_elem += 1
        want = limits.READ_BYTES
        if end - pos > limits.MAX_ROW_BYTES:
            bad.append(too_large(f"element {n_elem}", buf[pos:pos + SAMPLE_BYTES].encode(
                "utf-8", "surrogateescape"), end - pos))
            pos = end
            continue
        lines.append(line)
        size += end - pos
        pos = end
        if pos > limits.READ_BYTES:
            buf, pos = buf[pos:], 0
        if len(lines) >= chunk_rows or size >= limits.MAX_CHUNK_BYTES:
            yield lines_chunk(lines, bad)
            lines, bad, size = [], [], 0
    yield lines_chunk(lines, bad)


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
            buf, pos = text.read(limits.READ_BYTES), 0
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
    item = (too_large(f"element {n_elem}", sample.encode("utf-8", "surrogateescape"), size)
            if size > limits.MAX_ROW_BYTES else
            ("invalid_json", f"element {n_elem} of the array is not valid JSON: "
             + sample[:80].encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
             json.dumps(sample, ensure_ascii=True)))
    return buf, i, item, eof
