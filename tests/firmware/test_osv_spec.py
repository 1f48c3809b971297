"""OSV evaluation as the schema's ``IsVulnerable`` pseudocode defines it: every
event kind, unsorted events, several ranges and limits, ``versions`` lists, build
metadata, GIT ranges skipped with a note, and per-feed package mapping.

The cases are constructed for tsfleet; the four range shapes of the schema's
"Examples" section are restated here as facts (which versions they cover)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsfleet import Fleet
from tsfleet.cli import main
from tsfleet.firmware.osv import Range, parse_record, range_affects
from tsfleet.firmware.versions import SCHEMES

SEM = SCHEMES["semver"]
DOTTED = SCHEMES["dotted"]


def judged(events, version, scheme=SEM):
    return range_affects(scheme.parse(version), Range("SEMVER", tuple(events)), scheme)


# -- the schema's examples --------------------------------------------------------------
def test_unfixed_every_version_is_affected():
    assert all(judged([("introduced", "0")], v) for v in ("0.0.0-a", "0.0.1", "99.0.0"))


def test_fixed_everything_before_the_fix():
    ev = [("introduced", "0"), ("fixed", "1.0.2")]
    assert [judged(ev, v) for v in ("0.1.0", "1.0.1", "1.0.2-rc.1", "1.0.2", "1.0.3")] == [
        True, True, True, False, False]


def test_two_intervals_in_one_range():
    ev = [("introduced", "1.0.0"), ("fixed", "1.0.2"), ("introduced", "3.0.0"),
          ("fixed", "3.2.5")]
    cases = {"0.9.9": False, "1.0.0": True, "1.0.1": True, "1.0.2": False, "2.5.0": False,
             "3.0.0": True, "3.2.4": True, "3.2.5": False, "4.0.0": False}
    assert {v: judged(ev, v) for v in cases} == cases
    # the same events in any order give the same answers
    assert {v: judged(list(reversed(ev)), v) for v in cases} == cases
    assert {v: judged([ev[3], ev[0], ev[2], ev[1]], v) for v in cases} == cases


def test_last_affected_includes_itself_fixed_does_not():
    last = [("introduced", "0"), ("last_affected", "2.1.214")]
    fixed = [("introduced", "0"), ("fixed", "2.1.214")]
    assert (judged(last, "2.1.214"), judged(fixed, "2.1.214")) == (True, False)
    assert (judged(last, "2.1.213"), judged(fixed, "2.1.213")) == (True, True)
    assert (judged(last, "2.1.215"), judged(fixed, "2.1.215")) == (False, False)


# -- limits -----------------------------------------------------------------------------
def test_a_version_must_be_below_any_limit_not_every_limit():
    ev = [("introduced", "0"), ("limit", "2.0.0"), ("limit", "5.0.0")]
    assert [judged(ev, v) for v in ("1.0.0", "3.0.0", "4.9.9", "5.0.0", "6.0.0")] == [
        True, True, True, False, False]
    # limits apply to the walk's result, not in place of it
    ev = [("introduced", "1.0.0"), ("fixed", "1.5.0"), ("limit", "1.2.0"), ("limit", "1.1.0")]
    assert [judged(ev, v) for v in ("0.5.0", "1.0.0", "1.1.5", "1.2.0")] == [
        False, True, True, False]


def test_star_limit_is_infinity_and_no_limit_is_unbounded():
    assert judged([("introduced", "1.0.0"), ("limit", "*")], "900.0.0")
    assert judged([("introduced", "1.0.0"), ("limit", "1.5.0"), ("limit", "*")], "9.0.0")
    assert judged([("introduced", "1.0.0")], "900.0.0")
    assert not judged([("introduced", "1.0.0"), ("limit", "1.0.0")], "1.0.0")


# -- build metadata (SemVer section 10) -------------------------------------------------
def test_build_metadata_has_no_precedence_in_ranges():
    assert judged([("introduced", "0"), ("last_affected", "1.0.0")], "1.0.0+build.7")
    assert not judged([("introduced", "0"), ("fixed", "1.0.0")], "1.0.0+build.7")
    assert judged([("introduced", "1.0.0+build.1")], "1.0.0")
    assert not judged([("introduced", "0"), ("limit", "1.0.0+zzz")], "1.0.0+aaa")
    assert not judged([("introduced", "0"), ("last_affected", "1.0.0+b")], "1.0.1")


def test_the_same_scheme_walk_for_ecosystem_ranges():
    ev = (("introduced", "1.2"), ("fixed", "1.10"))
    rng = Range("ECOSYSTEM", ev)
    assert [range_affects(DOTTED.parse(v), rng, DOTTED) for v in ("1.1.9", "1.02", "1.9.99",
                                                                  "1.10.0")] == [
        False, True, True, False]


# -- a second formulation: the last event that applies decides ----------------------------
@st.composite
def ranges(draw):
    """Events at distinct versions n.0.0 (n in 1..20), in any order, at least one
    introduced (maybe "0"), fixed or last_affected but not both, maybe limits."""
    points = draw(st.lists(st.integers(1, 20), min_size=1, max_size=7, unique=True))
    closing = draw(st.sampled_from(["fixed", "last_affected"]))
    kinds = draw(st.lists(st.sampled_from(["introduced", closing, "limit"]),
                          min_size=len(points), max_size=len(points)))
    events = [(k, f"{p}.0.0") for k, p in zip(kinds, points, strict=True)]
    if draw(st.booleans()) or not any(k == "introduced" for k, _ in events):
        events.append(("introduced", "0"))
    return draw(st.permutations(events))


def last_event_decides(events, n):
    """Affected when below any limit and the highest-versioned event that applies to
    version n (introduced/fixed at or below it, last_affected strictly below) is an
    introduced one."""
    at = {e: (0 if v == "0" else int(v.split(".")[0])) for e, v in ((e, e[1]) for e in events)}
    limits = [at[e] for e in events if e[0] == "limit"]
    if limits and not any(n < lim for lim in limits):
        return False
    applies = [e for e in events if (e[0] in ("introduced", "fixed") and at[e] <= n)
               or (e[0] == "last_affected" and at[e] < n)]
    return bool(applies) and max(applies, key=lambda e: at[e])[0] == "introduced"


@settings(max_examples=300, deadline=None)
@given(events=ranges(), n=st.integers(0, 22))
def test_the_walk_equals_the_last_applicable_event(events, n):
    assert judged(events, f"{n}.0.0") is last_event_decides(events, n)


# -- whole records through the store ----------------------------------------------------
@pytest.fixture
def acme(fleet):
    fleet.ingest("devices", [dict(device_id=f"th-{v}", device_type="t", manufacturer="Acme",
                                  model="TH-200", site="s", zone="z")
                             for v in ("a", "b", "c", "d")])
    fleet.ingest("devices", [dict(device_id="gw-1", device_type="g", manufacturer="Acme",
                                  model="GW-9", site="s", zone="z")])
    fleet.ingest("firmware_releases", [dict(manufacturer="Acme", model="TH-200", version=v,
                                            status="approved")
                                       for v in ("1.0.0", "1.2.0", "2.0.0", "3.0.0")])
    fleet.firmware.ingest_reports([
        dict(device_id=d, reported_at="2026-06-01T00:00Z", version=v)
        for d, v in (("th-a", "1.0.0+build.7"), ("th-b", "1.2.0"), ("th-c", "2.0.0"),
                     ("th-d", "3.0.0"), ("gw-1", "1.2.0"))])
    return fleet


def vulnerable(fleet):
    return {r["device_id"]: r["advisories"] for r in fleet.firmware.inventory()
            if r["is_vulnerable"]}


GIT_AND_SEMVER = {
    "id": "TSF-GIT-1", "summary": "a record osv.dev would carry for a C library",
    "affected": [{
        "package": {"ecosystem": "Acme-firmware", "name": "th200-fw"},
        "ranges": [
            {"type": "GIT", "repo": "https://example.invalid/th200.git",
             "events": [{"introduced": "4a1c2e0d" * 5}, {"fixed": "9f00bb11" * 5}]},
            {"type": "SEMVER", "events": [{"introduced": "0"}, {"last_affected": "1.0.0"}]},
        ],
        "versions": ["th200-v2.0.0", "3.0.0"]}],
}


def test_git_range_is_skipped_with_a_note_and_the_rest_is_judged(acme):
    acme.firmware.map_osv_package("th200-fw", "Acme", "TH-200")
    report = acme.firmware.load_osv([GIT_AND_SEMVER])
    assert (report.n_accepted, report.n_quarantined) == (1, 0)
    # last_affected 1.0.0 covers 1.0.0+build.7; 3.0.0 is listed; 1.2.0, 2.0.0 are not
    assert vulnerable(acme) == {"th-a": "TSF-GIT-1", "th-d": "TSF-GIT-1"}
    notes = acme.query("select notes from firmware_advisories")[0]["notes"]
    assert "1 GIT range(s) not judged" in notes
    assert "'th200-v2.0.0' is not a semver version" in notes


def test_unmapped_package_is_quarantined_and_mapping_later_judges_it(acme):
    rec = {"id": "TSF-2", "affected": [{"package": {"ecosystem": "Zephyr", "name": "zephyr"},
                                        "ranges": [{"type": "SEMVER", "events": [
                                            {"introduced": "1.1.0"}, {"fixed": "2.0.0"}]}]}]}
    report = acme.firmware.load_osv([rec])
    assert report.n_quarantined == 1 and report.quarantined_by_reason["unmapped_package"] == 1
    detail = acme.query("select detail from quarantine where kind = 'osv_advisories'")[0]
    assert "'zephyr' (Zephyr)" in detail["detail"] and "osv-map" in detail["detail"]
    # model '*': every model of the manufacturer; only for this feed
    acme.firmware.map_osv_package("zephyr", "Acme", ecosystem="Zephyr", feed="rtos")
    assert acme.firmware.load_osv([rec]).n_quarantined == 1          # default feed: no rule
    assert acme.firmware.load_osv([rec], feed="rtos").n_accepted == 1
    assert vulnerable(acme) == {"th-b": "TSF-2", "gw-1": "TSF-2"}
    assert acme.query("select feed, notes from firmware_advisories") == [
        {"feed": "rtos", "notes": None}]
    # rules of the same specificity add up; a stored record is re-judged at once
    acme.firmware.map_osv_package("zephyr", "Acme", "TH-300", ecosystem="Zephyr", feed="rtos")
    assert vulnerable(acme) == {"th-b": "TSF-2", "gw-1": "TSF-2"}
    acme.con.execute("update firmware_osv_packages set model = 'GW-9' where model = '*'")
    acme.con.execute("delete from firmware_osv_packages where model = 'TH-300'")
    acme.firmware.analyze()
    assert vulnerable(acme) == {"gw-1": "TSF-2"}


def test_most_specific_rule_wins(acme):
    rec = {"id": "TSF-3", "affected": [{"package": {"ecosystem": "Vendor", "name": "fw"},
                                        "versions": ["1.2.0"]}]}
    acme.firmware.map_osv_package("fw", "Acme", "TH-200")
    acme.firmware.map_osv_package("fw", "Acme", "GW-9", feed="gw-feed")
    acme.firmware.load_osv([rec], feed="gw-feed")
    assert vulnerable(acme) == {"gw-1": "TSF-3"}
    acme.firmware.load_osv([rec])
    assert vulnerable(acme) == {"th-b": "TSF-3"}


def test_an_unmapped_entry_beside_a_mapped_one_is_noted():
    rec = {"id": "TSF-4", "affected": [
        {"package": {"name": "Acme/TH-200"}, "versions": ["1.0.0"]},
        {"package": {"name": "left-pad", "ecosystem": "npm"},
         "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "x"}]}]}]}
    adv = parse_record(rec, lambda m, mo: SEM)
    assert [a.models for a in adv.affected] == [(("Acme", "TH-200"),), ()]
    assert adv.notes == ("left-pad (npm): maps to no fleet model; skipped",)


def test_cli_osv_map_and_feed(tmp_path, capsys):
    db = str(tmp_path / "f.duckdb")
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps({"vulns": [GIT_AND_SEMVER]}))
    with Fleet(db) as fleet:  # commands other than ingest, demo and serve never create one
        # the CLI maps only a model the store has (of a device or a release)
        fleet.ingest("devices", [dict(device_id="th-a", manufacturer="Acme", model="TH-200")])
    assert main(["--db", db, "firmware", "osv-map", "th200-fw", "Acme", "TH-200",
                 "--feed", "vendor"]) == 0
    out = capsys.readouterr().out
    assert "th200-fw" in out and "vendor" in out and max(map(len, out.splitlines())) <= 120
    assert main(["--db", db, "firmware", "osv", str(feed), "--feed", "vendor"]) == 0
    assert "1 accepted" in capsys.readouterr().out
    assert main(["--db", db, "firmware", "osv-map", "", "Acme"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "package must be a non-empty string" in err


def test_a_scheme_changed_after_loading_leaves_a_note_not_a_crash(acme):
    rec = {"id": "TSF-5", "affected": [{"package": {"name": "Acme/TH-200"},
                                        "ranges": [{"type": "ECOSYSTEM", "events": [
                                            {"introduced": "0"}, {"fixed": "1.2.0"}]}]}]}
    acme.firmware.load_osv([rec])
    assert vulnerable(acme) == {"th-a": "TSF-5"}
    acme.firmware.set_scheme("Acme", "letter", "TH-200")
    assert vulnerable(acme) == {}
    notes = acme.query("select notes from firmware_advisories")[0]["notes"]
    assert notes.startswith("not judged: TSF-5: '1.2.0' is not a letter version")
