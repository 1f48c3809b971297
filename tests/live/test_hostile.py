"""No payload stops the writer (issue 22), as the transports hand payloads to it:
poison text, payloads that cannot even be quarantined, a store that fails, CBOR with
trailing bytes, huge numbers, oversized payloads and the held-bytes bound."""

from __future__ import annotations

import hashlib
import json
import threading
import time

import cbor2

from tests.live.hostile_support import documented_reasons
from tsfleet import Fleet
from tsfleet.live.decode import Decoder
from tsfleet.live.decoded import Decoded
from tsfleet.live.hostile import T0, good_pack
from tsfleet.live.senml import encode_cbor, encode_json
from tsfleet.live.server import known_metrics
from tsfleet.live.writer import MAX_KEPT_OVERSIZED, MAX_KEPT_PAYLOAD, Envelope, Writer

SURROGATE_BN = b'[{"bn":"dev-\\ud800/","bt":1780000000,"n":"temp","u":"Cel","v":21.5}]'


class Run:
    """A store, the decoder and the writer of ``serve``, fed payload by payload."""

    def __init__(self, **writer_options):
        self.fleet = Fleet(memory=True)
        self.decoder = Decoder(known_metrics(self.fleet), max_payload=20_000)
        self.writer = Writer(self.fleet, max_delay=0.05, **writer_options)
        self.acked: list[int] = []

    def env(self, i: int, payload: bytes, fmt: str | None = None) -> Envelope:
        env = Envelope("mqtt", f"fleet/d/{fmt or 'senml'}", payload, time.time(),
                       ack=lambda: self.acked.append(i))
        self.decoder.decode_into(env, fmt=fmt, topic_device=None)
        return env

    def send(self, payloads: list[tuple[bytes, str | None]]) -> None:
        """All in one batch: queued before the writer starts."""
        for i, (p, fmt) in enumerate(payloads):
            self.writer.submit(self.env(i, p, fmt))
        self.writer.start()
        assert self.writer.sync(60)

    def reasons(self) -> list[str]:
        return sorted(r["reason"] for r in self.fleet.query("select reason from quarantine"))


def test_a_lone_surrogate_in_any_stored_text_is_quarantined_escaped_and_the_batch_lands():
    poison = [
        (SURROGATE_BN, None),                                                   # bn
        (b'[{"bn":"d/","bt":1780000000,"n":"te\\udfffmp","u":"mi","v":1}]', None),  # n
        (b'[{"bn":"d/","bt":1780000000,"n":"temp","u":"C\\udc00el","v":1}]', None),  # u
        (b'[{"bn":"d/","bt":1780000000,"n":"state","vs":"on\\ud800"}]', None),    # vs
        (b'{"vendor":"acme","dev":"x\\ud800","ts":1780000000,"tempF":70}', None),  # device
        (b'{"vendor":"acme","dev":"x","ts":"2026\\ud800","tempF":70}', None),     # time
        (b'{"vendor":"acme","dev":"x","ts":1780000000,"t\\ud800":1}', None),      # field name
    ]
    good = [(encode_json(good_pack(f"good-{i}", i)), None) for i in range(3)]
    # a surrogate *pair* is one valid character (U+1F600): stored like any other
    emoji = (b'[{"bn":"good-\\ud83d\\ude00/","bt":1780000000,"n":"temp","u":"Cel","v":1}]',
             None)
    # a name that maps by its unit is not stored: the reading is (device d)
    mapped = (b'[{"bn":"d/","bt":1780000000,"n":"te\\udfffmp","u":"Cel","v":1}]', None)
    run = Run()
    run.send(good[:1] + poison + good[1:] + [emoji, mapped])
    assert run.writer.error is None
    assert run.reasons() == ["invalid_text"] * len(poison)
    assert sorted(run.acked) == list(range(len(poison) + len(good) + 2))  # all acknowledged
    devices = {r["device_id"] for r in run.fleet.query("select distinct device_id from readings")}
    assert devices == {"good-0", "good-1", "good-2", "good-\U0001F600", "d"}
    raws = [json.loads(r["raw"])["payload"] for r in run.fleet.query(
        "select raw from quarantine order by raw")]
    assert all("\\ud800" in r or "\\udfff" in r or "\\udc00" in r for r in raws)  # as received
    assert run.writer.stats.n_unstorable == 0


