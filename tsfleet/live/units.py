"""SenML units and record names -> tsfleet metric names, by one declared table.

Each :class:`UnitRule` pairs a SenML unit with a name pattern (a regular
expression searched in the lower-cased measurement name; None: any name) and
gives a metric, or no metric and the reason the record is kept as unmapped.
For a unit, the first rule whose pattern matches wins; a unit with rules of
which none matches is ``ambiguous_unit``; a unit without rules is
``unknown_unit``. A record without a unit maps when its name is a canonical
metric or an alias (``metric_catalog``, ``metric_aliases``), else ``no_mapping``.

The metric is either canonical (``temperature_c``) or one of the foundation's
``metric_aliases`` (``temperature_k``, ``battery_voltage_mv``,
``vibration_ms2``, ...), so the unit conversion itself happens in the ingest
pipeline, in one place, for every source. The table is printed in
docs/live.md by :func:`rules_markdown` (a test keeps the two equal).

Units whose meaning depends on what is measured (``V``, ``A``, ``%``, ``dB``,
``ppm``, ...) map only when the name says what it is: a current of 1.2 A named
``current`` is not a battery current, as a voltage of 120.1 V named
``voltage`` is not a battery voltage (RFC 8428, section 5.1.2). ``%``, ``g``
and ``l`` are not SenML units (RFC 8428 asks producers not to send them).
Temperatures also map in the spellings devices send instead of SenML's ``Cel``:
``degC``, ``°C``, ``℃``, and Fahrenheit as ``degF``, ``°F``, ``℉`` or UCUM's
``[degF]`` (SenML has none). SenML's ``C`` is the coulomb and ``F`` the farad, so
neither is read as a temperature.

>>> metric_for("temp", "Cel", frozenset())
('temperature_c', None)
>>> metric_for("batt", "V", frozenset()), metric_for("batt", "A", frozenset())
(('battery_voltage_v', None), ('battery_current_a', None))
>>> metric_for("supply", "V", frozenset()), metric_for("current", "A", frozenset())
((None, 'ambiguous_unit'), (None, 'ambiguous_unit'))
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class UnitRule:
    """One declared mapping: ``unit`` and ``name`` (a pattern, None: any name) ->
    ``metric``, or no metric and ``reason``."""

    unit: str
    name: str | None
    metric: str | None
    note: str
    reason: str | None = None


#: Every SenML unit tsfleet reads, in the order the rules of one unit are tried.
RULES: tuple[UnitRule, ...] = (
    UnitRule("Cel", None, "temperature_c", "degrees Celsius"),
    UnitRule("degC", None, "temperature_c", "degrees Celsius (not SenML: `Cel`)"),
    UnitRule("°C", None, "temperature_c", "degrees Celsius (not SenML: `Cel`)"),
    UnitRule("℃", None, "temperature_c", "degrees Celsius, one character (not SenML)"),
    UnitRule("K", None, "temperature_k", "kelvin, converted to Celsius"),
    UnitRule("[degF]", None, "temperature_f", "degrees Fahrenheit (UCUM; not SenML), "
             "converted to Celsius"),
    UnitRule("degF", None, "temperature_f", "degrees Fahrenheit (not SenML), converted to "
             "Celsius"),
    UnitRule("°F", None, "temperature_f", "degrees Fahrenheit (not SenML), converted to "
             "Celsius"),
    UnitRule("℉", None, "temperature_f", "degrees Fahrenheit, one character (not SenML), "
             "converted to Celsius"),
    UnitRule("%RH", None, "humidity_pct", "relative humidity"),
    UnitRule("%EL", None, "battery_pct", "battery energy level"),
    UnitRule("EL", None, None, "seconds of battery left: an estimate, not a level",
             "battery_seconds_remaining"),
    UnitRule("V", r"bat", "battery_voltage_v", "volts, battery only"),
    UnitRule("mV", r"bat", "battery_voltage_mv", "millivolts (not SenML), battery only"),
    UnitRule("A", r"bat", "battery_current_a", "amperes, battery only"),
    UnitRule("mA", r"bat", "battery_current_ma", "milliamperes (not SenML), battery only"),
    UnitRule("m/s2", None, "vibration_ms2", "acceleration, converted to g (9.80665 m/s2)"),
    UnitRule("g", r"vib|acc", "vibration_g",
             "standard gravity; in SenML `g` is grams, so only for vibration or acceleration"),
    UnitRule("Pa", None, "pressure_pa", "pascals"),
    UnitRule("hPa", None, "pressure_hpa", "hectopascals (not SenML)"),
    UnitRule("kPa", None, "pressure_kpa", "kilopascals (not SenML)"),
    UnitRule("dBm", None, "rssi_dbm", "received signal strength"),
    UnitRule("dB", r"snr", "snr_db", "decibels, signal to noise only"),
    UnitRule("ppm", r"co2|carbon", "co2_ppm", "parts per million (not SenML), CO2 only"),
    UnitRule("%", r"hum|rh\b", "humidity_pct", "percent (not SenML): humidity"),
    UnitRule("%", r"bat", "battery_pct", "percent (not SenML): battery level"),
    UnitRule("%", r"loss", "packet_loss_pct", "percent (not SenML): packet loss"),
    UnitRule("KiB", r"mem", "memory_free_kb", "kibibytes (not SenML), free memory only"),
    UnitRule("s", r"interval|period", "reporting_interval_s", "seconds, reporting interval only"),
    UnitRule("lat", None, None, "latitude: a position, not a metric", "position"),
    UnitRule("lon", None, None, "longitude: a position, not a metric", "position"),
)

_BY_UNIT: dict[str, list[UnitRule]] = {}
for _rule in RULES:
    _BY_UNIT.setdefault(_rule.unit, []).append(_rule)


def metric_for(field: str, unit: str | None,
               known: frozenset[str]) -> tuple[str | None, str | None]:
    """``(metric, None)`` when the record maps, else ``(None, reason)``.

    ``known`` holds the canonical metric names and aliases (``metric_catalog``
    and ``metric_aliases``): a record without a unit maps when its name is one.
    """
    if unit:
        rules = _BY_UNIT.get(unit)
        if rules is None:
            return None, "unknown_unit"
        low = field.lower()
        for rule in rules:
            if rule.name is None or re.search(rule.name, low):
                return rule.metric, rule.reason
        return None, "ambiguous_unit"
    name = field.lower()
    if name in known:
        return name, None
    return None, "no_mapping"


def rules_markdown() -> str:
    """The rules as the Markdown table of docs/live.md."""
    lines = ["| unit | name contains | metric | note |", "|---|---|---|---|"]
    for r in RULES:
        name = " or ".join(f"`{p}`" for p in r.name.split("|")) if r.name else "any"
        metric = f"`{r.metric}`" if r.metric else f"unmapped: `{r.reason}`"
        lines.append(f"| `{r.unit}` | {name} | {metric} | {r.note} |")
    return "\n".join(lines)
