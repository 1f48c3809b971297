"""Reaching a store that ``tsfleet serve`` holds: its advert, its token, one request.

DuckDB lets one process open a file for writing, so while ``serve`` runs, every other
command reaches the store through serve's control interface (``tsfleet.service.control``):
HTTP on 127.0.0.1, on a port the OS chose, announced beside the store:

- ``<store>.serve.json``: ``{"pid", "host", "port", "token_file", "store"}``, written
  when serve starts and removed when it stops cleanly; an advert whose process is gone
  (a killed serve) is ignored;
- ``<store>.serve.token``: a random token, mode 0600: only the store's owner can read
  it, and every request must carry it (``Authorization: Bearer <token>``).

The CLI forwards itself when opening the store fails because serve holds it
(:func:`forward`); the Python API gets :func:`connect`. Kept light (standard library
only): every command that finds the store held pays for importing it.

>>> advert_path("plant.duckdb").name
'plant.duckdb.serve.json'
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tsfleet.errors import StoreError, TsfleetError
from tsfleet.rows import Rows

ADVERT_SUFFIX = ".serve.json"
TOKEN_SUFFIX = ".serve.token"


def advert_path(store: str | os.PathLike) -> Path:
    """Where serve announces its control interface for ``store``."""
    return Path(str(store) + ADVERT_SUFFIX)


def token_path(store: str | os.PathLike) -> Path:
    """The token file of ``store``'s control interface."""
    return Path(str(store) + TOKEN_SUFFIX)


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists (ours to signal or not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_server(store: str | os.PathLike) -> dict[str, Any] | None:
    """The advert of the serve process holding ``store``, or None (no advert, an
    unreadable one, or one left by a process that is gone)."""
    try:
        advert = json.loads(advert_path(store).read_text(encoding="utf-8"))
        pid, port = int(advert["pid"]), int(advert["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not pid_alive(pid) or not 0 < port < 65536:
        return None
    try:
        if not os.path.samefile(advert.get("store", store), store):
            return None
    except OSError:
        return None
    return advert


def request(advert: dict[str, Any], path: str, body: dict[str, Any],
            timeout: float | None = None) -> dict[str, Any]:
    """POST ``body`` as JSON to the control interface; the JSON answer."""
    host, port = advert.get("host", "127.0.0.1"), int(advert["port"])
    try:
        token = Path(advert["token_file"]).read_text(encoding="utf-8").strip()
    except (OSError, KeyError) as exc:
        raise StoreError(f"the store is held by tsfleet serve (pid {advert['pid']}) but its "
                         f"token cannot be read: {exc}") from None
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", path, body=json.dumps(body).encode(),
                     headers={"Authorization": f"Bearer {token}",
                              "Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
    except OSError as exc:
        raise StoreError(f"the store is held by tsfleet serve (pid {advert['pid']}), whose "
                         f"control interface on {host}:{port} did not answer: {exc}") from None
    finally:
        conn.close()
    try:
        answer = json.loads(data)
    except ValueError:
        answer = {}
    if resp.status != 200:
        raise TsfleetError(f"tsfleet serve (pid {advert['pid']}) refused the request: "
                           f"HTTP {resp.status} {answer.get('error', resp.reason)}")
    return answer


def run_remote(advert: dict[str, Any], argv: Sequence[str],
               timeout: float | None = None) -> dict[str, Any]:
    """Run a ``tsfleet`` command line in the serve process: ``{rc, stdout, stderr}``.
    Relative paths on it are taken from this process's working directory."""
    return request(advert, "/cli", {"argv": list(argv), "cwd": os.getcwd()}, timeout)


def forward(advert: dict[str, Any], argv: Sequence[str]) -> int:
    """Run ``argv`` in the serve process, print what it printed, return its exit status."""
    answer = run_remote(advert, argv)
    sys.stdout.write(answer.get("stdout", ""))
    sys.stdout.flush()
    sys.stderr.write(answer.get("stderr", ""))
    sys.stderr.flush()
    return int(answer.get("rc", 2))


def _aware(text: str) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(text).astimezone(ZoneInfo("UTC"))


#: How a value of a DuckDB type, sent as JSON, is read back as ``Fleet.query`` returns it.
_DECODE: dict[str, Any] = {
    "TIMESTAMP WITH TIME ZONE": _aware,
    **dict.fromkeys(("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"),
                    datetime.fromisoformat),
    "DATE": date.fromisoformat,
    "TIME": time.fromisoformat,
    "TIME WITH TIME ZONE": time.fromisoformat,
    "INTERVAL": lambda seconds: timedelta(seconds=seconds),
    "UUID": uuid.UUID,
}


def _decoder(duckdb_type: str):
    """The reader of a column of ``duckdb_type`` (None: JSON already gives the value):
    a ``DECIMAL(p,s)`` comes as its exact text, read as a Decimal."""
    if duckdb_type.startswith("DECIMAL(") and duckdb_type.endswith(")"):
        return Decimal
    return _DECODE.get(duckdb_type)


def decode_rows(rows: list[dict[str, Any]], types: dict[str, str]) -> Rows:
    """Rows of a ``/query`` answer as ``Fleet.query`` gives them: each column whose DuckDB
    type (``types``) is a time, a date, an interval, a decimal or a UUID, read back from
    its JSON.

    >>> [row] = decode_rows([{"t": "2026-07-31T01:36:34+02:00", "d": "2026-07-30", "n": 1}],
    ...                     {"t": "TIMESTAMP WITH TIME ZONE", "d": "DATE", "n": "INTEGER"})
    >>> row["t"].isoformat(), str(row["t"].tzinfo), row["d"], row["n"]
    ('2026-07-30T23:36:34+00:00', 'UTC', datetime.date(2026, 7, 30), 1)
    >>> decode_rows([{"x": "0.10"}], {"x": "DECIMAL(18,2)"})
    [{'x': Decimal('0.10')}]
    """
    decode = {c: f for c, t in types.items() if (f := _decoder(t)) is not None}
    if not decode:
        return Rows(rows, list(types))
    return Rows(({c: v if v is None or c not in decode else decode[c](v) for c, v in r.items()}
                 for r in rows), list(types))


class ServedFleet:
    """The Python API of a store that ``tsfleet serve`` holds (:func:`connect`):
    queries answered by serve from a read cursor, files ingested through its writer.

    >>> # fleet = connect("plant.duckdb"); fleet.query("select count(*) as n from readings")
    """

    def __init__(self, store: str | os.PathLike, advert: dict[str, Any]):
        self.path = str(store)
        self.advert = advert
        self.read_only = False

    def __repr__(self) -> str:
        return f"ServedFleet({self.path!r}, pid={self.advert['pid']})"

    def query(self, sql: str, params: list | None = None) -> Rows:
        """Rows of a read-only query as dicts, as ``Fleet.query`` returns them: a
        ``timestamp`` a naive datetime (UTC, as stored), a ``timestamptz`` an aware one in
        UTC, a date a date, an interval a timedelta, a decimal a Decimal (exact), a UUID a
        UUID (:func:`decode_rows`)."""
        # a time as a parameter goes as ISO text (JSON has no time), which DuckDB compares
        # with a time column as Fleet.query's datetime parameter is compared
        sent = [p.isoformat() if isinstance(p, (date, time)) else p for p in params or []]
        answer = request(self.advert, "/query", {"sql": sql, "params": sent})
        if answer.get("error"):
            raise TsfleetError(answer["error"])
        return decode_rows(answer["rows"], answer.get("types") or {})

    def cli(self, *argv: str) -> dict[str, Any]:
        """Run a ``tsfleet`` command in serve: ``{rc, stdout, stderr}``."""
        return run_remote(self.advert, argv)

    def ingest(self, kind: str, path: str | os.PathLike) -> str:
        """Ingest a file through serve's writer; the line ``tsfleet ingest`` prints."""
        answer = self.cli("ingest", kind, os.path.abspath(path))
        if answer["rc"] != 0:
            raise TsfleetError(answer["stderr"].strip().removeprefix("tsfleet: error: "))
        return answer["stdout"].strip()

    def close(self) -> None:
        """Nothing to release: every call is one request."""

    def __enter__(self) -> ServedFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(store: str | os.PathLike):
    """A :class:`ServedFleet` when ``tsfleet serve`` holds ``store``, else ``Fleet(store)``."""
    advert = find_server(store)
    if advert is not None:
        return ServedFleet(store, advert)
    from tsfleet.fleet import Fleet
    return Fleet(store)
