"""Fuzz: 10,000 hostile payloads per transport (MQTT through mosquitto, CoAP through
aiocoap) into ``python -m tsfleet serve``, 5,000 with ``-v`` and 5,000 without,
interleaved with good ones. The server stays up, stores every good reading exactly
once, quarantines with documented reasons only, and its memory stays flat.

``TSFLEET_FUZZ_N`` sets the hostile payloads per transport and run (default 5000)."""

from __future__ import annotations

import asyncio
import os
import random
import time

import aiocoap
import pytest

from tests.live.hostile_support import (
    CountingBroker,
    FastPublisher,
    Serve,
    coap_post,
    coap_until_answered,
    documented_reasons,
    make_session,
)
from tsfleet import Fleet
from tsfleet.live.broker import find_mosquitto, free_port
from tsfleet.live.hostile import good_pack, hostile
from tsfleet.live.senml import encode_json

pytestmark = pytest.mark.network

N_HOSTILE = int(os.environ.get("TSFLEET_FUZZ_N", "5000"))  # per transport and run
GOOD_EVERY = 25        # one good message per transport every 25 hostile ones
PER = 5                # readings per good message
MAX_PAYLOAD = 20_000   # small, so that oversized payloads are cheap to send
WARMUP = N_HOSTILE // 5  # hostile payloads per transport before the RSS baseline


@pytest.mark.parametrize("verbose", [True, False], ids=["v", "quiet"])
def test_hostile_flood_never_stops_serve_and_every_good_message_is_stored_once(tmp_path,
                                                                             verbose):
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    seed = 22 + verbose
    db = str(tmp_path / "fuzz.duckdb")
    broker = CountingBroker().start()
    try:
        broker.watch()
        make_session(broker.port, "t-fuzz")
        coap_port = free_port(kind=2)
        args = ["--mqtt", f"127.0.0.1:{broker.port}", "--coap", f"127.0.0.1:{coap_port}",
                "--client-id", "t-fuzz", "--max-payload", str(MAX_PAYLOAD),
                "--batch-delay", "0.1"]
        serve = Serve(db, *args, *(["-v", "--analyze-every", "off"] if verbose else []))
        pub = FastPublisher(broker.port)
        t0 = time.monotonic()
        good, codes, rss = asyncio.run(_traffic(serve, broker, pub, coap_port, seed))
        took = time.monotonic() - t0
        pub.close()
        assert serve.alive(), serve.log()
        assert rss[1] <= 1.2 * rss[0], f"RSS {rss[0]:.0f} MB -> {rss[1]:.0f} MB"
        assert serve.stop() == 0, serve.log()
    finally:
        broker.close()
    assert "Traceback" not in serve.log(10_000)
    assert not [c for c in codes if c.startswith("5.00")], codes  # no internal error answer
    assert codes.count("unanswered") <= N_HOSTILE // 100, codes.count("unanswered")
    assert codes.count("2.04") >= N_HOSTILE // GOOD_EVERY  # the good ones at least
    with Fleet(db, read_only=True) as f:
        rows = f.query("select device_id, epoch(observed_at) as t, metric, value from readings "
                       "where device_id like 'good-%'")
        got = sorted((r["device_id"], r["t"], r["metric"], r["value"]) for r in rows)
        reasons = {r["reason"] for r in f.query("select distinct reason from quarantine")}
        escaped = f.query("select count(*) as n from quarantine where reason = 'invalid_text' "
                          "and raw like '%\\\\ud800%'")[0]["n"]
    assert got == sorted(good)  # every good reading once, nothing else for those devices
    assert reasons <= documented_reasons(), reasons - documented_reasons()
    assert {"invalid_text", "invalid_cbor", "oversized_payload", "invalid_json"} <= reasons
    assert escaped > 0  # stored escaped, as received
    if verbose:
        assert "0 payloads that could not even be quarantined" in serve.log(5)
    print(f"fuzz ({'-v' if verbose else 'quiet'}): {2 * N_HOSTILE} hostile + {len(good) // PER} "
          f"good payloads in {took:.1f} s; RSS {rss[0]:.0f} -> {rss[1]:.0f} MB")


async def _traffic(serve: Serve, broker: CountingBroker, pub: FastPublisher, coap_port: int,
                   seed: int):
    """Send everything; returns (expected good readings, CoAP answer codes, (RSS after
    the warm-up, RSS at the end))."""
    rng = random.Random(seed)
    gen = hostile(rng, MAX_PAYLOAD)
    ctx = await aiocoap.Context.create_client_context()
    good: list[tuple] = []
    codes: list[str] = []
    window = asyncio.Semaphore(100)
    tasks: set[asyncio.Task] = set()

    async def post(path: str, payload: bytes, cf: int | None, must_store: bool) -> None:
        async with window:
            if must_store:
                resp = await coap_until_answered(ctx, coap_port, path, payload, cf, non=True)
                assert str(resp.code).startswith("2.04"), (resp.code, resp.payload)
            else:
                for _ in range(3):  # a NON request or its answer lost: send it again
                    try:
                        resp = await coap_post(ctx, coap_port, path, payload, cf, timeout=5,
                                               non=True)
                        break
                    except TimeoutError:
                        continue
                else:
                    codes.append("unanswered")
                    return
            codes.append(str(resp.code).split()[0])

    def expect(pack: list[dict]) -> None:
        dev = pack[0]["bn"][:-1]
        good.extend((dev, float(pack[0]["bt"] + r["t"]), "temperature_c", r["v"]) for r in pack)

    try:
        first = good_pack("good-c0", 0, PER)
        await post("/ingest", encode_json(first), 110, True)  # the CoAP side is up
        expect(first)
        rss = []
        for lo, hi in ((0, WARMUP), (WARMUP, N_HOSTILE)):
            for i in range(lo, hi):
                h = next(gen)
                pub.publish(f"fleet/hz-{i % 7}/{h['fmt']}", h["payload"])
                h = next(gen)
                path = "/ingest" if i % 2 else f"/ingest/hz-{i % 5}"
                task = asyncio.ensure_future(post(path, h["payload"], h["cf"], False))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                if i % GOOD_EVERY == 0:
                    k = i // GOOD_EVERY + 1
                    m = good_pack(f"good-m{k % 13}", k, PER)
                    pub.publish(f"fleet/good-m{k % 13}/senml", encode_json(m))
                    expect(m)
                    c = good_pack(f"good-c{k % 11}", k, PER)
                    task = asyncio.ensure_future(post("/ingest", encode_json(c), 110, True))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    expect(c)
                if i % 200 == 0:
                    await asyncio.sleep(0)  # let the CoAP tasks run
                    assert serve.alive(), serve.log()
            await asyncio.gather(*list(tasks))
            await asyncio.get_running_loop().run_in_executor(None, pub.drain)
            await asyncio.get_running_loop().run_in_executor(None, broker.wait_drained)
            rss.append(serve.rss_mb())
    finally:
        for t in list(tasks):
            t.cancel()
        await ctx.shutdown()
    return good, codes, rss
