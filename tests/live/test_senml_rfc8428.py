"""RFC 8428's own examples (sections 5 and 6) through tsfleet's SenML decoder, and the
declared unit and name rules of tsfleet/live/units.py against docs/live.md.

The packs carry the RFC's values (device urn:dev:ow:10e2073a01080063, 120.1 V mains,
1.2..1.7 A, 2010-06-08 times); what tsfleet makes of them is its own rule."""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest

from tests.live.live_support import decoder
from tsfleet import Fleet
from tsfleet.live.senml import encode_cbor, encode_json
from tsfleet.live.units import RULES, metric_for, rules_markdown
from tsfleet.live.writer import readings_table

DEC = decoder()
DEV = "urn:dev:ow:10e2073a01080063"
BT = 1.276020076001e09           # the RFC's base time: 2010-06-08T18:01:16.001Z


def both(pack, now=0.0):
    """The pack decoded from JSON and from CBOR; both must agree."""
    a, b = DEC.decode(encode_json(pack), now=now), DEC.decode(encode_cbor(pack), now=now)
    assert list(zip(a.device_id, a.observed_at, a.metric, a.value, strict=True)) == \
        list(zip(b.device_id, b.observed_at, b.metric, b.value, strict=True))
    assert [(u.field, u.reason) for u in a.unmapped] == [(u.field, u.reason) for u in b.unmapped]
    return a


def test_5_1_1_a_single_datapoint_is_a_temperature_reading_now():
    d = both([{"n": DEV, "u": "Cel", "v": 23.1}], now=BT)
    assert (d.metric, d.value, d.observed_at) == (["temperature_c"], [23.1], [BT])


def test_5_1_2_mains_voltage_and_current_are_not_battery_metrics():
    d = both([{"bn": DEV + ":", "n": "voltage", "u": "V", "v": 120.1},
              {"n": "current", "u": "A", "v": 1.2}], now=BT)
    assert d.n_readings == 0
    assert [(u.field, u.reason, u.value, u.device_id) for u in d.unmapped] == [
        (DEV + ":voltage", "ambiguous_unit", "120.1", DEV),
        (DEV + ":current", "ambiguous_unit", "1.2", DEV)]


MULTIPLE = [{"bn": "urn:dev:ow:10e2073a0108006:", "bt": BT, "bu": "A", "bver": 5,
             "n": "voltage", "u": "V", "v": 120.1}] + \
    [{"n": "current", "t": t, "v": v} for t, v in
     ((-5, 1.2), (-4, 1.3), (-3, 1.4), (-2, 1.5), (-1, 1.6))] + [{"n": "current", "v": 1.7}]


def test_5_1_3_base_values_resolve_like_the_rfc_resolved_form_5_1_4():
    d = both(MULTIPLE)
    assert d.n_readings == 0
    got = [(u.field, u.unit, float(u.value), u.observed_at) for u in d.unmapped]
    resolved = [("urn:dev:ow:10e2073a0108006:voltage", "V", 120.1, BT)] + [
        ("urn:dev:ow:10e2073a0108006:current", "A", v, BT + t) for t, v in
        ((-5, 1.2), (-4, 1.3), (-3, 1.4), (-2, 1.5), (-1, 1.6), (0, 1.7))]
    assert [g[:3] for g in got] == [r[:3] for r in resolved]
    assert [g[3] for g in got] == pytest.approx([r[3] for r in resolved], abs=1e-6)
    # the resolved form of 5.1.4 decodes to the same
    flat = [{"n": f, "u": u, "v": v, "t": t} for f, u, v, t in resolved]
    assert [(u.field, u.unit, float(u.value)) for u in both(flat).unmapped] == \
        [r[:3] for r in resolved]
    # a battery current under the same base unit does map, to amperes
    d = both([{**MULTIPLE[0], "n": "battery_voltage", "v": 3.6},
              {"n": "battery_current", "t": -1, "v": -0.2}])
    assert (d.metric, d.value) == (["battery_voltage_v", "battery_current_a"], [3.6, -0.2])


