"""Keeping one snapshot fresh while a process writes the store (``serve --snapshot-every``).

The process that holds the store is the only one that can read it, so it is the
one that writes the snapshots. :class:`SnapshotScheduler` does that either from
the caller's own loop (``tick()``, which snapshots when due) or from a
background thread (``start()`` / ``stop()``). Snapshots run on their own
cursor, so ingest on the fleet's connection goes on meanwhile.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tsfleet.errors import InvalidParameter, TsfleetError
from tsfleet.share.snapshot import SnapshotReport, ViewMode, check_storage_version, take_snapshot

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet

_INTERVAL_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str | float | int) -> float:
    """Seconds from '90', '30s', '5m', '2h' or '1d' (or a number of seconds).

    >>> parse_interval("5m"), parse_interval(30)
    (300.0, 30.0)
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        m = _INTERVAL_RE.match(str(text))
        if not m:
            raise InvalidParameter(f"an interval must look like 30s, 5m, 2h or 1d, got {text!r}")
        seconds = float(m.group(1)) * _UNIT_S[m.group(2) or "s"]
    if seconds <= 0:
        raise InvalidParameter(f"an interval must be positive, got {text!r}")
    return seconds


def _log_error(exc: BaseException) -> None:
    print(f"tsfleet: snapshot failed: {exc}", file=sys.stderr, flush=True)


class SnapshotScheduler:
    """Take a snapshot of ``fleet`` to ``path`` every ``every`` (e.g. '5m').

    Call ``tick()`` from a serving loop, or ``start()`` a background thread. A
    failed snapshot is reported to ``on_error`` (stderr by default), kept in
    ``last_error`` and retried at the next interval; the previous snapshot stays.

    >>> import tempfile, os
    >>> from tsfleet import Fleet
    >>> fleet = Fleet(memory=True)
    >>> sched = SnapshotScheduler(fleet, os.path.join(tempfile.mkdtemp(), "s.duckdb"), "5m")
    >>> sched.tick() is not None, sched.tick() is None    # the first tick snapshots at once
    (True, True)
    """

    def __init__(self, fleet: Fleet, path: str | Path, every: str | float = "5m", *,
                 storage_version: str | None = None, views: ViewMode = "keep",
                 on_error: Callable[[BaseException], None] | None = _log_error,
                 clock: Callable[[], float] = time.monotonic,
                 pin: Callable[[Callable[[], object]], object] | None = None):
        self.fleet = fleet
        self.path = Path(path)
        self.every_s = parse_interval(every)
        self.storage_version = check_storage_version(storage_version)
        self.views = views
        self.on_error = on_error
        self.clock = clock
        self.pin = pin  # where each copy's read transaction starts (see take_snapshot)
        self.last: SnapshotReport | None = None
        self.last_error: BaseException | None = None
        self.n_taken = 0
        self.n_failed = 0
        self._next_at: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self) -> bool:
        """True when the next snapshot should be taken now."""
        return self._next_at is None or self.clock() >= self._next_at

    def tick(self) -> SnapshotReport | None:
        """Snapshot if due; returns the report, or None when not due or when it failed."""
        if not self.due():
            return None
        return self.run_once()

    def run_once(self) -> SnapshotReport | None:
        """Snapshot now; a failure (TsfleetError, OSError) is kept in ``last_error``, not raised."""
        with self._lock:
            self._next_at = self.clock() + self.every_s
            try:
                report = take_snapshot(self.fleet.con, self.path,
                                       storage_version=self.storage_version, views=self.views,
                                       source=self.fleet.path, pin=self.pin)
            except (TsfleetError, OSError) as exc:
                self.last_error = exc
                self.n_failed += 1
                if self.on_error:
                    self.on_error(exc)
                return None
            self.last, self.last_error = report, None
            self.n_taken += 1
            return report

    # -- background thread ------------------------------------------------------------
    def start(self) -> SnapshotScheduler:
        """Run in a daemon thread: a snapshot now, then one every interval until ``stop()``."""
        if self._thread and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="tsfleet-snapshot", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 60) -> None:
        """Stop the thread after the snapshot in progress, if any."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.tick()
            wait = max(0.0, (self._next_at or 0) - self.clock())
            self._stop.wait(min(wait, self.every_s))

    def __enter__(self) -> SnapshotScheduler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
