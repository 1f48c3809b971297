"""The single writer: one thread owns the Fleet and commits batches of decoded payloads.

Transports (MQTT callbacks, the CoAP event loop) decode on their own threads
and hand :class:`Envelope` objects to :meth:`Writer.submit`. The writer
batches them by size (``max_rows``) and age (``max_delay`` seconds), stores
each batch through :meth:`tsfleet.Fleet.ingest` (readings as one Arrow table,
other kinds as rows: the foundation's one validation path), keeps unmapped
fields and undecodable payloads, and only then calls each envelope's ``ack``:
nothing is acknowledged before it is durable, so a crash redelivers rather
than loses. Redeliveries are absorbed by the pipeline's duplicate keys.

A batch that fails to store, whatever the exception, is stored in halves
until the failing payloads are alone; a payload that still fails is
quarantined with the error and acknowledged, so one poison message can
neither stop nor stall the stream.
A payload that cannot even be quarantined is logged, counted
(``WriterStats.n_unstorable``) and acknowledged, as long as the store itself
still works (a write transaction opens); when it does not, the writer stops
without acknowledging, and the broker redelivers after the restart.

Memory is bounded: :meth:`Writer.submit` blocks while the payloads held (queued
or in the open batch, not yet acknowledged) exceed ``max_pending`` payloads or
``max_pending_bytes``, which stops the MQTT network thread reading (back-pressure
to the broker, which holds the rest) and delays CoAP answers. DuckDB keeps the
blocks of the store it wrote or read cached until its ``memory_limit`` (default 80%
of RAM), so a store that grows (every distinct rejected payload is kept) would grow
the process with it: with ``cache_limit`` the writer evicts the cached blocks past
that many bytes every ``trim_every`` seconds (:func:`trim_cache`).

``between_commits`` (optional) is called on the writer thread whenever nothing
is held, after each commit and at least every ``idle_every`` seconds (the alert
pushes and the metrics' freshness copy of ``tsfleet serve``; its analysis cadence
with ``--analyses-on-writer``; by default the analyses run on a thread of their own,
:mod:`tsfleet.service.worker`). Its exceptions are logged and never stop the writer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa

from tsfleet.errors import StoreError, TsfleetError
from tsfleet.live.decode import short
from tsfleet.live.decoded import Decoded
from tsfleet.live.errors import Reject
from tsfleet.live.lorawan import SIDE_KINDS, columnar, store_side_rows, tuple_table
from tsfleet.live.texts import ORPHAN_PAYLOADS, PIECE_CHARS, delete_with_texts, store_texts
from tsfleet.store import transaction

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet

log = logging.getLogger("tsfleet.live")

#: The longest payload text kept in quarantine or unmapped rows.
MAX_KEPT_PAYLOAD = 16 * 1024
#: The longest text kept of an oversized payload: it is refused for its size alone, and
#: its start tells who sent what. (Every byte kept is held in quarantine's open row group,
#: which DuckDB copies at a checkpoint: docs/live.md, "memory".)
MAX_KEPT_OVERSIZED = 1024
#: Estimated bytes of Python objects per decoded row (for the held-bytes bound).
ROW_BYTES = 200
#: Default bound of the bytes held by payloads not yet acknowledged.
DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024


@dataclass
class Envelope:
    """One received payload on its way to the store."""

    transport: str                 # "mqtt" | "coap"
    source: str                    # MQTT topic or CoAP path
    payload: bytes
    received_at: float
    decoded: Decoded | None = None
    reject: Reject | None = None
    ack: Callable[[], None] | None = None
    redelivered: bool = False
    #: bytes received (``payload`` may have been cut to what quarantine keeps)
    n_bytes: int = -1
    #: what :meth:`Writer.submit` counted against its bound
    cost: int = 0
    #: SHA-256 (hex) of all the bytes received, kept by :meth:`trim` before it cuts
    full_sha256: str | None = None

    def __post_init__(self) -> None:
        if self.n_bytes < 0:
            self.n_bytes = len(self.payload)

    @property
    def size(self) -> int:
        return self.decoded.n_rows if self.decoded else 1

    @property
    def held_bytes(self) -> int:
        """An estimate of the memory this envelope holds until acknowledged."""
        return len(self.payload) + ROW_BYTES * self.size

    @property
    def kept_bytes(self) -> int:
        """How much of the payload quarantine keeps: MAX_KEPT_OVERSIZED of an oversized
        payload, else MAX_KEPT_PAYLOAD."""
        oversized = self.reject is not None and self.reject.reason == "oversized_payload"
        return MAX_KEPT_OVERSIZED if oversized else MAX_KEPT_PAYLOAD

    def trim(self) -> None:
        """Keep only what quarantine stores of the payload, and the hash of all of it:
        de-duplication must tell apart payloads that differ after the cut."""
        keep = self.kept_bytes
        if len(self.payload) > keep and self.full_sha256 is None:
            self.full_sha256 = hashlib.sha256(self.payload).hexdigest()
        self.payload = self.payload[:keep]

    def sha256(self) -> str:
        """SHA-256 (hex) of all the bytes received: the de-duplication key of its rows."""
        return self.full_sha256 or hashlib.sha256(self.payload).hexdigest()

    def kept_payload(self) -> str:
        """The payload as text for the store (base64 for binary, cut at :attr:`kept_bytes`)."""
        body = self.payload[:self.kept_bytes]
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = "base64:" + base64.b64encode(body).decode()
        if self.n_bytes > len(body):
            text += f" [cut: {self.n_bytes} bytes received]"
        return text


@dataclass
class WriterStats:
    """Running totals since the writer started."""

    n_messages: int = 0
    n_redelivered: int = 0
    n_batches: int = 0
    n_readings: int = 0
    n_accepted: int = 0
    n_duplicates: int = 0
    n_quarantined: int = 0
    n_unmapped: int = 0
    n_rejected: int = 0
    n_failed_batches: int = 0
    #: payloads that could neither be stored nor quarantined (logged, acknowledged)
    n_unstorable: int = 0
    #: batches stored again after a write-write conflict with another connection
    n_conflicts: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    #: rows the pipeline quarantined, per reason (``bad_number``, ``out_of_range``, ...)
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    #: rows deleted to keep what live ingest sets aside within ``set_aside_keep``, per table
    n_set_aside_deleted: dict[str, int] = field(default_factory=dict)


class _Sync:
    def __init__(self):
        self.done = threading.Event()


class _Task(_Sync):
    """A function to run on the writer thread between two batches (:meth:`Writer.call`)."""

    def __init__(self, fn: Callable[[], object]):
        super().__init__()
        self.fn = fn
        self.result: object = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            self.error = exc
        finally:
            self.done.set()


_STOP = object()
#: How often a writer holding a partial batch looks for more (seconds).
POLL_S = 0.02
#: Attempts to store a batch that meets write-write conflicts (see _store_retrying).
CONFLICT_RETRIES = 5
#: Seconds between two trims of DuckDB's block cache (when a ``cache_limit`` is set).
TRIM_EVERY_S = 5.0
#: Default bound of DuckDB's cache of store blocks kept by ``tsfleet serve``.
DEFAULT_CACHE_LIMIT = 64 * 1024 * 1024
#: A checkpoint deferred while an analysis runs is made anyway past this many times
#: ``checkpoint_wal``; DuckDB's own automatic checkpoint is left as a backstop at twice that.
CHECKPOINT_FORCE_FACTOR = 4
#: The de-duplication keys of live payloads kept: the newest this many of
#: ``quarantine_payloads`` (by batch) and of ``unmapped_keys`` (by first reception). A key
#: is an entry of a primary-key index, which DuckDB holds in memory once inserts have
#: touched it (100-150 bytes for a SHA-256 in hex), so keys kept for ever grew the server
#: with every distinct payload a sender made up. A redelivery follows within minutes; a
#: payload that comes again after its key left is stored again (docs/live.md).
PAYLOAD_KEYS_KEPT = 50_000
#: The key tables and the column that orders them by age.
KEY_TABLES = {"quarantine_payloads": "batch_id", "unmapped_keys": "received_at"}
#: What live ingest sets aside is cut back to its newest ``set_aside_keep`` rows (quarantined
#: live rows, and unmapped fields) at most this often, once it holds more; a cut keeps
#: KEEP_AFTER_CUT of them, so that the next one comes only after a fifth more arrived.
SET_ASIDE_EVERY_S = 60.0
#: serve's default: at most 100,000 x 16 KiB (1.6 GB) of quarantined payload text
DEFAULT_QUARANTINE_KEEP = 100_000
KEEP_AFTER_CUT = 0.8
#: The live rows of ``quarantine_rows``: their source is the transports' label (``live:mqtt``).
LIVE_QUARANTINE = "source like 'live:%'"


class Writer:
    """Owns ``fleet`` on one thread; see the module docstring."""

    def __init__(self, fleet: Fleet, *, max_rows: int = 25_000, max_delay: float = 0.5,
                 max_pending: int = 20_000, max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
                 on_commit: Callable[[list[Envelope], float], None] | None = None,
                 on_fatal: Callable[[BaseException], None] | None = None,
                 between_commits: Callable[[], object] | None = None,
                 idle_every: float = 1.0, cache_limit: int | None = None,
                 memory_limit: str | None = None, trim_every: float = TRIM_EVERY_S,
                 trim_guard: threading.RLock | None = None,
                 checkpoint_wal: int | None = None, keys_kept: int = PAYLOAD_KEYS_KEPT,
                 set_aside_keep: int | None = None,
                 set_aside_every: float = SET_ASIDE_EVERY_S):
        self.fleet = fleet
        #: the newest quarantined live rows, and unmapped fields, kept (None: all); what is
        #: older goes with its texts (:meth:`_cut_back`), checked every ``set_aside_every`` s
        self.set_aside_keep, self.set_aside_every = set_aside_keep, set_aside_every
        self._cut_at = time.monotonic()
        #: de-duplication keys kept per key table (``PAYLOAD_KEYS_KEPT``), and the keys
        #: added to each since it was last cut back (at the start: cut back once)
        self.keys_kept = keys_kept
        self._keys_added = dict.fromkeys(KEY_TABLES, keys_kept)
        #: WAL bytes past which the writer checkpoints between batches (None: DuckDB's
        #: automatic checkpoints at its checkpoint_threshold, at any commit of any thread)
        self.checkpoint_wal = checkpoint_wal
        self._wal = Path(fleet.path + ".wal") if checkpoint_wal and fleet.path else None
        #: checkpoints the writer made, and those deferred because an analysis ran
        self.n_checkpoints = self.n_checkpoints_deferred = 0
        #: a lock held by whoever runs work on other connections of the store (the
        #: analysis thread): a trim lowers the database's memory_limit for a moment, so it
        #: is made only while that lock is free (and skipped, tried again, while not)
        self.trim_guard = trim_guard
        #: bytes of cached store blocks kept (None: DuckDB's own policy), and the
        #: memory_limit to put back after a trim (None: DuckDB's default)
        self.cache_limit, self.memory_limit = cache_limit, memory_limit
        self.trim_every = trim_every
        self._trimmed_at = time.monotonic()
        #: bytes of cached blocks evicted by trims so far
        self.n_trimmed_bytes = 0
        self.max_rows = max_rows
        self.max_delay = max_delay
        self.on_commit = on_commit
        self.on_fatal = on_fatal
        self.between_commits = between_commits
        self.idle_every = idle_every
        self._stopping = threading.Event()
        self._in_task = False
        self.stats = WriterStats()
        self.error: BaseException | None = None
        self._q: queue.SimpleQueue = queue.SimpleQueue()  # C: no Condition per put and get
        self.max_pending, self.max_pending_bytes = max_pending, max_pending_bytes
        self._held = threading.Condition()
        self._held_n = self._held_bytes = 0
        self._thread = threading.Thread(target=self._run, name="tsfleet-writer", daemon=True)

    # -- API used by the transports --------------------------------------------------
    def start(self) -> None:
        readings_table([Decoded("warm-up", ["d"], [1.78e9], ["m"], [1.0])])  # see below
        if self._wal is not None:  # DuckDB's own only as a backstop (see _checkpoint):
            # it compares the WAL plus its estimate of the commit, which for the many
            # narrow rows of text_pieces is several times the bytes the commit writes
            backstop = 4 * CHECKPOINT_FORCE_FACTOR * self.checkpoint_wal
            self.fleet.con.execute(f"SET checkpoint_threshold = '{int(backstop)}B'")
        self._thread.start()

    def submit(self, env: Envelope) -> None:
        """Queue one payload; blocks while the payloads held (not yet acknowledged)
        reach ``max_pending`` or ``max_pending_bytes`` (one is always let through)."""
        if self.error is not None:
            raise TsfleetError(f"the writer stopped: {self.error}")
        cost = env.held_bytes
        with self._held:
            while self._held_n and (self._held_n >= self.max_pending or
                                    self._held_bytes + cost > self.max_pending_bytes):
                if self.error is not None:
                    raise TsfleetError(f"the writer stopped: {self.error}")
                self._held.wait(0.5)
            self._held_n += 1
            self._held_bytes += cost
        env.cost = cost
        self._q.put(env)

    @property
    def held(self) -> tuple[int, int]:
        """(payloads, estimated bytes) submitted and not yet acknowledged."""
        return self._held_n, self._held_bytes

    def _release(self, batch: list[Envelope]) -> None:
        with self._held:
            self._held_n -= len(batch)
            self._held_bytes -= sum(e.cost for e in batch)
            self._held.notify_all()

    def sync(self, timeout: float = 30.0) -> bool:
        """Commit everything submitted so far; True when done within ``timeout``."""
        s = _Sync()
        self._q.put(s)
        return s.done.wait(timeout)

    def call(self, fn: Callable[[], object], timeout: float | None = None) -> object:
        """Run ``fn`` on the writer thread between two batches (after what is queued now)
        and return its result, or raise its exception: how the control interface queues
        a write (a file ingest, a registration) into the one writer. Raises
        :class:`TsfleetError` when the writer has stopped or ``timeout`` passes."""
        if self.error is not None or not self._thread.is_alive():
            raise TsfleetError(f"the writer stopped: {self.error or 'shut down'}")
        if threading.current_thread() is self._thread:
            return fn()
        task = _Task(fn)
        self._q.put(task)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not task.done.wait(0.2):
            if self.error is not None or not self._thread.is_alive():
                raise TsfleetError(f"the writer stopped: {self.error or 'shut down'}")
            if deadline is not None and time.monotonic() > deadline:
                raise TsfleetError(f"the writer did not run the task within {timeout:g} s")
        if task.error is not None:
            raise task.error
        return task.result

    @property
    def on_thread(self) -> bool:
        """True on the writer thread itself."""
        return threading.current_thread() is self._thread

    def stop(self, timeout: float = 60.0) -> None:
        """Commit what is held, then end the thread (waiting longer than ``timeout``
        while a between-commits task, such as an analysis run, is still running)."""
        self._stopping.set()  # no new analysis starts; a running one finishes first
        if self._thread.is_alive():
            self._q.put(_STOP)
            deadline = time.monotonic() + timeout
            while self._thread.is_alive() and (self._in_task or time.monotonic() < deadline):
                self._thread.join(0.1)

    # -- the writer thread ------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                pending, marker = self._collect()
                if pending:
                    self._flush(pending)
                    self._prune_keys()  # before a sync is answered: the connection is free then
                    self._cut_back()
                if isinstance(marker, _Task):
                    marker.run()
                elif isinstance(marker, _Sync):
                    marker.done.set()
                elif marker is _STOP:
                    return
                self._between_commits()
                self._checkpoint()
                self._trim()
        except BaseException as exc:  # the store is unusable: stop without acking
            self.error = exc
            log.error("live: the writer stopped: %s", exc)
            if self.on_fatal:
                self.on_fatal(exc)

    def _collect(self) -> tuple[list[Envelope], object]:
        """The next batch, and the marker (sync or stop) that closed it, if any.

        Waits for a first envelope, then takes what is queued, looking again
        every ``POLL_S`` until ``max_rows`` rows or ``max_delay`` seconds. It
        does not block on the queue meanwhile: a blocked reader would be woken
        by every message the transports put, a thread switch per message."""
        timeout = self.idle_every if self.between_commits else None
        try:
            item = self._q.get(timeout=timeout)
        except queue.Empty:
            return [], None
        if not isinstance(item, Envelope):
            return [], item
        pending, n_rows, due = [item], item.size, time.monotonic() + self.max_delay
        get = self._q.get_nowait
        while n_rows < self.max_rows:
            try:
                item = get()
            except queue.Empty:
                left = due - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(left, POLL_S))
                continue
            if not isinstance(item, Envelope):
                return pending, item
            pending.append(item)
            n_rows += item.size
        return pending, None

    def _between_commits(self) -> None:
        if self.between_commits is None or self._stopping.is_set():
            return
        self._in_task = True
        try:
            self.between_commits()
        except Exception:  # noqa: BLE001 - never stop ingestion for an analysis
            log.exception("live: the between-commits task failed")
        finally:
            self._in_task = False

    def _trim(self) -> None:
        """Keep DuckDB's cache of store blocks within ``cache_limit`` (see the module
        docstring); on the writer thread, between commits and analyses."""
        if self.cache_limit is None or time.monotonic() - self._trimmed_at < self.trim_every:
            return
        if self.trim_guard is not None and not self.trim_guard.acquire(blocking=False):
            return  # an analysis is running: the next call tries again
        self._trimmed_at = time.monotonic()
        try:
            self.n_trimmed_bytes += trim_cache(self.fleet.con, self.cache_limit,
                                               self.memory_limit)
        except duckdb.Error as exc:  # a trim is an optimisation: never stop the writer
            log.warning("live: trimming DuckDB's cache failed: %s", _first_line(exc))
        finally:
            if self.trim_guard is not None:
                self.trim_guard.release()

    def _cut_back(self) -> None:
        """Keep the newest ``set_aside_keep`` quarantined live rows and as many unmapped
        fields, with their texts: a sender that keeps sending distinct bad payloads would
        otherwise grow the store without end (each keeps up to 16 KiB). Checked every
        ``set_aside_every`` seconds; a cut keeps at most ``KEEP_AFTER_CUT`` of the limit
        (whole batches, or all the fields received at one instant: fewer when one is
        larger than the rest of that share). Rows of
        file ingests are never cut (their file holds them); ``tsfleet retention
        --quarantine-days`` deletes by age."""
        keep = self.set_aside_keep
        if keep is None or time.monotonic() - self._cut_at < self.set_aside_every:
            return
        self._cut_at = time.monotonic()
        con, target = self.fleet.con, int(keep * KEEP_AFTER_CUT)
        done, t0 = [], time.perf_counter()
        for table, order, where in (("quarantine_rows", "batch_id", LIVE_QUARANTINE),
                                    ("unmapped_item_rows", "received_at", "true")):
            try:
                n = con.execute(f"select count(*) from {table} where {where}").fetchall()[0][0]
                if n <= keep:
                    continue
                # the newest `target` rows stay (all of a batch or instant, or none of it)
                [(cut,)] = con.execute(f"select {order} from {table} where {where} order by "
                                       f"{order} desc limit 1 offset ?", [target]).fetchall()
                with transaction(con):
                    gone = delete_with_texts(con, table, f"{where} and {order} <= ?", [cut])
                    if table == "unmapped_item_rows":
                        delete_with_texts(con, "unmapped_payload_rows", ORPHAN_PAYLOADS)
            except duckdb.Error as exc:  # a bound, not the data: never stop the writer
                log.warning("live: cutting back %s failed: %s", table, _first_line(exc))
                continue
            done.append((table, gone, n - gone))
        for table, gone, kept in done:
            self.stats.n_set_aside_deleted[table] = (
                self.stats.n_set_aside_deleted.get(table, 0) + gone)
            what = ("quarantined live rows" if table == "quarantine_rows"
                    else "unmapped fields")
            log.warning("live: deleted the %s oldest %s with their texts, keeping the newest "
                        "%s (serve --quarantine-keep %s; %.1f s)", f"{gone:,}", what,
                        f"{kept:,}", f"{keep:,}", time.perf_counter() - t0)

    def _prune_keys(self) -> None:
        """Cut each key table back to its newest ``keys_kept`` keys once a quarter of that
        has been added (so a table holds at most 1.25 times as many, plus one batch's):
        the memory of its index stays bounded however many distinct payloads arrive."""
        every = max(1, self.keys_kept // 4)
        for table, order in KEY_TABLES.items():
            if self._keys_added[table] < every:
                continue
            try:
                self.fleet.con.execute(
                    f"delete from {table} where {order} < (select {order} from {table} "
                    f"order by {order} desc limit 1 offset ?)", [self.keys_kept - 1]).fetchall()
            except duckdb.Error as exc:  # an optimisation: never stop the writer
                log.warning("live: cutting back %s failed: %s", table, _first_line(exc))
                continue
            self._keys_added[table] = 0

    def _checkpoint(self) -> None:
        """Checkpoint between batches once the WAL passes ``checkpoint_wal``, and not while
        an analysis runs (``trim_guard`` held), unless the WAL is
        ``CHECKPOINT_FORCE_FACTOR`` times over.

        A checkpoint holds what it writes twice for a moment (the appended rows and their
        long texts, and the blocks written from them): with DuckDB's automatic checkpoint
        (a 16 MiB WAL, at whichever commit passes it, an analysis's included) that was
        the server's RSS peak under hostile traffic. Smaller checkpoints, made where no
        analysis holds its working set, make the rise at a checkpoint smaller; they did
        not lower the peak ratio consistently, so the option is off by default
        (docs/live.md)."""
        if self._wal is None:
            return
        try:
            size = self._wal.stat().st_size
        except OSError:
            return  # no WAL: nothing to checkpoint
        if size < self.checkpoint_wal:
            return
        guard = self.trim_guard
        held = guard is None or guard.acquire(blocking=False)
        if not held and size < CHECKPOINT_FORCE_FACTOR * self.checkpoint_wal:
            self.n_checkpoints_deferred += 1
            return
        try:
            self.fleet.con.execute("CHECKPOINT")
            self.n_checkpoints += 1
        except duckdb.Error as exc:  # another transaction in the way: the next call tries
            log.info("live: checkpoint deferred: %s", _first_line(exc))
        finally:
            if held and guard is not None:
                guard.release()

    def _flush(self, batch: list[Envelope]) -> None:
        try:
            self._commit(batch)
        finally:
            self._release(batch)

    def _commit(self, batch: list[Envelope]) -> None:
        try:
            counts = self._store_retrying(batch)
        except Exception as exc:  # noqa: BLE001 - any failure is the batch's, until shown not
            detail = _first_line(exc)
            del exc  # keep no exception (nor its frames) past this point
            if len(batch) == 1:
                counts = self._store_failure(batch[0], detail)
            else:  # halves until the failing payloads are alone: O(k log n) commits
                self.stats.n_failed_batches += 1
                log.warning("live: a batch of %d payloads failed (%s); storing it in halves",
                            len(batch), detail)
                half = len(batch) // 2
                self._commit(batch[:half])
                self._commit(batch[half:])
                return
        committed_at = time.time()
        self._account(batch, counts)
        self._acknowledge(batch)
        if self.on_commit:
            self.on_commit(batch, committed_at)

    @staticmethod
    def _acknowledge(batch: list[Envelope]) -> None:
        """Call each envelope's ``ack``; acks that name a ``sink`` (MQTT's
        :class:`~tsfleet.live.mqtt.MqttAck`) go to ``sink.ack_many`` together, one call
        (one write of PUBACKs) per subscriber rather than one per message."""
        sinks: dict[object, list] = {}
        for env in batch:
            ack = env.ack
            if ack is None:
                continue
            sink = getattr(ack, "sink", None)
            if sink is not None:
                sinks.setdefault(sink, []).append(ack)
                continue
            try:
                ack()
            except Exception as exc:  # noqa: BLE001 - a lost connection: the broker redelivers
                log.warning("live: acknowledging a %s message failed: %s", env.transport,
                            _first_line(exc))
        for sink, acks in sinks.items():
            try:
                sink.ack_many(acks)
            except Exception as exc:  # noqa: BLE001 - a lost connection: the broker redelivers
                log.warning("live: acknowledging %d MQTT messages failed: %s", len(acks),
                            _first_line(exc))

    def _store_retrying(self, batch: list[Envelope]) -> dict[str, int]:
        """:meth:`_store`, again after a write-write conflict with a transaction of another
        connection of the process (an analysis or a command run through the control
        interface commits results meanwhile): such a conflict is the other writer's, not
        the payloads', and must not quarantine them. Rows stored before the conflict are
        absorbed as duplicates by the retry."""
        for attempt in range(CONFLICT_RETRIES):
            try:
                return self._store(batch)
            except duckdb.TransactionException as exc:
                if "conflict" not in str(exc).lower() or attempt == CONFLICT_RETRIES - 1:
                    raise
                self.stats.n_conflicts += 1
                log.info("live: a batch met a write conflict (%s); storing it again",
                         _first_line(exc))
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _store(self, batch: list[Envelope]) -> dict[str, int]:
        """Store every row of ``batch`` in one transaction (each table appended once);
        the running totals by kind and reason are counted once it has committed."""
        reports: list = []
        with transaction(self.fleet.con):
            counts = self._store_rows(batch, reports)
        for r in reports:
            self.stats.by_kind[r.kind] = self.stats.by_kind.get(r.kind, 0) + r.n_accepted
            for reason, n in r.quarantined_by_reason.items():
                q = self.stats.quarantined_by_reason
                q[reason] = q.get(reason, 0) + n
        return counts

    def _store_rows(self, batch: list[Envelope], reports: list) -> dict[str, int]:
        counts = {"readings": 0, "accepted": 0, "duplicates": 0, "quarantined": 0,
                  "unmapped": 0, "rejected": 0}
        label = "live:" + "+".join(sorted({e.transport for e in batch}))
        decoded = [e.decoded for e in batch if e.decoded is not None]
        table = readings_table(decoded)
        if table is not None:
            reports.append(self.fleet.ingest("readings", table, chunk_rows=max(table.num_rows, 1),
                                             label=label))
            counts["readings"] += table.num_rows
        kinds: dict[str, list[dict]] = {}
        tuples: dict[str, list[tuple]] = {}
        for d in decoded:
            for kind, rows in d.facts.items():
                kinds.setdefault(kind, []).extend(rows)
            for kind, rows in d.tuples.items():
                tuples.setdefault(kind, []).extend(rows)
        batches = [(k, columnar(k, rows)) for k, rows in sorted(kinds.items())]
        batches += [(k, tuple_table(k, rows)) for k, rows in sorted(tuples.items())]
        for kind, rows in batches:
            if kind in SIDE_KINDS:  # network server tables that are not ingest kinds
                store_side_rows(self.fleet, kind, rows)
                continue
            reports.append(self.fleet.ingest(kind, rows, label=label))
        for r in reports:
            counts["accepted"] += r.n_accepted
            counts["duplicates"] += r.n_duplicates
            counts["quarantined"] += r.n_quarantined
        counts["unmapped"] = self._store_unmapped(batch)
        counts["rejected"] = self._store_rejects(
            [(e, e.reject.reason, e.reject.detail) for e in batch if e.reject is not None], label)
        return counts

    def _store_failure(self, env: Envelope, error: str) -> dict[str, int]:
        """Quarantine one payload that failed to store (``ingest_failed``). When even that
        fails, count and log it, and acknowledge it if the store still works: a payload
        must never loop; if the store does not work, raise (the writer stops unacked)."""
        detail = short(f"storing the payload failed: {error}")
        counts = {"readings": 0, "accepted": 0, "duplicates": 0, "quarantined": 0,
                  "unmapped": 0, "rejected": 0}
        log.warning("live: %s from %s quarantined: %s", env.transport, _safe(env.source[:200]),
                    _safe(detail))
        try:
            counts["rejected"] = self._store_rejects([(env, "ingest_failed", detail)],
                                                     f"live:{env.transport}")
        except Exception as exc:  # noqa: BLE001 - see the docstring
            error = _first_line(exc)
            del exc
            if not self._store_works():
                raise StoreError(f"the store does not accept writes: {error}") from None
            self.stats.n_unstorable += 1
            log.error("live: a %s payload from %s (%d bytes) could neither be stored nor "
                      "quarantined (%s); acknowledged without storing it (%d so far)",
                      env.transport, _safe(env.source[:200]), env.n_bytes, _safe(error),
                      self.stats.n_unstorable)
        return counts

    def _store_works(self) -> bool:
        """True when a write transaction can be opened and closed on the connection."""
        con = self.fleet.con
        for _ in range(2):
            try:
                con.execute("begin transaction")
                con.execute("rollback")
                return True
            except duckdb.Error:
                try:  # a transaction left open by the failure: close it and try again
                    con.execute("rollback")
                except duckdb.Error:
                    pass
        return False

    def _store_unmapped(self, batch: list[Envelope]) -> int:
        """Fields no mapping knows -> ``unmapped_items``, their payload once per payload
        -> ``unmapped_payloads`` (a pack of thousands of unknown names stores its text
        once, not once per field), its text and any name, value or unit longer than
        PIECE_CHARS in ``text_pieces`` (:mod:`tsfleet.live.texts`);
        a payload whose key is still in ``unmapped_keys`` (a redelivery) is not stored
        again. Returns the unmapped fields received."""
        rows: dict[str, list] = {k: [] for k in (
            "payload_sha256", "item", "received_at", "transport", "source", "format",
            "device_id", "observed_at", "field", "value", "unit", "reason")}
        firsts: dict[str, tuple[Envelope, float]] = {}
        for env in batch:
            if env.decoded is None or not env.decoded.unmapped:
                continue
            sha = env.sha256()
            if sha not in firsts or env.received_at < firsts[sha][1]:
                firsts[sha] = (env, env.received_at)
        if not firsts:
            return 0
        con = self.fleet.con
        # unmapped_keys decides what is new (an index lookup per payload; see KEY_TABLES)
        con.register("_live_unmapped_keys", pa.table({
            "sha": _strings(list(firsts)),
            "received_at": pa.array([t for _, t in firsts.values()], pa.float64())}))
        try:
            new = {r[0] for r in con.execute(
                "insert into unmapped_keys select sha, to_timestamp(received_at) "
                "from _live_unmapped_keys on conflict do nothing returning payload_sha256"
            ).fetchall()}
        finally:
            con.unregister("_live_unmapped_keys")
        self._keys_added["unmapped_keys"] += len(new)
        payloads: dict[str, str] = {}
        for sha, (env, _) in firsts.items():
            if sha not in new:
                continue
            payloads[sha] = env.kept_payload()
            for u in env.decoded.unmapped:
                for k, v in (("payload_sha256", sha), ("item", u.item),
                             ("received_at", env.received_at), ("transport", env.transport),
                             ("source", env.source), ("format", env.decoded.fmt),
                             ("device_id", u.device_id), ("observed_at", u.observed_at),
                             ("field", u.field), ("value", u.value), ("unit", u.unit),
                             ("reason", u.reason)):
                    rows[k].append(v)
        if rows["item"]:
            try:
                with transaction(con):
                    text_ids = {k: _long_texts(con, rows[k]) for k in ("field", "value", "unit")}
                    con.register("_live_unmapped", pa.table({
                        **{k: _strings(v) for k, v in rows.items()
                           if k not in ("item", "received_at", "observed_at")},
                        **{f"{k}_text_id": pa.array(v, pa.int64()) for k, v in text_ids.items()},
                        "item": pa.array(rows["item"], pa.int32()),
                        "received_at": pa.array(rows["received_at"], pa.float64()),
                        "observed_at": pa.array(rows["observed_at"], pa.float64())}))
                    ids = store_texts(con, _strings(list(payloads.values())))
                    con.register("_live_unmapped_payloads", pa.table({
                        "payload_sha256": _strings(list(payloads)),
                        "payload_text_id": pa.array(ids, pa.int64())}))
                    con.execute(
                        "insert into unmapped_item_rows select payload_sha256, item, "
                        "to_timestamp(received_at), transport, source, format, device_id, "
                        "case when observed_at between 0 and 4102444800 "
                        "then to_timestamp(observed_at)::timestamp end, field, value, unit, "
                        "reason, field_text_id, value_text_id, unit_text_id "
                        "from _live_unmapped").fetchall()
                    con.execute("insert into unmapped_payload_rows (payload_sha256, "
                                "payload_text_id) select payload_sha256, payload_text_id "
                                "from _live_unmapped_payloads").fetchall()
            finally:
                con.unregister("_live_unmapped")
                con.unregister("_live_unmapped_payloads")
        log.debug("live: %d of %d payloads with unmapped fields were new", len(new), len(firsts))
        return sum(len(e.decoded.unmapped) for e in batch if e.decoded is not None)

    def _store_rejects(self, rejects: list[tuple[Envelope, str, str]], label: str) -> int:
        """Whole payloads that could not be decoded -> ``quarantine`` (kind ``payload``);
        the text of each, up to 16 KiB, in ``text_pieces`` (:mod:`tsfleet.live.texts`)."""
        if not rejects:
            return 0
        con = self.fleet.con
        shas = [e.sha256() for e, _, _ in rejects]
        con.register("_live_rejects", pa.table({
            "reason": _strings([r for _, r, _ in rejects]), "sha": shas}))
        try:
            with transaction(con):
                bid = con.execute("select nextval('ingest_batch_seq')").fetchall()[0][0]
                # The primary key of quarantine_payloads decides what is new (an index
                # lookup per payload), on the hash of the whole payload.
                new = con.execute(
                    "insert into quarantine_payloads select distinct sha, reason, ? "
                    "from _live_rejects on conflict do nothing returning payload_sha256, reason",
                    [bid]).fetchall()
                n = len(new)
                self._keys_added["quarantine_payloads"] += n
                if n:
                    first: dict[tuple[str, str], tuple[Envelope, str]] = {}
                    for sha, (e, reason, detail) in zip(shas, rejects, strict=True):
                        first.setdefault((sha, reason), (e, detail))
                    kept = [(reason, *first[(sha, reason)]) for sha, reason in new]
                    ids = store_texts(con, _strings([
                        json.dumps({"transport": e.transport, "source": e.source,
                                    "payload": e.kept_payload()}) for _, e, _ in kept]))
                    con.register("_live_new", pa.table({
                        "reason": _strings([r for r, _, _ in kept]),
                        "detail": _strings([d for _, _, d in kept]),
                        "raw_text_id": pa.array(ids, pa.int64())}))
                    con.execute(
                        "insert into quarantine_rows (batch_id, kind, source, reason, detail, "
                        "quarantined_at, raw_text_id) select ?, 'payload', ?, reason, detail, "
                        "now(), raw_text_id from _live_new", [bid, label]).fetchall()
                    con.unregister("_live_new")
                con.execute("insert into ingest_batches values (?, 'payload', ?, now(), now(), "
                            "?, 0, ?, ?, NULL, NULL)",
                            [bid, label, len(rejects), len(rejects) - n, n])
        finally:
            con.unregister("_live_rejects")
        return len(rejects)

    def _account(self, batch: list[Envelope], counts: dict[str, int]) -> None:
        s = self.stats
        s.n_batches += 1
        s.n_messages += len(batch)
        s.n_redelivered += sum(e.redelivered for e in batch)
        s.n_readings += counts["readings"]
        s.n_accepted += counts["accepted"]
        s.n_duplicates += counts["duplicates"]
        s.n_quarantined += counts["quarantined"]
        s.n_unmapped += counts["unmapped"]
        s.n_rejected += counts["rejected"]
        if log.isEnabledFor(logging.INFO):
            # fetchall: a result left unfinished would fail the next register() (issue 22)
            held = self.fleet.con.execute("select count(*) from readings").fetchall()[0][0]
            log.info("live: committed %d payloads: %d rows (%d new, %d duplicates, "
                     "%d quarantined), %d unmapped fields, %d rejected payloads; "
                     "%d redelivered so far; store holds %d readings",
                     len(batch), sum(e.decoded.n_rows - len(e.decoded.unmapped)
                                     for e in batch if e.decoded),
                     counts["accepted"], counts["duplicates"], counts["quarantined"],
                     counts["unmapped"], counts["rejected"], s.n_redelivered, held)


def trim_cache(con: duckdb.DuckDBPyConnection, keep: int, memory_limit: str | None) -> int:
    """Evict DuckDB's cached store blocks (``BASE_TABLE`` in ``duckdb_memory()``) past
    ``keep`` bytes; returns the bytes evicted.

    DuckDB evicts only to make room under its ``memory_limit``, so the limit is
    lowered by the excess for one statement (DuckDB evicts persistent blocks first:
    they need no writing) and then put back to ``memory_limit`` (None: DuckDB's
    default). Evicted blocks are read again from the file when a query needs them.
    Blocks in use by a running query stay.
    """
    rows = con.execute("select tag, memory_usage_bytes from duckdb_memory()").fetchall()
    used = sum(n for _, n in rows)
    excess = dict(rows).get("BASE_TABLE", 0) - keep
    if excess < 1024 * 1024:
        return 0
    try:  # 1 MiB over: a block in use (pinned) cannot be evicted
        con.execute(f"SET memory_limit = '{used - excess + 1024 * 1024}B'")
    except duckdb.OutOfMemoryException:
        pass  # more is pinned than that: what could be evicted was
    finally:
        con.execute("RESET memory_limit" if memory_limit is None
                    else f"SET memory_limit = '{memory_limit}'")
    after = con.execute("select memory_usage_bytes from duckdb_memory() "
                        "where tag = 'BASE_TABLE'").fetchall()
    return max(excess + keep - (after[0][0] if after else 0), 0)


def readings_table(decoded: list[Decoded]) -> pa.Table | None:
    """The readings of several payloads as one Arrow table for the pipeline.

    Values and times stay numbers unless some payload sent something else;
    then the column is text and the pipeline reports each bad cell. Times
    all within the pipeline's accepted span are handed over as microsecond
    timestamps, rounded as DuckDB's ``to_timestamp`` rounds (to the nearest,
    ties to even), so the pipeline need not keep their text for error messages.

    The first call in a process costs about 1.5 s (pyarrow imports pandas);
    :meth:`Writer.start` makes it before any message arrives.
    """
    device, observed, metric, value = [], [], [], []
    for d in decoded:
        device.extend(d.device_id)
        observed.extend(d.observed_at)
        metric.extend(d.metric)
        value.extend(d.value)
    if not metric:
        return None
    return pa.table({"device_id": pa.array(device, pa.string()),
                     "observed_at": _times(_column(observed)),
                     "metric": pa.array(metric, pa.string()), "value": _column(value)})


#: Unix seconds of 1990-01-01 and 2100-01-01, the span the pipeline accepts.
_TS_LO, _TS_HI = 631_152_000.0, 4_102_444_800.0


def _times(col: pa.Array) -> pa.Array:
    """Float seconds -> timestamp[us] when every one lies inside the accepted span."""
    if not pa.types.is_floating(col.type) or col.null_count:
        return col
    secs = col.to_numpy()
    if not ((secs >= _TS_LO) & (secs < _TS_HI - 1.0)).all():
        return col  # the pipeline judges and reports the others, as for any source
    return pa.array(np.rint(secs * 1e6).astype(np.int64), pa.timestamp("us"))


def _column(cells: list) -> pa.Array:
    try:
        return pa.array(cells, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if c is None else str(c) for c in cells], pa.string())


def _first_line(exc: BaseException) -> str:
    """An exception as one line of text that any column can hold."""
    text = str(exc).strip().splitlines()
    return _safe(f"{type(exc).__name__}: {text[0] if text else ''}")


def _long_texts(con: duckdb.DuckDBPyConnection, values: list) -> list[int | None]:
    """Move the texts of ``values`` longer than :data:`~tsfleet.live.texts.PIECE_CHARS` to
    ``text_pieces`` (each replaced by None in ``values``); returns their ids, None for the
    others."""
    long = [i for i, v in enumerate(values) if v is not None and len(v) > PIECE_CHARS]
    ids: list[int | None] = [None] * len(values)
    for i, text_id in zip(long, store_texts(con, _strings([values[i] for i in long])),
                          strict=True):
        ids[i], values[i] = text_id, None
    return ids


def _safe(text: str) -> str:
    """``text`` with anything that is not Unicode text (lone surrogates) escaped."""
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode()


def _strings(values: list) -> pa.Array:
    """A text column for ``unmapped`` or ``quarantine``: invalid text is stored escaped."""
    try:
        return pa.array(values, pa.string())
    except (UnicodeEncodeError, pa.ArrowException):
        return pa.array([None if v is None else _safe(str(v)) for v in values], pa.string())
