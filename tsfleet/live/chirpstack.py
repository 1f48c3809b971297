"""ChirpStack v4 over MQTT: the application integration's events and the gateway
bridge's statistics, in JSON (ChirpStack's default) or Protobuf.

Topics (a topic prefix before ``application/`` or ``gateway/`` is allowed, such as
the gateway bridge's region prefix ``eu868/``)::

    application/{application_id}/device/{dev_eui}/event/{up|status|join|log|...}
    gateway/{gateway_id}/event/stats

- ``up``: ``object`` -> readings through the vendor profiles; each ``rxInfo`` ->
  a ``heard`` connection; the uplink -> ``lorawan_uplinks`` (see :mod:`lorawan`);
  a lower frame counter than the device's previous uplink -> ``frame_counter_reset``.
  An uplink without ``object`` (no codec) keeps ``data`` as unmapped (``no_codec``).
- ``status``: ``batteryLevel`` -> ``battery_pct`` unless ``externalPowerSource``
  (the device is mains powered: ``lorawan_devices.is_mains``) or
  ``batteryLevelUnavailable``; ``margin`` -> ``link_margin_db``.
- ``join`` -> device event ``joined``; ``log`` with code ``UPLINK_F_CNT_RESET`` ->
  ``frame_counter_reset``; other log events are kept as unmapped (``log_<code>``).
- other device events (``ack``, ``txack``, ``location``, ``integration``) are kept
  as unmapped (``event_not_stored``): nothing is silently dropped.
- gateway ``stats`` -> ``gateway_stats`` with the packet counters (received, received
  with a valid CRC, downlinks requested, emitted, acknowledged) and ``messages_per_s``
  (frames with a valid CRC over the time since that gateway's previous report).

The device id is the DevEUI (``deviceInfo.devEui``, else the topic's). Protobuf
payloads are read with the ``chirpstack-api`` package's classes (optional
dependency ``tsfleet[chirpstack]``) and turned into the same dict as the JSON
mapping, so both go through one path.

>>> ChirpStack.route("application/7/device/0102030405060708/event/up")
('event', '0102030405060708', 'up')
>>> ChirpStack.route("eu868/gateway/aa555a0000000101/event/stats")
('gateway', 'aa555a0000000101', 'stats')
"""

from __future__ import annotations

import json
import threading
from typing import Annotated

from tsfleet.live.decoded import Decoded, Unmapped, time_cell, value_cell
from tsfleet.live.errors import PayloadError
from tsfleet.live.lorawan import (
    _FLAT,
    FrameCounters,
    NetworkServerDecoder,
    UplinkRows,
    downlink_gateway,
    loads,
    number,
    parse_time,
)
from tsfleet.live.profiles import Profiles

#: Device event -> chirpstack_api.integration message class name.
_EVENT_CLASSES = {"up": "UplinkEvent", "status": "StatusEvent", "join": "JoinEvent",
                  "log": "LogEvent", "ack": "AckEvent", "txack": "TxAckEvent",
                  "location": "LocationEvent", "integration": "IntegrationEvent"}
#: What a numeric field may be as it is (else :func:`number` judges it); a bool is not.
_PLAIN = frozenset({int, float, type(None)})
#: topic -> :meth:`ChirpStack.route` (bounded: emptied past 100,000 topics)
_ROUTES: dict[str, tuple[str, str, str]] = {}
DEFAULT_TOPICS = ["application/+/device/+/event/+", "gateway/+/event/stats",
                  "+/gateway/+/event/stats"]

try:  # the common uplink read into typed fields (optional: pip install msgspec)
    import msgspec
except ImportError:  # pragma: no cover - the test extra installs msgspec
    msgspec = None

