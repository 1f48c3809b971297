"""What the live decoders' repeated-key check costs: payloads/s decoded with and without it.

    PYTHONPATH=. python bench/live_decode.py                 # 3 rounds of 2 s per payload
    PYTHONPATH=. python bench/live_decode.py --seconds 5 --rounds 5

Decoding alone, in this process, on the thread clock (less sensitive to the machine's
load than wall time): the payloads of ``bench/live.py`` (a SenML JSON pack of 50
records, and of one), the same pack with an RFC 8428 URN base name, an Acme TH-200
vendor object as the device sends it (and with an ISO time), a The Things Stack
uplink (the network servers' general path, orjson), and in CBOR the two packs and the
vendor object. Each is decoded by the decoder ``serve`` uses, with the check of
:mod:`tsfleet.live.jsonkeys` (``duplicate_field``; for CBOR cbor2's
``allow_duplicate_keys=False``, session 25) and without it (the baseline: the check
replaced by a no-op, CBOR read keeping a repeated key's last value, the rest the
same), rounds interleaved; printed: payloads per CPU-second, microseconds per payload
and the ratio with / without, median of the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import cbor2

from bench.live import pack_payload
from tsfleet import Fleet
from tsfleet.live import decode, lorawan, senml
from tsfleet.live.decode import Decoder
from tsfleet.live.server import known_metrics
from tsfleet.live.tts import TheThingsStack

T0 = 1_780_000_000.123


def payloads() -> dict[str, tuple[str, bytes]]:
    """name -> (decoder, payload)."""
    pack = pack_payload("b-00001", T0, 50)
    tts = {"end_device_ids": {"device_id": "th-1", "dev_eui": "70B3D57ED0000001",
                              "application_ids": {"application_id": "plant"}},
           "received_at": "2026-05-28T20:26:40.123456789Z",
           "uplink_message": {"f_cnt": 1, "f_port": 2, "frm_payload": "AQI=",
                              "decoded_payload": {"temperature_c": 21.5, "humidity_pct": 40.0},
                              "received_at": "2026-05-28T20:26:40.123456789Z",
                              "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1"},
                                               "rssi": -90, "snr": 7.5}],
                              "version_ids": {"model_id": "th"}}}
    acme = {"vendor": "acme", "dev": "th-00017", "ts": 1780000000, "tempF": 71.6, "hum": 44.5,
            "bat_mv": 3612, "rssi": -91, "seq": 412}
    return {
        "SenML pack of 50": ("senml", pack),
        "SenML pack of 50, URN base name": ("senml", pack.replace(
            b'"bn":"b-00001/"', b'"bn":"urn:dev:mac:0024befffe804ff1:"')),
        "SenML pack of 1": ("senml", pack_payload("b-00001", T0, 1)),
        "vendor object (acme-th200)": ("senml", json.dumps(acme).encode()),
        "vendor object, ISO time": ("senml", json.dumps(
            {"vendor": "acme", "dev": "th-00017", "ts": "2026-05-28T20:26:40Z",
             "tempF": 71.6}).encode()),
        "The Things Stack uplink": ("tts", json.dumps(tts, separators=(",", ":")).encode()),
        "SenML+CBOR pack of 50": ("senml", senml.encode_cbor(json.loads(pack))),
        "SenML+CBOR pack of 1": ("senml", senml.encode_cbor(json.loads(
            pack_payload("b-00001", T0, 1)))),
        "vendor object in CBOR": ("senml", cbor2.dumps(acme)),
    }


def _no_check(obj: object, payload: bytes) -> None:
    return None


def _lax_load_cbor(payload: bytes, labels: dict | None = None) -> object:
    return senml._load_cbor(payload)  # cbor2's default: a repeated key keeps its last value


def measure(decode, payload: bytes, seconds: float) -> float:
    """CPU microseconds per payload over ``seconds`` of decoding."""
    n, t0 = 0, time.thread_time()
    end = t0 + seconds
    while True:
        for _ in range(200):
            decode(payload)
        n += 200
        t = time.thread_time()
        if t >= end:
            return (t - t0) / n * 1e6


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    with Fleet(memory=True) as f:
        known = known_metrics(f)
    dec, tts = Decoder(known), TheThingsStack(known)
    decoders = {"senml": lambda p: dec.decode(p, topic_device="d", now=T0),
                "tts": lambda p: tts.decode("v3/plant/devices/th-1/up", p, T0)}
    checks = (senml.check_unique_keys, lorawan.check_unique_keys, senml.load_cbor,
              decode.load_cbor)
    load0 = os.getloadavg()[0]
    res: dict[str, dict[str, list[float]]] = {}
    for name, (kind, payload) in payloads().items():
        decoders[kind](payload)  # warm the decoders' memos
        res[name] = {"with": [], "without": []}
        for _ in range(a.rounds):
            for mode in ("without", "with"):
                fn = checks if mode == "with" else (_no_check, _no_check, _lax_load_cbor,
                                                    _lax_load_cbor)
                (senml.check_unique_keys, lorawan.check_unique_keys, senml.load_cbor,
                 decode.load_cbor) = fn
                try:
                    res[name][mode].append(measure(decoders[kind], payload, a.seconds))
                finally:
                    (senml.check_unique_keys, lorawan.check_unique_keys, senml.load_cbor,
                     decode.load_cbor) = checks
    load = (load0 + os.getloadavg()[0]) / 2
    print(f"live decoding, CPU per payload (thread clock), median of {a.rounds} rounds of "
          f"{a.seconds:g} s, with the repeated-key check vs without it (baseline):")
    for name, r in res.items():
        w, wo = statistics.median(r["with"]), statistics.median(r["without"])
        print(f"  {name:<34} {1e6 / w:9,.0f} payloads/s ({w:6.2f} us) with, "
              f"{1e6 / wo:9,.0f} ({wo:6.2f} us) without: ratio {w / wo:.3f}x CPU, "
              f"+{w - wo:.2f} us")
    print(f"load average {load:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
