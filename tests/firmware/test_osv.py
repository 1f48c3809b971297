"""OSV evaluation cases from the specification, and malformed feeds to quarantine."""

from __future__ import annotations

import json

import pytest

from tsfleet.errors import InvalidParameter
from tsfleet.firmware.osv import (
    Affected,
    InvalidAdvisory,
    Range,
    affects,
    parse_record,
    range_affects,
    read_feed,
)
from tsfleet.firmware.versions import SCHEMES

SEM = SCHEMES["semver"]
LETTER = SCHEMES["letter"]


def hit(events, version, scheme=SEM, rtype="ECOSYSTEM"):
    return range_affects(scheme.parse(version), Range(rtype, tuple(events)), scheme)


@pytest.mark.parametrize(("version", "expected"), [
    ("0.0.1", True), ("1.0.0", True), ("1.9.9", True), ("2.0.0-rc.1", True),
    ("2.0.0", False), ("3.0.0", False)])
def test_introduced_zero_fixed(version, expected):
    assert hit([("introduced", "0"), ("fixed", "2.0.0")], version) is expected


@pytest.mark.parametrize(("version", "expected"), [
    ("1.0.0", False), ("1.1.0", True), ("2.0.0", True), ("2.0.1", False)])
def test_last_affected_is_inclusive_fixed_is_not(version, expected):
    assert hit([("introduced", "1.1.0"), ("last_affected", "2.0.0")], version) is expected
    assert hit([("introduced", "1.1.0"), ("fixed", "2.0.0")], version) is (
        expected and version != "2.0.0")


@pytest.mark.parametrize(("version", "expected"), [
    ("0.5.0", True), ("1.4.9", True), ("1.5.0", False), ("1.9.0", False), ("5.0.0", False)])
def test_limit_bounds_the_range(version, expected):
    assert hit([("introduced", "0"), ("limit", "1.5.0")], version) is expected
    assert hit([("introduced", "0"), ("fixed", "3.0.0"), ("limit", "1.5.0")], version) is expected


def test_limit_star_is_unbounded_and_no_fix_stays_vulnerable():
    assert hit([("introduced", "R12"), ("limit", "*")], "R99Z", LETTER)
    assert hit([("introduced", "R12")], "R13", LETTER)
    assert not hit([("introduced", "R12")], "R11Z", LETTER)


def test_events_unsorted_and_reintroduced():
    events = [("fixed", "1.5.0"), ("introduced", "2.0.0"), ("introduced", "1.0.0"),
              ("fixed", "2.2.0")]
    assert [hit(events, v) for v in ("0.9.0", "1.0.0", "1.5.0", "1.9.0", "2.0.0", "2.1.9",
                                     "2.2.0")] == [False, True, False, False, True, True, False]


def test_explicit_versions_and_semver_ranges():
    entry = Affected("", "Edge/TM-1d", (("Edge", "TM-1d"),),
                     (Range("SEMVER", (("introduced", "1.0.0"),)),), ("R12B",))
    assert affects(entry, "R12B", LETTER)
    assert not affects(entry, "R12C", LETTER)
    assert not affects(entry, "R12~x", LETTER)     # unparsable: only an identical string
    dotted = SCHEMES["dotted"]
    entry = Affected("", "A/B", (("A", "B"),),
                     (Range("SEMVER", (("introduced", "0"), ("fixed", "1.2.0"))),),
                     ("1.02.003",))
    assert affects(entry, "1.2.3", dotted)          # the same version, other spelling
    assert affects(entry, "1.1.0", dotted)          # 1.1.0 is also valid SemVer
    assert not affects(entry, "1.01", dotted)       # not SemVer: the SEMVER range is skipped


def record(events=None, versions=None, name="Acme/TH-200", **extra):
    aff = {"package": {"ecosystem": "x", "name": name}}
    if events is not None:
        aff["ranges"] = [{"type": "ECOSYSTEM", "events": events}]
    if versions is not None:
        aff["versions"] = versions
    return {"id": "OSV-1", "affected": [aff], **extra}


def scheme_of(man, model):
    return SEM if (man, model) == ("Acme", "TH-200") else None


