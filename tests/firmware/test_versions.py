"""Version ordering: golden tables per vendor form, errors, and Hypothesis
properties of a total order (antisymmetric, transitive, total) and of the
parse/format round trip, for every scheme."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsfleet.errors import InvalidParameter, TsfleetError
from tsfleet.firmware.versions import (
    DEFAULT_SCHEME,
    SCHEMES,
    IncomparableVersions,
    UnparsableVersion,
    compare,
    detect_scheme,
    format_version,
    get_scheme,
    parse,
    rank,
)

#: Each row: scheme, strings in ascending order. Neighbours are strictly increasing
#: unless joined by "=" (same version, other spelling).
GOLDEN = [
    ("semver", ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.9.2",
                "1.10.0", "v1.10.1", "V2.0.0-rc.1", "2.0.0"]),
    ("dotted", ["0.9", "1.2.3.999", "1.2.3.4567", "1.02.004", "1.2.10", "1.10.0", "v2",
                "2.0.0.1", "10.0"]),
    ("calver", ["2023.09.30", "2023.10.1", "2023.10.1-hotfix1", "2023.10.1-hotfix2",
                "2023.10.1-hotfix10", "2023.10.2", "2024.05.01", "2024.12", "2024.12.1"]),
    ("underscore", ["FW_2_9_9", "FW_3_0_1", "FW_3_2_1", "FW_3_10_0", "FW_4"]),
    ("build", ["V2.0.9_build99", "V2.1.0", "V2.1.0_build0", "V2.1.0_build45",
               "V2.1.0_build100", "v2.1.1_build2", "V2.10.0"]),
    ("letter", ["R9Z", "R11", "R11A", "R11B", "R11Z", "R11AA", "R12", "R12B", "R100"]),
    ("pep440", ["1.0.dev1", "1.0a1", "1.0rc1", "1.0", "1.0.post2", "1.1", "1!0.1"]),
]

EQUAL = [
    ("semver", "1.2.3", "v1.2.3"),
    ("semver", "1.2.3+build", "1.2.3+otherbuild"),
    ("semver", "1.0.0+build.7", "1.0.0"),
    ("semver", "v2.0.0-rc.1+exp.sha.5114f85", "2.0.0-rc.1"),
    ("dotted", "1.02.003", "1.2.3"),
    ("dotted", "1.2", "1.2.0.0"),
    ("underscore", "FW_3_0_0", "FW_3"),
    ("calver", "2024.05.01", "2024.5.1"),
    ("pep440", "1.0", "1.0.0"),
]

MALFORMED = [
    ("semver", "1.2"), ("semver", "1.02.3"), ("semver", "1.2.3-01"), ("semver", "banana"),
    ("semver", " 1.2.3"), ("semver", ""), ("dotted", "1..2"), ("dotted", "1.2a"),
    ("calver", "2024.13.01"), ("calver", "24.05.01"), ("calver", "2023.10.1-hotfix0"),
    ("underscore", "fw_3_2_1"), ("underscore", "FW-3-2-1"), ("build", "V2.1_build4"),
    ("letter", "R12b"), ("letter", "12B"), ("pep440", "FW_3_2_1"),
]


@pytest.mark.parametrize(("scheme", "ordered"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_order(scheme, ordered):
    parsed = [parse(s, scheme) for s in ordered]
    for a, b in zip(parsed, parsed[1:], strict=False):
        assert a < b and b > a and a <= b and b >= a and a != b, (a.text, b.text)
    shuffled = list(reversed(ordered))
    assert sorted(shuffled, key=lambda s: parse(s, scheme)) == ordered


def test_numeric_not_textual():
    assert compare("1.10.0", "1.9.2") == 1
    assert compare("1.9.2", "1.10.0") == -1
    assert compare("1.9.2", "v1.9.2") == 0
    assert sorted(["1.9.2", "1.10.0", "1.2.0"], key=parse) == ["1.2.0", "1.9.2", "1.10.0"]


@pytest.mark.parametrize(("scheme", "a", "b"), EQUAL)
def test_same_version_other_spelling(scheme, a, b):
    va, vb = parse(a, scheme), parse(b, scheme)
    assert va == vb and hash(va) == hash(vb) and va <= vb and va >= vb
    assert str(va) == a and str(vb) == b


@pytest.mark.parametrize(("scheme", "text"), MALFORMED)
def test_malformed_raises(scheme, text):
    with pytest.raises(UnparsableVersion) as err:
        parse(text, scheme, context="Acme TH-200")
    assert isinstance(err.value, TsfleetError) and isinstance(err.value, ValueError)
    assert repr(text) in str(err.value) and "Acme TH-200" in str(err.value)
    assert "expected" in str(err.value)
    assert not get_scheme(scheme).accepts(text)


def test_non_string_raises():
    with pytest.raises(UnparsableVersion):
        parse(None, "semver")  # type: ignore[arg-type]


def test_different_schemes_do_not_compare():
    a, b = parse("1.2.3", "semver"), parse("1.2.3", "dotted")
    assert a != b
    for op in (lambda: a < b, lambda: a <= b, lambda: a > b, lambda: a >= b):
        with pytest.raises(IncomparableVersions, match="different schemes"):
            op()
    with pytest.raises(IncomparableVersions, match="cannot compare"):
        _ = a < "1.2.4"
    assert (a == "1.2.3") is False


def test_unknown_scheme():
    with pytest.raises(InvalidParameter, match="unknown version scheme 'nope'"):
        parse("1.0.0", "nope")


def test_detect_scheme():
    assert detect_scheme(["2.4.1", "2.10.0-rc.1"]) == "semver"
    assert detect_scheme(["2023.10.1", "2023.10.1-hotfix2"]) == "calver"
    assert detect_scheme(["1.02.003", "1.2.3.4567"]) == "dotted"
    assert detect_scheme(["FW_3_2_1"]) == "underscore"
    assert detect_scheme(["V2.1.0_build45", "V2.1.0"]) == "build"
    assert detect_scheme(["R12B", "R11"]) == "letter"
    assert detect_scheme(["1.0rc1", "1.0.post2"]) == "pep440"
    assert detect_scheme(["FW_3_2_1", "2.4.1"]) is None
    assert detect_scheme([]) is None


def test_rank_dense_and_unparsable():
    assert rank(["2.0.0", "1.10.0", "1.9.2", "v1.9.2", "x"], "semver") == {
        "2.0.0": 3, "1.10.0": 2, "1.9.2": 1, "v1.9.2": 1, "x": None}


def test_format_examples():
    assert format_version(parse("v1.2.3-rc.1+b.7", "semver")) == "1.2.3-rc.1+b.7"
    assert format_version(parse("1.02.030", "dotted")) == "1.2.30"
    assert format_version(parse("2024.5.1-hotfix2", "calver")) == "2024.05.1-hotfix2"
    assert format_version(parse("FW_3_2_0", "underscore")) == "FW_3_2"
    assert format_version(parse("v2.1.0", "build")) == "V2.1.0"
    assert format_version(parse("R12B", "letter")) == "R12B"
    assert format_version(parse("1.0.0rc1", "pep440")) == "1.0.0rc1"


# -- Hypothesis: strings every scheme must accept -----------------------------------------
num = st.integers(0, 3000)
small = st.integers(0, 30)
ident = st.one_of(st.integers(0, 50).map(str),
                  st.text("abcdefgh-xyzXYZ", min_size=1, max_size=6).filter(
                      lambda s: not s.isdigit()))
ids = st.lists(ident, min_size=1, max_size=3).map(".".join)


@st.composite
def semver_text(draw):
    text = f"{draw(num)}.{draw(small)}.{draw(small)}"
    if draw(st.booleans()):
        text += "-" + draw(ids)
    if draw(st.booleans()):
        text += "+" + draw(ids)
    return draw(st.sampled_from(["", "v", "V"])) + text


@st.composite
def dotted_text(draw):
    parts = draw(st.lists(st.integers(0, 120), min_size=1, max_size=5))
    zeros = draw(st.lists(st.integers(0, 2), min_size=len(parts), max_size=len(parts)))
    return draw(st.sampled_from(["", "v"])) + ".".join(
        "0" * z + str(p) for p, z in zip(parts, zeros, strict=True))


@st.composite
def calver_text(draw):
    text = f"{draw(st.integers(1990, 2099))}.{draw(st.integers(1, 12)):0{draw(st.integers(1, 2))}d}"
    if draw(st.booleans()):
        text += f".{draw(st.integers(0, 31))}"
        if draw(st.booleans()):
            text += f"-hotfix{draw(st.integers(1, 20))}"
    return text


TEXTS = {
    "semver": semver_text(),
    "dotted": dotted_text(),
    "calver": calver_text(),
    "underscore": st.lists(st.integers(0, 40), min_size=1, max_size=4).map(
        lambda p: "FW_" + "_".join(map(str, p))),
    "build": st.tuples(small, small, small, st.one_of(st.none(), st.integers(0, 500))).map(
        lambda t: f"V{t[0]}.{t[1]}.{t[2]}" + ("" if t[3] is None else f"_build{t[3]}")),
    "letter": st.tuples(st.integers(0, 40), st.text("ABCZ", max_size=2)).map(
        lambda t: f"R{t[0]}{t[1]}"),
    "pep440": st.tuples(small, small, st.sampled_from(["", "a1", "rc2", ".post1", ".dev3"])).map(
        lambda t: f"{t[0]}.{t[1]}{t[2]}"),
}


def test_every_scheme_has_a_strategy():
    assert set(TEXTS) == set(SCHEMES)
    assert DEFAULT_SCHEME in SCHEMES


@pytest.mark.parametrize("scheme", sorted(TEXTS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_total_order(scheme, data):
    a, b, c = (parse(data.draw(TEXTS[scheme]), scheme) for _ in range(3))
    # totality and antisymmetry: exactly one of <, ==, > holds
    assert (a < b) + (a == b) + (a > b) == 1
    if a <= b and b <= a:
        assert a == b
    # transitivity
    if a <= b and b <= c:
        assert a <= c
    if a < b and b < c:
        assert a < c
    assert compare(a.text, b.text, scheme) == -compare(b.text, a.text, scheme)


@pytest.mark.parametrize("scheme", sorted(TEXTS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_parse_format_round_trip(scheme, data):
    text = data.draw(TEXTS[scheme])
    v = parse(text, scheme)
    assert str(v) == text
    canonical = format_version(v)
    assert parse(canonical, scheme) == v
    assert format_version(parse(canonical, scheme)) == canonical


@settings(deadline=None)
@given(a=st.lists(st.integers(0, 99), min_size=3, max_size=3),
       b=st.lists(st.integers(0, 99), min_size=3, max_size=3))
def test_semver_order_matches_numeric_tuples(a, b):
    va, vb = parse(".".join(map(str, a)), "semver"), parse(".".join(map(str, b)), "semver")
    assert (va < vb) == (a < b) and (va == vb) == (a == b)
    ua = parse("FW_" + "_".join(map(str, a)), "underscore")
    ub = parse("FW_" + "_".join(map(str, b)), "underscore")
    assert (ua < ub) == (a < b)
