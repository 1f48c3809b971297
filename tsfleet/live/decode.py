"""One payload (MQTT message or CoAP request) -> :class:`Decoded` rows.

The format is named by the transport (a topic segment, a CoAP content format)
or sniffed from the first byte: ``[`` is a SenML JSON pack, ``{`` a vendor
JSON object, a CBOR array a SenML CBOR pack, a CBOR map a vendor object in
CBOR. A SenML record whose name is an LwM2M path goes to :mod:`lwm2m`, the
others are mapped by unit (:mod:`units`); a vendor object goes through its
profile (:mod:`profiles`). A payload that cannot be decoded at all raises
:class:`PayloadError` and is quarantined whole; a field no mapping knows is
kept as unmapped.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from tsfleet.live import lwm2m
from tsfleet.live.decoded import _EPOCH_HI, _EPOCH_LO, Decoded, Unmapped, choose_device
from tsfleet.live.errors import PayloadError, Reject
from tsfleet.live.profiles import Profiles
from tsfleet.live.senml import (
    RELATIVE_LIMIT,
    Record,
    load_cbor,
    load_json,
    parse_cbor,
    parse_json,
    resolve,
)
from tsfleet.live.units import metric_for

DEFAULT_MAX_PAYLOAD = 256 * 1024
SENML_JSON = ("senml", "senml+json", "senml-json", "json", "lwm2m", "lwm2m-json")
SENML_CBOR = ("senml+cbor", "senml-cbor", "cbor", "lwm2m-cbor")
DEVICE_SOURCES = ("auto", "topic", "payload")
_SEP = re.compile(r"[/:]")
#: Labels of the common record shape that :meth:`Decoder._senml_fast` resolves.
_FAST_LABELS = frozenset(("bn", "bt", "bu", "n", "u", "v", "t"))
_BODY_LABELS = frozenset(("n", "u", "v", "t"))
#: A JSON escape of a UTF-16 surrogate: the only way JSON text decodes to a string
#: that is not Unicode (a lone surrogate), which no store column can hold.
_JSON_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
#: Bounds of the decoder's memo of record names (entries, and characters of name and
#: unit per entry): hostile senders cannot grow it past a few tens of MB.
MAX_NAMES, MAX_NAME_CHARS = 100_000, 256
#: The longest quarantine detail kept (characters).
MAX_DETAIL = 1000


@dataclass(frozen=True)
class TopicLayout:
    """Where a topic carries the device id and the format, e.g. ``+/{device}/{format}``.

    Segments are compared one by one: ``{device}`` and ``{format}`` capture,
    anything else (a literal or ``+``) is skipped, ``#`` ends the layout.

    >>> TopicLayout("+/{device}/{format}").parse("fleet/th-17/senml+cbor")
    ('th-17', 'senml+cbor')
    >>> TopicLayout("plant/+/{device}").parse("plant/north/vib-3")
    ('vib-3', None)
    """

    pattern: str = "+/{device}/{format}"

    def parse(self, topic: str) -> tuple[str | None, str | None]:
        device = fmt = None
        for want, got in zip(self.pattern.split("/"), topic.split("/"), strict=False):
            if want == "#":
                break
            if want == "{device}":
                device = got or None
            elif want == "{format}":
                fmt = got or None
        return device, fmt


class Decoder:
    """Decodes payloads of every supported format into rows for the pipeline."""

    def __init__(self, known_metrics: frozenset[str], profiles: Profiles | None = None, *,
                 device_from: str = "auto", max_payload: int = DEFAULT_MAX_PAYLOAD):
        if device_from not in DEVICE_SOURCES:
            raise PayloadError("bad_option", f"device_from must be one of "
                               f"{'|'.join(DEVICE_SOURCES)}, got {device_from!r}")
        self.known = known_metrics
        self.profiles = profiles if profiles is not None else Profiles()
        self.device_from = device_from
        self.max_payload = max_payload
        self._names: dict[tuple[str, str, str | None], tuple] = {}  # per record name and unit

    def decode_into(self, env, *, fmt: str | None, topic_device: str | None) -> None:
        """Decode an envelope's payload in place: ``env.decoded`` on success, else
        ``env.reject`` (a :class:`Reject`, plain data: no exception is kept). An
        oversized payload is cut to what quarantine keeps before anything else. A
        decoder bug is a reject too: it must never stop a transport."""
        if len(env.payload) > self.max_payload:
            env.reject = Reject("oversized_payload", f"payload of {len(env.payload)} bytes "
                                f"exceeds the limit of {self.max_payload} bytes")
            env.trim()
            return
        try:
            env.decoded = self.decode(env.payload, fmt=fmt, topic_device=topic_device,
                                      now=env.received_at)
            return
        except PayloadError as exc:
            reject = Reject(exc.reason, exc.detail)
        except OverflowError as exc:  # a number too large for a float, where one is needed
            reject = Reject("number_out_of_range", f"a number is too large to convert: {exc}")
        except Exception as exc:  # noqa: BLE001 - recorded with the payload, see above
            reject = Reject("decoder_error", f"decoding failed: {exc!r}")
        env.reject = Reject(reject.reason, short(reject.detail))

    def decode(self, payload: bytes, *, fmt: str | None = None, topic_device: str | None = None,
               now: float | None = None) -> Decoded:
        """The rows of one payload; raises :class:`PayloadError` when it cannot be read."""
        now = time.time() if now is None else now
        if len(payload) > self.max_payload:
            raise PayloadError("oversized_payload", f"payload of {len(payload)} bytes exceeds the "
                               f"limit of {self.max_payload} bytes")
        kind = self._kind(payload, fmt)
        out = self._decode(payload, kind, fmt, topic_device, now)
        if kind in ("senml+json", "vendor+json") and _JSON_SURROGATE.search(payload):
            check_text(out)
        return out

    def _decode(self, payload: bytes, kind: str, fmt: str | None, topic_device: str | None,
                now: float) -> Decoded:
        if kind == "senml+json" or kind == "senml+cbor":
            pack = parse_json(payload) if kind == "senml+json" else parse_cbor(payload)
            fast = self._senml_fast(pack, kind, topic_device, now)
            if fast is not None:
                return fast
            return self._senml(resolve(pack, now), kind, topic_device)
        obj = load_json(payload) if kind == "vendor+json" else load_cbor(payload)
        if isinstance(obj, list):  # a JSON or CBOR array after all: SenML
            return self._senml(resolve(parse_json(payload) if kind == "vendor+json"
                                       else parse_cbor(payload), now), kind, topic_device)
        if not isinstance(obj, dict):
            raise PayloadError("unknown_format", f"expected a SenML pack or a vendor object, got "
                               f"a {type(obj).__name__}")
        profile = self.profiles.find(obj, fmt)
        if profile is None:
            raise PayloadError("unknown_profile", "no device profile matches this object (topic "
                               f"format {fmt!r}; profiles: {', '.join(self.profiles.by_name)})")
        out = Decoded(f"vendor:{profile.name}")
        profile.decode(obj, out, topic_device, now, self.device_from)
        return out

    @staticmethod
    def _kind(payload: bytes, fmt: str | None) -> str:
        if fmt in SENML_CBOR:
            return "senml+cbor"
        head = payload.lstrip()[:1]
        if head == b"[":
            return "senml+json"
        if head == b"{":
            return "vendor+json"
        if not head:
            raise PayloadError("empty_payload", "the payload is empty")
        major = head[0] >> 5
        if major == 4:
            return "senml+cbor"
        if major == 5:
            return "vendor+cbor"
        if fmt in SENML_JSON:
            return "senml+json"
        raise PayloadError("unknown_format", f"cannot tell the format of a payload starting with "
                           f"byte 0x{head[0]:02x} (expected SenML JSON or CBOR, or a vendor "
                           f"object)")

    def _senml_fast(self, pack: list[dict], fmt: str, topic_device: str | None,
                    now: float) -> Decoded | None:
        """The hot path: a pack whose records all carry only ``bn bt bu n u v t``,
        with text names, number times and values, and names that map to a metric.
        Gives exactly what :func:`resolve` + :meth:`_senml` give for such a pack;
        None (use those) for anything else, so errors and unmapped fields are
        reported by the one full path."""
        fast, body = _FAST_LABELS, _BODY_LABELS
        bn, bt, bu = "", 0.0, None
        devices, times, metrics, values = [], [], [], []
        memo: dict = {}  # (n, unit) -> (device, metric) while bn stays the same
        for rec in pack:
            if not rec.keys() <= body:
                if not rec.keys() <= fast:
                    return None
                if "bn" in rec:
                    bn = rec["bn"]
                    if type(bn) is not str:
                        return None
                    memo = {}
                if "bt" in rec:
                    bt = rec["bt"]
                    if type(bt) is not float and type(bt) is not int:
                        return None
                if "bu" in rec:
                    bu = rec["bu"]
                    memo = {}
            v = rec.get("v")
            t = rec.get("t", 0)
            tv, tt = type(v), type(t)
            if (tv is not float and tv is not int) or (tt is not float and tt is not int):
                return None
            try:
                t = bt + t
                if t < RELATIVE_LIMIT:
                    t = now + t
                t = float(t)
                v = float(v)
                key = (rec.get("n", ""), rec.get("u", bu))
                hit = memo.get(key)
            except (OverflowError, TypeError):  # a huge CBOR integer, an unhashable label
                return None
            if not _EPOCH_LO < t < _EPOCH_HI:
                return None
            if hit is None:
                hit = self._fast_name(bn, key[0], key[1], topic_device)
                if hit is None:
                    return None
                memo[key] = hit
            devices.append(hit[0])
            times.append(t)
            metrics.append(hit[1])
            values.append(v)
        return Decoded(fmt, devices, times, metrics, values)

    def _fast_name(self, bn: str, n: object, unit: object,
                   topic_device: str | None) -> tuple[str | None, str] | None:
        """(device, metric) of a plain record name that maps; None otherwise."""
        if type(n) is not str:
            return None
        unit = unit if type(unit) is str else None
        name = bn + n
        known = self._names.get((bn, name, unit))
        if known is None:
            payload_device, field = _split_name_parts(bn, name)
            known = (lwm2m.split_path(name), payload_device) + \
                metric_for(field, unit, self.known)
            if len(self._names) < MAX_NAMES and len(name) + len(unit or "") <= MAX_NAME_CHARS:
                self._names[(bn, name, unit)] = known
        path, payload_device, metric, _ = known
        if path is not None or metric is None:
            return None  # an LwM2M path or an unmapped field: the full path
        return choose_device(payload_device, topic_device, self.device_from), metric

    def _senml(self, records: list[Record], fmt: str, topic_device: str | None) -> Decoded:
        out = Decoded(fmt)
        plain = []
        paths = []
        names = self._names
        for r in records:
            key = (r.base_name, r.name, r.unit)
            known = names.get(key)
            if known is None:
                path = lwm2m.split_path(r.name)
                payload_device, field = _split_name(r)
                known = (path, payload_device) + metric_for(field, r.unit, self.known)
                if len(names) < MAX_NAMES and len(r.name) + len(r.unit or "") <= MAX_NAME_CHARS:
                    names[key] = known
            (paths if known[0] else plain).append((r, known))
        paths = [r for r, _ in paths]
        if paths:
            out.fmt = "lwm2m+" + fmt.split("+")[1]
            lwm2m.decode(paths, out, lambda prefix: choose_device(prefix, topic_device,
                                                                  self.device_from))
        for r, (_, payload_device, metric, reason) in plain:
            device = choose_device(payload_device, topic_device, self.device_from)
            t = r.time if isinstance(r.time, float) else None
            if r.value_field != "v":
                reason = "sum_only" if r.value_field is None else f"not_numeric_{r.value_field}"
                value = r.value.hex() if isinstance(r.value, bytes) else r.value
                out.unmapped.append(Unmapped(r.index, r.name, None if value is None
                                             else str(value), r.unit, reason, device, t))
                continue
            if metric is None:
                out.unmapped.append(Unmapped(r.index, r.name, str(r.value), r.unit, reason,
                                             device, t))
            else:
                out.add_reading(device, r.time, metric, r.value)
        return out


def _split_name(r: Record) -> tuple[str | None, str]:
    """(device named by the payload, measurement name) of a plain SenML record."""
    return _split_name_parts(r.base_name, r.name)


def _split_name_parts(base_name: str, name: str) -> tuple[str | None, str]:
    field = name[len(base_name):]
    if base_name and field:
        return base_name.rstrip("/:.") or None, field
    parts = _SEP.split(name)
    if len(parts) > 1:
        cut = max(name.rfind("/"), name.rfind(":"))
        return name[:cut] or None, name[cut + 1:]
    return None, name


def short(text: str, limit: int = MAX_DETAIL) -> str:
    """A detail sentence cut to ``limit`` characters (an error may quote a huge field)."""
    return text if len(text) <= limit else text[:limit] + f"... [{len(text)} characters]"


def check_text(out: Decoded) -> None:
    """Raise ``invalid_text`` when a string of the rows is not Unicode text (a lone
    UTF-16 surrogate, which JSON can escape): the payload is quarantined whole, as
    received, rather than stored with its text altered."""
    cells = [out.device_id, out.metric, out.observed_at, out.value]
    cells += [[k, v] for rows in out.facts.values() for row in rows for k, v in row.items()]
    cells += [[u.field, u.value, u.unit, u.reason, u.device_id] for u in out.unmapped]
    for col in cells:
        for x in col:
            if type(x) is str and not x.isascii():
                try:
                    x.encode()
                except UnicodeEncodeError:
                    raise PayloadError("invalid_text", f"the text {ascii(x)[:200]} holds a lone "
                                       "UTF-16 surrogate (a \\ud800-\\udfff escape that is not "
                                       "half of a pair), which is not Unicode text") from None