if msgspec is not None:
    #: an integer that orjson (the general path) surely keeps an integer: a 64-bit one
    #: (past uint64 it becomes a float there); any other leaves the typed path
    _Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
    _Num = _Int | float | None
    #: a field the typed path does not use: any JSON scalar (an object or a list there
    #: leaves the typed path, so that no key of the event goes unread)
    _Any = _Int | float | str | bool | None
    #: every struct: an unknown key leaves the typed path (the general path then reads the
    #: event); written again, fields at their default are left out (see _up_typed)
    _STRICT = {"forbid_unknown_fields": True, "omit_defaults": True}

    class _Location(msgspec.Struct, **_STRICT):
        latitude: _Any = None
        longitude: _Any = None
        altitude: _Any = None
        source: _Any = None
        accuracy: _Any = None

    class _Rx(msgspec.Struct, **_STRICT):
        """One rxInfo entry (``gw.UplinkRxInfo``): the typed path reads gateway, RSSI and
        SNR; the other fields are read only to see every key."""

        gatewayId: str  # noqa: N815 - ChirpStack's JSON names
        rssi: _Num = None
        snr: _Num = 0.0
        uplinkId: _Any = None  # noqa: N815
        gwTime: _Any = None  # noqa: N815
        nsTime: _Any = None  # noqa: N815
        timeSinceGpsEpoch: _Any = None  # noqa: N815
        fineTimeSinceGpsEpoch: _Any = None  # noqa: N815
        channel: _Any = None
        rfChain: _Any = None  # noqa: N815
        board: _Any = None
        antenna: _Any = None
        location: _Location | None = None
        context: _Any = None
        metadata: dict[str, _Any] | None = None
        crcStatus: _Any = None  # noqa: N815

    class _LoRa(msgspec.Struct, **_STRICT):
        bandwidth: _Any = None
        spreadingFactor: _Any = None  # noqa: N815
        codeRateLegacy: _Any = None  # noqa: N815
        codeRate: _Any = None  # noqa: N815
        polarizationInversion: _Any = None  # noqa: N815
        preamble: _Any = None
        noCrc: _Any = None  # noqa: N815

    class _Fsk(msgspec.Struct, **_STRICT):
        frequencyDeviation: _Any = None  # noqa: N815
        datarate: _Any = None

    class _LrFhss(msgspec.Struct, **_STRICT):
        operatingChannelWidth: _Any = None  # noqa: N815
        codeRateLegacy: _Any = None  # noqa: N815
        codeRate: _Any = None  # noqa: N815
        gridSteps: _Any = None  # noqa: N815

    class _Modulation(msgspec.Struct, **_STRICT):
        lora: _LoRa | None = None
        fsk: _Fsk | None = None
        lrFhss: _LrFhss | None = None  # noqa: N815

    class _Tx(msgspec.Struct, **_STRICT):
        frequency: _Any = None
        modulation: _Modulation | None = None

    class _RelayRx(msgspec.Struct, **_STRICT):
        devEui: _Any = None  # noqa: N815
        frequency: _Any = None
        dr: _Any = None
        snr: _Any = None
        rssi: _Any = None
        worChannel: _Any = None  # noqa: N815

    class _KeyEnvelope(msgspec.Struct, **_STRICT):
        kekLabel: _Any = None  # noqa: N815
        aesKey: _Any = None  # noqa: N815

    class _JoinServerContext(msgspec.Struct, **_STRICT):
        sessionKeyId: _Any = None  # noqa: N815
        appSKey: _KeyEnvelope | None = None  # noqa: N815

    class _Up(msgspec.Struct, **_STRICT):
        """An ``up`` event (``integration.UplinkEvent`` in the JSON mapping, chirpstack-api
        4.17). The typed path reads time, the frame fields, ``object`` and ``rxInfo``;
        ``deviceInfo`` is kept as its raw JSON text, compared whole with the device's last
        one; the other fields are read only to see every key."""

        time: str | None = None
        deviceInfo: msgspec.Raw = msgspec.Raw(b"")  # noqa: N815
        fCnt: _Int = 0  # noqa: N815
        fPort: _Num = None  # noqa: N815
        dr: _Num = None
        object: dict[str, _Int | float | str] | None = None
        rxInfo: list[_Rx] | None = None  # noqa: N815
        deduplicationId: _Any = None  # noqa: N815
        devAddr: _Any = None  # noqa: N815
        adr: _Any = None
        confirmed: _Any = None
        data: _Any = None
        txInfo: _Tx | None = None  # noqa: N815
        relayRxInfo: _RelayRx | None = None  # noqa: N815
        joinServerContext: _JoinServerContext | None = None  # noqa: N815
        regionConfigId: _Any = None  # noqa: N815

    _UP = msgspec.json.Decoder(_Up)
    _WRITE = msgspec.json.Encoder().encode
    _TYPED_ERRORS = (msgspec.DecodeError, UnicodeDecodeError)


