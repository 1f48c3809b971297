"""``serve --unknown-devices quarantine``: a device that is not in the registry adds no
reading and no per-device row; its readings are quarantined (``unknown_device``), counted
and kept, and the registered devices' readings land as before. A sender that invents device
ids then cannot grow ``device_latest`` (and the index DuckDB keeps of it in memory)."""

from __future__ import annotations

import pytest

from tests.live.live_support import T0, senml_json, serve_and_send
from tsfleet import Fleet
from tsfleet.cli import main
from tsfleet.live.lorawan import store_side_rows

pytestmark = pytest.mark.network


def pack(dev: str) -> list[dict]:
    return [{"bn": f"{dev}/", "bt": T0, "n": "temp", "u": "Cel", "v": 20.0 + k / 10, "t": k * 60}
            for k in range(5)]


SENDS = [(f"fleet/{dev}/senml", senml_json(pack(dev)))
         for dev in ("th-1", "invented-1", "th-2", "invented-2")]


def registered_store(path) -> str:
    with Fleet(str(path)) as f:
        f.ingest("devices", [{"device_id": "th-1"}, {"device_id": "th-2"}])
    return str(path)


def test_quarantine_mode_stores_only_registered_devices_and_keeps_the_rest(broker, tmp_path):
    db = registered_store(tmp_path / "q.duckdb")
    serve_and_send(db, broker, SENDS, client_id="t-unknown-q", unknown_devices="quarantine")
    with Fleet(db, read_only=True) as f:
        assert f.query("select device_id, count(*) as n from readings group by all "
                       "order by all") == [{"device_id": "th-1", "n": 5},
                                           {"device_id": "th-2", "n": 5}]
        assert {r["device_id"] for r in f.query("select device_id from device_latest")} == \
            {"th-1", "th-2"}
        held = f.query("select reason, count(*) as n, count(distinct detail) as n_detail "
                       "from quarantine where kind = 'readings' group by all")
        assert held == [{"reason": "unknown_device", "n": 10, "n_detail": 10}]
        assert all("is not registered in devices" in r["detail"] and
                   ("invented-1" in r["detail"] or "invented-2" in r["detail"])
                   for r in f.query("select detail from quarantine"))


def test_accept_mode_stores_every_device_as_before(broker, tmp_path):
    db = registered_store(tmp_path / "a.duckdb")
    serve_and_send(db, broker, SENDS, client_id="t-unknown-a")
    with Fleet(db, read_only=True) as f:
        assert f.query("select count(distinct device_id) as n, count(*) as r "
                       "from readings") == [{"n": 4, "r": 20}]
        assert f.query("select count(*) as n from quarantine") == [{"n": 0}]


def uplinks(dev: str, n: int) -> list[dict]:
    return [dict(device_id=dev, uplink_at=1.78e9 + i * 600, f_cnt=i, f_port=2, dr=5,
                 n_gateways=1, downlink_gateway_id="gw-1", network_server="chirpstack")
            for i in range(n)]


@pytest.mark.parametrize("policy, expected", [("quarantine", {"th-1": 3}),
                                              ("accept", {"th-1": 3, "a84041ffff000001": 3})])
def test_lorawan_metadata_of_unregistered_devices_follows_the_policy(tmp_path, policy, expected):
    with Fleet(str(tmp_path / "l.duckdb"), unknown_devices=policy) as f:
        f.ingest("devices", [{"device_id": "th-1"}])
        store_side_rows(f, "lorawan_uplinks", uplinks("th-1", 3) + uplinks("a84041ffff000001", 3))
        store_side_rows(f, "lorawan_devices", [
            dict(device_id=d, network_server="chirpstack", updated_at=1.78e9)
            for d in ("th-1", "a84041ffff000001")])
        got = {r["device_id"]: r["n"] for r in f.query(
            "select device_id, count(*) as n from lorawan_uplinks group by all")}
        assert got == expected
        assert {r["device_id"] for r in f.query("select device_id from lorawan_devices")} == \
            set(expected)


def test_a_typo_in_the_policy_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--mqtt", "127.0.0.1:1", "--unknown-devices", "quarantin"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "quarantine" in err[0], err
