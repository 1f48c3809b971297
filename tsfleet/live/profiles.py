"""Declarative vendor device profiles: vendor JSON field names -> canonical metrics.

A profile is a TOML file (shipped ones live in ``tsfleet/live/profiles/``;
``--profiles DIR`` adds more). Adding a manufacturer is a file, not code::

    name = "acme-th200"
    manufacturer = "Acme"
    device_id = "dev"                      # payload field holding the device id
    time = "ts"                            # payload field holding the time
    time_format = "unix_s"                 # unix_s | unix_ms | iso8601
    match = { field = "vendor", equals = "acme" }   # recognise a payload
    ignore = ["vendor", "seq"]             # fields known to carry nothing to store

    [fields.tempF]                         # vendor field name (dots reach nested objects)
    metric = "temperature_c"
    unit = "F"                             # converted to the metric's unit

    [fields.hum_raw]
    metric = "humidity_pct"
    adc = { bits = 16, lo = 0, hi = 100 }  # raw counts over the full scale

A field may give ``unit`` (converted by the table below), ``scale`` and
``offset`` (``value * scale + offset``, already in the metric's unit), or
``adc`` (``lo + counts / (2**bits - 1) * (hi - lo)``); one of them at most.
A wrong profile is refused when loaded, with the file, the field and the problem.
Every payload field the profile neither maps nor ignores is kept as unmapped.
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tsfleet.live.decoded import Decoded, Unmapped, choose_device, is_number
from tsfleet.live.errors import ProfileError

SHIPPED = Path(__file__).resolve().parent / "profiles"

#: Quantity of each canonical metric a profile may target.
METRIC_QUANTITY = {
    "battery_pct": "percent", "battery_voltage_v": "voltage", "battery_current_a": "current",
    "temperature_c": "temperature", "humidity_pct": "percent", "vibration_g": "acceleration",
    "pressure_kpa": "pressure", "co2_ppm": "ratio_ppm", "rssi_dbm": "power_dbm",
    "snr_db": "decibel", "packet_loss_pct": "percent", "memory_free_kb": "memory",
    "reporting_interval_s": "duration", "battery_status": "code",
}
#: unit -> (quantity, scale, offset) to the canonical unit of that quantity.
UNITS: dict[str, tuple[str, float, float]] = {
    "V": ("voltage", 1.0, 0.0), "mV": ("voltage", 1e-3, 0.0),
    "A": ("current", 1.0, 0.0), "mA": ("current", 1e-3, 0.0),
    # Celsius and Fahrenheit as SenML (Cel), UCUM ([degF]) and devices write them
    **dict.fromkeys(("C", "Cel", "degC", "°C", "℃"), ("temperature", 1.0, 0.0)),
    **dict.fromkeys(("F", "[degF]", "degF", "°F", "℉"), ("temperature", 5.0 / 9.0, -160.0 / 9.0)),
    "K": ("temperature", 1.0, -273.15),
    "%": ("percent", 1.0, 0.0), "%RH": ("percent", 1.0, 0.0), "%EL": ("percent", 1.0, 0.0),
    "permille": ("percent", 0.1, 0.0),
    "g": ("acceleration", 1.0, 0.0), "mg": ("acceleration", 1e-3, 0.0),
    "m/s2": ("acceleration", 1 / 9.80665, 0.0),
    "kPa": ("pressure", 1.0, 0.0), "Pa": ("pressure", 1e-3, 0.0), "hPa": ("pressure", 0.1, 0.0),
    "bar": ("pressure", 100.0, 0.0), "mbar": ("pressure", 0.1, 0.0),
    "ppm": ("ratio_ppm", 1.0, 0.0), "dBm": ("power_dbm", 1.0, 0.0), "dB": ("decibel", 1.0, 0.0),
    "KiB": ("memory", 1.0, 0.0), "B": ("memory", 1 / 1024, 0.0),
    "s": ("duration", 1.0, 0.0), "min": ("duration", 60.0, 0.0), "h": ("duration", 3600.0, 0.0),
    "code": ("code", 1.0, 0.0),
}


class Adc(BaseModel):
    """Raw ADC counts over the full scale ``lo..hi`` of the metric's unit."""

    model_config = ConfigDict(extra="forbid")
    bits: int = Field(ge=1, le=32, description="ADC resolution in bits.", examples=[12])
    lo: float = Field(0.0, description="Metric value at 0 counts.", examples=[0.0])
    hi: float = Field(description="Metric value at full scale (2**bits - 1).", examples=[16.0])


