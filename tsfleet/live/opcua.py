"""OPC UA (IEC 62541): subscribe to a server's variables and store them as readings.

``tsfleet serve --opcua opc.tcp://host:4840 --opcua-map plant.json`` connects with
the ``asyncua`` client, resolves the variables the map file names (node ids, or the
variables found by browsing a folder), reads their current values, and subscribes to
them (data-change notifications; sampling interval from the map, default 1 s). Each
value becomes a reading of the map's device and metric at its source timestamp (the
server timestamp when the source gave none, the receive time when neither did).

- A value whose status is not Good (``BadSensorFailure``, ``UncertainLastUsableValue``,
  ...) or that is not a number (a String, a ByteString, an array, NaN) is quarantined
  (``opcua_bad_status``, ``opcua_not_numeric``) with the node, status and time; nothing
  a server sends stops the service.
- The devices of the map are declared environment monitors (``devices.is_environment_
  monitor = true``, with the map's zone and site) at start, keeping whatever else the
  store already says of them.
- When the connection is lost (the server restarts, the network goes away) the client
  reconnects with exponential backoff (0.5 s doubling to 30 s), reads every variable's
  current value again and subscribes again. A value seen twice (re-read, or repeated
  by the new subscription) has the same device, metric and time and is absorbed as a
  duplicate by the store; a value that changed while tsfleet was away is stored if
  the server still holds it (its current value). Intermediate values the server did
  not keep are not recoverable without the server's history (HistoryRead: not used).

The map file (JSON)::

    {
      "sampling_ms": 1000,          # default for every item (1 s)
      "queue_size": 10,             # values the server keeps per item between publishes
      "items": [
        {"node": "ns=2;s=Hall1.Temperature", "device": "em-hall-1",
         "metric": "temperature_c", "zone": "hall-1", "site": "plant-north"},
        {"node": "ns=2;i=2005", "device": "em-hall-1", "metric": "vibration_g",
         "unit": "mg"},
        {"browse": "ns=2;s=Zones", "name": "Humidity*", "depth": 2,
         "device": "em-{parent}", "metric": "humidity_pct", "sampling_ms": 5000}
      ]
    }

``metric`` with ``unit``/``scale``/``offset``/``adc`` converts as in vendor profiles.
A ``browse`` item takes every variable under the folder (``depth`` levels down)
whose browse name matches the glob ``name``; its ``device`` may use ``{name}`` (the
variable's browse name) and ``{parent}`` (the browse name of the node above it).

>>> m = OpcuaMap.model_validate({"items": [{"node": "ns=2;i=7", "device": "em-1",
...                                          "metric": "temperature_c"}]})
>>> m.items[0].sampling(m)
1000.0
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tsfleet.errors import InvalidParameter
from tsfleet.live.decoded import Decoded
from tsfleet.live.errors import ProfileError, Reject
from tsfleet.live.profiles import FieldMap

log = logging.getLogger("tsfleet.live")

#: Reconnect backoff: first delay and its ceiling, seconds.
BACKOFF_S, MAX_BACKOFF_S = 0.5, 30.0
#: Seconds between two health probes of the connection, and the probe's own timeout
#: (asyncua's default, 1 s, declared a busy server lost: bench/opcua.py at 2,000 items)
WATCHDOG_S = 5.0
#: Readings held between two hand-overs to the writer past which new values are dropped
#: (and counted): the writer's back-pressure must not grow memory without bound.
MAX_HELD = 500_000
POLICIES = ("none", "Basic256Sha256")
MODES = ("SignAndEncrypt", "Sign")


class Item(FieldMap):
    """One entry of the map: a node, or a folder to browse, -> a device's metric."""

    model_config = ConfigDict(extra="forbid")
    node: str | None = Field(None, description="Node id of a variable.",
                             examples=["ns=2;s=Hall1.Temperature"])
    browse: str | None = Field(None, description="Node id of a folder whose variables to take.",
                               examples=["ns=2;s=Zones"])
    name: str = Field("*", description="Glob on the browse name of the folder's variables.",
                      examples=["Temperature*"])
    depth: int = Field(1, ge=1, le=5, description="Levels below the folder searched.")
    device: str = Field(min_length=1, description="Device id; {name} and {parent} with browse.",
                        examples=["em-hall-1", "em-{parent}"])
    zone: str | None = Field(None, min_length=1, description="Zone of the monitor.")
    site: str | None = Field(None, min_length=1, description="Site of the monitor.")
    sampling_ms: float | None = Field(None, gt=0, description="Sampling interval, ms.")

    @model_validator(mode="after")
    def _one_source(self) -> Item:
        if (self.node is None) == (self.browse is None):
            raise ValueError("give exactly one of node or browse")
        try:
            self.device.format(name="n", parent="p")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"device {self.device!r} may use only {{name}} and {{parent}}: "
                             f"{exc}") from None
        return self

    def sampling(self, m: OpcuaMap) -> float:
        return float(self.sampling_ms or m.sampling_ms)


