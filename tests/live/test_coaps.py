"""CoAP over DTLS with pre-shared keys: a real aiocoap DTLS server (tinydtls, through the
DTLSSocket package) and client on loopback. A device with the right key stores its
readings; one with a wrong key never completes the handshake and stores nothing."""

from __future__ import annotations

import asyncio

import aiocoap
import pytest

from tests.live.live_support import T0, RunningServer, senml_json
from tsfleet import Fleet
from tsfleet.errors import InvalidParameter
from tsfleet.live.broker import free_port
from tsfleet.live.coaps import dtls_available, parse_psk_lines
from tsfleet.live.server import ServeConfig, Server

pytestmark = [pytest.mark.network,
              pytest.mark.skipif(dtls_available() is not None,
                                 reason=dtls_available() or "")]


async def post_dtls(port: int, identity: str, key: bytes, payload: bytes, timeout: float):
    ctx = await aiocoap.Context.create_client_context(transports=["tinydtls"])
    ctx.client_credentials.load_from_dict({f"coaps://127.0.0.1:{port}/*": {"dtls": {
        "psk": key, "client-identity": identity.encode()}}})
    try:
        msg = aiocoap.Message(code=aiocoap.POST, uri=f"coaps://127.0.0.1:{port}/ingest",
                              payload=payload)
        msg.opt.content_format = 110
        resp = await asyncio.wait_for(ctx.request(msg).response, timeout)
        return str(resp.code)
    except (TimeoutError, aiocoap.error.Error) as exc:
        return type(exc).__name__
    finally:
        await ctx.shutdown()


def test_coaps_with_psk_stores_and_refuses_a_wrong_key(tmp_path):
    psk = tmp_path / "coap.psk"
    psk.write_text("# devices of plant A\ndtls-1:hex:0011223344556677\ndtls-2:other-secret\n")
    db = str(tmp_path / "coaps.duckdb")
    port = free_port(kind=2)
    srv = RunningServer(db, coaps=f"127.0.0.1:{port}", coap_psk_file=str(psk))
    try:
        good = senml_json([{"bn": "dtls-1/", "bt": T0, "n": "temp", "u": "Cel", "v": 21.0}])
        assert asyncio.run(post_dtls(port, "dtls-1", bytes.fromhex("0011223344556677"), good,
                                     30)) == "2.04 Changed"
        bad = senml_json([{"bn": "dtls-9/", "bt": T0, "n": "temp", "u": "Cel", "v": 9.0}])
        assert asyncio.run(post_dtls(port, "dtls-1", b"wrong-key", bad, 5)) != "2.04 Changed"
        srv.sync()
    finally:
        srv.stop()
    with Fleet(db) as f:
        assert [r["device_id"] for r in f.query("select device_id from readings")] == ["dtls-1"]


def test_psk_file_problems_are_one_line_errors(tmp_path):
    with pytest.raises(InvalidParameter, match="line 1: expected identity:key"):
        parse_psk_lines(["no-colon"])
    with pytest.raises(InvalidParameter, match="given twice"):
        parse_psk_lines(["a:1", "a:2"])
    with pytest.raises(InvalidParameter, match="needs both"):
        Server(ServeConfig(db=":memory:", coaps="127.0.0.1:5684"))


def test_psk_file_reading(tmp_path):
    with pytest.raises(InvalidParameter, match="not hexadecimal"):
        parse_psk_lines(["a:hex:zz"])
    with pytest.raises(InvalidParameter, match="holds no identity"):
        parse_psk_lines(["# nothing"])
    from tsfleet.live.coaps import read_psk_file
    with pytest.raises(InvalidParameter, match="cannot read the CoAP PSK file"):
        read_psk_file(str(tmp_path / "none.psk"))
    (tmp_path / "k.psk").write_text("d:k\n")
    assert read_psk_file(str(tmp_path / "k.psk")) == {"d": b"k"}
