"""``tsfleet serve``: one long-running process that owns the DuckDB writer.

It wires the transports to the writer: MQTT messages and CoAP requests are
decoded where they arrive and queued to the single :class:`Writer` thread,
which commits them in batches and only then acknowledges them. SIGINT or
SIGTERM stops it cleanly: new MQTT messages are left unacknowledged (the
broker keeps them for the persistent session), what is held is committed and
acknowledged, then the connections close and the store is checkpointed.

>>> cfg = ServeConfig(db=":memory:", mqtt=None, coap=None)
>>> cfg.topics
['fleet/#']
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import gc
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tsfleet.errors import InvalidParameter, TsfleetError
from tsfleet.fleet import Fleet
from tsfleet.live import coap as coap_server
from tsfleet.live.decode import DEFAULT_MAX_PAYLOAD, DEVICE_SOURCES, Decoder, TopicLayout
from tsfleet.live.errors import Reject
from tsfleet.live.mqtt import Subscriber, parse_address
from tsfleet.live.netservers import NETWORK_SERVERS
from tsfleet.live.profiles import Profiles
from tsfleet.live.security import MqttSecurity, parse_broker
from tsfleet.live.snmp import poll_every
from tsfleet.live.writer import (
    DEFAULT_CACHE_LIMIT,
    DEFAULT_MAX_PENDING_BYTES,
    DEFAULT_QUARANTINE_KEEP,
    Envelope,
    Writer,
)
from tsfleet.service.cadence import Cadence

log = logging.getLogger("tsfleet.live")

#: The largest packet MQTT can carry (a four-byte remaining length).
MQTT_MAX_PACKET = 268_435_455
_MEMORY = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str) -> int:
    """``"64MB"``, ``"1.5 GiB"``, ``"0B"`` -> bytes (DuckDB's units: KB = 1000, KiB = 1024)."""
    m = _MEMORY.fullmatch(text.strip())
    if m is None:
        raise InvalidParameter(f"expected a size such as 64MB or 1GiB, got {text!r}")
    return int(float(text.strip()[:m.start(2)]) * _UNITS[m[2].lower()])

#: Seconds between two full garbage collections (see :func:`_tune_interpreter`).
FULL_GC_EVERY_S = 60.0
#: New tracked objects past which the youngest generation is collected (see
#: :func:`_tune_interpreter`; Python's default is 700).
GC_YOUNG = 200_000


@dataclass
class ServeConfig:
    """Everything ``tsfleet serve`` can be told."""

    db: str
    mqtt: str | None = None                       # host:port of the broker
    coap: str | None = None                       # host:port to bind (UDP)
    topics: list[str] = field(default_factory=lambda: ["fleet/#"])
    topic_layout: str = "+/{device}/{format}"
    device_from: str = "auto"                     # auto | topic | payload
    client_id: str | None = None                  # None: derived from the store (tsfleet-<id>)
    session_expiry_s: int = 7 * 86400
    receive_maximum: int = 4000
    max_payload: int = DEFAULT_MAX_PAYLOAD
    #: largest MQTT packet the broker may send (MQTT 5 Maximum Packet Size); larger
    #: ones it discards. None: 4 x max_payload plus room for the topic. Payloads
    #: between max_payload and this are received and quarantined (oversized_payload).
    max_packet: int | None = None
    #: bytes held by payloads not yet acknowledged, past which reception pauses
    max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES
    #: DuckDB memory_limit of the store's connection ("1GB"); None: DuckDB's default
    #: (80% of RAM), up to which DuckDB keeps blocks of the growing store cached
    memory_limit: str | None = None
    #: bytes of DuckDB's cached store blocks kept, trimmed every few seconds
    #: (``tsfleet.live.writer.trim_cache``); None: DuckDB's own policy (up to memory_limit)
    cache_limit: int | None = DEFAULT_CACHE_LIMIT
    #: WAL bytes past which the writer checkpoints between batches, not while an analysis
    #: runs (``Writer._checkpoint``); None (the default): DuckDB's automatic checkpoint
    #: (16 MiB WAL). Off by default: its gain on the RSS peak was not shown (docs/live.md)
    checkpoint_wal: int | None = None
    #: DuckDB's allocator (its bundled jemalloc) returns freed memory to the system from
    #: background threads (``allocator_background_threads``); off: freed memory stays in
    #: jemalloc's arenas, where neither ``malloc_trim`` nor the cache trim reaches it
    allocator_purge: bool = True
    #: seconds between two lines of the memory log (logger ``tsfleet.live.memory``: RSS,
    #: peak RSS and DuckDB's memory by tag, :func:`memory_line`); None: no log
    memory_log_s: float | None = None
    batch_rows: int = 60_000
    batch_delay_s: float = 0.5
    profile_dirs: list[str] = field(default_factory=list)
    #: seconds between runs of each analysis (``tsfleet.service.cadence``); empty: none
    analyze_every: dict[str, float] = field(default_factory=dict)
    #: run the analyses on the writer thread between commits, as before issue 23 (a
    #: reading that arrives during one waits for it); default: on a thread and cursor of
    #: their own beside ingest (``tsfleet.service.worker``)
    analyses_on_writer: bool = False
    #: LoRaWAN network servers (tsfleet.live.chirpstack, tsfleet.live.tts): host:port of
    #: the broker they publish to, or None; topic_layout "chirpstack"/"tts" reads them
    #: from the --mqtt broker instead
    chirpstack_mqtt: str | None = None
    tts_mqtt: str | None = None
    #: credentials and TLS of the MQTT connection (``tsfleet.live.security``)
    security: MqttSecurity | None = None
    #: stop with an error when the first MQTT connection has not succeeded in this many s
    exit_on_broker_failure_s: float | None = None
    #: host:port of the Prometheus endpoint (/metrics, /healthz); None: none
    metrics: str | None = None
    #: Alertmanager base URL to push alerts to (v2 API) between commits; None: none
    alertmanager: str | None = None
    #: host:port to serve CoAP over DTLS (PSK) on, and the identity:key file
    coaps: str | None = None
    coap_psk_file: str | None = None
    #: SNMP targets file (``tsfleet.live.snmp``) polled every ``snmp_every_s`` seconds,
    #: at most ``snmp_concurrency`` agents at once; None: no polling
    snmp_targets: str | None = None
    snmp_every_s: float = 60.0
    snmp_concurrency: int = 100
    #: Sparkplug B (tsfleet.live.sparkplug): subscribe spBv1.0/# at the --mqtt broker,
    #: with the metric rules of this map file (None: the unit table)
    sparkplug: bool = False
    sparkplug_map: str | None = None
    #: keep a snapshot of the store at this path, renewed every ``snapshot_every``
    #: ("5m"; tsfleet.share.SnapshotScheduler), readable by DuckDB of
    #: ``snapshot_storage_version`` ("v1.0.0"; None: this DuckDB's own format)
    snapshot_path: str | None = None
    snapshot_every: str | None = None
    snapshot_storage_version: str | None = None
    #: the local control interface (tsfleet.service.control): the CLI and Fleet.connect
    #: reach the store through it while serve holds it; 127.0.0.1 only, port 0: any free
    control: bool = True
    control_port: int = 0
    #: runs a tsfleet command line, ``(argv, cwd=...) -> exit status``: tsfleet.cli.main,
    #: which the serve command hands over (a library Server without it serves /query only)
    run_command: Callable[..., int] | None = field(default=None, repr=False, compare=False)
    #: OPC UA (tsfleet.live.opcua): opc.tcp:// URL of the server, its map file (JSON) and
    #: the connection's security (tsfleet.live.opcua.OpcuaSecurity; None: none, anonymous)
    opcua: str | None = None
    opcua_map: str | None = None
    opcua_security: object | None = None
    #: readings and facts of a device not in ``devices``: "accept" (stored, as file ingest
    #: does by default) or "quarantine" (reason ``unknown_device``): a sender inventing
    #: device ids then adds no row to ``device_latest`` and its per-device index
    unknown_devices: str = "accept"
    #: the newest quarantined live rows, and unmapped fields, kept with their texts (None:
    #: all): each distinct bad payload keeps up to 16 KiB, so a sender that keeps making
    #: them up would grow the store without end (Writer._cut_back)
    quarantine_keep: int | None = DEFAULT_QUARANTINE_KEEP

    def check(self) -> None:
        if self.device_from not in DEVICE_SOURCES:
            raise InvalidParameter(f"device_from must be one of {'|'.join(DEVICE_SOURCES)}, "
                                   f"got {self.device_from!r}")
        if self.batch_rows < 1 or self.batch_delay_s <= 0 or self.max_payload < 1 or \
                self.max_pending_bytes < 1:
            raise InvalidParameter("batch_rows, batch_delay_s, max_payload and "
                                   "max_pending_bytes must be positive, "
                                   f"got {self.batch_rows}, {self.batch_delay_s}, "
                                   f"{self.max_payload}, {self.max_pending_bytes}")
        if not self.max_payload <= self.mqtt_max_packet <= MQTT_MAX_PACKET:
            raise InvalidParameter(f"max_packet must be within {self.max_payload}.."
                                   f"{MQTT_MAX_PACKET} (max_payload..the MQTT limit), "
                                   f"got {self.max_packet}")
        if self.checkpoint_wal is not None and self.checkpoint_wal < 1:
            raise InvalidParameter(f"checkpoint_wal must be a size of 1 or more bytes, "
                                   f"got {self.checkpoint_wal}")
        if self.quarantine_keep is not None and self.quarantine_keep < 1:
            raise InvalidParameter(f"quarantine_keep must be 1 or more rows, "
                                   f"got {self.quarantine_keep}")
        if self.cache_limit is not None and self.cache_limit < 0:
            raise InvalidParameter(f"cache_limit must be a size of 0 or more bytes, "
                                   f"got {self.cache_limit}")
        if self.memory_limit is not None and not _MEMORY.fullmatch(self.memory_limit):
            raise InvalidParameter(f"memory_limit must be a size such as 512MB or 2GB, "
                                   f"got {self.memory_limit!r}")
        if self.mqtt:
            parse_broker(self.mqtt)
        for address, default_port in ((self.coap, 5683), (self.coaps, 5684),
                                      (self.metrics, 9108), (self.chirpstack_mqtt, 1883),
                                      (self.tts_mqtt, 1883)):
            if address:
                parse_address(address, default_port)  # a port within 0..65535
        if bool(self.coaps) != bool(self.coap_psk_file):
            raise InvalidParameter("CoAP over DTLS needs both --coaps HOST:PORT and "
                                   "--coap-psk FILE")
        if self.security is not None:  # a wrong file or a missing password fails at start
            self.security.password()
            self.security.ssl_context()
        if self.exit_on_broker_failure_s is not None and not self.exit_on_broker_failure_s > 0:
            raise InvalidParameter(f"exit_on_broker_failure_s must be positive, "
                                   f"got {self.exit_on_broker_failure_s}")
        if self.sparkplug and not self.mqtt:
            raise InvalidParameter("--sparkplug reads the --mqtt broker: give --mqtt HOST:PORT")
        self._check_snapshot()
        if not 0 <= self.control_port <= 65535:
            raise InvalidParameter(f"control_port must be within 0..65535, "
                                   f"got {self.control_port}")
        if bool(self.opcua) != bool(self.opcua_map):
            raise InvalidParameter("OPC UA needs both --opcua opc.tcp://HOST:PORT and "
                                   "--opcua-map FILE")
        if self.opcua and not self.opcua.startswith("opc.tcp://"):
            raise InvalidParameter(f"--opcua must be opc.tcp://HOST:PORT, got {self.opcua!r}")
        if self.opcua_security is not None:
            self.opcua_security.check()
        if not 1 <= self.receive_maximum <= 65535:
            raise InvalidParameter(f"receive_maximum must be within 1..65535, "
                                   f"got {self.receive_maximum}")

    def _check_snapshot(self) -> None:
        if bool(self.snapshot_path) != bool(self.snapshot_every):
            raise InvalidParameter("scheduled snapshots need both --snapshot-every DURATION "
                                   "and --snapshot-path PATH")
        if not self.snapshot_path:
            return
        from tsfleet.share import parse_interval
        from tsfleet.share.snapshot import check_storage_version
        parse_interval(self.snapshot_every)
        check_storage_version(self.snapshot_storage_version)
        if self.db != ":memory:" and Path(self.snapshot_path).resolve() == \
                Path(self.db).resolve():
            raise InvalidParameter(f"the snapshot path {self.snapshot_path} is the store itself")

    @property
    def mqtt_max_packet(self) -> int:
        """The Maximum Packet Size announced to the broker."""
        if self.max_packet is not None:
            return self.max_packet
        return min(4 * self.max_payload + 65_536, MQTT_MAX_PACKET)


class BrokerUnavailable(TsfleetError, ConnectionError):
    """The first MQTT connection did not succeed in time (``--exit-on-broker-failure``)."""


def store_client_id(fleet: Fleet) -> str:
    """The default MQTT client id of this store: ``tsfleet-`` and 16 hex digits of its
    ``store_identity`` (two stores never share a broker session)."""
    rows = fleet.query("select store_id from store_identity limit 1")
    return "tsfleet-" + rows[0]["store_id"].replace("-", "")[:16]


def known_metrics(fleet: Fleet) -> frozenset[str]:
    """Canonical metric names and their aliases, as the store knows them."""
    rows = fleet.query("select metric as m from metric_catalog union all "
                       "select alias from metric_aliases")
    return frozenset(r["m"] for r in rows)


class Server:
    """Runs the transports and the writer until :meth:`stop` (or a signal)."""

    def __init__(self, config: ServeConfig, *, on_commit=None):
        config.check()
        self.config = config
        self.on_commit = on_commit
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self.writer: Writer | None = None
        self.subscriber: Subscriber | None = None
        self.lora_subscribers: list[Subscriber] = []
        self.sparkplug = None  # tsfleet.live.sparkplug.Sparkplug with --sparkplug
        self.coap_port: int | None = None
        self._closing = False
        self._untune = None
        self.n_received = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.cadence: Cadence | None = None
        self.analysis = None  # the AnalysisWorker (tsfleet.service.worker), if any
        self.metrics = None
        self.metrics_endpoint = None
        self.coaps_context = None
        self.profiles = Profiles(config.profile_dirs)  # a wrong profile fails before binding
        self.layout = TopicLayout(config.topic_layout)
        self.layout_server = None  # a network server's decoder when the layout names one
        self.snmp = None  # the SNMP poller of --snmp-targets
        self.snapshots = None  # the SnapshotScheduler of --snapshot-every
        self.control = None  # the ControlServer (tsfleet.service.control)
        self.opcua = None  # tsfleet.live.opcua.OpcuaSource of --opcua

    # -- control ----------------------------------------------------------------------
    def run(self) -> None:
        """Serve until stopped; returns after the clean shutdown."""
        try:
            asyncio.run(self._main())
        finally:
            self.stopped.set()

    def stop(self) -> None:
        """Ask a running server to shut down (thread-safe)."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    # -- the event loop ---------------------------------------------------------------
    async def _main(self) -> None:
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._loop.add_signal_handler(sig, self._stop.set)
        fleet = Fleet(cfg.db if cfg.db != ":memory:" else None, memory=cfg.db == ":memory:",
                      unknown_devices=cfg.unknown_devices)
        self.fleet = fleet
        if cfg.memory_limit is not None:  # checked against _MEMORY: a size, nothing else
            fleet.con.execute(f"SET memory_limit = '{cfg.memory_limit}'")
        if cfg.allocator_purge:
            purge_allocator(fleet.con)
        self.decoder = Decoder(known_metrics(fleet), self.profiles, device_from=cfg.device_from,
                               max_payload=cfg.max_payload)
        self.cadence = Cadence(cfg.analyze_every) if cfg.analyze_every else None
        if cfg.topic_layout in NETWORK_SERVERS:
            self.layout_server = NETWORK_SERVERS[cfg.topic_layout](
                known_metrics(fleet), self.profiles, max_payload=cfg.max_payload)
        on_writer = self.cadence is not None and cfg.analyses_on_writer
        between = (lambda: self.cadence.tick(fleet)) if on_writer else None
        guard = None
        if self.cadence is not None and not on_writer:
            guard = threading.RLock()
        on_commit = self.on_commit
        if cfg.alertmanager:
            from tsfleet.alerts.alertmanager import Pusher
            self.pusher, ticking = Pusher(cfg.alertmanager), between

            def between():
                result = ticking() if ticking else None
                self.pusher.tick(fleet)
                return result
        if cfg.metrics:
            from tsfleet.service.metrics import ServeMetrics, with_metrics
            self.metrics = ServeMetrics()
            on_commit, between = with_metrics(self.metrics, fleet, on_commit, between)
        self.writer = Writer(fleet, max_rows=cfg.batch_rows, max_delay=cfg.batch_delay_s,
                             max_pending_bytes=cfg.max_pending_bytes,
                             cache_limit=cfg.cache_limit, memory_limit=cfg.memory_limit,
                             on_commit=on_commit, on_fatal=lambda exc: self.stop(),
                             between_commits=between, trim_guard=guard,
                             checkpoint_wal=cfg.checkpoint_wal,
                             set_aside_keep=cfg.quarantine_keep)
        self.snmp = _snmp_poller(cfg, fleet)  # before the writer owns the connection
        self.opcua = _opcua_source(cfg, fleet)  # declares its monitors, likewise
        self.writer.start()
        if guard is not None:  # the analyses beside ingest, on a cursor of their own
            from tsfleet.service.worker import AnalysisWorker
            self.analysis = AnalysisWorker(fleet, self.writer, self.cadence)
            self.analysis.lock = guard  # started once this thread is done with the store
        if self.opcua is not None:
            from tsfleet.live.opcua import declare_monitors

            self.opcua.submit = lambda env: self.writer.submit(env)  # --metrics wraps it
            self.opcua.declare = lambda found: self.writer.call(
                lambda: declare_monitors(fleet, found), timeout=120)
        self._untune = _tune_interpreter()
        context = None
        try:
            if cfg.metrics:
                from tsfleet.service.metrics import MetricsEndpoint
                self.writer.submit = self.metrics.counting(self.writer.submit)
                host, port = parse_address(cfg.metrics, 9108)
                self.metrics_endpoint = MetricsEndpoint(self.metrics, self, host, port).start()
                log.info("live: metrics on http://%s:%d/metrics and /healthz", host,
                         self.metrics_endpoint.port)
            if cfg.coap:
                host, port = parse_address(cfg.coap, 5683)
                context = await coap_server.start_server(
                    self.decoder, self.writer, host, port, max_in_flight=cfg.receive_maximum)
                self.coap_port = port
                log.info("live: CoAP listening on %s:%d (POST /ingest[/<device>])", host, port)
            if cfg.coaps:
                from tsfleet.live.coaps import read_psk_file, start_dtls_server
                host, port = parse_address(cfg.coaps, 5684)
                keys = read_psk_file(cfg.coap_psk_file)
                self.coaps_context = await start_dtls_server(self.decoder, self.writer, host,
                                                             port, keys)
                log.info("live: CoAP over DTLS on %s:%d (%d PSK identities)", host, port,
                         len(keys))
            if cfg.mqtt:
                host, port, tls = parse_broker(cfg.mqtt)
                security = cfg.security or MqttSecurity()
                if tls and not security.tls:
                    security = dataclasses.replace(security, tls=True)
                self.client_id = cfg.client_id or store_client_id(fleet)
                self.subscriber = Subscriber(
                    host, port, cfg.topics, self._on_mqtt, client_id=self.client_id,
                    session_expiry_s=cfg.session_expiry_s,
                    receive_maximum=cfg.receive_maximum, max_packet=cfg.mqtt_max_packet,
                    security=security)
                log.info("live: MQTT %s:%d, client id %s, %s", host, port, self.client_id,
                         security.describe())
                self.subscriber.start()
                if cfg.exit_on_broker_failure_s is not None:
                    await self._first_connection(cfg.exit_on_broker_failure_s)
            self._start_network_servers()
            self._start_industrial()
            self._start_sharing()
            if self.analysis is not None:  # its first runs would find the store busy
                self.analysis.start()
            self.ready.set()
            log.info("live: serving into %s", cfg.db)
            collector = asyncio.create_task(_collect_garbage(FULL_GC_EVERY_S))
            memory_task = cfg.memory_log_s and asyncio.create_task(
                _log_memory(self.fleet.con, cfg.memory_log_s))
            snmp_task = self.snmp and asyncio.create_task(poll_every(
                self.snmp, cfg.snmp_every_s, self.writer.submit, self._stop))
            opcua_task = self.opcua and asyncio.create_task(self.opcua.run(self._stop))
            await self._stop.wait()
            collector.cancel()
            if memory_task:
                memory_task.cancel()
            if snmp_task:
                await snmp_task
            if opcua_task:
                await opcua_task
        finally:
            await self._shutdown(context)

    async def _first_connection(self, timeout: float) -> None:
        """Wait for the first MQTT connection; raise :class:`BrokerUnavailable` after
        ``timeout`` seconds, or as soon as a stop is asked."""
        sub = self.subscriber
        deadline = time.monotonic() + timeout
        while not sub.connected.is_set() and not self._stop.is_set():
            if time.monotonic() >= deadline:
                raise BrokerUnavailable(
                    f"no MQTT connection to {sub.host}:{sub.port} within {timeout:g} s: "
                    f"{sub.last_error or 'no answer'}")
            await asyncio.sleep(0.05)

    def _start_sharing(self) -> None:
        """The control interface and the scheduled snapshots: readers of the store that
        this process, which holds it, serves."""
        cfg = self.config
        if cfg.control and cfg.db != ":memory:":
            from tsfleet.service.control import ControlServer
            self.control = ControlServer(
                self.fleet, self.writer, port=cfg.control_port, run_command=cfg.run_command,
                exclusive=self.analysis.lock if self.analysis is not None else None,
                snmp_targets=cfg.snmp_targets).start()
            log.info("live: control interface on http://127.0.0.1:%d (token in %s)",
                     self.control.port, self.control.token_path)
        if cfg.snapshot_path:
            from tsfleet.share import SnapshotScheduler
            self.snapshots = SnapshotScheduler(
                self.fleet, cfg.snapshot_path, cfg.snapshot_every,
                storage_version=cfg.snapshot_storage_version,
                pin=lambda fn: self.writer.call(fn, timeout=300)).start()

    async def _shutdown(self, context) -> None:
        log.info("live: stopping: committing what is held")
        self._closing = True
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.stop()
        if self.control is not None:  # no new request; those running finish first
            self.control.stop()
        if self.snapshots is not None:  # a copy in progress finishes on its cursor
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: self.snapshots.stop(timeout=None))
        if self.analysis is not None:  # a running analysis finishes; the writer commits on
            await asyncio.get_running_loop().run_in_executor(None, self.analysis.stop)
        if self.writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.writer.stop)
        if self.subscriber is not None or self.lora_subscribers:
            time.sleep(0.05)  # let the network thread write the last acknowledgements
        for sub in ([self.subscriber] if self.subscriber else []) + self.lora_subscribers:
            sub.stop()
        if context is not None:
            await context.shutdown()
        if self.coaps_context is not None:
            await self.coaps_context.shutdown()
        s = self.writer.stats if self.writer else None
        if s is not None:
            log.info("live: stopped after %d payloads: %d rows accepted, %d duplicates, "
                     "%d quarantined, %d unmapped fields, %d payloads rejected, "
                     "%d payloads that could not even be quarantined",
                     s.n_messages, s.n_accepted, s.n_duplicates, s.n_quarantined,
                     s.n_unmapped, s.n_rejected, s.n_unstorable)
            if s.n_set_aside_deleted:
                log.info("live: deleted to keep --quarantine-keep: %s", ", ".join(
                    f"{n} {table}" for table, n in sorted(s.n_set_aside_deleted.items())))
        if self._untune is not None:
            self._untune()
        if self.snmp is not None and self.writer.error is None:
            self.snmp.save_state(self.fleet)  # the next start's first deltas
        self.fleet.close()
        if self.writer is not None and self.writer.error is not None:
            raise self.writer.error

    # -- LoRaWAN network servers ----------------------------------------------------------
    def _start_network_servers(self) -> None:
        cfg = self.config
        for name, address in (("chirpstack", cfg.chirpstack_mqtt), ("tts", cfg.tts_mqtt)):
            if not address:
                continue
            cls = NETWORK_SERVERS[name]
            decoder = cls(known_metrics(self.fleet), self.profiles, max_payload=cfg.max_payload)
            host, port = parse_address(address, 1883)
            sub = Subscriber(host, port, list(cls.topics), self._lora_handler(decoder),
                             client_id=f"{cfg.client_id or store_client_id(self.fleet)}-{name}",
                             session_expiry_s=cfg.session_expiry_s,
                             receive_maximum=cfg.receive_maximum)
            sub.start()
            self.lora_subscribers.append(sub)

    def _start_industrial(self) -> None:
        """Sparkplug B: its own MQTT session on the --mqtt broker (client id ...-spb)."""
        cfg = self.config
        if cfg.sparkplug:
            from tsfleet.live.sparkplug import Sparkplug, load_map

            host, port, tls = parse_broker(cfg.mqtt)
            security = cfg.security or MqttSecurity()
            if tls and not security.tls:
                security = dataclasses.replace(security, tls=True)
            self.sparkplug = Sparkplug(known_metrics(self.fleet), load_map(cfg.sparkplug_map),
                                       max_payload=cfg.max_payload)
            sub = Subscriber(host, port, list(self.sparkplug.topics),
                             self._lora_handler(self.sparkplug),
                             client_id=f"{cfg.client_id or store_client_id(self.fleet)}-spb",
                             session_expiry_s=cfg.session_expiry_s,
                             receive_maximum=cfg.receive_maximum,
                             max_packet=cfg.mqtt_max_packet, security=security)
            self.sparkplug.publish = lambda topic, payload: sub.client.publish(topic, payload)
            sub.start()
            self.lora_subscribers.append(sub)

    def _lora_handler(self, decoder):
        def handle(msg, ack) -> None:
            if self._closing:
                return
            self.n_received += 1
            payload = msg.payload
            try:
                env = Envelope("mqtt", msg.topic, payload, time.time(), ack=ack,
                               redelivered=bool(msg.dup))
                decoder.decode_into(env)
            except Exception as exc:  # noqa: BLE001 - nothing may raise out of paho's thread
                env = Envelope("mqtt", repr(msg._topic)[:1000], payload, time.time(), ack=ack,
                               reject=Reject("decoder_error", f"receiving failed: {exc!r}"[:1000]))
                env.trim()
            self.writer.submit(env)
        return handle

    # -- transports -------------------------------------------------------------------
    def _on_mqtt(self, msg, ack) -> None:
        """paho's network thread: decode and queue. Nothing a message holds may raise
        out of here (paho's thread would end)."""
        if self._closing:
            return  # not acknowledged: the broker keeps it for the next session
        self.n_received += 1
        payload = msg.payload
        try:
            env = Envelope("mqtt", msg.topic, payload, time.time(), ack=ack,
                           redelivered=bool(msg.dup))
            if self.layout_server is not None:
                self.layout_server.decode_into(env)
            else:
                device, fmt = self.layout.parse(env.source)
                self.decoder.decode_into(env, fmt=fmt, topic_device=device)
        except Exception as exc:  # noqa: BLE001 - an undecodable topic, a decoder bug
            env = Envelope("mqtt", repr(msg._topic)[:1000], payload, time.time(), ack=ack,
                           reject=Reject("decoder_error", f"receiving failed: {exc!r}"[:1000]))
            env.trim()
        self.writer.submit(env)


def _snmp_poller(cfg: ServeConfig, fleet: Fleet):
    """The SNMP poller of ``--snmp-targets`` with the counters of the store's last poll."""
    if not cfg.snmp_targets:
        return None
    from tsfleet.live.snmp import Poller, load_agents
    if not cfg.snmp_every_s > 0:
        raise InvalidParameter(f"snmp_every_s must be positive, got {cfg.snmp_every_s}")
    poller = Poller(load_agents(cfg.snmp_targets), timeout=min(2.0, cfg.snmp_every_s / 4),
                    retries=1, concurrency=cfg.snmp_concurrency)
    poller.load_state(fleet)
    return poller


def _opcua_source(cfg: ServeConfig, fleet: Fleet):
    """The OPC UA source of ``--opcua``; declares the map's devices environment monitors
    (keeping what the store says of them) before the writer takes the connection."""
    if not cfg.opcua:
        return None
    from tsfleet.live.opcua import OpcuaSource, declare_monitors, load_map

    source = OpcuaSource(cfg.opcua, load_map(cfg.opcua_map), None,
                         security=cfg.opcua_security, known=known_metrics(fleet))
    declare_monitors(fleet, source.fixed_devices())
    return source


def _tune_interpreter():
    """Two interpreter settings that the profile of a loaded server asked for;
    returns the function that puts the previous ones back (at shutdown).

    - The cyclic garbage collector: every payload allocates dozens of
      short-lived containers, and with the default thresholds collections
      (passes over the objects of DuckDB, pyarrow and paho included) took about
      a fifth of the MQTT thread's time. Objects alive at start are frozen
      (never scanned again) and young collections run less often: the youngest
      generation is collected past ``GC_YOUNG`` new objects, more than the
      payloads held until their commit make (a ChirpStack uplink holds ~15
      tracked objects, a batch of 10,000 of them ~150,000), so a collection no
      longer walks every held payload again: at 50,000 the collector took 6-8 us
      of server CPU per ChirpStack uplink, at 200,000 about 1 us (bench/live.py
      --source chirpstack, load 13-14).
    - The GIL switch interval: the writer thread gives the GIL up inside every
      DuckDB statement, which takes it back to check for signals; while the MQTT
      thread decodes, each take waited up to the default 5 ms, several times per
      statement. At 1 ms the writer gets it back sooner.
    """
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    _pin_malloc()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 20, 100)
    sys.setswitchinterval(0.001)

    def untune() -> None:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)

    return untune


