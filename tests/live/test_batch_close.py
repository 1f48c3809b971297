"""A batch closes at once when nothing more can arrive before it commits: a submitter
waits for room in the writer, or the broker has sent as many unacknowledged messages as
the Receive Maximum allows. Waiting for the batch delay then would only add latency (and
cap the rate at what one delay lets in)."""

from __future__ import annotations

import threading
import time

from tests.live.live_support import Publisher, RunningServer, senml_json
from tsfleet import Fleet
from tsfleet.live.decoded import Decoded
from tsfleet.live.writer import Envelope, Writer

T = 1_780_000_000.0
HOUR = 3600.0


def test_a_batch_closes_when_a_submitter_waits_for_room():
    fleet = Fleet(memory=True)
    batches: list[int] = []
    writer = Writer(fleet, max_rows=10**6, max_delay=HOUR, max_pending=3,
                    on_commit=lambda batch, at: batches.append(len(batch)))
    writer.start()
    try:
        envs = [Envelope("mqtt", "fleet/d-1/senml", b"[]", T, decoded=Decoded(
            "senml+json", ["d-1"], [T + i], ["temperature_c"], [20.0])) for i in range(4)]
        feeder = threading.Thread(target=lambda: [writer.submit(e) for e in envs], daemon=True)
        feeder.start()
        feeder.join(60)  # the fourth waits for room: an hour (the delay) without the close
        assert not feeder.is_alive() and batches[:1] == [3]
    finally:
        writer.stop()
    assert batches == [3, 1]
    assert fleet.query("select count(*) as n from readings")[0]["n"] == 4
    fleet.close()


def test_a_batch_closes_when_the_broker_may_send_no_more(broker, tmp_path):
    srv = RunningServer(str(tmp_path / "s.duckdb"), mqtt=f"127.0.0.1:{broker.port}",
                        receive_maximum=5, batch_delay_s=HOUR, batch_rows=10**6)
    pub = Publisher(broker.port)
    try:
        for i in range(15):
            pub.publish(f"fleet/d-{i}/senml", senml_json(
                [{"bn": f"d-{i}/", "bt": T, "n": "temperature_c", "u": "Cel", "v": 20.0}]))
        deadline = time.monotonic() + 60  # an hour (the delay) per 5 messages without it
        while srv.count("select count(*) from readings") < 15 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.count("select count(*) from readings") == 15
        # not asserted: the batch sizes. mosquitto 2 sent the next messages before the
        # acknowledgements of the previous batch arrived, so they vary from run to run
    finally:
        pub.close()
        srv.stop()
