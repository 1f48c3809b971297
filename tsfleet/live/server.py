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
import gc
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tsfleet.errors import InvalidParameter
from tsfleet.fleet import Fleet
from tsfleet.live import coap as coap_server
from tsfleet.live.decode import DEFAULT_MAX_PAYLOAD, DEVICE_SOURCES, Decoder, TopicLayout
from tsfleet.live.mqtt import Subscriber, parse_address
from tsfleet.live.netservers import NETWORK_SERVERS
from tsfleet.live.profiles import Profiles
from tsfleet.live.writer import Envelope, Writer
from tsfleet.service.cadence import Cadence

log = logging.getLogger("tsfleet.live")


@dataclass
class ServeConfig:
    """Everything ``tsfleet serve`` can be told."""

    db: str
    mqtt: str | None = None                       # host:port of the broker
    coap: str | None = None                       # host:port to bind (UDP)
    topics: list[str] = field(default_factory=lambda: ["fleet/#"])
    topic_layout: str = "+/{device}/{format}"
    device_from: str = "auto"                     # auto | topic | payload
    client_id: str = "tsfleet-serve"
    session_expiry_s: int = 7 * 86400
    receive_maximum: int = 4000
    max_payload: int = DEFAULT_MAX_PAYLOAD
    batch_rows: int = 25_000
    batch_delay_s: float = 0.5
    profile_dirs: list[str] = field(default_factory=list)
    #: seconds between runs of each analysis (``tsfleet.service.cadence``); empty: none
    analyze_every: dict[str, float] = field(default_factory=dict)
    #: LoRaWAN network servers (tsfleet.live.chirpstack, tsfleet.live.tts): host:port of
    #: the broker they publish to, or None; topic_layout "chirpstack"/"tts" reads them
    #: from the --mqtt broker instead
    chirpstack_mqtt: str | None = None
    tts_mqtt: str | None = None

    def check(self) -> None:
        if self.device_from not in DEVICE_SOURCES:
            raise InvalidParameter(f"device_from must be one of {'|'.join(DEVICE_SOURCES)}, "
                                   f"got {self.device_from!r}")
        if self.batch_rows < 1 or self.batch_delay_s <= 0 or self.max_payload < 1:
            raise InvalidParameter("batch_rows, batch_delay_s and max_payload must be positive, "
                                   f"got {self.batch_rows}, {self.batch_delay_s}, "
                                   f"{self.max_payload}")
        if not 1 <= self.receive_maximum <= 65535:
            raise InvalidParameter(f"receive_maximum must be within 1..65535, "
                                   f"got {self.receive_maximum}")


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
        self.coap_port: int | None = None
        self._closing = False
        self._untune = None
        self.n_received = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.cadence: Cadence | None = None
        self.profiles = Profiles(config.profile_dirs)  # a wrong profile fails before binding
        self.layout = TopicLayout(config.topic_layout)
        self.layout_server = None  # a network server's decoder when the layout names one

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
        fleet = Fleet(cfg.db if cfg.db != ":memory:" else None, memory=cfg.db == ":memory:")
        self.fleet = fleet
        self.decoder = Decoder(known_metrics(fleet), self.profiles, device_from=cfg.device_from,
                               max_payload=cfg.max_payload)
        self.cadence = Cadence(cfg.analyze_every) if cfg.analyze_every else None
        if cfg.topic_layout in NETWORK_SERVERS:
            self.layout_server = NETWORK_SERVERS[cfg.topic_layout](
                known_metrics(fleet), self.profiles, max_payload=cfg.max_payload)
        self.writer = Writer(fleet, max_rows=cfg.batch_rows, max_delay=cfg.batch_delay_s,
                             on_commit=self.on_commit, on_fatal=lambda exc: self.stop(),
                             between_commits=self.cadence and (lambda: self.cadence.tick(fleet)))
        self.writer.start()
        self._untune = _tune_interpreter()
        context = None
        try:
            if cfg.coap:
                host, port = parse_address(cfg.coap, 5683)
                context = await coap_server.start_server(self.decoder, self.writer, host, port)
                self.coap_port = port
                log.info("live: CoAP listening on %s:%d (POST /ingest[/<device>])", host, port)
            if cfg.mqtt:
                host, port = parse_address(cfg.mqtt, 1883)
                self.subscriber = Subscriber(
                    host, port, cfg.topics, self._on_mqtt, client_id=cfg.client_id,
                    session_expiry_s=cfg.session_expiry_s,
                    receive_maximum=cfg.receive_maximum)
                self.subscriber.start()
            self._start_network_servers()
            self.ready.set()
            log.info("live: serving into %s", cfg.db)
            await self._stop.wait()
        finally:
            await self._shutdown(context)

    async def _shutdown(self, context) -> None:
        log.info("live: stopping: committing what is held")
        self._closing = True
        if self.writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.writer.stop)
        if self.subscriber is not None or self.lora_subscribers:
            time.sleep(0.05)  # let the network thread write the last acknowledgements
        for sub in ([self.subscriber] if self.subscriber else []) + self.lora_subscribers:
            sub.stop()
        if context is not None:
            await context.shutdown()
        s = self.writer.stats if self.writer else None
        if s is not None:
            log.info("live: stopped after %d payloads: %d rows accepted, %d duplicates, "
                     "%d quarantined, %d unmapped fields, %d payloads rejected",
                     s.n_messages, s.n_accepted, s.n_duplicates, s.n_quarantined,
                     s.n_unmapped, s.n_rejected)
        if self._untune is not None:
            self._untune()
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
                             client_id=f"{cfg.client_id}-{name}",
                             session_expiry_s=cfg.session_expiry_s,
                             receive_maximum=cfg.receive_maximum)
            sub.start()
            self.lora_subscribers.append(sub)

    def _lora_handler(self, decoder):
        def handle(msg, ack) -> None:
            if self._closing:
                return
            self.n_received += 1
            env = Envelope("mqtt", msg.topic, bytes(msg.payload), time.time(), ack=ack,
                           redelivered=bool(msg.dup))
            decoder.decode_into(env)
            self.writer.submit(env)
        return handle

    # -- transports -------------------------------------------------------------------
    def _on_mqtt(self, msg, ack) -> None:
        if self._closing:
            return  # not acknowledged: the broker keeps it for the next session
        self.n_received += 1
        env = Envelope("mqtt", msg.topic, bytes(msg.payload), time.time(), ack=ack,
                       redelivered=bool(msg.dup))
        if self.layout_server is not None:
            self.layout_server.decode_into(env)
            self.writer.submit(env)
            return
        device, fmt = self.layout.parse(msg.topic)
        self.decoder.decode_into(env, fmt=fmt, topic_device=device)
        self.writer.submit(env)


def _tune_interpreter():
    """Two interpreter settings that the profile of a loaded server asked for;
    returns the function that puts the previous ones back (at shutdown).

    - The cyclic garbage collector: every payload allocates dozens of
      short-lived containers, and with the default thresholds collections
      (passes over the objects of DuckDB, pyarrow and paho included) took about
      a fifth of the MQTT thread's time. Objects alive at start are frozen
      (never scanned again) and young collections run less often.
    - The GIL switch interval: the writer thread gives the GIL up inside every
      DuckDB statement, which takes it back to check for signals; while the MQTT
      thread decodes, each take waited up to the default 5 ms, several times per
      statement. At 1 ms the writer gets it back sooner.
    """
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    _pin_malloc()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    sys.setswitchinterval(0.001)

    def untune() -> None:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)

    return untune


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


def serve(config: ServeConfig) -> None:
    """Run ``tsfleet serve`` in the foreground."""
    if config.db != ":memory:":
        Path(config.db).parent.mkdir(parents=True, exist_ok=True)
    Server(config).run()