async def _collect_garbage(every_s: float) -> None:
    """A full collection every ``every_s`` seconds: with the thresholds of
    :func:`_tune_interpreter` one would almost never run, and whatever reference
    cycles a library leaves (issue 22: rejected payloads, through their exceptions)
    would pile up. Objects alive at start are frozen and not scanned again."""
    while True:
        await asyncio.sleep(every_s)
        n = gc.collect()
        if n:
            log.debug("live: the garbage collector freed %d objects in cycles", n)
        _malloc_trim()


def process_memory() -> dict[str, int]:
    """This process's resident memory now and at its peak (``VmRSS``, ``VmHWM``), bytes;
    empty where ``/proc/self/status`` does not exist (not Linux)."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line[:5]] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


def memory_line(con) -> str:
    """One line of the memory log: RSS, its peak so far, and DuckDB's memory with its
    three largest tags (``duckdb_memory()``, read on a cursor of its own), in MB."""
    mb = 1 / 1_000_000
    mem = process_memory()
    cur = con.cursor()
    try:
        tags = cur.execute("select tag, memory_usage_bytes from duckdb_memory() "
                           "order by memory_usage_bytes desc").fetchall()
    finally:
        cur.close()
    top = ", ".join(f"{t} {b * mb:.0f}" for t, b in tags[:3] if b)
    rss = (f"RSS {mem['VmRSS'] * mb:.0f} MB (peak {mem['VmHWM'] * mb:.0f} MB)" if mem
           else "RSS unknown")
    return f"{rss}; DuckDB {sum(b for _, b in tags) * mb:.0f} MB ({top or 'nothing held'})"


async def _log_memory(con, every_s: float) -> None:
    """``--memory-log``: a line every ``every_s`` seconds (on a thread: the query must not
    hold up reception)."""
    mlog = logging.getLogger("tsfleet.live.memory")
    while True:
        await asyncio.sleep(every_s)
        try:
            mlog.info("live: memory: %s", await asyncio.to_thread(memory_line, con))
        except Exception as exc:  # noqa: BLE001 - a log line must never stop serve
            mlog.warning("live: memory: not read (%s)", exc)


def purge_allocator(con) -> None:
    """Let DuckDB's allocator give freed memory back to the system as it goes.

    DuckDB allocates through its bundled jemalloc, which keeps freed pages in its arenas
    for reuse; glibc's ``malloc_trim`` does not reach them. After a checkpoint or an
    analysis that held a few hundred MB, the process stayed that large (issue 22). With
    jemalloc's background threads the pages are purged within about a second of being
    freed (docs/live.md: a 3M-row aggregate left RSS at 751 MB without, 75 MB with).
    The setting is global to the DuckDB instance: the analyses' cursors share it."""
    con.execute("SET allocator_background_threads = true")


