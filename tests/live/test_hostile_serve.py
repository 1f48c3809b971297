"""``tsfleet serve`` as a user runs it, against the payloads of issue 22: a poison
message over MQTT (and the restart after it), ``-v`` with batches that yield no
readings, oversized MQTT payloads, and CoAP poison and block-wise bodies."""

from __future__ import annotations

import asyncio
import re
import time

import aiocoap
import pytest
from aiocoap.optiontypes import BlockOption

from tests.live.hostile_support import FastPublisher, Serve, coap_until_answered, make_session
from tests.live.live_support import RunningServer
from tests.live.test_hostile import SURROGATE_BN
from tsfleet import Fleet
from tsfleet.live.broker import free_port
from tsfleet.live.hostile import good_pack
from tsfleet.live.senml import encode_json

pytestmark = pytest.mark.network


def wait_held(serve: Serve, n: int, timeout: float = 60.0) -> None:
    """Until ``serve -v`` logs a store of ``n`` readings."""
    deadline = time.monotonic() + timeout
    while True:
        held = [int(m[1]) for line in serve.lines
                if (m := re.search(r"store holds (\d+) readings", line))]
        if held and held[-1] >= n:
            return
        assert serve.alive(), serve.log()
        assert time.monotonic() < deadline, f"store holds {held[-1:]} of {n}\n{serve.log()}"
        time.sleep(0.1)


def test_serve_v_survives_readingless_batches_and_a_poison_message_is_acknowledged_once(
        broker, tmp_path):
    db = str(tmp_path / "live.duckdb")
    make_session(broker.port, "t-poison")
    args = ["--mqtt", f"127.0.0.1:{broker.port}", "--client-id", "t-poison", "-v",
            "--analyze-every", "off", "--batch-delay", "0.2"]
    serve = Serve(db, *args)
    pub = FastPublisher(broker.port)
    for payload in (b'[{"n":', b'[{"bn":"u/","bt":1780000000,"n":"x","u":"furlong","v":1}]'):
        pub.publish("fleet/u/senml", payload)  # batches with no readings at all
        pub.drain()
        time.sleep(0.6)
    pub.publish("fleet/a/senml", SURROGATE_BN)  # issue 22's repro
    pub.publish("fleet/good-1/senml", encode_json(good_pack("good-1", 1)))
    pub.drain()
    wait_held(serve, 5)
    assert serve.stop() == 0, serve.log()
    log = "".join(serve.lines)
    assert "unfinished result" not in log and "Traceback" not in log
    # the poison message was acknowledged: a restart does not receive it again
    again = Serve(db, *args)
    pub.publish("fleet/good-2/senml", encode_json(good_pack("good-2", 2)))
    pub.drain()
    wait_held(again, 10)
    assert again.stop() == 0, again.log()
    pub.close()
    assert "0 redelivered so far" in "".join(again.lines)
    with Fleet(db, read_only=True) as f:
        assert f.query("select reason, count(*) as n from quarantine group by 1 order by 1") == [
            {"reason": "invalid_json", "n": 1}, {"reason": "invalid_text", "n": 1}]
        assert f.query("select count(*) as n from unmapped")[0]["n"] == 1
        assert f.query("select count(*) as n from readings")[0]["n"] == 10


def test_mqtt_oversized_payloads_are_quarantined_cut_and_giant_ones_never_reach_serve(
        broker, tmp_path):
    db = str(tmp_path / "live.duckdb")
    make_session(broker.port, "t-big")
    serve = Serve(db, "--mqtt", f"127.0.0.1:{broker.port}", "--client-id", "t-big", "-v",
                  "--max-payload", "10000", "--max-packet", "50000", "--analyze-every", "off")
    pub = FastPublisher(broker.port)
    pub.publish("fleet/big/senml", b"[" + b" " * 30_000 + b"]")      # over max-payload
    pub.publish("fleet/giant/senml", b"[" + b" " * 2_000_000 + b"]")  # over max-packet
    pub.publish("fleet/good-1/senml", encode_json(good_pack("good-1", 1)))
    pub.drain()
    wait_held(serve, 5)
    rss = serve.rss_mb()
    assert serve.stop() == 0, serve.log()
    pub.close()
    assert rss < 400  # nothing near 2 MB per message is held
    with Fleet(db, read_only=True) as f:
        rows = f.query("select reason, detail, length(raw) as n from quarantine")
    assert [r["reason"] for r in rows] == ["oversized_payload"]  # the giant: dropped by mosquitto
    assert "payload of 30002 bytes exceeds the limit of 10000 bytes" in rows[0]["detail"]
    assert rows[0]["n"] < 17_000


def test_coap_poison_post_gets_4_00_and_block_wise_bodies_are_bounded(tmp_path):
    db = str(tmp_path / "live.duckdb")
    port = free_port(kind=2)
    srv = RunningServer(db, coap=f"127.0.0.1:{port}", max_payload=20_000, batch_delay_s=0.1)
    answers = asyncio.run(_coap_calls(port))
    assert srv.thread.is_alive()
    srv.stop()
    poison, good, big, elapsed, blocks, manual = answers
    assert poison[0] == "4.00" and poison[1].startswith("invalid_text: ")
    assert good[0] == "2.04" and "stored 40 readings" in good[1]  # 40 records, block-wise
    assert big[0] == "4.13" and big[2] == 20000 and elapsed < 10  # refused at once (Size1)
    assert blocks[:19] == ["2.31"] * 19  # Continue up to 19 KiB, then the limit is passed
    assert manual == "4.13"
    with Fleet(db, read_only=True) as f:
        reasons = sorted(r["reason"] for r in f.query("select reason from quarantine"))
        assert reasons == ["invalid_text", "oversized_payload", "oversized_payload"]
        assert f.query("select count(*) as n from readings")[0]["n"] == 40


async def _coap_calls(port: int):
    ctx = await aiocoap.Context.create_client_context()
    try:
        uri = f"coap://127.0.0.1:{port}/ingest"
        r = await coap_until_answered(ctx, port, "/ingest", SURROGATE_BN, 110)
        poison = (str(r.code).split()[0], r.payload.decode())
        body = encode_json(good_pack("good-b", 1, 40))
        assert len(body) > 1024  # the client sends it block-wise
        r = await coap_until_answered(ctx, port, "/ingest", body, 110)
        good = (str(r.code).split()[0], r.payload.decode())
        t = time.monotonic()
        msg = aiocoap.Message(code=aiocoap.POST, uri=uri, payload=b" " * 10_000_000,
                              content_format=110)
        r = await asyncio.wait_for(ctx.request(msg).response, 30)
        big = (str(r.code).split()[0], r.payload.decode(), r.opt.size1)
        elapsed = time.monotonic() - t
        # block by block without Size1: answered 4.13 at the block that passes the limit
        blocks, last = [], None
        for n in range(25):
            m = aiocoap.Message(code=aiocoap.POST, uri=uri, payload=b" " * 1024,
                                content_format=110)
            m.opt.block1 = BlockOption.BlockwiseTuple(n, True, 6)
            r = await asyncio.wait_for(ctx.request(m, handle_blockwise=False).response, 30)
            last = str(r.code).split()[0]
            blocks.append(last)
            if last != "2.31":
                break
        return poison, good, big, elapsed, blocks, last
    finally:
        await ctx.shutdown()
