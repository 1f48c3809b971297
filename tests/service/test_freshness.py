"""The freshness view: last run, coverage, duration, items, failures and staleness."""

from __future__ import annotations

import pytest

from tsfleet import InvalidParameter
from tsfleet.power import Power


def readings(device: str, day: int, value: float) -> list[dict]:
    return [{"device_id": device, "observed_at": f"2026-03-{day:02d}T{h:02d}:00Z",
             "metric": "battery_pct", "value": value - h * 0.01} for h in range(24)]


def fresh(fleet) -> dict[str, dict]:
    return {r["analysis"]: r for r in fleet.query("select * from freshness")}


def max_batch(fleet) -> int:
    return fleet.query("select max(batch_id) as b from ingest_batches")[0]["b"]


def boom(self, devices=None):
    raise RuntimeError("injected failure")


def test_freshness_reports_runs_coverage_failures_retries_and_staleness(fleet, monkeypatch):
    assert fleet.query("select * from freshness") == []
    fleet.ingest("readings", readings("d1", 1, 90) + readings("d2", 1, 80))
    results = {r.analysis: r for r in fleet.analyze(only="firmware,power")}
    assert {r.status for r in results.values()} == {"ok"}
    f = fresh(fleet)
    assert set(f) == {"firmware", "power"}
    for row in f.values():
        assert row["status"] == "ok" and row["error"] is None
        assert row["covered_batch_id"] == max_batch(fleet)
        assert (row["pending_batches"], row["stale_s"], row["n_failures_since_ok"]) == (0, 0, 0)
        assert row["oldest_pending_at"] is None and row["duration_s"] > 0
        assert str(row["data_until"]) == "2026-03-01 23:00:00"

    fleet.ingest("readings", readings("d1", 2, 89))
    batch = fleet.query("select batch_id, finished_at from ingest_batches "
                        "order by batch_id desc limit 1")[0]
    f = fresh(fleet)["power"]
    assert f["pending_batches"] == 1 and f["stale_s"] >= 0
    assert f["oldest_pending_at"] == batch["finished_at"].replace(tzinfo=None)
    ok_at = f["last_ok_at"]

    monkeypatch.setattr(Power, "analyze", boom)
    for attempt in (1, 2):  # failed, recorded, retried at the next call
        [r] = fleet.analyze(only="power")
        assert r.status == "failed" and "injected failure" in r.error
        f = fresh(fleet)["power"]
        assert (f["status"], f["n_failures_since_ok"], f["last_ok_at"]) == ("failed", attempt,
                                                                             ok_at)
        assert "RuntimeError: injected failure" in f["error"] and f["pending_batches"] == 1
    monkeypatch.undo()

    [r] = fleet.analyze(only="power")
    assert (r.status, r.n_items) == ("ok", 1)  # incremental: only d1 had new data
    f = fresh(fleet)["power"]
    assert (f["status"], f["n_failures_since_ok"], f["pending_batches"], f["stale_s"]) == (
        "ok", 0, 0, 0)
    assert str(f["data_until"]) == "2026-03-02 23:00:00"
    runs = fleet.query("select status, is_incremental from analysis_runs "
                       "where analysis = 'power' order by run_id")
    assert [r["status"] for r in runs] == ["ok", "failed", "failed", "ok"]
    assert runs[-1]["is_incremental"]


def test_nothing_new_is_skipped_and_alerts_rerun_after_other_results_change(fleet):
    fleet.ingest("readings", readings("d1", 1, 90))
    assert [r.status for r in fleet.analyze(only="power,alerts")] == ["ok", "ok"]
    n_runs = fleet.query("select count(*) as n from analysis_runs")[0]["n"]
    assert [r.status for r in fleet.analyze(only="power,alerts")] == ["skipped", "skipped"]
    assert fleet.query("select count(*) as n from analysis_runs")[0]["n"] == n_runs
    fleet.analyze(only="power", force=True)  # new power results, no new data
    assert fleet.analyze(only="alerts")[0].status == "ok"


def test_a_domain_that_leaves_a_transaction_open_does_not_block_ingest(fleet, monkeypatch):
    def half_done(self, devices=None):
        self.con.execute("BEGIN TRANSACTION")
        self.con.execute("delete from battery_forecast")
        raise RuntimeError("died mid-write")

    fleet.ingest("readings", readings("d1", 1, 90))
    monkeypatch.setattr(Power, "analyze", half_done)
    assert fleet.analyze(only="power")[0].status == "failed"
    assert fleet.ingest("readings", readings("d1", 2, 89)).n_accepted == 24
    assert fresh(fleet)["power"]["pending_batches"] == 2


def test_unknown_or_missing_analyses_are_refused():
    with pytest.raises(InvalidParameter, match="unknown analysis"):
        from tsfleet.service.runner import parse_only
        parse_only("power,weather")
