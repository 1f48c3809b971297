"""What LoRaWAN network servers (ChirpStack, The Things Stack) have in common.

A network server publishes, per uplink, the payload its codec decoded, the
frame counter and every receiving gateway with its RSSI and SNR. The network
server adapters (:mod:`chirpstack`, :mod:`tts`) turn their own event shapes into
calls of :class:`UplinkRows`, which makes the rows:

- the decoded object -> readings through the vendor profiles (the profile named
  like the device profile, else the first whose ``match`` fits; without one, fields
  named like a canonical metric map as they are, the others are kept as unmapped);
- each receiving gateway -> a ``heard`` connection (gateway id, RSSI, SNR);
- the uplink -> a ``lorawan_uplinks`` row (frame counter, number of gateways and the
  gateway the network server would answer through), from which the view
  ``lorawan_device_link`` derives packet loss and frame-counter resets;
- what the network server knows of the device -> a ``lorawan_devices`` row.

``lorawan_devices`` and ``lorawan_uplinks`` are not ingest kinds: :func:`store_side_rows`
writes them (bulk, idempotent) on the writer's connection.
"""

from __future__ import annotations

import calendar
import json
import re
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from tsfleet.live.decoded import (
    TUPLE_COLUMNS,
    Decoded,
    Unmapped,
    is_number,
    time_cell,
    value_cell,
)
from tsfleet.live.errors import PayloadError, Reject
from tsfleet.live.jsonkeys import check_unique_keys
from tsfleet.live.profiles import Profiles, _flatten
from tsfleet.store import transaction

if TYPE_CHECKING:
    from tsfleet.fleet import Fleet

#: Side tables written by :func:`store_side_rows` (not ingest kinds).
SIDE_KINDS = ("lorawan_devices", "lorawan_uplinks")
_FRACTION = re.compile(r"(\.\d{6})\d+")
#: ``YYYY-MM-DDTHH:MM:SS`` -> Unix seconds, for the fast path of :func:`parse_time`
_SECONDS: dict[str, int] = {}
#: Value types a decoded object's field may have to be a reading as it is (a number or
#: text: the pipeline judges text) on the fast path of :meth:`UplinkRows.decoded_object`.
_FLAT = frozenset({float, int, str})
_UTC_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\Z")

try:  # a JSON parser 3x faster than the standard library's (optional: pip install orjson)
    import orjson

    _parse = orjson.loads
except ImportError:  # pragma: no cover - the test extra installs orjson
    _parse = json.loads


def loads(payload: bytes) -> object:
    """JSON -> Python (orjson: NaN, Infinity and lone surrogates are invalid JSON);
    ``PayloadError`` (``duplicate_field``) for an object giving a key twice."""
    obj = _parse(payload)
    check_unique_keys(obj, payload)
    return obj


def parse_time(text: object, default: float) -> float:
    """An RFC 3339 time (as the Protobuf JSON mapping writes it, up to nanoseconds)
    -> Unix seconds; ``default`` when absent; :class:`PayloadError` when unreadable.
    Digits past the microsecond are dropped (not rounded), on both paths.

    >>> parse_time("2026-05-28T20:26:40.123456789Z", 0.0)
    1780000000.123456
    """
    if text is None or text == "":
        return default
    if not isinstance(text, str):
        raise PayloadError("bad_time", f"time must be an RFC 3339 text, got {text!r}")
    # fast path, the network servers' own form: UTC, "Z", a fraction of 1-9 digits
    if 21 <= len(text) <= 30 and text[19] == "." and text[-1] == "Z" and \
            text[20:-1].isdigit() and text[20:-1].isascii():
        head = text[:19]
        secs = _SECONDS.get(head)
        if secs is None and _UTC_SECOND.match(head):
            try:
                secs = calendar.timegm(datetime.fromisoformat(head).timetuple())
            except ValueError:
                secs = None
            if secs is not None:
                if len(_SECONDS) > 100_000:
                    _SECONDS.clear()
                _SECONDS[head] = secs
        if secs is not None:
            # as datetime.timestamp() computes it: integer microseconds / 10**6
            return (secs * 1_000_000 + int(text[20:-1][:6].ljust(6, "0"))) / 1e6
    try:
        ts = datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("Z", "+00:00")))
    except ValueError:
        raise PayloadError("bad_time", f"time is not RFC 3339: {text!r}") from None
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()


