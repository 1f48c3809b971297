"""The Things Stack v3 over MQTT: uplink and join messages (JSON).

Topics: ``v3/{application_id}@{tenant_id}/devices/{device_id}/{up|join}``.

- ``up``: ``uplink_message.decoded_payload`` -> readings through the vendor profiles
  (the profile named like ``version_ids.model_id``, else the first whose ``match``
  fits); each ``uplink_message.rx_metadata[]`` -> a ``heard`` connection
  (``gateway_ids.gateway_id``, ``rssi``, ``snr``); the uplink -> ``lorawan_uplinks``
  (``f_cnt``); ``last_battery_percentage`` (top level or in ``uplink_message``, a
  number or ``{value, received_at}``) -> ``battery_pct``. Without a decoded payload
  ``frm_payload`` is kept as unmapped (``no_codec``).
- ``join`` -> device event ``joined``.

The device id is ``end_device_ids.device_id`` (else the topic's); the DevEUI is
recorded in ``lorawan_devices``. The mapping is :mod:`lorawan`'s, shared with ChirpStack.

>>> TheThingsStack.route("v3/plant@acme/devices/th-17/up")
('plant', 'acme', 'th-17', 'up')
"""

from __future__ import annotations

import json

from tsfleet.live.decoded import Decoded, Unmapped
from tsfleet.live.errors import PayloadError
from tsfleet.live.lorawan import (
    FrameCounters,
    NetworkServerDecoder,
    UplinkRows,
    loads,
    number,
    parse_time,
)
from tsfleet.live.profiles import Profiles


class TheThingsStack(NetworkServerDecoder):
    """Decodes The Things Stack v3 MQTT messages into rows (thread-safe)."""

    what = "The Things Stack"
    name = "tts"
    topics = ["v3/+/devices/+/up", "v3/+/devices/+/join"]

    def __init__(self, known_metrics: frozenset[str], profiles: Profiles | None = None, *,
                 max_payload: int = 256 * 1024):
        self.rows = UplinkRows("tts", profiles or Profiles(), known_metrics, FrameCounters())
        self.max_payload = max_payload

    @staticmethod
    def route(topic: str) -> tuple[str, str | None, str, str] | None:
        """(application id, tenant id, device id, event), or None."""
        parts = topic.split("/")
        if len(parts) != 5 or parts[0] != "v3" or parts[2] != "devices":
            return None
        app, _, tenant = parts[1].partition("@")
        return app, tenant or None, parts[3], parts[4]

    def _decode(self, route, topic: str, payload: bytes, now: float) -> Decoded:
        if not payload.strip():
            raise PayloadError("empty_payload", "the payload is empty")
        try:
            msg = loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PayloadError("invalid_json", f"payload is not valid JSON: {exc}") from exc
        if not isinstance(msg, dict):
            raise PayloadError("invalid_json", "expected a JSON object")
        app, _tenant, topic_device, event = route
        ids = _obj(msg, "end_device_ids")
        device = str(ids.get("device_id") or topic_device)
        out = Decoded(f"tts:{event}")
        up = _obj(msg, "uplink_message")
        t = parse_time(up.get("received_at") or msg.get("received_at"), now)
        version = _obj(up, "version_ids")
        self.rows.device(out, device, t, dev_eui=ids.get("dev_eui"),
                         application_id=_obj(ids, "application_ids").get("application_id") or app,
                         profile=version.get("model_id"))
        if event == "join":
            self.rows.counters.joined(device, t)
            out.add_fact("device_events", {"device_id": device, "event_at": t, "event": "joined",
                                           "detail": f"dev_addr {ids.get('dev_addr', '?')}"})
            return out
        if event != "up":
            raise PayloadError("unknown_topic", f"The Things Stack event {event!r} is not stored")
        rx = up.get("rx_metadata") or []
        if not isinstance(rx, list):
            raise PayloadError("bad_field", "rx_metadata must be a list")
        gateways = []
        for i, r in enumerate(rx):
            gw = _obj(r, "gateway_ids").get("gateway_id") if isinstance(r, dict) else None
            if not gw:
                out.unmapped.append(Unmapped(1000 + i, f"rx_metadata[{i}]", json.dumps(r), None,
                                             "no_gateway_id", device, t))
                continue
            gateways.append((str(gw), number(r, "rssi"), number(r, "snr")))
        self.rows.uplink(out, device, t, int(number(up, "f_cnt", 0)), number(up, "f_port"),
                         None, gateways)
        if "decoded_payload" in up:
            self.rows.decoded_object(out, device, t, up["decoded_payload"],
                                     version.get("model_id"))
        elif up.get("frm_payload"):
            out.unmapped.append(Unmapped(0, "frm_payload", up["frm_payload"], None, "no_codec",
                                         device, t))
        battery = msg.get("last_battery_percentage", up.get("last_battery_percentage"))
        if isinstance(battery, dict):
            bt = parse_time(battery.get("received_at"), t)
            battery = number(battery, "value")
        else:
            bt = t
            battery = number({"v": battery}, "v")
        if battery is not None:
            out.add_reading(device, bt, "battery_pct", battery)
        return out


def _obj(parent: dict, key: str) -> dict:
    v = parent.get(key) if isinstance(parent, dict) else None
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise PayloadError("bad_field", f"{key} must be an object, got {type(v).__name__}")
    return v