def test_5_1_5_multiple_data_types_humidity_battery_and_positions():
    pack = [{"bn": DEV + ":", "bt": 1.320067464e09, "bu": "%RH", "v": 20},
            {"u": "lon", "v": 24.30621}, {"u": "lat", "v": 60.07965},
            {"t": 60, "v": 20.3}, {"u": "lon", "t": 60, "v": 24.30622},
            {"u": "lat", "t": 60, "v": 60.07965}, {"t": 120, "v": 20.7},
            {"u": "lon", "t": 120, "v": 24.30623}, {"u": "lat", "t": 120, "v": 60.07966},
            {"u": "%EL", "t": 150, "v": 98}, {"t": 180, "v": 21.2},
            {"u": "lon", "t": 180, "v": 24.30628}, {"u": "lat", "t": 180, "v": 60.07967}]
    d = both(pack)
    t0 = 1.320067464e09
    assert list(zip(d.metric, d.value, d.observed_at, strict=True)) == [
        ("humidity_pct", 20.0, t0), ("humidity_pct", 20.3, t0 + 60),
        ("humidity_pct", 20.7, t0 + 120), ("battery_pct", 98.0, t0 + 150),
        ("humidity_pct", 21.2, t0 + 180)]
    assert set(d.device_id) == {DEV}
    assert [u.reason for u in d.unmapped] == ["position"] * 8
    assert [u.unit for u in d.unmapped] == ["lon", "lat"] * 4


def test_5_1_6_collection_of_resources_value_kinds():
    pack = [{"bn": DEV + ":", "n": "temp", "u": "Cel", "v": 23.1},
            {"n": "label", "vs": "Machine Room"}, {"n": "open", "vb": False},
            {"n": "nfv-reader", "vd": "aGkgCg"}]
    d = both(pack, now=BT)
    assert (d.metric, d.value) == (["temperature_c"], [23.1])
    assert [(u.field[len(DEV) + 1:], u.reason, u.value) for u in d.unmapped] == [
        ("label", "not_numeric_vs", "Machine Room"), ("open", "not_numeric_vb", "False"),
        ("nfv-reader", "not_numeric_vd", b"hi \n".hex())]


def test_a_v_that_is_not_a_number_is_quarantined_as_bad_number():
    d = DEC.decode(encode_json([{"bn": DEV + ":", "bt": BT, "n": "temp", "u": "Cel",
                                 "v": "warm"}, {"n": "temp", "u": "Cel", "v": 21.0}]))
    with Fleet(memory=True) as fleet:
        fleet.ingest("devices", [dict(device_id=DEV, device_type="t", manufacturer="m",
                                      model="x", site="s", zone="z")])
        report = fleet.ingest("readings", readings_table([d]))
        assert (report.n_accepted, dict(report.quarantined_by_reason)) == (1, {"bad_number": 1})


def test_6_cbor_with_integer_labels_decodes_like_json():
    # section 6: the 5.1.2 pack with labels bn = -2, n = 0, u = 1, v = 2
    raw = cbor2.dumps([{-2: DEV + ":", 0: "voltage", 1: "V", 2: 120.1},
                       {0: "current", 1: "A", 2: 1.2}])
    d = DEC.decode(raw, fmt="senml-cbor", now=BT)
    assert [(u.field, u.unit, u.reason) for u in d.unmapped] == [
        (DEV + ":voltage", "V", "ambiguous_unit"), (DEV + ":current", "A", "ambiguous_unit")]
    raw = cbor2.dumps([{-2: DEV + ":", 0: "battery", 1: "V", 2: 3.61, 6: -10}])
    d = DEC.decode(raw, fmt="senml-cbor", now=BT)
    assert (d.metric, d.value, d.observed_at) == (["battery_voltage_v"], [3.61], [BT - 10])


# -- the declared rules -----------------------------------------------------------------
@pytest.mark.parametrize(("unit", "name"), [("A", "current"), ("A", "motor"), ("mA", "load"),
                                            ("V", "voltage"), ("mV", "supply")])
def test_electrical_units_map_only_for_a_battery_whatever_else_the_name_says(unit, name):
    assert metric_for(name, unit, frozenset()) == (None, "ambiguous_unit")
    assert metric_for("battery_" + name, unit, frozenset())[0].startswith("battery_")


def test_every_rule_is_reachable_and_docs_print_the_table():
    for rule in RULES:
        name = "x" if rule.name is None else rule.name.split("|")[0]
        assert metric_for(name.upper(), rule.unit, frozenset()) == (rule.metric, rule.reason)
    docs = (Path(__file__).resolve().parents[2] / "docs" / "live.md").read_text()
    assert rules_markdown() in docs, "docs/live.md: paste tsfleet.live.units.rules_markdown()"
    assert metric_for("x", "W", frozenset()) == (None, "unknown_unit")