class OpcuaMap(BaseModel):
    """The ``--opcua-map`` file."""

    model_config = ConfigDict(extra="forbid")
    sampling_ms: float = Field(1000.0, gt=0, description="Default sampling interval, ms.")
    queue_size: int = Field(10, ge=1, le=10_000, description="Values queued per item.")
    items: list[Item] = Field(min_length=1)


def load_map(path: str | Path) -> OpcuaMap:
    """Read a map file; a wrong one raises :class:`ProfileError` naming file and problem."""
    try:
        return OpcuaMap.model_validate(json.loads(Path(path).read_text()))
    except OSError as exc:
        raise ProfileError(f"cannot read the OPC UA map {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ProfileError(f"the OPC UA map {path} is not JSON: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "top level"
        raise ProfileError(f"the OPC UA map {path}: {where}: {err['msg']}") from None


@dataclass(frozen=True)
class OpcuaSecurity:
    """Security policy, client certificate and user of the OPC UA connection."""

    policy: str = "none"                  # none | Basic256Sha256
    mode: str = "SignAndEncrypt"
    cert_file: str | None = None          # client certificate (PEM or DER)
    key_file: str | None = None           # its private key (PEM)
    server_cert_file: str | None = None   # pin the server's certificate (default: endpoint's)
    username: str | None = None
    password_file: str | None = None
    password_env: str | None = None

    def check(self) -> None:
        if self.policy not in POLICIES or self.mode not in MODES:
            raise InvalidParameter(f"OPC UA security must be one of {', '.join(POLICIES)} with "
                                   f"mode {' or '.join(MODES)}, got {self.policy} {self.mode}")
        if self.policy != "none" and not (self.cert_file and self.key_file):
            raise InvalidParameter(f"OPC UA security {self.policy} needs --opcua-cert FILE and "
                                   "--opcua-key FILE")
        for f in (self.cert_file, self.key_file, self.server_cert_file):
            if f and not Path(f).is_file():
                raise InvalidParameter(f"OPC UA: no such file {f}")
        if self.password_file and self.password_env:
            raise InvalidParameter("give --opcua-password-file or --opcua-password-env, not both")
        if (self.password_file or self.password_env) and not self.username:
            raise InvalidParameter("an OPC UA password needs --opcua-username")
        self.password()

    def password(self) -> str | None:
        if self.password_file:
            try:
                return Path(self.password_file).read_text().splitlines()[0]
            except (OSError, IndexError):
                raise InvalidParameter(f"cannot read an OPC UA password from "
                                       f"{self.password_file}") from None
        if self.password_env:
            if self.password_env not in os.environ:
                raise InvalidParameter(f"the environment variable {self.password_env} "
                                       "(OPC UA password) is not set")
            return os.environ[self.password_env]
        return None

    def describe(self) -> str:
        user = f"user {self.username}" if self.username else "anonymous"
        if self.policy == "none":
            return f"no security, {user}"
        return f"{self.policy} {self.mode}, {user}"


@dataclass(slots=True)
class Binding:
    """A resolved variable: what its values become."""

    node_id: str
    device_id: str
    metric: str
    convert: FieldMap
    sampling_ms: float


def declare_monitors(fleet, found: list[tuple[str, Item]]) -> int:
    """Declare these devices environment monitors (``is_environment_monitor = true``, the
    item's zone and site), keeping what the store already says of them; returns the rows
    written. Runs where the store's connection may be used (the writer thread in serve)."""
    from tsfleet.models import Device
    from tsfleet.store import quote_ident as q

    ids = sorted({d for d, _ in found})
    if not ids:
        return 0
    cols = [c for c in Device.model_fields if c in _device_columns(fleet)]
    existing = {r["device_id"]: {k: v for k, v in r.items() if v is not None}
                for r in fleet.query(f"select {', '.join(q(c) for c in cols)} from devices "
                                     "where list_contains(?, device_id)", [ids])}
    rows: dict[str, dict] = {}
    for device, it in found:
        row = _monitor_row(device, it, rows.get(device) or existing.get(device))
        if row is not None:
            rows[device] = row
    old = [r for d, r in rows.items() if d in existing]
    new = [r for d, r in rows.items() if d not in existing]
    for batch in (old, new):  # rows of one shape per call: a missing column is a default
        if batch:
            fleet.ingest("devices", batch, label="opcua:monitors")
    return len(rows)


def _monitor_row(device: str, it: Item, old: dict | None) -> dict | None:
    row = dict(old or {"device_id": device, "device_type": "env_monitor"})
    row["is_environment_monitor"] = True
    if it.zone:
        row["zone"] = it.zone
    if it.site:
        row["site"] = it.site
    if old is not None and all(old.get(k) == v for k, v in row.items()):
        return None  # already declared so: nothing to write
    return row


def _device_columns(fleet) -> set[str]:
    return {r["column_name"] for r in fleet.query(
        "select column_name from information_schema.columns where table_name = 'devices'")}


def _seconds(t: datetime | None) -> float | None:
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()


@dataclass
class SourceStats:
    n_connects: int = 0
    n_failures: int = 0
    n_values: int = 0
    n_readings: int = 0
    n_rejected: int = 0
    n_dropped: int = 0
    n_items: int = 0
    last_error: str | None = None
    by_reason: dict[str, int] = field(default_factory=dict)


class OpcuaSource:
    """One OPC UA server's subscription, run on serve's event loop until ``stop``.

    ``submit(envelope)`` is the writer's (it may block on back-pressure: it is called
    in an executor). Values are handed over every ``flush_s`` seconds as one envelope.
    """

    def __init__(self, url: str, mapping: OpcuaMap, submit, *,
                 security: OpcuaSecurity | None = None, flush_s: float = 0.25,
                 timeout_s: float = 10.0, known: frozenset[str] | None = None,
                 declare=None):
        if not url.startswith("opc.tcp://"):
            raise InvalidParameter(f"an OPC UA server is opc.tcp://host:port, got {url!r}")
        self.url = url
        self.map = mapping
        self.submit = submit
        self.security = security or OpcuaSecurity()
        self.flush_s = flush_s
        self.timeout_s = timeout_s
        self.stats = SourceStats()
        self.connected = asyncio.Event()
        self._bindings: dict[str, list[Binding]] = {}
        self._held = Decoded("opcua")
        self._rejects: list[tuple[bytes, Reject]] = []
        #: ``declare(found)``: declares browsed devices monitors (:func:`declare_monitors`
        #: on the writer thread in serve); None: they are not declared
        self.declare = declare
        self._declared: set[str] = {d for d, _ in self.fixed_devices()}
        self._found: list[tuple[str, Item]] = []
        if known is not None:
            unknown = sorted({it.metric for it in mapping.items} - known)
            if unknown:
                raise InvalidParameter(f"the OPC UA map names metrics the store does not know: "
                                       f"{', '.join(unknown)}")

    def fixed_devices(self) -> list[tuple[str, Item]]:
        """(device, item) of the items whose device id is not a template."""
        return [(it.device, it) for it in self.map.items if "{" not in it.device]

    # -- the loop ---------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Connect, subscribe, and reconnect with backoff until ``stop`` is set."""
        flusher = asyncio.create_task(self._flush_every())
        delay = BACKOFF_S
        try:
            while not stop.is_set():
                session = asyncio.create_task(self._session())
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait((session, stopping), return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if not session.done():  # a stop while connecting or connected
                    session.cancel()
                    await asyncio.gather(session, return_exceptions=True)
                    break
                if session.result():
                    delay = BACKOFF_S  # it had connected: start the backoff again
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass
                delay = min(delay * 2, MAX_BACKOFF_S)
        finally:
            flusher.cancel()
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 - the writer stopped: serve reports it
                log.warning("live: OPC UA: the last values were not handed over: %s", exc)

    async def _session(self) -> bool:
        """One connection: connect, read, subscribe, wait until it is lost. True when it
        got as far as subscribing; never raises (a server must never stop serve)."""
        lost = asyncio.Event()
        from asyncua import Client

        client = Client(self.url, timeout=self.timeout_s, watchdog_intervall=WATCHDOG_S)
        try:
            await self._connect(client, lost)
            await self._subscribe(client)
            self.stats.n_connects += 1
            self.connected.set()
            log.info("live: OPC UA %s: %d items subscribed", self.url, self.stats.n_items)
            await lost.wait()
            log.warning("live: OPC UA %s: connection lost; reconnecting", self.url)
            return True
        except Exception as exc:  # noqa: BLE001 - a server must never stop serve
            self.stats.n_failures += 1
            self.stats.last_error = (f"no answer within {self.timeout_s:g} s"
                                     if isinstance(exc, TimeoutError)
                                     else f"{type(exc).__name__}: {exc}"[:300])
            log.warning("live: OPC UA %s: %s; retrying", self.url, self.stats.last_error)
            return False
        finally:
            self.connected.clear()
            await _quietly(client.disconnect(), 2.0)  # also a half-open one

    async def _connect(self, client, lost: asyncio.Event) -> None:
        sec = self.security
        if sec.policy != "none":
            from asyncua import ua
            from asyncua.crypto import security_policies

            client.application_uri = await _certificate_uri(sec.cert_file) or \
                client.application_uri
            await client.set_security(
                security_policies.SecurityPolicyBasic256Sha256, sec.cert_file, sec.key_file,
                server_certificate=sec.server_cert_file,
                mode=getattr(ua.MessageSecurityMode, sec.mode))
        if sec.username:
            client.set_user(sec.username)
            password = sec.password()
            if password is not None:
                client.set_password(password)

        async def on_lost(exc) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        await asyncio.wait_for(client.connect(), self.timeout_s)

    async def _subscribe(self, client) -> None:
        from asyncua import ua

        bindings = await self._resolve(client)
        self._bindings = {}
        for b in bindings:
            self._bindings.setdefault(b.node_id, []).append(b)
        self.stats.n_items = len(bindings)
        nodes = [client.get_node(n) for n in self._bindings]
        # the current values first: what changed while tsfleet was away and is still held
        for i in range(0, len(nodes), 1000):
            chunk = nodes[i:i + 1000]
            params = ua.ReadParameters()
            params.TimestampsToReturn = ua.TimestampsToReturn.Both
            for n in chunk:
                rv = ua.ReadValueId()
                rv.NodeId, rv.AttributeId = n.nodeid, ua.AttributeIds.Value
                params.NodesToRead.append(rv)
            values = await client.uaclient.read(params)
            now = time.time()
            for n, dv in zip(chunk, values, strict=True):
                if dv.SourceTimestamp is None and dv.ServerTimestamp is None and \
                        dv.StatusCode is not None and not dv.StatusCode.is_good():
                    log.warning("live: OPC UA %s: node %s: %s", self.url,
                                n.nodeid.to_string(), dv.StatusCode.name)
                    continue
                self.value(n.nodeid.to_string(), dv, now)
        period = min((b.sampling_ms for b in bindings), default=self.map.sampling_ms)
        sub = await client.create_subscription(period, self)
        by_sampling: dict[float, list] = {}
        for node in nodes:
            ms = self._bindings[node.nodeid.to_string()][0].sampling_ms
            by_sampling.setdefault(ms, []).append(node)
        for ms, group in by_sampling.items():
            for i in range(0, len(group), 1000):
                results = await sub.subscribe_data_change(
                    group[i:i + 1000], queuesize=self.map.queue_size, sampling_interval=ms)
                for node, r in zip(group[i:i + 1000], results, strict=True):
                    if isinstance(r, ua.StatusCode):
                        log.warning("live: OPC UA %s: cannot monitor %s: %s", self.url,
                                    node.nodeid.to_string(), r.name)

    async def _resolve(self, client) -> list[Binding]:
        out: list[Binding] = []
        for it in self.map.items:
            ms = it.sampling(self.map)
            if it.node is not None:
                out.append(Binding(client.get_node(it.node).nodeid.to_string(), it.device,
                                   it.metric, it, ms))
                continue
            for node, name, parent in await _browse(client.get_node(it.browse), it.depth):
                if not fnmatch.fnmatchcase(name, it.name):
                    continue
                device = it.device.format(name=name, parent=parent)
                self._declare(device, it)
                out.append(Binding(node.nodeid.to_string(), device, it.metric, it, ms))
        return out

    def _declare(self, device: str, it: Item) -> None:
        if device in self._declared:
            return
        self._declared.add(device)
        self._found.append((device, it))

    # -- values -----------------------------------------------------------------------------
    def datachange_notification(self, node, val, data) -> None:
        """asyncua's handler: one monitored item's new value."""
        self.value(node.nodeid.to_string(), data.monitored_item.Value, time.time())

    def status_change_notification(self, status) -> None:
        log.info("live: OPC UA %s: subscription status %s", self.url, status)

    def value(self, node_id: str, dv, now: float) -> None:
        """One DataValue of a node -> a reading of each binding, or a quarantined value."""
        self.stats.n_values += 1
        for b in self._bindings.get(node_id, ()):
            t = _seconds(dv.SourceTimestamp) or _seconds(dv.ServerTimestamp) or now
            status = dv.StatusCode
            v = dv.Value.Value if dv.Value is not None else None
            if status is not None and not status.is_good():
                self._reject(b, dv, t, "opcua_bad_status", f"status {status.name}")
                continue
            if type(v) is bool:
                v = float(v)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                kind = dv.Value.VariantType.name if dv.Value is not None else "null"
                self._reject(b, dv, t, "opcua_not_numeric", f"a {kind} value, not a number")
                continue
            if self._held.n_readings >= MAX_HELD:
                self.stats.n_dropped += 1
                continue
            self._held.add_reading(b.device_id, t, b.metric, b.convert.convert(float(v)))

    def _reject(self, b: Binding, dv, t: float, reason: str, why: str) -> None:
        value = dv.Value.Value if dv.Value is not None else None
        body = json.dumps({"node": b.node_id, "device": b.device_id, "metric": b.metric,
                           "observed_at": t, "status": dv.StatusCode.name if dv.StatusCode
                           else None, "value": repr(value)[:200]})
        self.stats.n_rejected += 1
        self.stats.by_reason[reason] = self.stats.by_reason.get(reason, 0) + 1
        if len(self._rejects) < 10_000:
            self._rejects.append((body.encode(), Reject(
                reason, f"OPC UA node {b.node_id} ({b.device_id} {b.metric}): {why}")))

    # -- hand-over to the writer ------------------------------------------------------------
    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 - the writer stopped: serve is ending
                log.warning("live: OPC UA values not handed over: %s", exc)

    async def flush(self) -> None:
        """Hand what is held to the writer (off the loop: ``submit`` may block)."""
        from tsfleet.live.writer import Envelope

        held, self._held = self._held, Decoded("opcua")
        rejects, self._rejects = self._rejects, []
        found, self._found = self._found, []
        loop = asyncio.get_running_loop()
        if found and self.declare is not None:
            await loop.run_in_executor(None, self.declare, found)
        envs = []
        if held.n_rows:
            self.stats.n_readings += held.n_readings
            envs.append(Envelope("opcua", self.url, b"", time.time(), decoded=held))
        for body, reject in rejects:
            envs.append(Envelope("opcua", self.url, body, time.time(), reject=reject))
        if envs:
            await loop.run_in_executor(None, _submit_all, self.submit, envs)


def _submit_all(submit, envs) -> None:
    for env in envs:
        submit(env)


async def _browse(folder, depth: int) -> list[tuple]:
    """(variable node, its browse name, its parent's browse name) under ``folder``."""
    from asyncua import ua

    out = []
    level = [(folder, (await folder.read_browse_name()).Name)]
    for _ in range(depth):
        nxt = []
        for node, name in level:
            for ref in await node.get_references(refs=ua.ObjectIds.HierarchicalReferences,
                                                 direction=ua.BrowseDirection.Forward):
                child = node.new_node(node.session, ref.NodeId)
                if ref.NodeClass == ua.NodeClass.Variable:
                    out.append((child, ref.BrowseName.Name, name))
                elif ref.NodeClass == ua.NodeClass.Object:
                    nxt.append((child, ref.BrowseName.Name))
        level = nxt
    return out


async def _certificate_uri(path: str | None) -> str | None:
    """The application URI in a certificate's subjectAltName (the client must claim it)."""
    from asyncua.crypto import uacrypto
    from cryptography import x509

    cert = await uacrypto.load_certificate(path)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


async def _quietly(aw, timeout: float) -> None:
    try:
        await asyncio.wait_for(aw, timeout)
    except Exception:  # noqa: BLE001, S110 - closing a connection that is already gone
        pass