def test_a_payload_that_cannot_even_be_quarantined_is_counted_logged_and_acknowledged(caplog):
    run = Run()
    bad = Envelope("mqtt", "fleet/x/senml", b"[]", time.time(), ack=lambda: run.acked.append(0),
                   decoded=Decoded("senml+json", ["x\ud800"], [float(T0)], ["temperature_c"],
                                   [1.0]))  # what a decoder bug could hand over
    run.fleet.con.execute("alter table quarantine_rows rename to quarantine_away")
    run.writer.submit(bad)
    run.writer.submit(run.env(1, encode_json(good_pack("good-1", 1))))
    run.writer.start()
    assert run.writer.sync(60)
    assert run.writer.error is None and run.writer.stats.n_unstorable == 1
    assert sorted(run.acked) == [0, 1]  # never redelivered, so it cannot loop
    assert run.fleet.query("select count(*) as n from readings")[0]["n"] == 5  # the good one
    assert "could neither be stored nor quarantined" in caplog.text


def test_when_the_store_itself_fails_the_writer_stops_and_acknowledges_nothing():
    run = Run()
    run.writer.start()
    run.fleet.con.close()  # the store is gone: nothing can be durable
    run.writer.submit(run.env(0, encode_json(good_pack("good-1", 1))))
    run.writer._thread.join(30)
    assert run.writer.error is not None and run.acked == []  # the broker redelivers


def test_cbor_with_trailing_bytes_and_huge_numbers_get_documented_reasons():
    pack = good_pack("hz-1", 1, 2)
    huge_json = encode_json(pack).replace(b"20.0", b"9" * 5000, 1)
    bignum_v, bignum_t = [dict(r) for r in pack], [dict(r) for r in pack]
    bignum_v[1]["v"] = 1 << 1100     # a CBOR bignum value: that row is bad_number
    bignum_t[0]["bt"] = 1 << 1100    # a CBOR bignum time: bad_timestamp
    vendor = cbor2.dumps({"vendor": "acme", "dev": "hz-2", "ts": T0, "tempF": 10**400})
    run = Run()
    run.send([(encode_cbor(pack) + b"\x00junk", "senml-cbor"), (huge_json, None),
              (encode_cbor(bignum_v), "senml-cbor"), (encode_cbor(bignum_t), "senml-cbor"),
              (vendor, "acme-th200")])
    reasons = run.reasons()
    assert reasons == ["bad_number", "bad_timestamp", "bad_timestamp", "invalid_cbor",
                       "invalid_json", "number_out_of_range"]
    assert set(reasons) <= documented_reasons()
    detail = run.fleet.query("select detail from quarantine where reason = 'invalid_cbor'")
    assert "5 bytes follow the data item" in detail[0]["detail"]
    assert run.fleet.query("select count(*) as n from readings")[0]["n"] == 1  # bignum_v's good row


def test_an_oversized_payload_is_cut_before_it_is_queued_and_kept_with_its_size():
    run = Run()
    env = run.env(0, b"[" + b" " * 1_000_000 + b"]")
    assert env.reject.reason == "oversized_payload" and len(env.payload) == MAX_KEPT_OVERSIZED
    assert env.n_bytes == 1_000_002
    run.writer.submit(env)
    run.writer.start()
    assert run.writer.sync(30)
    raw = run.fleet.query("select raw from quarantine")[0]["raw"]
    assert raw.endswith(' [cut: 1000002 bytes received]"}') and len(raw) < 1_200


def test_a_long_payload_refused_for_its_content_keeps_16_kib_and_an_oversized_one_1_kib():
    """An oversized payload is refused for its size alone: its first KiB is kept. A
    payload refused for what it says (JSON cut off after 18,000 characters) keeps 16 KiB,
    where the fault may lie far into it."""
    run = Run()
    long_name = ('[{"bn":"d/","bt":1780000000,"n":"' + "n" * 18_000).encode()
    oversized = b'[{"bn":"big/"' + b" " * 30_000 + b"]"
    run.send([(long_name, None), (oversized, None)])
    rows = run.fleet.query("select reason, raw from quarantine order by reason")
    assert len(rows) == 2 and rows[1]["reason"] == "oversized_payload" != rows[0]["reason"]
    kept = {r["reason"] == "oversized_payload": r["raw"] for r in rows}
    assert "big/" in kept[True] and "n" * 15_000 in kept[False]
    assert len(kept[True]) < MAX_KEPT_OVERSIZED + 200 < MAX_KEPT_PAYLOAD < len(kept[False])
    assert f"[cut: {len(long_name)} bytes received]" in kept[False]
    assert f"[cut: {len(oversized)} bytes received]" in kept[True]


