"""Alerts pushed into a real Alertmanager (Debian's binary, started on 127.0.0.1 with a
temp config and storage) through its v2 API, read back from that API: firing alerts
with labels, annotations and generatorURL, re-sent before they expire, and resolved."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.alerts.alerting_helpers import finding
from tests.service.monitoring_support import LocalAlertmanager, find
from tsfleet import Fleet
from tsfleet.alerts import RetryPolicy, parse_rules
from tsfleet.cli import main
from tsfleet.results import now_utc

pytestmark = pytest.mark.skipif(
    find("prometheus-alertmanager") is None and find("alertmanager") is None,
    reason="Alertmanager is not installed (apt-get install prometheus-alertmanager)")

FAST = RetryPolicy(max_attempts=3, timeout_s=5.0, backoff_s=0.05, max_backoff_s=0.2)
PACK = parse_rules("""
[[rule]]
name = "GatewayDown"
source = "network_findings"
condition = "finding = 'gateway_down'"
annotations = { summary = "{subject_id} is down" }
""")


@pytest.fixture(scope="module")
def am():
    a = LocalAlertmanager().start()
    yield a
    a.close()


def gateways(*names):
    return [finding("network", "gateway_down", n, subject_kind="gateway", site="plant-a",
                    severity="critical") for n in names]


def by_subject(alerts):
    return {a["labels"].get("subject_id"): a for a in alerts}


def test_firing_alerts_reach_alertmanager_and_a_resolve_reaches_it_too(fleet, findings, am):
    t0 = now_utc() - timedelta(seconds=120)  # Alertmanager keeps wall time: the story is past
    findings(fleet, "network", gateways("gw-1", "gw-2"))
    fleet.alerts.evaluate(PACK, at=t0)
    report = fleet.alerts.push_alertmanager(am.url, at=t0, policy=FAST,
                                            generator="http://tsfleet.test/alerts")
    assert report.ok and (report.n_firing, report.n_resolved) == (2, 0), report
    got = by_subject(am.alerts(active="true"))
    assert set(got) == {"gw-1", "gw-2"}
    a = got["gw-1"]
    assert a["status"]["state"] == "active"
    assert a["labels"]["alertname"] == "GatewayDown" and a["labels"]["site"] == "plant-a"
    assert a["annotations"]["summary"] == "gw-1 is down"
    fp = next(r["fingerprint"] for r in fleet.alerts.list_alerts()
              if "gw-1" in r["labels"])
    assert a["generatorURL"] == f"http://tsfleet.test/alerts/{fp}"
    # valid five minutes ahead, re-sent only once a minute has passed
    assert a["endsAt"].startswith((t0 + timedelta(seconds=300)).strftime("%Y-%m-%dT%H:%M"))
    assert fleet.alerts.push_alertmanager(am.url, at=t0 + timedelta(seconds=30)).result is None
    again = fleet.alerts.push_alertmanager(am.url, at=t0 + timedelta(seconds=61), policy=FAST)
    assert again.n_firing == 2
    later = by_subject(am.alerts(active="true"))["gw-1"]
    assert later["endsAt"] > a["endsAt"]                    # extended: it does not expire
    # gw-2 recovers: tsfleet resolves it and Alertmanager shows it resolved
    t1 = t0 + timedelta(seconds=90)
    findings(fleet, "network", gateways("gw-1"))
    fleet.alerts.evaluate(PACK, at=t1)
    report = fleet.alerts.push_alertmanager(am.url, at=t1, policy=FAST)
    assert (report.n_firing, report.n_resolved) == (0, 1), report
    active = by_subject(am.alerts(active="true", inhibited="false", silenced="false"))
    assert "gw-2" not in active and "gw-1" in active
    assert fleet.alerts.push_alertmanager(am.url, at=t1 + timedelta(seconds=5)).result is None


def test_an_unreachable_alertmanager_loses_nothing(fleet, findings, am):
    from tsfleet.live.broker import free_port

    t0 = now_utc()
    findings(fleet, "network", gateways("gw-9"))
    fleet.alerts.evaluate(PACK, at=t0)
    dead = f"http://127.0.0.1:{free_port()}"
    report = fleet.alerts.push_alertmanager(dead, at=t0, policy=FAST)
    assert not report.ok and "failed" in str(report)
    # the next push to that URL, once it answers, sends the alert: nothing was recorded
    assert fleet.query("select count(*) as n from alertmanager_pushes")[0]["n"] == 0
    assert fleet.alerts.push_alertmanager(am.url, at=t0, policy=FAST).n_firing == 1
    assert "gw-9" in by_subject(am.alerts(active="true"))


def test_cli_alerts_notify_alertmanager(tmp_path, am, capsys, findings):
    db = str(tmp_path / "am.duckdb")
    with Fleet(db) as f:
        findings(f, "network", gateways("gw-cli"))
        f.alerts.evaluate(PACK, at=now_utc())
    assert main(["--db", db, "alerts", "notify", "--alertmanager", am.url]) == 0
    out = capsys.readouterr().out
    assert "1 firing and 0 resolved alerts pushed: accepted" in out
    assert "gw-cli" in by_subject(am.alerts(active="true"))
    assert main(["--db", db, "alerts", "notify"]) == 2
    assert "give a webhook URL" in capsys.readouterr().err


def test_serve_pushes_to_alertmanager_between_commits(tmp_path, am, findings):
    import threading
    import time

    from tsfleet.live.server import ServeConfig, Server

    db = str(tmp_path / "serve-am.duckdb")
    with Fleet(db) as f:
        findings(f, "network", gateways("gw-serve"))
        f.alerts.evaluate(PACK, at=now_utc())
    server = Server(ServeConfig(db=db, alertmanager=am.url))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "gw-serve" not in by_subject(am.alerts()):
            time.sleep(0.2)
        assert "gw-serve" in by_subject(am.alerts(active="true"))
    finally:
        server.stop()
        t.join(60)