def _malloc_trim() -> bool:
    """Give the free pages of glibc's heaps back to the system (``malloc_trim(0)``; glibc
    only, False elsewhere). Batches and analyses free memory in the middle of the heap,
    which glibc otherwise keeps: tens of MB after a backlog."""
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def _pin_malloc(mmap_threshold: int = 128 * 1024, arena_max: int = 2) -> bool:
    """Keep a long-running server's memory flat (glibc only; False elsewhere).

    The analyses allocate large numpy arrays. glibc serves those from mmap and returns
    them to the system when freed, but each free raises its mmap threshold (up to 32 MB),
    after which same-sized arrays come from the heap and stay in the process: with 10,000
    devices the resident baseline grew about 20% after the first cycle of analyses and
    kept creeping. A fixed
    threshold and two arenas (the writer and the analysis threads) keep it flat.
    Not undone at shutdown: it only changes where later allocations come from.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl): nothing to pin
        return False
    m_mmap_threshold, m_arena_max = -3, -8  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, mmap_threshold)) and bool(
        mallopt(m_arena_max, arena_max))


def serve(config: ServeConfig, checked: Callable[[], None] | None = None) -> None:
    """Run ``tsfleet serve`` in the foreground; ``checked()`` is called once every option
    is checked (profiles read), before anything is created (the CLI's start-up line)."""
    server = Server(config)
    if checked is not None:
        checked()
    if config.db != ":memory:":
        Path(config.db).parent.mkdir(parents=True, exist_ok=True)
    server.run()
