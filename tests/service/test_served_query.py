"""``ServedFleet.query`` (a store that ``tsfleet serve`` holds) returns what
``Fleet.query`` returns for the same query: times as times, a ``timestamptz`` aware in UTC.

The control interface runs in this process on a store of its own (``/query`` needs no
writer and no broker)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest

from tsfleet import Fleet
from tsfleet.remote import ServedFleet, connect, find_server
from tsfleet.service.control import ControlServer

#: One value of each kind of time, and a null of each.
QUERY = ("select device_id, observed_at, observed_at::timestamptz as observed_tz, "
         "cast(observed_at as date) as day, cast(observed_at as time) as clock, "
         "interval 90 minute as wait, now() - now() as zero, value, "
         "null::timestamptz as none_tz, null::timestamp as none_t "
         "from readings where device_id = ? order by observed_at")


@pytest.fixture
def served(tmp_path):
    """(a Fleet of the store, a ServedFleet of it while its control interface runs)."""
    path = str(tmp_path / "plant.duckdb")
    fleet = Fleet(path)
    fleet.ingest("readings", [{"device_id": "pump-17", "observed_at": "2026-03-01T10:00Z",
                               "metric": "battery_pct", "value": 87},
                              {"device_id": "pump-17", "observed_at": "2026-03-01T11:30:05Z",
                               "metric": "battery_pct", "value": 86.5}])
    control = ControlServer(fleet, writer=None).start()
    try:
        served = connect(path)
        assert isinstance(served, ServedFleet) and find_server(path) is not None
        yield fleet, served
    finally:
        control.stop()
        fleet.close()


def test_served_query_returns_the_rows_fleet_query_returns(served):
    fleet, remote = served
    local = fleet.query(QUERY, ["pump-17"])
    got = remote.query(QUERY, ["pump-17"])
    assert got == local and len(got) == 2
    row = got[0]
    assert row["observed_at"] == datetime(2026, 3, 1, 10, 0)          # naive UTC, as stored
    assert row["observed_tz"] == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert row["observed_tz"].utcoffset() == timedelta(0)             # aware, in UTC
    assert (row["day"], row["clock"], row["wait"]) == (date(2026, 3, 1), time(10, 0),
                                                       timedelta(minutes=90))
    assert row["none_tz"] is None and row["none_t"] is None
    for r_local, r_remote in zip(local, got, strict=True):
        for column, value in r_local.items():
            assert type(r_remote[column]) is type(value), column


def test_a_store_tables_timestamptz_comes_back_aware(served):
    """A column the store keeps as ``timestamptz`` (``ingest_batches.finished_at``)."""
    fleet, remote = served
    sql = "select batch_id, finished_at from ingest_batches order by batch_id"
    assert remote.query(sql) == fleet.query(sql)
    assert all(r["finished_at"].tzinfo is not None for r in remote.query(sql))


def test_a_time_as_a_parameter_is_taken_as_fleet_query_takes_it(served):
    """A datetime (naive UTC or aware) or a date as a ``?`` parameter: JSON has no time,
    and the request failed with "Object of type datetime is not JSON serializable"."""
    fleet, remote = served
    for sql, param in (
            ("select count(*) as n from readings where observed_at >= ?",
             datetime(2026, 3, 1, 11)),
            ("select count(*) as n from readings where observed_at::timestamptz >= ?",
             datetime(2026, 3, 1, 12, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))),
            ("select count(*) as n from readings where observed_at::date = ?", date(2026, 3, 1))):
        assert remote.query(sql, [param]) == fleet.query(sql, [param]), sql
    assert remote.query("select count(*) as n from readings where observed_at >= ?",
                        [datetime(2026, 3, 1, 11)]) == [{"n": 1}]


def test_a_decimal_and_a_uuid_come_back_as_fleet_query_gives_them(served):
    """A DECIMAL is a Decimal (exact: it came back as a float, rounded past 15 digits)
    and a UUID a UUID (it came back as text), beside a TIMESTAMP and a DATE; nulls stay
    None. The same query through both gives equal values of the same types."""
    fleet, remote = served
    sql = ("select 12345678901234567890.1234567891::decimal(38,10) as amount_eur, "
           "0.10::decimal(18,2) as price_eur, "
           "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid as batch_uuid, "
           "timestamp '2026-03-01 10:00:00.25' as observed_at, date '2026-03-01' as day, "
           "null::decimal(9,3) as none_dec, null::uuid as none_uuid "
           "from readings where device_id = ? order by observed_at limit 1")
    [local] = fleet.query(sql, ["pump-17"])
    [got] = remote.query(sql, ["pump-17"])
    assert got == local
    assert {c: type(v) for c, v in got.items()} == {c: type(v) for c, v in local.items()} == {
        "amount_eur": Decimal, "price_eur": Decimal, "batch_uuid": UUID,
        "observed_at": datetime, "day": date, "none_dec": type(None), "none_uuid": type(None)}
    assert str(got["amount_eur"]) == "12345678901234567890.1234567891"
    assert str(got["price_eur"]) == "0.10"
    assert got["batch_uuid"] == UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
