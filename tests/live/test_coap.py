"""CoAP: a real aiocoap server and client on loopback."""

from __future__ import annotations

import asyncio

import aiocoap
import pytest

from tests.live.live_support import T0, RunningServer, senml_cbor, senml_json, vendor
from tsfleet import Fleet
from tsfleet.live.broker import free_port

pytestmark = pytest.mark.network


async def post(port: int, path: str, payload: bytes, cf: int | None):
    ctx = await aiocoap.Context.create_client_context()
    try:
        msg = aiocoap.Message(code=aiocoap.POST, uri=f"coap://127.0.0.1:{port}{path}",
                              payload=payload)
        if cf is not None:
            msg.opt.content_format = cf
        resp = await asyncio.wait_for(ctx.request(msg).response, 30)
        return str(resp.code), resp.payload.decode()
    finally:
        await ctx.shutdown()


def test_coap_post_answers_2_04_4_00_4_13_4_15_and_stores(tmp_path):
    db = str(tmp_path / "live.duckdb")
    port = free_port(kind=2)  # SOCK_DGRAM
    srv = RunningServer(db, coap=f"127.0.0.1:{port}", max_payload=2000)
    good = [{"bn": "cp-1/", "bt": T0, "n": "temp", "u": "Cel", "v": 21.0},
            {"n": "batt", "u": "%EL", "v": 90, "t": 1}]
    calls = [
        ("/ingest", senml_json(good), 110),
        ("/ingest/cp-2", senml_cbor([{"bt": T0, "n": "hum", "u": "%RH", "v": 40.0}]), 112),
        ("/ingest", vendor({"vendor": "acme", "dev": "cp-3", "ts": T0, "tempF": 68.0}), 50),
        ("/ingest", senml_json(good), 110),                       # a retransmission
        ("/ingest", b'[{"n":', 110),
        ("/ingest", b"\x9f\x01", 112),
        ("/ingest", senml_json(good * 40), 110),
        ("/ingest", b"temp=21", 0),
    ]
    answers = asyncio.run(_all(port, calls))
    srv.stop()
    codes = [a[0].split()[0] for a in answers]
    assert codes == ["2.04", "2.04", "2.04", "2.04", "4.00", "4.00", "4.13", "4.15"]
    assert "stored 2 readings" in answers[0][1]
    assert answers[4][1].startswith("invalid_json: ")
    assert "content format 0 is not accepted" in answers[7][1]
    with Fleet(db, read_only=True) as f:
        assert f.query("select device_id, metric, value from readings order by all") == [
            {"device_id": "cp-1", "metric": "battery_pct", "value": 90.0},
            {"device_id": "cp-1", "metric": "temperature_c", "value": 21.0},
            {"device_id": "cp-2", "metric": "humidity_pct", "value": 40.0},
            {"device_id": "cp-3", "metric": "temperature_c", "value": 20.0}]
        assert sorted(r["reason"] for r in f.query("select reason from quarantine")) == [
            "invalid_cbor", "invalid_json", "oversized_payload", "unsupported_content_format"]
        assert f.query("select sum(n_duplicates) as d from ingest_batches "
                       "where kind = 'readings'")[0]["d"] == 2


async def _all(port, calls):
    return [await post(port, *c) for c in calls]