def test_oversized_payloads_that_differ_after_the_cut_stay_distinct_and_repeats_do_not():
    run = Run()
    head = b"[" + b" " * 30_000  # over the decoder's limit (20,000) and the 1 KiB kept
    bodies = [head + f"{i}]".encode() for i in range(3)]
    for i, body in enumerate(bodies + bodies[:1]):  # the first one sent twice
        env = run.env(i, body)
        assert env.reject.reason == "oversized_payload" and len(env.payload) == MAX_KEPT_OVERSIZED
        run.writer.submit(env)
    run.writer.start()
    assert run.writer.sync(30) and sorted(run.acked) == [0, 1, 2, 3]
    assert run.reasons() == ["oversized_payload"] * 3
    keys = run.fleet.query("select payload_sha256 as k from quarantine_payloads order by 1")
    assert [r["k"] for r in keys] == sorted(hashlib.sha256(b).hexdigest() for b in bodies)


def test_submit_blocks_past_the_held_bytes_bound_until_a_commit_frees_it():
    run = Run(max_pending_bytes=10_000)
    first = run.env(0, b" " * 3000 + encode_json(good_pack("good-1", 1)))
    run.writer.submit(first)  # alone over nothing held: always let through
    second = run.env(1, b" " * 3000 + encode_json(good_pack("good-2", 2)))
    third = run.env(2, b" " * 5000 + encode_json(good_pack("good-3", 3)))
    run.writer.submit(second)
    done = threading.Event()
    threading.Thread(target=lambda: (run.writer.submit(third), done.set()), daemon=True).start()
    assert not done.wait(0.5)  # 3 payloads would hold more than 10,000 bytes: it waits
    assert run.writer.held[0] == 2
    run.writer.start()  # the writer commits and acknowledges the first two
    assert done.wait(30)
    assert run.writer.sync(30) and sorted(run.acked) == [0, 1, 2]
    assert run.writer.held == (0, 0)


def test_serve_bounds_duckdb_memory_when_asked_and_refuses_anything_but_a_size(tmp_path):
    import pytest

    from tsfleet.errors import InvalidParameter
    from tsfleet.live.server import ServeConfig, Server

    with pytest.raises(InvalidParameter, match="memory_limit must be a size"):
        ServeConfig(db=":memory:", coap="127.0.0.1:1", memory_limit="1GB'; drop table x").check()
    for bad, match in (({"max_packet": 10}, "max_packet must be within"),
                       ({"receive_maximum": 0}, "receive_maximum must be within"),
                       ({"max_pending_bytes": 0}, "must be positive")):
        with pytest.raises(InvalidParameter, match=match):
            ServeConfig(db=":memory:", **bad).check()
    srv = Server(ServeConfig(db=str(tmp_path / "m.duckdb"), memory_limit="300MB"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    assert srv.ready.wait(30)
    limit = srv.fleet.con.cursor().execute("select current_setting('memory_limit')").fetchall()
    srv.stop()
    thread.join(30)
    assert limit[0][0] in ("286.1 MiB", "300.0 MB")


def test_a_pack_of_thousands_of_unknown_names_stores_its_payload_once():
    """Every unknown name is kept as an unmapped row, and the payload it came in once:
    4,000 unknown names in one 183 KB pack stored 4,000 copies of 16 KiB (65.6 MB)."""
    run = Run()
    run.decoder.max_payload = 256 * 1024
    pack = [{"bn": "d/", "bt": 1_780_000_000, "n": f"x{i}", "v": 1} for i in range(4000)]
    payload = json.dumps(pack, separators=(",", ":")).encode()
    run.send([(payload, None), (payload, None)])  # and once more, redelivered
    got = run.fleet.query("select count(*) as n, count(distinct field) as f, "
                          "min(length(payload)) as p from unmapped")[0]
    assert got == {"n": 4000, "f": 4000, "p": got["p"]} and got["p"] > MAX_KEPT_PAYLOAD
    stored = run.fleet.query("select count(*) as n, sum(length(payload)) as b "
                             "from unmapped_payloads")[0]
    assert stored["n"] == 1 and stored["b"] < MAX_KEPT_PAYLOAD + 100