class ChirpStack(NetworkServerDecoder):
    """Decodes ChirpStack MQTT messages into rows (thread-safe)."""

    what = "ChirpStack event"
    name = "chirpstack"
    topics = DEFAULT_TOPICS

    def __init__(self, known_metrics: frozenset[str], profiles: Profiles | None = None, *,
                 max_payload: int = 256 * 1024):
        self.rows = UplinkRows("chirpstack", profiles or Profiles(), known_metrics,
                               FrameCounters())
        self.max_payload = max_payload
        self._stats_at: dict[str, float] = {}
        #: device -> (deviceInfo, is_mains) of its last event whose facts were taken
        self._info: dict[str, tuple[dict, bool | None]] = {}
        #: device -> (deviceInfo as JSON text, profile name) of its last uplink, while
        #: that is its entry in ``_info`` (see :meth:`_up_typed`)
        self._typed: dict[str, tuple[object, str | None]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def route(topic: str) -> tuple[str, str, str] | None:
        """(``event`` | ``gateway``, device or gateway id, event name), or None."""
        found = _ROUTES.get(topic)  # one topic per device and event: seen before, mostly
        if found is None:
            found = _ROUTES[topic] = ChirpStack._parse_route(topic)
            if len(_ROUTES) > 100_000:
                _ROUTES.clear()
        return found

    @staticmethod
    def _parse_route(topic: str) -> tuple[str, str, str] | None:
        parts = topic.split("/")
        for i, p in enumerate(parts):
            rest = parts[i:]
            if p == "application" and len(rest) == 6 and rest[2] == "device" and \
                    rest[4] == "event":
                return "event", rest[3], rest[5]
            if p == "gateway" and len(rest) == 4 and rest[2] == "event":
                return "gateway", rest[1], rest[3]
        return None

    def _decode(self, route, topic: str, payload: bytes, now: float) -> Decoded:
        kind, ident, event = route
        raw_info = None
        if event == "up" and kind == "event" and msgspec is not None:
            typed = self._up_typed(ident, payload, now)
            if type(typed) is Decoded:
                return typed
            raw_info = typed  # the deviceInfo text, when the payload could be read
        msg = self._message(payload, "GatewayStats" if kind == "gateway" else
                            _EVENT_CLASSES.get(event))
        out = Decoded(f"chirpstack:{event}")
        t = parse_time(msg.get("time"), now)
        if kind == "gateway":
            self._stats(out, msg, ident, t, event)
            return out
        info = msg.get("deviceInfo") or {}
        if not isinstance(info, dict):
            raise PayloadError("bad_field", "deviceInfo must be an object")
        device = str(info.get("devEui") or ident)
        if event in ("up", "status", "join"):
            is_mains = bool(msg.get("externalPowerSource")) if event == "status" else None
            # every event repeats deviceInfo: compared whole (one C call) with the last one
            # seen for the device before its facts are taken apart and compared
            seen = (info, is_mains)
            if self._info.get(device) != seen:
                self._typed.pop(device, None)  # its deviceInfo text is no longer the last
                self._device(out, device, t, info, is_mains)
                if len(self._info) < 1_000_000:
                    self._info[device] = seen
        if event == "up":
            profile = info.get("deviceProfileName")
            if raw_info is not None and device == ident and len(self._typed) < 1_000_000 \
                    and self._info.get(device) == (info, None):
                # the facts of this deviceInfo text are known: its next uplink with the
                # same text can take the typed path
                self._typed[device] = (raw_info, profile)
            if not out.facts:  # the device's facts known: the common uplink, if it is one
                fast = self._up_common(msg, device, t, profile)
                if fast is not None:
                    return fast
            self._up(out, msg, device, t, profile)
        elif event == "status":
            self._status(out, msg, device, t)
        elif event == "join":
            self.rows.counters.joined(device, t)
            out.add_fact("device_events", {"device_id": device, "event_at": t, "event": "joined",
                                           "detail": f"devAddr {msg.get('devAddr', '?')}"})
        elif event == "log":
            code = str(msg.get("code", "UNKNOWN"))
            if code == "UPLINK_F_CNT_RESET":
                self.rows.reset_event(out, device, t, msg.get("description") or code)
            else:
                out.unmapped.append(Unmapped(0, "log", msg.get("description"), None,
                                             f"log_{code.lower()}", device, t))
        else:
            out.unmapped.append(Unmapped(0, event, json.dumps(msg)[:1000], None,
                                         "event_not_stored", device, t))
        return out

    def _device(self, out: Decoded, device: str, t: float, info: dict, is_mains) -> None:
        self.rows.device(out, device, t, dev_eui=device, name=info.get("deviceName"),
                         application_id=info.get("applicationId"),
                         application_name=info.get("applicationName"),
                         profile=info.get("deviceProfileName"), tags=info.get("tags"),
                         is_mains=is_mains)

    # -- events -------------------------------------------------------------------------
    def _up(self, out: Decoded, msg: dict, device: str, t: float, profile: str | None) -> None:
        gateways = []
        rx = msg.get("rxInfo") or []
        if not isinstance(rx, list):
            raise PayloadError("bad_field", "rxInfo must be a list")
        for i, r in enumerate(rx):
            gw = r.get("gatewayId") if isinstance(r, dict) else None
            if not gw:
                out.unmapped.append(Unmapped(1000 + i, f"rxInfo[{i}]", json.dumps(r), None,
                                             "no_gateway_id", device, t))
                continue
            # the JSON mapping leaves out fields at their default: an SNR of exactly 0 dB
            # is common and so is absent; an RSSI of 0 dBm is not a LoRa reception
            rssi, snr = r.get("rssi"), r.get("snr", 0.0)
            if type(rssi) not in _PLAIN or type(snr) not in _PLAIN:  # text, or invalid
                rssi, snr = number(r, "rssi"), number(r, "snr", 0.0)
            gateways.append((gw if type(gw) is str else str(gw), rssi, snr))
        f_cnt, f_port, dr = msg.get("fCnt", 0), msg.get("fPort"), msg.get("dr")
        if type(f_cnt) is not int or type(f_port) not in _PLAIN or type(dr) not in _PLAIN:
            f_cnt, f_port, dr = number(msg, "fCnt", 0), number(msg, "fPort"), number(msg, "dr")
        self.rows.uplink(out, device, t, int(f_cnt), f_port, dr, gateways)
        if "object" in msg:
            self.rows.decoded_object(out, device, t, msg["object"], profile)
        elif msg.get("data"):
            out.unmapped.append(Unmapped(0, "data", msg["data"], None, "no_codec", device, t))

    def _up_common(self, msg: dict, device: str, t: float,
                   profile: str | None) -> Decoded | None:
        """The rows of the common uplink, built sealed in one pass: every ``rxInfo`` an
        object with a text gateway id and plain numbers, plain frame fields, and an
        ``object`` of canonical metric names with numbers or text that no vendor profile
        claims. None for anything else (:meth:`_up` then decodes it), before any state
        changes: the rows are exactly those :meth:`_up` makes (tests/live/test_chirpstack_
        hot_path.py compares the two)."""
        rx, obj = msg.get("rxInfo") or [], msg.get("object")
        f_cnt, f_port, dr = msg.get("fCnt", 0), msg.get("fPort"), msg.get("dr")
        if type(rx) is not list or type(obj) is not dict or type(f_cnt) is not int or \
                type(f_port) not in _PLAIN or type(dr) not in _PLAIN:
            return None
        if not all(type(v) in _FLAT for v in obj.values()):
            return None
        gateways = []
        for r in rx:
            if type(r) is not dict:
                return None
            gw, rssi, snr = r.get("gatewayId"), r.get("rssi"), r.get("snr", 0.0)
            if type(gw) is not str or not gw or type(rssi) not in _PLAIN or \
                    type(snr) not in _PLAIN:
                return None
            gateways.append((gw, rssi, snr))
        return self._up_rows(device, t, obj, gateways, f_cnt, f_port, dr, profile)

    def _up_typed(self, ident: str, payload: bytes, now: float):
        """The common uplink read straight into typed fields (msgspec), when the device's
        ``deviceInfo`` is, byte for byte, that of its last uplink whose facts were taken
        (so the general path would take no facts either): the rows of :meth:`_up_common`
        without building the event's dicts. Returns the sealed :class:`Decoded`; else
        the raw ``deviceInfo`` (None when the payload could not be read this way), and
        the general path decodes the payload, exactly as without this path.

        Payloads the general parser (orjson) would refuse leave this path: text that is
        not UTF-8, an escaped lone surrogate (msgspec refuses it too), an integer past 64
        bits (a float there), a number beyond a double's range.

        A key given twice anywhere (the general path's ``duplicate_field``) leaves it too:
        every key of the event is read into a field (a key of no field, or an object or
        list where a scalar is expected, leaves the path). In a text without a backslash
        every ``"`` opens or closes a key or a text, and the event written again (msgspec,
        in C) holds two quotes per key and text it kept, never more; a repeated key lost
        at least its own two, so the counts differ (so do they when a field was given at
        its default: that event takes the general path, which decides alike)."""
        try:
            if not payload.isascii():  # msgspec checks the escapes, not the UTF-8
                payload.decode("utf-8")  # of the fields it skips
            m = _UP.decode(payload)
        except _TYPED_ERRORS:
            return None
        known = self._typed.get(ident)
        if known is None or known[0] != m.deviceInfo:
            return m.deviceInfo
        obj = m.object
        if obj is None:
            return m.deviceInfo
        gateways = []
        for r in m.rxInfo or ():
            if not r.gatewayId:
                return m.deviceInfo
            gateways.append((r.gatewayId, r.rssi, r.snr))
        try:
            t = parse_time(m.time, now)
        except PayloadError:
            return m.deviceInfo
        if b"\\" in payload or payload.count(b'"') != _WRITE(m).count(b'"'):
            return m.deviceInfo  # a key may be repeated: the general path checks every one
        out = self._up_rows(ident, t, obj, gateways, m.fCnt, m.fPort, m.dr, known[1])
        return m.deviceInfo if out is None else out

    def _up_rows(self, device: str, t: float, obj: dict, gateways: list, f_cnt: int,
                 f_port, dr, profile: str | None) -> Decoded | None:
        """The sealed rows of a common uplink whose fields were checked; None (nothing
        changed) when ``object`` has a name that is no canonical metric or a vendor
        profile claims it."""
        rows = self.rows
        if not obj.keys() <= rows.known or rows.profiles.find(obj, profile) is not None:
            return None
        conns = [(device, gw, t, "heard", rssi, snr) for gw, rssi, snr in gateways]
        tuples = {"lorawan_uplinks": ((device, t, f_cnt, None if f_port is None else
                                       int(f_port), None if dr is None else int(dr),
                                       len(conns), downlink_gateway(gateways), rows.ns),)}
        if conns:
            tuples["connections"] = tuple(conns)
        facts: dict[str, list[dict]] = {}
        prev = rows.counters.is_reset(device, t, f_cnt)
        if prev is not None:
            facts["device_events"] = [{"device_id": device, "event_at": t,
                                       "event": "frame_counter_reset",
                                       "detail": f"frame counter {f_cnt} after {prev}"}]
        n = len(obj)
        out = Decoded("chirpstack:up", (device,) * n, (time_cell(t),) * n, tuple(obj),
                      tuple([value_cell(v) for v in obj.values()]), facts, (), tuples)
        out._n_rows = n + len(conns) + 1 + (prev is not None)
        return out

    def _status(self, out: Decoded, msg: dict, device: str, t: float) -> None:
        if not msg.get("externalPowerSource") and not msg.get("batteryLevelUnavailable"):
            out.add_reading(device, t, "battery_pct", number(msg, "batteryLevel", 0.0))
        out.add_reading(device, t, "link_margin_db", number(msg, "margin", 0))

    def _stats(self, out: Decoded, msg: dict, gateway: str, t: float, event: str) -> None:
        if event != "stats":
            raise PayloadError("unknown_topic", f"gateway event {event!r} is not stored")
        gw = str(msg.get("gatewayId") or gateway)
        rx_ok = number(msg, "rxPacketsReceivedOk", 0)
        per_status = msg.get("txPacketsPerStatus") or {}
        with self._lock:
            prev = self._stats_at.get(gw)
            if prev is None or t > prev:
                self._stats_at[gw] = t
        rate = rx_ok / (t - prev) if prev is not None and 0 < t - prev <= 3600 else None
        out.add_fact("gateway_stats", {
            "gateway_id": gw, "observed_at": t, "is_up": True, "messages_per_s": rate,
            "n_rx_received": number(msg, "rxPacketsReceived", 0), "n_rx_ok": rx_ok,
            "n_tx_requested": number(msg, "txPacketsReceived", 0),
            "n_tx_emitted": number(msg, "txPacketsEmitted", 0),
            "n_tx_acknowledged": number(per_status, "OK") if isinstance(per_status, dict)
            else None})

    # -- payloads -----------------------------------------------------------------------
    @staticmethod
    def _message(payload: bytes, cls_name: str | None) -> dict:
        head = payload.lstrip()[:1]
        if not head:
            raise PayloadError("empty_payload", "the payload is empty")
        if head == b"{":
            try:
                msg = loads(payload)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise PayloadError("invalid_json", f"payload is not valid JSON: {exc}") from exc
            if not isinstance(msg, dict):
                raise PayloadError("invalid_json", "expected a JSON object")
            return msg
        if cls_name is None:
            raise PayloadError("unknown_event", "no Protobuf message is known for this event")
        return protobuf_to_dict(payload, cls_name)


def protobuf_to_dict(payload: bytes, cls_name: str) -> dict:
    """A Protobuf-encoded ChirpStack message as its JSON mapping (camelCase)."""
    try:
        from chirpstack_api import gw, integration
        from google.protobuf import json_format
        from google.protobuf.message import DecodeError
    except ImportError as exc:  # the optional dependency is missing
        raise PayloadError("protobuf_unavailable", "a Protobuf payload needs the chirpstack-api "
                           f"package (pip install 'tsfleet[chirpstack]'): {exc}") from None
    cls = getattr(gw if cls_name == "GatewayStats" else integration, cls_name)
    try:
        msg = cls.FromString(payload)
    except (DecodeError, ValueError) as exc:
        raise PayloadError("invalid_protobuf", f"payload is not a ChirpStack {cls_name}: "
                           f"{exc}") from None
    return json_format.MessageToDict(msg)
