"""The findings view, the summary and the CLI."""

from __future__ import annotations

import pytest

from tsfleet.cli import main

COLUMNS = ["domain", "finding", "subject_kind", "subject_id", "site", "zone", "severity",
           "value", "summary", "action", "due_at", "observed_at"]


def test_findings_are_exactly_the_injected_problems(net, ids):
    cols = net.con.execute("select * from network_findings limit 0").description
    assert [c[0] for c in cols] == COLUMNS
    rows = net.network.findings()
    by = {}
    for r in rows:
        by.setdefault(r["finding"], set()).add(r["subject_id"])
        assert r["domain"] == "network" and r["severity"] in ("info", "warning", "critical")
        assert r["observed_at"] is not None and r["summary"]
    role = {r["role"]: r["gateway_id"] for r in net.query("select * from sim.network_gateways")}
    assert by["gateway_overloaded"] == {role["overloaded"]}
    assert by["gateway_overload_predicted"] == {role["growing"]}
    assert by["gateway_down"] == {role["failed"]}
    assert by["single_point_of_failure"] == ids(
        "select device_id from sim.network_devices where is_spof")
    assert by["device_flapping"] == ids(
        "select device_id from sim.network_devices where is_flapping")
    down = next(r for r in rows if r["finding"] == "gateway_down")
    assert down["action"] == "repair_gateway" and down["severity"] == "critical"
    assert down["due_at"] is not None
    pred = next(r for r in rows if r["finding"] == "gateway_overload_predicted")
    assert pred["due_at"] > pred["observed_at"]


def test_summary_names_the_problems(net):
    lines = net.network.summary()
    assert 2 <= len(lines) <= 6
    hub = net.query("select gateway_id from sim.network_gateways where role = 'overloaded'")
    assert hub[0]["gateway_id"] in lines[0]
    assert any(line.startswith("plan:") for line in lines)


def test_settings_change_what_the_views_find(tmp_path):
    from tsfleet.simulate import SimConfig, simulated_fleet

    f = simulated_fleet(SimConfig(n_devices=60, days=10, seed=2))
    before = len(f.network.flapping())
    f.network.configure(flapping_connects_per_day=0)
    assert len(f.network.flapping()) > before
    with pytest.raises(ValueError, match="unknown network setting"):
        f.network.configure(nope=1)
    with pytest.raises(ValueError, match="within"):
        f.network.configure(rssi_floor_dbm=99)
    f.close()


@pytest.fixture
def cli_path(net_path, tmp_path):
    """A copy of the analysed store: the listings open it read-only, and DuckDB refuses a
    read-only connection in a process that holds the file open for writing (``net``)."""
    import shutil

    return str(shutil.copyfile(net_path, tmp_path / "net.duckdb"))


@pytest.mark.parametrize("action", ["plan", "load", "balance", "bottlenecks", "redundancy",
                                    "spof", "down", "flapping", "saturation", "findings"])
def test_cli_actions(cli_path, capsys, action):
    assert main(["--db", cli_path, "network", action, "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") >= 1


def test_cli_plan_summary_and_analyze(cli_path, capsys):
    assert main(["--db", cli_path, "network", "plan", "--summary", "--format", "json"]) == 0
    assert "jain_after" in capsys.readouterr().out
    assert main(["--db", cli_path, "network", "analyze"]) == 0
    assert "plan:" in capsys.readouterr().out
    assert main(["--db", cli_path, "network", "plan", "--rssi-floor", "99"]) == 2


def test_an_empty_store_has_no_findings_and_an_empty_plan(fleet):
    fleet.network.analyze()
    assert fleet.network.findings() == []
    plan = fleet.network.plan()
    assert plan.moves == [] and plan.summary == []
    assert fleet.network.summary()[0].startswith("0 gateways over capacity")
