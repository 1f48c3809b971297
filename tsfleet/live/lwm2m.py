"""LwM2M resource paths (SenML names such as ``/3/0/9``) -> readings, firmware, updates.

LwM2M 1.1+ devices send their resources as SenML packs whose names are
``/object/instance/resource[/resource-instance]``, optionally after an
endpoint prefix (``bn = "th-17/3/0/"``). Mapped here:

========== ========================= ===================================================
path       resource                  becomes
========== ========================= ===================================================
/3/0/9     Battery Level (%)         reading ``battery_pct``
/3/0/7/i   Power Source Voltage (mV) reading ``battery_voltage_v`` (via ``_mv`` alias)
/3/0/8/i   Power Source Current (mA) reading ``battery_current_a`` (via ``_ma`` alias)
/3/0/20    Battery Status (0..6)     reading ``battery_status`` (code, see 700_live.sql)
/3/0/10    Memory Free (KiB)         reading ``memory_free_kb``
/3/0/3     Firmware Version          row of ``firmware_reports``
/5/0/3     Update State              ``update_events`` state downloading/downloaded/updating
/5/0/5     Update Result             ``update_events`` succeeded / failed (with reason)
/5/0/7     PkgVersion                ``target_version`` of those update events
/3303/i/5700, /3304/i/5700           IPSO temperature and humidity sensor values
========== ========================= ===================================================

Instance ``i`` of /3/0/7 and /3/0/8 belongs to the power source /3/0/6/i; a
voltage of a source that is known not to be a battery (DC, PoE, USB, AC, ...)
is kept as unmapped rather than stored as a battery voltage. Every other path
is kept as unmapped with the reason ``unknown_lwm2m_path`` or, for device
attributes (/3/0/0 manufacturer, ...), ``device_attribute``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tsfleet.live.decoded import Decoded, Unmapped, is_number
from tsfleet.live.senml import Record

_PATH4 = re.compile(r"^(?:(?P<prefix>.*)/)?(?P<obj>\d+)/(?P<inst>\d+)/(?P<res>\d+)/(?P<ri>\d+)$")
_PATH3 = re.compile(r"^(?:(?P<prefix>.*)/)?(?P<obj>\d+)/(?P<inst>\d+)/(?P<res>\d+)$")
#: Resources that have instances (a fourth path segment).
MULTI = {(3, 6), (3, 7), (3, 8), (3, 11)}

READINGS = {(3, 9): "battery_pct", (3, 7): "battery_voltage_mv", (3, 8): "battery_current_ma",
            (3, 20): "battery_status", (3, 10): "memory_free_kb",
            (3303, 5700): "temperature_c", (3304, 5700): "humidity_pct"}
DEVICE_ATTRIBUTES = {0: "manufacturer", 1: "model_number", 2: "serial_number", 13: "current_time",
                     14: "utc_offset", 15: "timezone", 16: "binding_modes", 17: "device_type",
                     18: "hardware_version", 19: "software_version", 21: "memory_total"}
#: /3/0/6 power sources that are batteries: 1 internal, 2 external battery.
BATTERY_SOURCES = {1, 2}
UPDATE_STATES = {1: "downloading", 2: "downloaded", 3: "updating"}
UPDATE_RESULTS = {2: "not enough flash", 3: "out of RAM", 4: "connection lost",
                  5: "integrity check failure", 6: "unsupported package type", 7: "invalid URI",
                  8: "update failed", 9: "unsupported protocol", 10: "cancelled"}


@dataclass(frozen=True)
class Path:
    prefix: str
    obj: int
    inst: int
    res: int
    ri: int | None


def split_path(name: str) -> Path | None:
    """The LwM2M path in a resolved SenML name, or None.

    >>> split_path("th-17/3/0/7/1")
    Path(prefix='th-17', obj=3, inst=0, res=7, ri=1)
    >>> split_path("/5/0/3")
    Path(prefix='', obj=5, inst=0, res=3, ri=None)
    """
    m = _PATH4.match(name)
    if m and (int(m["obj"]), int(m["res"])) in MULTI:
        return Path(m["prefix"] or "", int(m["obj"]), int(m["inst"]), int(m["res"]), int(m["ri"]))
    m = _PATH3.match(name)
    if m:
        return Path(m["prefix"] or "", int(m["obj"]), int(m["inst"]), int(m["res"]), None)
    return None


def is_lwm2m(records: list[Record]) -> bool:
    """True when any record name is an LwM2M resource path."""
    return any(split_path(r.name) for r in records)


def decode(records: list[Record], out: Decoded, device_of) -> None:
    """Append the rows of LwM2M records to ``out``.

    ``device_of(prefix)`` returns the device id for an endpoint prefix (the
    topic's device when the prefix is empty).
    """
    paths = [(r, split_path(r.name)) for r in records]
    sources = {p.ri: r.value for r, p in paths
               if p and (p.obj, p.res) == (3, 6) and p.ri is not None}
    pkg_version = next((str(r.value) for r, p in paths if p and (p.obj, p.res) == (5, 7)), None)
    for r, p in paths:
        device = device_of(p.prefix.rstrip("/:") if p else "")
        if p is None:
            out.unmapped.append(Unmapped(r.index, r.name, _text(r.value), r.unit,
                                         "unknown_lwm2m_path", device, _num(r.time)))
            continue
        key = (p.obj, p.res)
        if key in READINGS and (p.obj == 3 and p.inst == 0 or p.obj in (3303, 3304)):
            source = sources.get(p.ri) if p.ri is not None else None
            if key in ((3, 7), (3, 8)) and is_number(source) and source not in BATTERY_SOURCES:
                out.unmapped.append(Unmapped(r.index, r.name, _text(r.value), r.unit,
                                             f"power_source_{int(source)}_not_a_battery",
                                             device, _num(r.time)))
                continue
            out.add_reading(device, r.time, READINGS[key], r.value)
        elif key == (3, 3):
            out.add_fact("firmware_reports", {"device_id": device, "reported_at": r.time,
                                              "version": r.value})
        elif key == (5, 3):
            if r.value != 0:  # 0 idle: no update in progress, nothing to record
                state = UPDATE_STATES.get(r.value, f"unknown state {r.value}")
                out.add_fact("update_events", _event(device, r.time, state, pkg_version, None))
        elif key == (5, 5):
            if r.value == 1:
                out.add_fact("update_events",
                             _event(device, r.time, "succeeded", pkg_version, None))
            elif r.value == 11:
                out.add_fact("update_events",
                             _event(device, r.time, "scheduled", pkg_version, "deferred"))
            elif r.value in UPDATE_RESULTS:
                out.add_fact("update_events", _event(device, r.time, "failed", pkg_version,
                                                     UPDATE_RESULTS[r.value]))
            elif r.value != 0:  # 0 initial: nothing happened yet
                out.add_fact("update_events", _event(device, r.time, f"unknown result {r.value}",
                                                     pkg_version, None))
        elif key in ((3, 6), (5, 7), (5, 1), (5, 6), (5, 12)):
            continue  # read above as context of other resources
        elif p.obj == 3 and p.res in DEVICE_ATTRIBUTES:
            out.unmapped.append(Unmapped(r.index, r.name, _text(r.value), r.unit,
                                         "device_attribute", device, _num(r.time)))
        else:
            out.unmapped.append(Unmapped(r.index, r.name, _text(r.value), r.unit,
                                         "unknown_lwm2m_path", device, _num(r.time)))


def _event(device, t, state, version, reason) -> dict:
    campaign = f"lwm2m:{version}" if version else "lwm2m"
    return {"campaign_id": campaign, "device_id": device, "event_at": t, "state": state,
            "target_version": version, "reason": reason}


def _text(v: object) -> str | None:
    if v is None:
        return None
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def _num(t: object) -> float | None:
    return float(t) if is_number(t) else None
