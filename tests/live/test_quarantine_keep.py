"""``serve --quarantine-keep N``: the writer keeps the newest N quarantined live rows and N
unmapped fields, with their texts, so that a sender making up bad payloads cannot grow the
store without end; rows of file ingests, readings and the rest are untouched."""

from __future__ import annotations

import json
import logging
import re

import pytest

from tests.live.test_hostile import Run
from tsfleet.cli import main
from tsfleet.errors import InvalidParameter
from tsfleet.live import cli as live_cli
from tsfleet.live.server import ServeConfig
from tsfleet.live.writer import DEFAULT_QUARANTINE_KEEP

LONG = "y" * 3000


def _bad(i: int) -> bytes:
    return b'["not json ' + str(i).encode() + LONG.encode()


def _good(i: int) -> bytes:
    return json.dumps([{"bn": f"good-{i}/", "bt": 1780000000 + i, "n": "temp", "u": "Cel",
                        "v": 20.5}]).encode()


def _unmapped(i: int) -> bytes:
    return json.dumps({"vendor": "acme", "dev": f"u-{i}", "ts": 1780000000 + i, "tempF": 70,
                       f"extra{i}": LONG, f"other{i}": "z"}).encode()


def _rounds(run: Run, rounds: list[list[bytes]]) -> None:
    """Each round one batch: submitted, then committed (and cut back) before the next."""
    run.writer.start()
    n = 0
    for payloads in rounds:
        for p in payloads:
            run.writer.submit(run.env(n, p))
            n += 1
        assert run.writer.sync(60)
    assert run.writer.error is None and len(run.acked) == n


def _texts(run: Run) -> set[int]:
    return {r["t"] for r in run.fleet.query("select distinct text_id as t from text_pieces")}


def test_the_newest_quarantined_live_rows_stay_and_older_go_with_their_texts(caplog):
    run = Run(set_aside_keep=10, set_aside_every=0)
    run.fleet.ingest("readings", [{"device_id": "f", "observed_at": "2026-03-01T10:00Z",
                                   "metric": "temperature_c", "value": "warm"}])  # a file's
    rounds = [[_bad(10 * r + i) for i in range(8)] + [_good(r)] for r in range(3)]
    with caplog.at_level(logging.WARNING, logger="tsfleet.live"):
        _rounds(run, rounds)
    live = run.fleet.query("select raw from quarantine where source like 'live:%'")
    # 24 rejected in all: each cut keeps the newest 8 (80% of 10), whole batches
    assert sorted(json.loads(r["raw"])["payload"] for r in live) == sorted(
        p.decode() for p in rounds[2][:8])
    assert run.fleet.query("select count(*) as n from quarantine where source not like "
                           "'live:%'") == [{"n": 1}]
    assert _texts(run) == {r["t"] for r in run.fleet.query(
        "select raw_text_id as t from quarantine_rows where raw_text_id is not null")}
    assert run.fleet.query("select count(distinct device_id) as n from readings "
                           "where device_id like 'good-%'") == [{"n": 3}]
    assert run.writer.stats.n_set_aside_deleted == {"quarantine_rows": 16}
    said = [r.getMessage() for r in caplog.records if "oldest" in r.getMessage()]
    assert len(said) == 2 and all(re.fullmatch(
        r"live: deleted the 8 oldest quarantined live rows with their texts, keeping the "
        r"newest 8 \(serve --quarantine-keep 10; \d+\.\d s\)", m) for m in said), said


def test_unmapped_fields_are_cut_back_with_their_payloads_and_texts():
    run = Run(set_aside_keep=5, set_aside_every=0)
    rounds = [[_unmapped(10 * r + i) for i in range(2)] for r in range(4)]
    _rounds(run, rounds)
    # 2 unmapped fields a payload; rounds of 4 fields: after each cut the newest 4 stay
    items = run.fleet.query("select field from unmapped_items order by field")
    assert [r["field"] for r in items] == ["extra30", "extra31", "other30", "other31"]
    assert run.fleet.query("select count(*) as n from unmapped_payloads") == [{"n": 2}]
    kept = run.fleet.query("select payload_text_id as t from unmapped_payload_rows union "
                           "select unnest([field_text_id, value_text_id, unit_text_id]) "
                           "from unmapped_item_rows")
    assert _texts(run) == {r["t"] for r in kept if r["t"] is not None}
    assert len(_texts(run)) == 2 + 2   # each payload's text and each long value


def test_without_a_limit_every_row_stays():
    run = Run(set_aside_keep=None, set_aside_every=0)
    _rounds(run, [[_bad(10 * r + i) for i in range(8)] for r in range(3)])
    assert run.fleet.query("select count(*) as n from quarantine") == [{"n": 24}]
    assert run.writer.stats.n_set_aside_deleted == {}


def test_the_option_parses_off_and_refuses_a_typo_in_one_line(capsys):
    assert ServeConfig(db="x").quarantine_keep == DEFAULT_QUARANTINE_KEEP
    ServeConfig(db="x", quarantine_keep=None).check()
    with pytest.raises(InvalidParameter, match="quarantine_keep must be 1 or more rows"):
        ServeConfig(db="x", quarantine_keep=0).check()
    assert live_cli.QUARANTINE_KEEP == DEFAULT_QUARANTINE_KEEP
    assert live_cli.rows_or_off("off") is None and live_cli.rows_or_off("500") == 500
    for bad in ("0", "lots"):
        with pytest.raises(SystemExit) as exc:
            main(["serve", "--mqtt", "127.0.0.1:1", "--quarantine-keep", bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--quarantine-keep" in err[0] and "off" in err[0], err


def test_a_cut_that_fails_is_logged_and_ingest_goes_on(caplog):
    run = Run(set_aside_keep=2, set_aside_every=0)
    run.fleet.con.execute("alter table unmapped_item_rows rename to unmapped_item_away")
    with caplog.at_level(logging.WARNING, logger="tsfleet.live"):
        _rounds(run, [[_bad(i), _good(i)] for i in range(3)])
    assert run.fleet.query("select count(*) as n from quarantine_rows") == [{"n": 1}]
    assert run.fleet.query("select count(*) as n from readings") == [{"n": 3}]
    failed = [r.getMessage() for r in caplog.records if "cutting back" in r.getMessage()]
    assert failed and all(m.startswith("live: cutting back unmapped_item_rows failed: ")
                          for m in failed)


def test_a_batch_that_straddles_the_mark_goes_whole_and_the_log_says_what_is_left(caplog):
    run = Run(set_aside_keep=5, set_aside_every=0)
    with caplog.at_level(logging.WARNING, logger="tsfleet.live"):
        _rounds(run, [[_bad(i) for i in range(3)], [_bad(10 + i) for i in range(6)]])
    # 9 rows in two batches: the newest 4 would split the second batch, so both go
    assert run.fleet.query("select count(*) as n from quarantine_rows") == [{"n": 0}]
    assert run.fleet.query("select count(*) as n from text_pieces") == [{"n": 0}]
    said = [r.getMessage() for r in caplog.records if "oldest" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(
        "live: deleted the 9 oldest quarantined live rows with their texts, keeping the "
        "newest 0 (serve --quarantine-keep 5; "), said
