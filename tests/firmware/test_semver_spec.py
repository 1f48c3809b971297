"""SemVer 2.0.0 precedence as the specification states it (sections 10 and 11), and
a property: tsfleet's semver comparison agrees with the ``semver`` library on
random versions, build metadata included."""

from __future__ import annotations

import pytest
import semver
from hypothesis import given, settings
from hypothesis import strategies as st

from tsfleet.firmware.versions import compare, parse, rank

#: Section 11's chains, each strictly increasing.
PRECEDENCE_CHAINS = [
    ["1.0.0", "2.0.0", "2.1.0", "2.1.1"],                        # 11.2: numeric, left to right
    ["1.0.0-alpha", "1.0.0"],                                    # 11.3: pre-release is lower
    ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
     "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"],                    # 11.4: identifier by identifier
]

#: Section 10: build metadata is ignored when precedence is determined.
SAME_PRECEDENCE = [
    ("1.0.0-alpha+001", "1.0.0-alpha"),
    ("1.0.0+20130313144700", "1.0.0"),
    ("1.0.0-beta+exp.sha.5114f85", "1.0.0-beta"),
    ("1.0.0+21AF26D3----117B344092BD", "1.0.0+other"),
    ("1.2.3+build", "1.2.3+otherbuild"),
]


@pytest.mark.parametrize("chain", PRECEDENCE_CHAINS, ids=["numeric", "pre-release", "identifiers"])
def test_precedence_chains_of_the_specification(chain):
    for lower, higher in zip(chain, chain[1:], strict=False):
        assert compare(lower, higher) == -1 and compare(higher, lower) == 1, (lower, higher)
    assert sorted(reversed(chain), key=parse) == chain


@pytest.mark.parametrize(("a", "b"), SAME_PRECEDENCE)
def test_build_metadata_has_no_precedence(a, b):
    assert compare(a, b) == 0 and parse(a) == parse(b) and hash(parse(a)) == hash(parse(b))
    assert not parse(a) < parse(b) and not parse(a) > parse(b)
    assert semver.Version.parse(a).compare(b) == 0       # the library agrees
    # the store's dense ranks (used for "outdated") give both one rank
    ranks = rank([a, b, "0.1.0"], "semver")
    assert ranks[a] == ranks[b] == 2 and ranks["0.1.0"] == 1


def test_build_metadata_is_kept_for_display():
    v = parse("v1.0.0+build.7")
    assert str(v) == "v1.0.0+build.7"
    from tsfleet.firmware.versions import format_version
    assert format_version(v) == "1.0.0+build.7"


# -- random versions: tsfleet and the semver library agree -------------------------------
ALNUM = "0123456789abcXYZ-"
numeric_id = st.integers(0, 12).map(str)
alnum_id = st.text(ALNUM, min_size=1, max_size=4).filter(
    lambda s: not s.isdigit() or s == "0" or not s.startswith("0"))
build_id = st.text(ALNUM, min_size=1, max_size=4)


@st.composite
def versions(draw):
    core = ".".join(str(draw(st.integers(0, 3))) for _ in range(3))
    if draw(st.booleans()):
        core += "-" + ".".join(draw(st.lists(st.one_of(numeric_id, alnum_id), min_size=1,
                                             max_size=3)))
    if draw(st.booleans()):
        core += "+" + ".".join(draw(st.lists(build_id, min_size=1, max_size=2)))
    return core


@settings(max_examples=400, deadline=None)
@given(a=versions(), b=versions())
def test_comparison_equals_the_semver_library(a, b):
    expected = semver.Version.parse(a).compare(b)
    assert compare(a, b) == expected
    assert compare("v" + a, b) == expected
    assert (parse(a) == parse(b)) == (expected == 0)


def test_a_build_of_the_target_release_is_not_outdated(fleet):
    fleet.ingest("devices", [dict(device_id=d, device_type="t", manufacturer="Acme",
                                  model="TH-200", site="s", zone="z") for d in ("a", "b")])
    fleet.ingest("firmware_releases", [dict(manufacturer="Acme", model="TH-200", version=v,
                                            status=s) for v, s in (("0.9.0", "deprecated"),
                                                                   ("1.0.0", "target"))])
    fleet.firmware.ingest_reports([
        dict(device_id="a", reported_at="2026-06-01T00:00Z", version="1.0.0+build.7"),
        dict(device_id="b", reported_at="2026-06-01T00:00Z", version="1.0.0-rc.1+build.9")])
    rows = {r["device_id"]: r for r in fleet.firmware.inventory()}
    assert rows["a"]["version_rank"] == rows["a"]["target_rank"]
    assert not rows["a"]["is_outdated"]
    assert rows["b"]["is_outdated"]          # a pre-release stays below its release
