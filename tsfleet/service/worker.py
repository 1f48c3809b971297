"""Analyses off the ingest path: ``tsfleet serve``'s analysis thread (issue 23).

The writer thread owns serve's DuckDB connection and commits what the transports
receive. The analyses run on a thread of their own, on a cursor of that connection
(a connection of the same database: DuckDB's MVCC gives every transaction a
consistent view, and transactions of different connections commit side by side), so a
reading's commit never waits for an analysis.

DuckDB's concurrency is optimistic: two transactions that change the same row
conflict, and the later one fails. Ingest and the analyses write different tables,
which the domain registry states: a domain whose analysis writes tables that ingest
writes (``DomainSpec.shares_ingest_tables``: firmware, whose ingest hook keeps
``firmware_device_state`` and the security events) is run on the writer thread between
two batches (:meth:`Writer.call`), as all analyses were before; it is short. Every other
analysis runs here; should one still meet a conflict (a command of the control
interface, run on the writer, changed a row it writes), its attempt is rolled back and
run again (:func:`tsfleet.service.runner.run_one`, ``conflict_retries``): an analysis
recomputes its results from the store. A batch is never what gives way: the writer
stores a batch that meets a conflict again, and nothing here writes its tables.

:attr:`AnalysisWorker.lock` is held for each analysis run. Writes forwarded by the
control interface take it before they queue into the writer, so a forwarded command (an
``alerts ack``, ``tsfleet analyze``) never runs beside an analysis writing the same
results; the writer's cache trim (which lowers DuckDB's ``memory_limit`` for a moment)
runs only while no analysis does.

Shutdown (:meth:`AnalysisWorker.stop`): no new analysis starts; a running one finishes
and is recorded, with the writer still committing meanwhile; then the writer stops.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from tsfleet.domain import BY_NAME, RunResult
from tsfleet.service.runner import run_one

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet
    from tsfleet.live.writer import Writer
    from tsfleet.service.cadence import Cadence

log = logging.getLogger("tsfleet.service")

#: Attempts of one analysis rolled back after a write conflict and run again.
CONFLICT_RETRIES = 5


class AnalysisWorker:
    """Runs ``cadence`` on its own thread and cursor of ``fleet``'s store; the analyses of
    domains that share tables with ingest go to ``writer``.

    >>> # worker = AnalysisWorker(fleet, writer, Cadence({"power": 120})).start(); ...; .stop()
    """

    def __init__(self, fleet: Fleet, writer: Writer, cadence: Cadence, *,
                 idle_every: float = 1.0, conflict_retries: int = CONFLICT_RETRIES):
        self.fleet, self.writer, self.cadence = fleet, writer, cadence
        self.idle_every = idle_every
        self.conflict_retries = conflict_retries
        #: held for each analysis run (see the module docstring)
        self.lock = threading.RLock()
        #: the analysis running now (None between runs)
        self.running: str | None = None
        #: attempts rolled back after a write conflict and run again, since the start
        self.n_conflicts = 0
        #: analyses run on the writer thread (shares_ingest_tables) and their total seconds
        self.n_on_writer = 0
        self.on_writer_s = 0.0
        self._own: Fleet | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tsfleet-analysis", daemon=True)

    def start(self) -> AnalysisWorker:
        from tsfleet.fleet import Fleet

        cur = self.fleet.con.cursor()
        cur.execute("SET TimeZone = 'UTC'")  # as tsfleet.store.connect sets its connections
        self._own = Fleet.borrow(cur, self.fleet.path, read_only=False, owns=True,
                                 unknown_devices=self.fleet.unknown_devices)
        # the environment model on one thread here: the writer keeps the other core
        # (analyze's default is one thread per core, for a command that runs alone)
        self._own.environment.threads = 1
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """No new analysis starts; waits for a running one (``timeout`` None: however long
        it takes, as its results and record must land before the store closes)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                with self.lock:
                    if self._stopping.is_set():
                        break
                    self.cadence.tick(self._own, run=self._run_one)
                self._stopping.wait(min(max(self.cadence.wait_s(), 0.01), self.idle_every))
        finally:
            try:
                self._own.close()
            except Exception:  # noqa: BLE001 - closing a cursor at shutdown
                log.debug("analysis: closing the cursor failed", exc_info=True)

    def _run_one(self, fleet: Fleet, name: str) -> RunResult:
        self.running = name
        try:
            if BY_NAME[name].shares_ingest_tables:  # between two batches, on the writer
                t0 = time.perf_counter()
                try:
                    return self.writer.call(lambda: run_one(self.fleet, name))
                finally:
                    self.n_on_writer += 1
                    self.on_writer_s += time.perf_counter() - t0
            result = run_one(fleet, name, conflict_retries=self.conflict_retries)
            self.n_conflicts += result.n_conflicts
            return result
        finally:
            self.running = None
