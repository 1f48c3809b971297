"""Sparkplug B over MQTT (Eclipse Sparkplug 3.0): edge nodes and their devices.

Topics: ``spBv1.0/{group}/{NBIRTH|NDATA|NDEATH|DBIRTH|DDATA|DDEATH}/{edge node}[/{device}]``,
payloads ``org.eclipse.tahu.protobuf.Payload`` (:mod:`sparkplug_pb`). What tsfleet makes
of them (``tsfleet serve --mqtt HOST:PORT --sparkplug``, which subscribes ``spBv1.0/#``):

- A BIRTH declares each metric's name, datatype and alias, and carries its current
  value; DATA messages name metrics by alias. Each metric name maps to a tsfleet metric
  by the rules of the ``--sparkplug-map`` file (below), else by the name's last path
  segment and the ``engUnit`` property as SenML records map (docs/live.md's unit table).
  Numeric and Boolean values (1/0) are stored; a metric that does not map, or a String,
  DateTime, DataSet, Template or null value, is kept as unmapped with its reason.
- Sequence numbers (``seq`` 0..255, wrapping) are checked per edge node: every message
  after NBIRTH (NDATA, DBIRTH, DDATA, DDEATH) must carry the previous one plus one. A gap
  (a message lost) stores what arrived and asks the edge node to be born again: a
  ``spBv1.0/{group}/NCMD/{node}`` message with the Boolean metric
  ``Node Control/Rebirth`` = true (QoS 0), at most once per node every
  ``rebirth_every_s`` seconds until its NBIRTH arrives. A redelivered message (MQTT dup)
  is not checked: it repeats one already counted.
- DATA before its BIRTH (tsfleet restarted, or the BIRTH was lost), an alias no BIRTH
  declared, and a payload that is not a Sparkplug Payload are quarantined whole
  (``sparkplug_before_birth``, ``sparkplug_unknown_alias``, ``invalid_protobuf``); the
  first two also ask for a rebirth. Nothing a sender does stops the service.
- NBIRTH and DBIRTH become ``online`` device events, NDEATH and DDEATH ``offline`` ones
  (an NDEATH also takes each device of the node offline); ``device_offline`` reads them
  (a device declared offline is offline at once). An NDEATH whose ``bdSeq`` is not the
  one of the node's current NBIRTH is an older session's will and changes nothing.
- Times: a metric's own ``timestamp`` (ms), else the payload's, else the receive time.
  ``is_historical`` metrics (an edge node forwarding what it buffered while offline)
  are stored at their own timestamps like any late reading.

Device ids: a node's own metrics belong to the device ``{node}``, a device's to
``{device}``; the map file may say otherwise with ``node_device``/``device``
templates of ``{group}``, ``{node}`` and ``{device}``. The map file (TOML)::

    device = "{node}.{device}"          # optional, default "{device}"
    node_device = "{node}"              # optional, default "{node}"

    [[metric]]
    name = "*/Zone Temperature"         # glob on the Sparkplug metric name
    metric = "temperature_c"
    unit = "F"                          # or scale/offset or adc, as in vendor profiles

    [[metric]]
    name = "Diagnostics/*"
    ignore = true                       # known, nothing to store

>>> route("spBv1.0/plant/DDATA/gw-1/th-17")
('plant', 'DDATA', 'gw-1', 'th-17')
>>> route("spBv1.0/plant/NBIRTH/gw-1")
('plant', 'NBIRTH', 'gw-1', None)
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tsfleet.live.decoded import Decoded, Unmapped
from tsfleet.live.errors import PayloadError, ProfileError, Reject
from tsfleet.live.profiles import FieldMap
from tsfleet.live.units import metric_for

log = logging.getLogger("tsfleet.live")

NAMESPACE = "spBv1.0"
TOPICS = [f"{NAMESPACE}/#"]
MESSAGE_TYPES = ("NBIRTH", "NDATA", "NDEATH", "DBIRTH", "DDATA", "DDEATH")
REBIRTH_METRIC = "Node Control/Rebirth"
#: Metrics of a node's session that are not measurements (known, never stored).
CONTROL_PREFIXES = ("Node Control/", "Device Control/", "Properties/")
#: Bounds of the state kept per sender (hostile publishers cannot grow it without end).
MAX_NODES, MAX_DEVICES_PER_NODE, MAX_ALIASES = 100_000, 10_000, 100_000

# Sparkplug datatypes -> the value field that carries them, and how to read it.
_INT_SIGNED = {1: 32, 2: 32, 3: 32, 4: 64}        # two's complement in an unsigned field
_FIELD = {1: "int_value", 2: "int_value", 3: "int_value", 4: "long_value", 5: "int_value",
          6: "int_value", 7: "int_value", 8: "long_value", 9: "float_value",
          10: "double_value", 11: "boolean_value"}
_TYPE_NAMES = {0: "Unknown", 12: "String", 13: "DateTime", 14: "Text", 15: "UUID",
               16: "DataSet", 17: "Bytes", 18: "File", 19: "Template", 20: "PropertySet",
               21: "PropertySetList"}


def route(topic: str) -> tuple[str, str, str, str | None] | None:
    """(group, message type, edge node, device or None) of a Sparkplug topic, else None."""
    parts = topic.split("/")
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE:
        return None
    return parts[1], parts[2], parts[3], parts[4] if len(parts) == 5 else None


class MetricRule(FieldMap):
    """One rule of the map file: a glob on the Sparkplug metric name -> a metric."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, description="Glob on the Sparkplug metric name.",
                      examples=["*/Zone Temperature"])
    metric: str | None = Field(None, description="Canonical metric (none with ignore).",
                               examples=["temperature_c"])
    ignore: bool = Field(False, description="Known, nothing to store.")

    @model_validator(mode="before")
    @classmethod
    def _ignored(cls, data):
        if isinstance(data, dict) and data.get("ignore") and "metric" not in data:
            data = {**data, "metric": "temperature_c"}  # checked by FieldMap, never used
        return data