@pytest.mark.parametrize(("rec", "reason"), [
    ({"affected": []}, "missing_id"),
    ({"id": "X", "affected": []}, "no_affected"),
    ({"id": "X", "affected": [{"package": {"name": "nomodel"}, "versions": ["1.0.0"]}]},
     "unmapped_package"),
    ({"id": "X", "affected": [{"package": {"name": ""}}]}, "bad_package"),
    ({"id": "X", "affected": [{"package": "a/b"}]}, "bad_package"),
    ({"id": "X", "affected": [{"ranges": [{"type": "GIT", "events": []}]}]},
     "unmapped_package"),
    ({"id": "X", "affected": ["x"]}, "bad_package"),
    (record([{"introduced": "0", "fixed": "1.0.0"}]), "invalid_event"),
    (record([{"fixed": "1.0.0"}]), "invalid_range"),
    (record([{"introduced": "0"}, {"fixed": "1.0.0"}, {"last_affected": "1.1.0"}]),
     "fixed_and_last_affected"),
    (record([{"introduced": "0"}, {"fixed": "1.x"}]), "unparsable_version"),
    (record(versions=["banana"]), "unparsable_version"),
    (record(), "no_affected"),
    ({"id": "X", "affected": [{"package": {"name": "a/b"},
                               "ranges": [{"type": "SVN", "events": []}]}]},
     "unsupported_range_type"),
])
def test_invalid_records(rec, reason):
    with pytest.raises(InvalidAdvisory) as err:
        parse_record(rec, scheme_of)
    assert err.value.reason == reason


def test_severity_from_word_or_score():
    adv = parse_record(record(versions=["1.0.0"], database_specific={"severity": "medium"}),
                       scheme_of)
    assert adv.severity == "MODERATE" and adv.score is None
    adv = parse_record(record(versions=["1.0.0"], severity=[
        {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N"}, {"type": "X", "score": "9.1"}]),
        scheme_of)
    assert (adv.severity, adv.score) == ("CRITICAL", 9.1)
    adv = parse_record(record(versions=["1.0.0"]), scheme_of)
    assert adv.severity == "UNKNOWN"
    # an unknown model's versions are not checked
    assert parse_record(record(versions=["??"], name="Zeta/ZZ"), scheme_of).id == "OSV-1"


def test_read_feed_forms(tmp_path):
    one = record(versions=["1.0.0"])
    (tmp_path / "a.json").write_text(json.dumps({"vulns": [one, 5]}))
    (tmp_path / "b.json").write_text("{not json")
    recs, bad = read_feed(tmp_path)
    assert recs == [one]
    assert sorted(r[0] for r in bad) == ["invalid_json", "not_a_record"]
    assert read_feed(json.dumps(one))[0] == [one]
    assert read_feed(one)[0] == [one]
    with pytest.raises(InvalidParameter, match="no OSV feed"):
        read_feed(str(tmp_path / "missing.json"))
    with pytest.raises(InvalidParameter, match="must be records"):
        read_feed(42)


def test_load_osv_quarantines_with_reason(fleet):
    fleet.ingest("devices", [dict(device_id="th-1", device_type="t", manufacturer="Acme",
                                  model="TH-200", site="s", zone="z")])
    fleet.ingest("firmware_releases", [dict(manufacturer="Acme", model="TH-200", version=v,
                                            status=s) for v, s in (("1.9.0", "deprecated"),
                                                                   ("1.10.0", "target"))])
    fleet.firmware.ingest_reports([dict(device_id="th-1", reported_at="2026-06-01T00:00Z",
                                        version="1.9.0")])
    feed = [record([{"introduced": "0"}, {"fixed": "1.10.0"}],
                   database_specific={"severity": "HIGH"}),
            {**record([{"introduced": "0"}, {"fixed": "1.x"}]), "id": "BAD-1"}, 7]
    report = fleet.firmware.load_osv(feed)
    assert (report.n_accepted, report.n_quarantined) == (1, 2)
    assert report.n_rows == report.n_accepted + report.n_duplicates + report.n_quarantined
    q = fleet.query("select reason, detail from quarantine where kind = 'osv_advisories' "
                    "order by reason")
    assert [r["reason"] for r in q] == ["not_a_record", "unparsable_version"]
    assert "'1.x' is not a semver version" in q[1]["detail"]
    st = fleet.firmware.inventory("th-1")[0]
    assert st["is_vulnerable"] and st["advisories"] == "OSV-1" and st["max_severity"] == "HIGH"
    assert st["is_outdated"] and st["target_version"] == "1.10.0"
    # the same record again replaces it; a catalog change re-judges the versions
    assert fleet.firmware.load_osv(feed[:1]).n_accepted == 1
    assert fleet.query("select count(*) as n from firmware_advisories")[0]["n"] == 1