def number(obj: dict, key: str, default: float | None = None) -> float | None:
    """A numeric field; a field of another type makes the payload invalid (a
    Protobuf JSON mapping writes 64-bit integers as text: those are accepted)."""
    v = obj.get(key, default)
    if v is None or is_number(v):
        return v
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
    raise PayloadError("bad_field", f"{key} must be a number, got {v!r}")


def downlink_gateway(gateways: list[tuple[str, float | None, float | None]]) -> str | None:
    """The gateway a network server answers through: the best SNR, then RSSI.

    >>> downlink_gateway([("a", -100, 2.0), ("b", -90, 7.5), ("c", -80, 7.5)])
    'c'
    """
    best, best_key = None, None
    for gw, rssi, snr in gateways:  # a loop: max() with a key function cost 4x as much
        key = (-99.0 if snr is None else snr, -999.0 if rssi is None else rssi)
        if best_key is None or key > best_key:  # ties: the first, as max() keeps it
            best, best_key = gw, key
    return best


class FrameCounters:
    """The last frame counter seen per device in this process, to report resets as
    device events at once. An older event (a redelivery) is never a reset: only a
    later uplink with a lower counter is. The durable count is the view's."""

    def __init__(self):
        self._last: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def is_reset(self, device: str, t: float, f_cnt: int) -> int | None:
        """The previous counter when this uplink restarts the count, else None."""
        with self._lock:
            prev = self._last.get(device)
            if prev is None or t > prev[0]:
                self._last[device] = (t, f_cnt)
            if prev is not None and t > prev[0] and f_cnt < prev[1]:
                return prev[1]
        return None

    def joined(self, device: str, t: float) -> None:
        """A join at ``t`` restarts the counter: a later low counter is no reset (a join
        older than the device's last uplink, a redelivery, changes nothing)."""
        with self._lock:
            prev = self._last.get(device)
            if prev is None or t > prev[0]:
                self._last[device] = (t, -1)