class SparkplugMap(BaseModel):
    """The ``--sparkplug-map`` file."""

    model_config = ConfigDict(extra="forbid")
    device: str = Field("{device}", description="Device id of a device's metrics.")
    node_device: str = Field("{node}", description="Device id of an edge node's own metrics.")
    metric: list[MetricRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _templates(self) -> SparkplugMap:
        for t in (self.device, self.node_device):
            try:
                t.format(group="g", node="n", device="d")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"template {t!r} may use only {{group}}, {{node}} and "
                                 f"{{device}}: {exc}") from None
        return self

    def rule(self, name: str) -> MetricRule | None:
        for r in self.metric:
            if fnmatch.fnmatchcase(name, r.name):
                return r
        return None


def load_map(path: str | Path | None) -> SparkplugMap:
    """Read a map file; a wrong one raises :class:`ProfileError` naming file and problem."""
    if path is None:
        return SparkplugMap()
    try:
        data = tomllib.loads(Path(path).read_text())
        return SparkplugMap.model_validate(data)
    except OSError as exc:
        raise ProfileError(f"cannot read the Sparkplug map {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"the Sparkplug map {path} is not TOML: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ProfileError(f"the Sparkplug map {path}: {where}: {err['msg']}") from None


@dataclass(slots=True)
class MetricDef:
    """What a BIRTH said of one metric, resolved once."""

    name: str
    datatype: int
    device_id: str
    metric: str | None            # tsfleet metric, None: kept as unmapped
    reason: str | None            # why unmapped (None when it maps or is ignored)
    convert: FieldMap | None = None
    ignore: bool = False
    #: the value field a DATA metric of this datatype is read from directly (None: the
    #: metric is ignored, unmapped or not numeric, and goes through ``_value``)
    value_field: str | None = None
    #: width of a signed integer datatype (its value is two's complement), else 0
    signed_bits: int = 0

    def __post_init__(self) -> None:
        if self.convert is not None and self.convert.unit is None and \
                self.convert.adc is None and self.convert.scale is None and \
                self.convert.offset == 0.0:
            self.convert = None  # the rule names the metric only: no conversion
        if self.metric is not None and not self.ignore:
            self.value_field = _FIELD.get(self.datatype)
            self.signed_bits = _INT_SIGNED.get(self.datatype, 0)


@dataclass
class Entity:
    """An edge node or a device: its aliases and names from its last BIRTH."""

    device_id: str
    aliases: dict[int, MetricDef] = field(default_factory=dict)
    names: dict[str, MetricDef] = field(default_factory=dict)


@dataclass
class Node:
    """One edge node's session as last seen."""

    entity: Entity
    seq: int
    bd_seq: int | None
    devices: dict[str, Entity] = field(default_factory=dict)
    last_rebirth_at: float = float("-inf")


class Sparkplug:
    """Decodes Sparkplug B messages into rows; keeps each edge node's session state.

    ``publish(topic, payload)`` sends the rebirth requests (None: they are only logged).
    """

    what = "Sparkplug B message"
    name = "sparkplug"
    topics = TOPICS

    def __init__(self, known_metrics: frozenset[str], mapping: SparkplugMap | None = None, *,
                 max_payload: int = 256 * 1024,
                 publish: Callable[[str, bytes], object] | None = None,
                 rebirth_every_s: float = 5.0):
        from tsfleet.live.sparkplug_pb import Payload  # protobuf is imported only when used

        self._payload_cls = Payload
        self.known = known_metrics
        self.map = mapping or SparkplugMap()
        self.max_payload = max_payload
        self.publish = publish
        self.rebirth_every_s = rebirth_every_s
        self.nodes: dict[tuple[str, str], Node] = {}
        #: rebirth requests sent, and sequence gaps seen (since start)
        self.n_rebirths = 0
        self.n_gaps = 0
        self._waiting: dict[tuple[str, str], float] = {}  # unborn nodes asked to rebirth
        self._lock = threading.Lock()

    # -- the transport's entry point ------------------------------------------------------
    def decode_into(self, env) -> None:
        """Decode in place: ``env.decoded``, or ``env.reject`` with a reason; never raises."""
        try:
            env.decoded = self.decode(env.source, env.payload, env.received_at,
                                      redelivered=env.redelivered)
        except PayloadError as exc:
            env.reject = Reject(exc.reason, exc.detail)  # plain data: no traceback (Reject)
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not stop the transport
            env.reject = Reject("decoder_error", f"decoding failed: {exc!r}"[:1000])

    def decode(self, topic: str, payload: bytes, now: float, *,
               redelivered: bool = False) -> Decoded:
        r = route(topic)
        if r is None and topic.startswith(f"{NAMESPACE}/STATE/"):  # a host application's state
            return Decoded("sparkplug:STATE")
        if r is None:
            raise PayloadError("unknown_topic", f"not a Sparkplug B topic: {topic[:200]!r} "
                               f"(expected {NAMESPACE}/group/type/node[/device])")
        group, kind, node, device = r
        if kind not in MESSAGE_TYPES:  # NCMD, DCMD (ours included), STATE: nothing to store
            return Decoded(f"sparkplug:{kind[:20]}")
        if (device is None) != (kind[0] == "N"):
            raise PayloadError("unknown_topic", f"a {kind} topic must "
                               f"{'not ' if device is None and kind[0] == 'D' else ''}"
                               f"name {'a device' if kind[0] == 'D' else 'no device'}: "
                               f"{topic[:200]!r}")
        if len(payload) > self.max_payload:
            raise PayloadError("oversized_payload", f"payload of {len(payload)} bytes exceeds "
                               f"the limit of {self.max_payload} bytes")
        try:
            msg = self._payload_cls.FromString(payload)
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
            raise PayloadError("invalid_protobuf", f"payload is not a Sparkplug B Payload: "
                               f"{exc}") from None
        out = Decoded(f"sparkplug:{kind}")
        t = msg.timestamp / 1000.0 if msg.timestamp else now
        with self._lock:
            if kind == "NBIRTH":
                self._nbirth(out, msg, group, node, t)
            elif kind == "NDEATH":
                self._ndeath(out, msg, group, node, t)
            else:
                self._after_birth(out, msg, kind, group, node, device, t, now, redelivered)
        return out

    # -- births and deaths ----------------------------------------------------------------
    def _nbirth(self, out: Decoded, msg, group: str, node: str, t: float) -> None:
        key = (group, node)
        if key not in self.nodes and len(self.nodes) >= MAX_NODES:
            raise PayloadError("too_many_nodes", f"more than {MAX_NODES} edge nodes")
        entity = Entity(self.map.node_device.format(group=group, node=node, device=""))
        bd_seq = None
        for m in msg.metrics:
            if m.name == "bdSeq":
                bd_seq = m.long_value or m.int_value
        self.nodes[key] = Node(entity, msg.seq % 256, bd_seq)
        self._waiting.pop(key, None)
        self._birth(out, msg, entity, t)
        out.add_fact("device_events", {"device_id": entity.device_id, "event_at": t,
                                       "event": "online",
                                       "detail": f"Sparkplug NBIRTH {group}/{node}"})

    def _ndeath(self, out: Decoded, msg, group: str, node: str, t: float) -> None:
        st = self.nodes.get((group, node))
        bd_seq = None
        for m in msg.metrics:
            if m.name == "bdSeq":
                bd_seq = m.long_value or m.int_value
        if st is None or (bd_seq is not None and st.bd_seq is not None and bd_seq != st.bd_seq):
            why = "no NBIRTH of it was seen" if st is None else \
                f"bdSeq {bd_seq} is not the one of its NBIRTH ({st.bd_seq})"
            out.unmapped.append(Unmapped(0, "NDEATH", str(bd_seq), None, "sparkplug_stale_death",
                                         None if st is None else st.entity.device_id, t))
            log.info("live: Sparkplug NDEATH of %s/%s ignored: %s", group, node, why)
            return
        del self.nodes[(group, node)]
        for dev in st.devices.values():
            out.add_fact("device_events", {"device_id": dev.device_id, "event_at": t,
                                           "event": "offline",
                                           "detail": f"Sparkplug NDEATH {group}/{node}"})
        out.add_fact("device_events", {"device_id": st.entity.device_id, "event_at": t,
                                       "event": "offline",
                                       "detail": f"Sparkplug NDEATH {group}/{node}"})

    def _after_birth(self, out: Decoded, msg, kind: str, group: str, node: str,
                     device: str | None, t: float, now: float, redelivered: bool) -> None:
        st = self.nodes.get((group, node))
        if st is None:
            self._request_rebirth(group, node, now, "data before its NBIRTH")
            raise PayloadError("sparkplug_before_birth", f"{kind} of edge node {group}/{node} "
                               "before its NBIRTH (a rebirth was requested)")
        if not redelivered:
            expected = (st.seq + 1) % 256
            seq = msg.seq % 256
            if seq != expected:
                self.n_gaps += 1
                log.warning("live: Sparkplug %s/%s: seq %d where %d was expected (a message was "
                            "lost)", group, node, seq, expected)
                self._request_rebirth(group, node, now, f"seq {seq} where {expected} was "
                                      "expected", st)
            st.seq = seq
        if kind == "DBIRTH":
            if device not in st.devices and len(st.devices) >= MAX_DEVICES_PER_NODE:
                raise PayloadError("too_many_devices", f"more than {MAX_DEVICES_PER_NODE} "
                                   f"devices on edge node {group}/{node}")
            entity = Entity(self.map.device.format(group=group, node=node, device=device))
            st.devices[device] = entity
            self._birth(out, msg, entity, t)
            out.add_fact("device_events", {"device_id": entity.device_id, "event_at": t,
                                           "event": "online",
                                           "detail": f"Sparkplug DBIRTH {group}/{node}/{device}"})
            return
        if kind == "DDEATH":
            entity = st.devices.pop(device, None)
            dev_id = entity.device_id if entity else \
                self.map.device.format(group=group, node=node, device=device)
            out.add_fact("device_events", {"device_id": dev_id, "event_at": t,
                                           "event": "offline",
                                           "detail": f"Sparkplug DDEATH {group}/{node}/{device}"})
            return
        if kind == "NDATA":
            entity = st.entity
        else:
            entity = st.devices.get(device)
            if entity is None:
                self._request_rebirth(group, node, now, f"DDATA of {device} before its DBIRTH",
                                      st)
                raise PayloadError("sparkplug_before_birth", f"DDATA of device {device} of "
                                   f"edge node {group}/{node} before its DBIRTH (a rebirth "
                                   "was requested)")
        self._data(out, msg, entity, t, group, node, now, st)

    def _birth(self, out: Decoded, msg, entity: Entity, t: float) -> None:
        for i, m in enumerate(msg.metrics):
            name = m.name
            if not name:
                raise PayloadError("sparkplug_bad_birth", f"metric {i} of a BIRTH has no name")
            d = self._define(name, m.datatype, entity.device_id, m)
            entity.names[name] = d
            if m.HasField("alias"):
                if len(entity.aliases) >= MAX_ALIASES:
                    raise PayloadError("too_many_aliases", f"more than {MAX_ALIASES} aliases")
                entity.aliases[m.alias] = d
            self._value(out, i, m, d, t)

    def _define(self, name: str, datatype: int, device_id: str, m) -> MetricDef:
        rule = self.map.rule(name)
        if rule is not None:
            if rule.ignore:
                return MetricDef(name, datatype, device_id, None, None, ignore=True)
            return MetricDef(name, datatype, device_id, rule.metric, None, rule)
        if name == "bdSeq" or name.startswith(CONTROL_PREFIXES):
            return MetricDef(name, datatype, device_id, None, None, ignore=True)
        unit = _eng_unit(m)
        metric, reason = metric_for(name.rsplit("/", 1)[-1].strip().replace(" ", "_"),
                                    unit, self.known)
        return MetricDef(name, datatype, device_id, metric, reason)

    # -- data -----------------------------------------------------------------------------
    def _data(self, out: Decoded, msg, entity: Entity, t: float, group: str, node: str,
              now: float, st: Node) -> None:
        aliases, names = entity.aliases, entity.names
        dev_col, t_col, metric_col, value_col = out.device_id, out.observed_at, out.metric, \
            out.value
        for i, m in enumerate(msg.metrics):
            alias = m.alias
            d = aliases.get(alias) if alias or m.HasField("alias") else None
            if d is None:
                if m.name and m.name in names:
                    d = names[m.name]
                elif m.name:  # not in the BIRTH, but named: map it by its own name
                    d = self._define(m.name, m.datatype, entity.device_id, m)
                else:
                    self._request_rebirth(group, node, now, f"unknown alias {m.alias}", st)
                    raise PayloadError("sparkplug_unknown_alias", f"metric {i} has alias "
                                       f"{m.alias}, which no BIRTH of {entity.device_id} "
                                       "declared (a rebirth was requested)")
            # the hot path: a mapped numeric metric of its BIRTH's datatype, read straight
            # from that datatype's value field (what _value does, without its dispatch)
            f = d.value_field
            if f is not None and not m.is_null and (m.datatype == 0 or
                                                    m.datatype == d.datatype):
                v = getattr(m, f)
                if d.signed_bits and v >= 1 << (d.signed_bits - 1):
                    v -= 1 << d.signed_bits
                v = float(v)
                if d.convert is not None:
                    v = d.convert.convert(v)
                ts = m.timestamp
                dev_col.append(d.device_id)
                t_col.append(ts / 1000.0 if ts else t)
                metric_col.append(d.metric)
                value_col.append(v)
                continue
            self._value(out, i, m, d, t)

    @staticmethod
    def _value(out: Decoded, i: int, m, d: MetricDef, t: float) -> None:
        if d.ignore:
            return
        ts = m.timestamp / 1000.0 if m.timestamp else t
        datatype = m.datatype or d.datatype
        fname = _FIELD.get(datatype)
        if m.is_null:
            out.unmapped.append(Unmapped(i, d.name, None, None, "null_value", d.device_id, ts))
            return
        if fname is None:
            kind = m.WhichOneof("value")
            value = None if kind is None or kind in ("dataset_value", "template_value",
                                                     "extension_value") \
                else str(getattr(m, kind))[:1000]
            out.unmapped.append(Unmapped(i, d.name, value, None, "not_numeric_"
                                         + _TYPE_NAMES.get(datatype, str(datatype)).lower(),
                                         d.device_id, ts))
            return
        v = getattr(m, fname)
        bits = _INT_SIGNED.get(datatype)
        if bits is not None and v >= 1 << (bits - 1):
            v -= 1 << bits
        if d.metric is None:
            out.unmapped.append(Unmapped(i, d.name, str(v), None, d.reason or "no_mapping",
                                         d.device_id, ts))
            return
        v = float(v)
        if d.convert is not None:
            v = d.convert.convert(v)
        out.device_id.append(d.device_id)
        out.observed_at.append(ts)
        out.metric.append(d.metric)
        out.value.append(v)

    # -- rebirth ----------------------------------------------------------------------------
    def _request_rebirth(self, group: str, node: str, now: float, why: str,
                         st: Node | None = None) -> None:
        key = (group, node)
        last = st.last_rebirth_at if st is not None else self._waiting.get(key, float("-inf"))
        if now - last < self.rebirth_every_s:
            return
        if st is not None:
            st.last_rebirth_at = now
        elif len(self._waiting) < MAX_NODES:
            self._waiting[key] = now
        self.n_rebirths += 1
        topic = f"{NAMESPACE}/{group}/NCMD/{node}"
        log.warning("live: Sparkplug %s/%s: %s; rebirth requested on %s", group, node, why, topic)
        if self.publish is not None:
            self.publish(topic, rebirth_request(now))


def rebirth_request(now: float | None = None) -> bytes:
    """The NCMD payload that asks an edge node to publish its births again."""
    from tsfleet.live.sparkplug_pb import DataType, Payload

    p = Payload(timestamp=int((time.time() if now is None else now) * 1000))
    p.metrics.add(name=REBIRTH_METRIC, datatype=DataType.Boolean, boolean_value=True)
    return p.SerializeToString()


def _eng_unit(m) -> str | None:
    """The ``engUnit`` property of a metric (Ignition's convention), if any."""
    if not m.HasField("properties"):
        return None
    props = m.properties
    for k, v in zip(props.keys, props.values, strict=False):
        if k in ("engUnit", "EngUnit", "engUnits", "unit") and v.WhichOneof("value") == \
                "string_value":
            return v.string_value or None
    return None
