"""``tsfleet retention --quarantine-days N`` deletes what ingest set aside more than N days
ago (quarantined rows, unmapped fields and payloads) with its texts in ``text_pieces``,
keeps what is newer, and records the run; without the option nothing of it is touched."""

from __future__ import annotations

import json

import pytest

from tests.live.test_hostile import Run
from tsfleet import Fleet, InvalidParameter
from tsfleet.cli import main

LONG = "x" * 5000          # a text of many pieces
OLD_DAYS = 40              # how long ago the "old" half was received


def _unmapped(device: str, field: str) -> bytes:
    """A vendor payload with one field no mapping knows (kept in unmapped_items)."""
    return json.dumps({"vendor": "acme", "dev": device, "ts": 1780000000, "tempF": 70,
                       field: LONG}).encode()


@pytest.fixture
def store():
    """A store with rejected payloads and unmapped fields, half of them received
    OLD_DAYS ago, and a quarantined row of a file ingest of each age."""
    run = Run()
    run.send([(b'["not json' + str(i).encode() + LONG.encode(), None) for i in range(4)]
             + [(_unmapped(f"dev{i}", f"field{i}"), None) for i in range(4)])
    f = run.fleet
    bad = [{"device_id": "d1", "observed_at": "2026-03-01T10:00Z", "metric": "temperature_c",
            "value": "warm"}]
    f.ingest("readings", bad)
    f.ingest("readings", bad + [{"device_id": "d2", "observed_at": "2026-03-01T10:00Z",
                                "metric": "temperature_c", "value": "hot"}])
    # the first half of each, by insertion, "received" OLD_DAYS ago
    f.con.execute("update quarantine_rows set quarantined_at = quarantined_at - to_days(?) "
                  "where (raw_text_id is not null and raw_text_id in (select raw_text_id from "
                  "quarantine_rows where raw_text_id is not null order by raw_text_id limit 2))"
                  " or (raw_text_id is null and batch_id = (select min(batch_id) from "
                  "quarantine_rows where raw_text_id is null))", [OLD_DAYS])
    f.con.execute("update unmapped_item_rows set received_at = received_at - to_days(?) "
                  "where payload_sha256 in (select payload_sha256 from unmapped_item_rows "
                  "order by field_text_id limit 2)", [OLD_DAYS])
    yield f
    f.close()


def _counts(f) -> dict[str, int]:
    return f.query("select (select count(*) from quarantine_rows) as quarantined, "
                   "(select count(*) from unmapped_item_rows) as items, "
                   "(select count(*) from unmapped_payload_rows) as payloads, "
                   "(select count(distinct text_id) from text_pieces) as texts")[0]


def test_old_set_aside_rows_go_with_their_texts_and_newer_ones_stay_whole(store):
    before = _counts(store)
    assert before["quarantined"] == 4 + 3 and before["items"] == 4 and before["payloads"] == 4
    new_raw = {r["raw"] for r in store.query(
        "select raw from quarantine where quarantined_at > now() - interval 1 day")}
    res = store.retain(quarantine_days=30)
    assert (res.n_quarantine_deleted, res.n_unmapped_deleted) == (2 + 1, 2)
    after = _counts(store)
    assert after["quarantined"] == 4 and after["items"] == 2 and after["payloads"] == 2
    # texts: each rejected payload, each unmapped payload and each long unmapped value
    assert after["texts"] == before["texts"] - 2 - 2 - 2
    # nothing left points at a deleted text, and what is kept reads back whole
    assert {r["raw"] for r in store.query("select raw from quarantine")} == new_raw
    assert all(len(r["value"]) == len(LONG) for r in store.query(
        "select value from unmapped_items where field like 'field%'"))
    assert store.query("select count(*) as n from text_pieces p where not exists (select 1 "
                       "from quarantine_rows q where q.raw_text_id = p.text_id) and not exists "
                       "(select 1 from unmapped_payload_rows u where u.payload_text_id = "
                       "p.text_id) and not exists (select 1 from unmapped_item_rows i where "
                       "p.text_id in (i.field_text_id, i.value_text_id, i.unit_text_id))"
                       ) == [{"n": 0}]
    run = store.query("select quarantine_days, n_quarantine_deleted, n_unmapped_deleted, "
                      "cutoff_at from retention_runs")
    assert run == [{"quarantine_days": 30, "n_quarantine_deleted": 3, "n_unmapped_deleted": 2,
                    "cutoff_at": res.cutoff_at}]
    again = store.retain(quarantine_days=30)
    assert (again.n_quarantine_deleted, again.n_unmapped_deleted) == (0, 0)


def test_without_the_option_nothing_set_aside_is_touched(store):
    before = _counts(store)
    res = store.retain(raw_days=7)
    assert res.quarantine_cutoff_at is None and _counts(store) == before
    assert store.query("select quarantine_days, n_quarantine_deleted from retention_runs") == [
        {"quarantine_days": None, "n_quarantine_deleted": None}]


def test_a_store_without_readings_still_has_its_quarantine_cut():
    run = Run()
    run.send([(b'["not json', None)])
    run.fleet.con.execute("update quarantine_rows set quarantined_at = now() - interval 9 days")
    res = run.fleet.retain(quarantine_days=7)
    assert res.cutoff_at is None and res.n_quarantine_deleted == 1
    assert _counts(run.fleet) == {"quarantined": 0, "items": 0, "payloads": 0, "texts": 0}
    with pytest.raises(InvalidParameter, match="quarantine_days >= 1"):
        run.fleet.retain(quarantine_days=0)
    run.fleet.close()


def test_the_cli_says_what_it_deleted_in_one_sentence_each(tmp_path, capsys):
    db = str(tmp_path / "q.duckdb")
    with Fleet(db) as f:
        f.ingest("readings", [{"device_id": "d", "observed_at": "2026-03-01T10:00Z",
                               "metric": "temperature_c", "value": "warm"}])
        f.con.execute("update quarantine_rows set quarantined_at = now() - interval 50 days")
    capsys.readouterr()
    assert main(["--db", db, "retention", "--quarantine-days", "30"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "no readings to roll up"
    assert out[1].startswith("received before ") and out[1].endswith(
        " UTC: 1 quarantined rows and 0 unmapped fields deleted")
    assert max(map(len, out)) <= 120
    assert main(["--db", db, "retention", "--quarantine-days", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--quarantine-days" in err[0]