class UplinkRows:
    """Builds the rows of network server events into one :class:`Decoded`."""

    def __init__(self, network_server: str, profiles: Profiles, known_metrics: frozenset[str],
                 counters: FrameCounters):
        self.ns = network_server
        self.profiles = profiles
        self.known = known_metrics
        self.counters = counters
        self._known: dict[str, tuple] = {}  # device -> the facts last emitted (this process)

    def device(self, out: Decoded, device: str, t: float, *, dev_eui=None, name=None,
               application_id=None, application_name=None, profile=None, tags=None,
               is_mains=None) -> None:
        """A ``lorawan_devices`` row when what is known of the device changed (every
        uplink carries it: emitting it once per change keeps the hot path light)."""
        facts = (dev_eui, name, application_id, application_name, profile,
                 tuple(sorted(tags.items())) if isinstance(tags, dict) else tags, is_mains)
        if self._known.get(device) == facts:
            return
        if len(self._known) < 1_000_000:
            self._known[device] = facts
        out.add_fact("lorawan_devices", {
            "device_id": device, "network_server": self.ns, "dev_eui": dev_eui,
            "device_name": name, "application_id": application_id,
            "application_name": application_name, "device_profile_name": profile,
            "tags": json.dumps(tags, sort_keys=True) if tags else None, "is_mains": is_mains,
            "updated_at": t})

    def decoded_object(self, out: Decoded, device: str, t: float, obj: object,
                       profile_name: str | None) -> None:
        """The codec's decoded object -> readings (see the module docstring)."""
        if not isinstance(obj, dict):
            out.unmapped.append(Unmapped(0, "object", json.dumps(obj), None,
                                         "object_not_an_object", device, t))
            return
        profile = self.profiles.find(obj, profile_name)
        if profile is not None:
            profile.decode(obj, out, device, t, device_from="topic")
            return
        known = self.known
        if all(type(raw) in _FLAT for raw in obj.values()) and obj.keys() <= known:
            # the common object: canonical metric names with numbers or text (what the
            # loop below does for it, without a call per reading)
            n = len(obj)
            out.device_id.extend([device] * n)
            out.observed_at.extend([time_cell(t)] * n)
            out.metric.extend(obj)
            out.value.extend([value_cell(raw) for raw in obj.values()])
            return
        for i, (key, raw) in enumerate(_flatten(obj)):
            if key in self.known and (is_number(raw) or isinstance(raw, str)):
                out.add_reading(device, t, key, raw)
            else:
                out.unmapped.append(Unmapped(i, key, raw if isinstance(raw, str) or raw is None
                                             else json.dumps(raw), None, "no_profile_mapping",
                                             device, t))

    def uplink(self, out: Decoded, device: str, t: float, f_cnt: int, f_port, dr,
               gateways: list[tuple[str, float | None, float | None]]) -> None:
        """Heard connections, the uplink row and a frame-counter reset event."""
        if gateways:  # rows as tuples (TUPLE_COLUMNS): the writer makes them columns
            out.tuples.setdefault("connections", []).extend(
                [(device, gw, t, "heard", rssi, snr) for gw, rssi, snr in gateways])
        out.add_tuple("lorawan_uplinks", (
            device, t, int(f_cnt), None if f_port is None else int(f_port),
            None if dr is None else int(dr), len(gateways), downlink_gateway(gateways),
            self.ns))
        prev = self.counters.is_reset(device, t, int(f_cnt))
        if prev is not None:
            self.reset_event(out, device, t, f"frame counter {int(f_cnt)} after {prev}")

    def reset_event(self, out: Decoded, device: str, t: float, detail: str) -> None:
        out.add_fact("device_events", {"device_id": device, "event_at": t,
                                       "event": "frame_counter_reset", "detail": detail})


_DEVICE_COLS = ("device_id", "network_server", "dev_eui", "device_name", "application_id",
                "application_name", "device_profile_name", "tags")
_UPLINK_TYPES = {"device_id": pa.string(), "uplink_at": pa.float64(), "f_cnt": pa.int64(),
                 "f_port": pa.int32(), "dr": pa.int32(), "n_gateways": pa.int32(),
                 "downlink_gateway_id": pa.string(), "network_server": pa.string()}


_CONNECTION_TYPES = {"device_id": pa.string(), "gateway_id": pa.string(),
                     "event_at": pa.float64(), "event": pa.string(), "rssi_dbm": pa.float64(),
                     "snr_db": pa.float64()}


def tuple_table(kind: str, rows: list[tuple]) -> pa.Table | list[dict]:
    """Rows given as tuples (:data:`TUPLE_COLUMNS`) as one Arrow table; rows that do not
    fit the types become dicts for the pipeline to judge one by one."""
    cols = TUPLE_COLUMNS[kind]
    types = _CONNECTION_TYPES if kind == "connections" else _UPLINK_TYPES
    try:
        # lists: pyarrow converts a tuple of distinct strings about 30x slower than a list
        return pa.table({k: pa.array(list(v), types[k]) for k, v in
                         zip(cols, zip(*rows, strict=True), strict=True)})
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return [dict(zip(cols, r, strict=True)) for r in rows]


def columnar(kind: str, rows: list[dict]) -> pa.Table | list[dict]:
    """Heard connections as one Arrow table (the pipeline's bulk path: a list of row
    dicts costs several times more per row); any other kind, or rows that do not fit
    the types, stay rows for the pipeline to judge one by one."""
    if kind != "connections" or len(rows) < 2:
        return rows
    try:
        return pa.table({k: pa.array([r.get(k) for r in rows], t)
                         for k, t in _CONNECTION_TYPES.items()})
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return rows


