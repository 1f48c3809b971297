"""A simulated fleet whose gateways' heard reports arrive the ChirpStack way (uplink
events with rxInfo, through a real mosquitto) gives the same network findings, reach
and rebalancing plan as the same fleet ingested from files."""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.live.test_chirpstack import serve_and_publish
from tsfleet import Fleet
from tsfleet.simulate import SimConfig, simulate

integration = pytest.importorskip("chirpstack_api.integration")
json_format = pytest.importorskip("google.protobuf.json_format")

pytestmark = pytest.mark.network


def uplinks_of(heard: pa.Table) -> list[tuple[str, bytes]]:
    """One ChirpStack uplink per device and time, with every gateway that heard it."""
    by_uplink = defaultdict(list)
    for r in heard.to_pylist():
        by_uplink[(r["device_id"], r["event_at"])].append(r)
    f_cnt = defaultdict(int)
    out = []
    for (dev, at), rows in sorted(by_uplink.items(), key=lambda kv: kv[0][1]):
        up = integration.UplinkEvent(f_cnt=f_cnt[dev], f_port=1)
        f_cnt[dev] += 1
        up.time.FromMicroseconds(int(at.timestamp() * 1e6))
        up.device_info.dev_eui = dev
        for r in rows:
            up.rx_info.add(gateway_id=r["gateway_id"], rssi=int(r["rssi_dbm"]), snr=r["snr_db"])
        body = json_format.MessageToJson(up).encode() if f_cnt[dev] % 2 else \
            up.SerializeToString()
        out.append((f"application/a/device/{dev}/event/up", body))
    return out


def network_answers(f: Fleet) -> dict:
    f.network.analyze()
    q = f.query
    return {
        "findings": q("select * from network_findings order by all"),
        "reach": q("select device_id, gateway_id, n_heard, rssi_dbm, snr_db, last_heard_at "
                   "from network_reach order by all"),
        "redundancy": q("select * from network_device_redundancy order by all"),
        "moves": q("select device_id, from_gateway_id, to_gateway_id, to_rssi_dbm, reason "
                   "from network_plan_moves order by all"),
    }


def test_chirpstack_heard_reports_give_the_network_findings_of_files(broker, tmp_path):
    sim = simulate(SimConfig(n_devices=40, days=10, seed=11))
    ref = Fleet(memory=True)
    sim.write(ref)
    expected = network_answers(ref)
    assert expected["reach"] and expected["findings"], "the fleet must have findings to compare"

    conns = pa.concat_tables(sim.output.rows["connections"])
    is_heard = pc.equal(conns["event"], "heard")
    db = str(tmp_path / "cs-net.duckdb")
    with Fleet(db) as live:  # everything but the heard reports from files
        sim.output.rows["connections"] = [conns.filter(pc.invert(is_heard))]
        sim.write(live)
    messages = uplinks_of(conns.filter(is_heard))
    serve_and_publish(tmp_path, broker, messages, "cs-net")
    with Fleet(db) as live:
        assert live.query("select count(*) as n from connections where event = 'heard'")[0][
            "n"] == conns.filter(is_heard).num_rows
        got = network_answers(live)
    for key, rows in expected.items():
        assert got[key] == rows, key
