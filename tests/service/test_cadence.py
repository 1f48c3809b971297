"""Cadences: parsing, one due analysis per tick, retry of a failed one a cadence later."""

from __future__ import annotations

import pytest

from tsfleet import InvalidParameter
from tsfleet.power import Power
from tsfleet.service.cadence import DEFAULT_EVERY_S, Cadence, parse_duration, parse_every
from tsfleet.service.runner import ANALYSES

NAMES = ("firmware", "power", "alerts")


def test_parse_every_defaults_overrides_all_and_off():
    assert parse_every(None, NAMES) == {n: DEFAULT_EVERY_S[n] for n in NAMES}
    assert parse_every("power=5m,firmware=1h", NAMES) == {
        "firmware": 3600.0, "power": 300.0, "alerts": 60.0}
    assert parse_every("all=30s,alerts=off", NAMES) == {"firmware": 30.0, "power": 30.0}
    assert parse_every("off", NAMES) == {}
    assert max(parse_every(None).values()) <= 300  # the 5-minute bar, with room to run
    assert set(parse_every(None)) == set(ANALYSES)


@pytest.mark.parametrize("spec, message", [
    ("power", "name=duration"), ("weather=5m", "unknown analysis"),
    ("power=-5m", "positive"), ("power=soon", "duration like"),
    ("calibration=5m", "not installed"),
])
def test_parse_every_refuses_bad_specs(spec, message):
    with pytest.raises(InvalidParameter, match=message):
        parse_every(spec, NAMES)


def test_parse_duration():
    assert [parse_duration(t) for t in ("45", "45s", "2m", "1h", "1d")] == [
        45, 45, 120, 3600, 86400]


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_one_analysis_per_tick_in_order_then_each_on_its_own_cadence(fleet, monkeypatch):
    fleet.ingest("readings", [{"device_id": "d1", "observed_at": "2026-03-01T10:00Z",
                               "metric": "battery_pct", "value": 80}])
    clock = Clock()
    cad = Cadence({"firmware": 60, "power": 120, "alerts": 60}, clock=clock)
    assert [cad.tick(fleet).analysis for _ in range(3)] == ["firmware", "power", "alerts"]
    assert cad.tick(fleet) is None and cad.due() == []
    clock.t += 61
    assert cad.due() == ["firmware", "alerts"]
    monkeypatch.setattr(Power, "analyze", lambda self, devices=None: 1 / 0)
    fleet.ingest("readings", [{"device_id": "d1", "observed_at": "2026-03-01T11:00Z",
                               "metric": "battery_pct", "value": 79}])
    clock.t += 60
    assert cad.due() == ["firmware", "alerts", "power"]  # the longest overdue first
    assert [(r.analysis, r.status) for r in (cad.tick(fleet) for _ in range(3))] == [
        ("firmware", "ok"), ("alerts", "ok"), ("power", "failed")]
    assert cad.n_failed == 1
    clock.t += 119
    assert "power" not in cad.due()  # the failed run is retried one cadence later
    clock.t += 1
    monkeypatch.undo()
    assert "power" in cad.due()
    while (r := cad.tick(fleet)) is not None and r.analysis != "power":
        pass
    assert r.status == "ok" and r.n_items == 1


def test_a_tick_skips_analyses_without_work_and_runs_the_next_due(fleet):
    clock = Clock()
    cad = Cadence({"firmware": 1, "power": 1}, clock=clock)
    fleet.ingest("readings", [{"device_id": "d1", "observed_at": "2026-03-01T10:00Z",
                               "metric": "battery_pct", "value": 80}])
    assert cad.tick(fleet).analysis == "firmware"
    assert cad.tick(fleet).analysis == "power"
    clock.t += 5
    fleet.ingest("readings", [{"device_id": "d1", "observed_at": "2026-03-01T11:00Z",
                               "metric": "battery_pct", "value": 79}])
    fleet.analyze(only="firmware")  # firmware is up to date: its turn is skipped
    assert cad.tick(fleet).analysis == "power"
    assert cad.tick(fleet) is None
