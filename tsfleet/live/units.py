"""SenML units (and record names) -> tsfleet metric names.

The metric returned is either canonical (``temperature_c``) or one of the
foundation's ``metric_aliases`` (``temperature_k``, ``battery_voltage_mv``,
``vibration_ms2``, ...), so the unit conversion itself happens in the ingest
pipeline, in one place, for every source.

Units whose meaning depends on what is measured (``V``, ``A``, ``%``, ``dB``)
are mapped only when the record name says what it is (``battery``,
``humidity``, ...). ``%``, ``g`` and ``l`` are not SenML units (RFC 8428 asks
producers not to send them); some devices do: ``%`` is read like ``%RH`` or
``%EL`` when the name says humidity or battery, ``g`` as acceleration in
standard gravity only when the name says vibration or acceleration (in SenML
``g`` is grams), ``l`` never. ``EL`` is seconds of battery left, an estimate
and not a level: it is kept as unmapped.

>>> metric_for("temp", "Cel", frozenset())
('temperature_c', None)
>>> metric_for("batt", "V", frozenset())
('battery_voltage_v', None)
>>> metric_for("supply", "V", frozenset())
(None, 'ambiguous_unit')
"""

from __future__ import annotations

import re

#: Units that map whatever the name says.
DIRECT = {
    "Cel": "temperature_c",
    "K": "temperature_k",
    "%RH": "humidity_pct",
    "%EL": "battery_pct",
    "m/s2": "vibration_ms2",
    "Pa": "pressure_pa",
    "hPa": "pressure_hpa",
    "kPa": "pressure_kpa",
    "dBm": "rssi_dbm",
    "ppm": "co2_ppm",
}

#: Units that map only when the record name matches the pattern.
BY_NAME: dict[str, list[tuple[str, str]]] = {
    "V": [(r"bat", "battery_voltage_v")],
    "mV": [(r"bat", "battery_voltage_mv")],
    "A": [(r"bat|current", "battery_current_a")],
    "mA": [(r"bat|current", "battery_current_ma")],
    "%": [(r"hum|rh\b", "humidity_pct"), (r"bat", "battery_pct"), (r"loss", "packet_loss_pct")],
    "g": [(r"vib|acc", "vibration_g")],
    "dB": [(r"snr", "snr_db")],
    "KiB": [(r"mem", "memory_free_kb")],
    "s": [(r"interval|period", "reporting_interval_s")],
}

#: Units kept as unmapped with a specific reason.
NOT_A_METRIC = {"EL": "battery_seconds_remaining"}


def metric_for(field: str, unit: str | None,
               known: frozenset[str]) -> tuple[str | None, str | None]:
    """``(metric, None)`` when the record maps, else ``(None, reason)``.

    ``known`` holds the canonical metric names and aliases (``metric_catalog``
    and ``metric_aliases``): a record without a unit maps when its name is one.
    """
    if unit:
        if unit in DIRECT:
            return DIRECT[unit], None
        if unit in BY_NAME:
            low = field.lower()
            for pattern, metric in BY_NAME[unit]:
                if re.search(pattern, low):
                    return metric, None
            return None, "ambiguous_unit"
        if unit in NOT_A_METRIC:
            return None, NOT_A_METRIC[unit]
        return None, "unknown_unit"
    name = field.lower()
    if name in known:
        return name, None
    return None, "no_mapping"