def store_side_rows(fleet: Fleet, kind: str, rows: list[dict] | pa.Table) -> int:
    """Write ``lorawan_devices`` (upsert: newest facts win, nulls keep the old value)
    or ``lorawan_uplinks`` (insert, a redelivery is absorbed; rows or an Arrow table)
    rows; returns how many were given.

    With the fleet's ``unknown_devices`` "quarantine", only the rows of registered devices
    are written: the readings of the others are quarantined (``unknown_device``) and their
    network metadata is not kept, so invented DevEUIs add no key to these tables."""
    con = fleet.con
    registered = (" and device_id in (select device_id from devices)"
                  if fleet.unknown_devices == "quarantine" else "")
    if kind == "lorawan_uplinks":
        table = rows if isinstance(rows, pa.Table) else pa.table(
            {k: pa.array([r[k] for r in rows], t) for k, t in _UPLINK_TYPES.items()})
        sql = ("insert into lorawan_uplinks select device_id, to_timestamp(uplink_at)::timestamp, "
               "f_cnt, f_port, dr, n_gateways, downlink_gateway_id, network_server from _side "
               f"where uplink_at between 0 and 4102444800{registered} on conflict do nothing")
    elif kind == "lorawan_devices":
        latest: dict[str, dict] = {}
        for r in sorted(rows, key=lambda r: r["updated_at"]):
            merged = latest.setdefault(r["device_id"], {})
            merged.update({k: v for k, v in r.items() if v is not None})
        rows = list(latest.values())
        cols = {k: pa.array([r.get(k) for r in rows], pa.string()) for k in _DEVICE_COLS}
        cols["is_mains"] = pa.array([r.get("is_mains") for r in rows], pa.bool_())
        cols["updated_at"] = pa.array([r.get("updated_at") for r in rows], pa.float64())
        table = pa.table(cols)
        keep = ", ".join(f"{c} = coalesce(excluded.{c}, lorawan_devices.{c})"
                         for c in (*_DEVICE_COLS[1:], "is_mains"))
        sql = ("insert into lorawan_devices select " + ", ".join(_DEVICE_COLS) + ", is_mains, "
               "case when updated_at between 0 and 4102444800 "
               f"then to_timestamp(updated_at)::timestamp end from _side where true{registered} "
               f"on conflict (device_id) do update set {keep}, updated_at = "
               "greatest(excluded.updated_at, lorawan_devices.updated_at)")
    else:
        raise ValueError(f"not a LoRaWAN side table: {kind!r}")
    con.register("_side", table)
    try:
        with transaction(con):
            con.execute(sql)
    finally:
        con.unregister("_side")
    return table.num_rows


class NetworkServerDecoder:
    """What the LoRaWAN network-server decoders (ChirpStack, The Things Stack) share:
    topic matching, the size check, and decoding in place without ever raising into
    the MQTT thread. A subclass sets ``what`` and ``max_payload`` and implements
    ``route(topic)`` (None: not its topic) and ``_decode(route, topic, payload, now)``."""

    what = "network server"
    max_payload: int

    def route(self, topic: str):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def matches(self, topic: str) -> bool:
        return self.route(topic) is not None

    def decode_into(self, env) -> None:
        """Decode in place: ``env.decoded``, or ``env.reject`` with a reason."""
        try:
            # sealed: held until its batch commits, it should cost the garbage collector
            # as little as possible (see Decoded.seal)
            env.decoded = self.decode(env.source, env.payload, env.received_at).seal()
        except PayloadError as exc:
            # plain data, never the exception: its traceback holds this frame, which holds
            # env, a cycle only a full collection frees (see Reject)
            env.reject = Reject(exc.reason, exc.detail)
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not stop the transport
            env.reject = Reject("decoder_error", f"decoding failed: {exc!r}"[:1000])

    def decode(self, topic: str, payload: bytes, now: float) -> Decoded:
        route = self.route(topic)
        if route is None:
            raise PayloadError("unknown_topic", f"not a {self.what} topic: {topic!r}")
        if len(payload) > self.max_payload:
            raise PayloadError("oversized_payload", f"payload of {len(payload)} bytes exceeds "
                               f"the limit of {self.max_payload} bytes")
        return self._decode(route, topic, payload, now)