class FieldMap(BaseModel):
    """How one vendor field becomes a canonical metric."""

    model_config = ConfigDict(extra="forbid")
    metric: str = Field(description="Canonical metric (metric_catalog).",
                        examples=["temperature_c"])
    unit: str | None = Field(None, description="Vendor unit, converted to the metric's unit.",
                             examples=["F", "mV"])
    scale: float | None = Field(None, description="value * scale + offset.", examples=[0.01])
    offset: float = Field(0.0, description="Added after scale.", examples=[0.0])
    adc: Adc | None = Field(None, description="Raw ADC counts with their full scale.")

    @model_validator(mode="after")
    def _consistent(self) -> FieldMap:
        if self.metric not in METRIC_QUANTITY:
            raise ValueError(f"metric {self.metric!r} is not a canonical metric; expected one of "
                             f"{', '.join(sorted(METRIC_QUANTITY))}")
        given = [k for k in ("unit", "scale", "adc") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of unit, scale or adc, not {' and '.join(given)}")
        if self.unit is not None:
            if self.unit not in UNITS:
                raise ValueError(f"unknown unit {self.unit!r}; expected one of "
                                 f"{', '.join(sorted(UNITS))}")
            quantity = UNITS[self.unit][0]
            if quantity != METRIC_QUANTITY[self.metric]:
                raise ValueError(f"unit {self.unit!r} measures {quantity} and cannot convert to "
                                 f"{self.metric} ({METRIC_QUANTITY[self.metric]})")
        return self

    def convert(self, raw: float) -> float:
        if self.unit is not None:
            _, scale, offset = UNITS[self.unit]
            return raw * scale + offset
        if self.adc is not None:
            return self.adc.lo + raw / (2 ** self.adc.bits - 1) * (self.adc.hi - self.adc.lo)
        if self.scale is not None:
            return raw * self.scale + self.offset
        return raw + self.offset


class Match(BaseModel):
    """A payload belongs to the profile when ``field`` equals ``equals``."""

    model_config = ConfigDict(extra="forbid")
    field: str
    equals: str | int | float | bool


class Profile(BaseModel):
    """A vendor payload profile (one TOML file)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="Profile name; a topic "
                      "segment naming it selects it.", examples=["acme-th200"])
    manufacturer: str = Field(min_length=1, examples=["Acme"])
    description: str | None = None
    match: Match | None = Field(None, description="Recognises the vendor's payloads.")
    device_id: str | None = Field(None, description="Payload field with the device id; without "
                                  "it the device comes from the topic.", examples=["dev"])
    time: str | None = Field(None, description="Payload field with the observation time; without "
                             "it the time of receipt is used.", examples=["ts"])
    time_format: Literal["unix_s", "unix_ms", "iso8601"] = "unix_s"
    records: str | None = Field(None, description="Payload field holding a list of samples, each "
                                "with its own time and fields.", examples=["samples"])
    ignore: list[str] = Field(default_factory=list, description="Fields known to carry nothing "
                              "to store.")
    fields: dict[str, FieldMap] = Field(min_length=1)

    def matches(self, payload: dict) -> bool:
        return self.match is not None and _get(payload, self.match.field) == self.match.equals

    def decode(self, payload: dict, out: Decoded, topic_device: str | None, now: float,
               device_from: str = "auto") -> None:
        """Append the payload's readings and unmapped fields to ``out``."""
        device = choose_device(_get(payload, self.device_id) if self.device_id else None,
                               topic_device, device_from)
        samples = _get(payload, self.records) if self.records else None
        if self.records and not isinstance(samples, list):
            out.unmapped.append(Unmapped(0, self.records, _dump(samples), None,
                                         "profile_records_not_a_list", device, None))
            return
        if self.records:  # fields beside the samples: only the known ones may be there
            top = {k: v for k, v in payload.items() if k != self.records}
            self._unmapped(top, out, device, None, offset=-1000)
        for j, sample in enumerate(samples if self.records else [payload]):
            if not isinstance(sample, dict):
                out.unmapped.append(Unmapped(j, f"{self.records}[{j}]", _dump(sample), None,
                                             "profile_sample_not_an_object", device, None))
                continue
            t = self._time(sample if self.records else payload, now)
            for key, fmap in self.fields.items():
                raw = _get(sample, key)
                if raw is None:
                    continue
                value = fmap.convert(raw) if is_number(raw) else raw
                out.add_reading(device, t, fmap.metric, value)
            self._unmapped(sample, out, device, t, offset=j * 1000)

    def _unmapped(self, obj: dict, out: Decoded, device, t, offset: int) -> None:
        consumed = {c for c in (self.device_id, self.time, self.records, *self.ignore) if c}
        if self.match:
            consumed.add(self.match.field)
        for i, (key, raw) in enumerate(_flatten(obj)):
            if key in self.fields or key in consumed or \
                    any(key.startswith(c + ".") for c in consumed):
                continue
            out.unmapped.append(Unmapped(offset + i, key, _dump(raw), None, "no_profile_mapping",
                                         device, t if is_number(t) else None))

    def _time(self, payload: dict, now: float) -> object:
        if not self.time:
            return now
        raw = _get(payload, self.time)
        if raw is None:
            return now
        if self.time_format == "unix_ms" and is_number(raw):
            return raw / 1000.0
        if self.time_format == "iso8601" and isinstance(raw, str):
            try:
                ts = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                return raw  # the pipeline quarantines it as a bad timestamp
            return ts.timestamp() if ts.tzinfo else ts.replace(tzinfo=_utc()).timestamp()
        return raw


def _utc():
    from datetime import UTC
    return UTC


@functools.lru_cache(maxsize=4096)
def _parts(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _get(obj: object, path: str | None) -> object:
    for part in _parts(path or ""):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _flatten(obj: dict, prefix: str = "") -> Iterable[tuple[str, object]]:
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def _dump(v: object) -> str | None:
    if v is None:
        return None
    return v if isinstance(v, str) else json.dumps(v, default=str)


def load_profile(path: str | Path) -> Profile:
    """Read and validate one profile file; :class:`ProfileError` names what is wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8")) if path.suffix == ".toml" \
            else json.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, OSError) as exc:
        raise ProfileError(f"profile {path}: cannot read it: {exc}") from exc
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: "
            f"{err['msg'].removeprefix('Value error, ')}" for err in exc.errors())
        raise ProfileError(f"profile {path} is invalid: {problems}") from None


class Profiles:
    """The profiles in use: the shipped ones plus those of extra folders."""

    def __init__(self, extra_dirs: Iterable[str | Path] = (), *, shipped: bool = True):
        self.by_name: dict[str, Profile] = {}
        #: the first field name of every profile's ``match``: a payload holding none of
        #: them matches no profile (``equals`` is never null), which :meth:`find` says at
        #: once (the network servers' common uplink asks it for every event)
        self._match_heads: set[str] = set()
        folders = ([SHIPPED] if shipped else []) + [Path(d) for d in extra_dirs]
        for folder in folders:
            if not folder.is_dir():
                raise ProfileError(f"profile folder {folder} does not exist")
            for path in sorted(folder.iterdir()):
                if path.suffix in (".toml", ".json"):
                    self.add(load_profile(path), path)

    def add(self, profile: Profile, origin: object = "") -> None:
        if profile.name in self.by_name:
            raise ProfileError(f"profile {origin}: the name {profile.name!r} is already taken")
        self.by_name[profile.name] = profile
        if profile.match is not None:
            self._match_heads.add(_parts(profile.match.field)[0])

    def find(self, payload: dict, hint: str | None = None) -> Profile | None:
        """The profile named by ``hint`` (a topic segment), else the first that matches."""
        if hint and hint in self.by_name:
            return self.by_name[hint]
        if type(payload) is dict and payload.keys().isdisjoint(self._match_heads):
            return None
        for profile in self.by_name.values():
            if profile.matches(payload):
                return profile
        return None
