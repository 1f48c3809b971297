"""Rejected live payloads are de-duplicated on a hash of all their bytes, through a
real mosquitto: distinct payloads that share the text kept in quarantine (16 KiB)
stay distinct, and a payload sent again is stored once."""

from __future__ import annotations

import time

import pytest

from tests.live.live_support import Publisher, RunningServer
from tsfleet import Fleet
from tsfleet.live.writer import MAX_KEPT_PAYLOAD

pytestmark = pytest.mark.network


def test_distinct_long_payloads_stay_distinct_and_repeats_are_stored_once(broker, tmp_path):
    db = str(tmp_path / "live.duckdb")
    srv = RunningServer(db, mqtt=f"127.0.0.1:{broker.port}", client_id="t-qdedup",
                        batch_delay_s=0.1)
    pub = Publisher(broker.port)
    prefix = b"[" + b" " * (MAX_KEPT_PAYLOAD + 100)  # never valid JSON
    payloads = [prefix + f"broken {i}".encode() for i in range(30)]
    for p in payloads + payloads[:10]:                # 10 are sent twice
        pub.publish("fleet/x/senml", p)
    started = time.monotonic()                        # 60 s for both waits
    srv.wait_received(40)
    for p in payloads[10:20]:                         # and again in a later batch
        pub.publish("fleet/x/senml", p)
    srv.wait_received(50, timeout=60 - (time.monotonic() - started))
    srv.stop()
    pub.close()
    with Fleet(db, read_only=True) as f:
        rows = f.query("select reason, count(*) as n from quarantine where kind = 'payload' "
                       "group by all")
        assert rows == [{"reason": "invalid_json", "n": 30}]
        assert f.query("select count(*) as n from quarantine_payloads")[0]["n"] == 30
        batches = f.query("select sum(n_rows) as rows, sum(n_duplicates) as dups, "
                          "sum(n_quarantined) as q from ingest_batches where kind = 'payload'")
        assert batches == [{"rows": 50, "dups": 20, "q": 30}]
