"""The keys that de-duplicate live payloads are bounded (session 25): DuckDB holds a
primary-key index in memory, so a key kept for every distinct payload grew ``serve`` with
each payload a sender made up. The writer keeps the newest ``keys_kept`` keys of
``quarantine_payloads`` and ``unmapped_keys``; every payload itself is still kept."""

from __future__ import annotations

from tests.live.test_hostile import Run
from tsfleet.live.hostile import T0
from tsfleet.live.senml import encode_json


def _counts(run: Run) -> dict[str, int]:
    return run.fleet.query(
        "select (select count(*) from quarantine_payloads) as q_keys, "
        "(select count(*) from quarantine where kind = 'payload') as quarantined, "
        "(select count(*) from unmapped_keys) as u_keys, "
        "(select count(*) from unmapped_payloads) as u_payloads, "
        "(select count(*) from unmapped_items) as u_fields")[0]


def _settle(run: Run) -> None:
    assert run.writer.sync(30)  # the keys are cut back before a sync is answered


def test_the_dedup_keys_stay_bounded_and_every_payload_is_kept():
    run = Run(keys_kept=20)
    run.writer.start()
    broken = [b'[{"bn":"d/","n":"temp","v":' + str(i).encode() for i in range(100)]
    unknown = [encode_json([{"bn": "d/", "bt": T0 + i, "n": "mystery", "u": "furlong",
                             "v": 1.0}]) for i in range(100)]
    highest = {"q_keys": 0, "u_keys": 0}
    for r in range(10):  # ten rounds of ten new payloads of each kind
        for i in range(10 * r, 10 * r + 10):
            run.writer.submit(run.env(i, broken[i]))
            run.writer.submit(run.env(1000 + i, unknown[i]))
        _settle(run)
        got = _counts(run)
        for k in highest:
            highest[k] = max(highest[k], got[k])
    # at most keys_kept + one batch's keys, never the 100 distinct payloads
    assert 20 <= highest["q_keys"] <= 29 and 20 <= highest["u_keys"] <= 29
    assert _counts(run) == {"q_keys": got["q_keys"], "quarantined": 100,
                            "u_keys": got["u_keys"], "u_payloads": 100, "u_fields": 100}
    # the newest keys are the ones kept: a recent payload sent again is stored once
    run.writer.submit(run.env(2000, broken[99]))
    run.writer.submit(run.env(2001, unknown[99]))
    _settle(run)
    assert {k: v for k, v in _counts(run).items() if k in ("quarantined", "u_payloads")} == {
        "quarantined": 100, "u_payloads": 100}
    # one whose key has left the window is stored again (documented in docs/live.md)
    run.writer.submit(run.env(2002, broken[0]))
    run.writer.submit(run.env(2003, unknown[0]))
    _settle(run)
    got = _counts(run)
    assert (got["quarantined"], got["u_payloads"], got["u_fields"]) == (101, 101, 101)
    assert run.writer.error is None and len(run.acked) == 204
    run.writer.stop()
