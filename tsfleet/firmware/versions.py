"""Firmware version strings of many vendors, each parsed by a *scheme* into a total order.

A scheme turns a vendor's string into a :class:`Version` whose ``key`` orders
versions of that scheme: ``1.10.0`` sorts after ``1.9.2``, never as text. A
string a scheme cannot read raises :class:`UnparsableVersion`, never falls
back to a string comparison. Versions of different schemes do not compare.

>>> parse("1.10.0", "semver") > parse("1.9.2", "semver")
True
>>> parse("FW_3_10_0", "underscore") > parse("FW_3_9_9", "underscore")
True
>>> sorted(["R12B", "R12", "R11C", "R12A"], key=lambda s: parse(s, "letter"))
['R11C', 'R12', 'R12A', 'R12B']

Two strings with equal keys are the same version (``v1.2.3`` and ``1.2.3``,
``1.02.003`` and ``1.2.3`` under ``dotted``); ``text`` keeps the original
spelling, so ``str(parse(s, name)) == s`` for every string a scheme accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import packaging.version
import semver

from tsfleet.errors import InvalidParameter, TsfleetError


class UnparsableVersion(InvalidParameter):
    """A version string that its scheme cannot read."""


class IncomparableVersions(TsfleetError, TypeError):
    """Two versions of different schemes were compared."""


@dataclass(frozen=True, eq=False)
class Version:
    """One parsed version: its scheme, its original text and its sort key."""

    scheme: str
    text: str
    key: tuple = field(repr=False)

    def _other(self, other: object) -> Version:
        if not isinstance(other, Version):
            raise IncomparableVersions(f"cannot compare version {self.text!r} with {other!r}")
        if other.scheme != self.scheme:
            raise IncomparableVersions(
                f"cannot compare {self.text!r} ({self.scheme}) with {other.text!r} "
                f"({other.scheme}): versions of different schemes have no common order")
        return other

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.scheme == other.scheme and self.key == other.key

    def __hash__(self) -> int:
        return hash((self.scheme, self.key))

    def __lt__(self, other: Version) -> bool:
        return self.key < self._other(other).key

    def __le__(self, other: Version) -> bool:
        return self.key <= self._other(other).key

    def __gt__(self, other: Version) -> bool:
        return self.key > self._other(other).key

    def __ge__(self, other: Version) -> bool:
        return self.key >= self._other(other).key

    def __str__(self) -> str:
        return self.text


def _ints(parts: Iterable[str]) -> tuple[int, ...]:
    """Numeric parts without trailing zeros, so ``1.2`` equals ``1.2.0``."""
    nums = [int(p) for p in parts]
    while len(nums) > 1 and nums[-1] == 0:
        nums.pop()
    return tuple(nums)


def _identifiers(text: str) -> tuple:
    """SemVer pre-release identifiers: numbers sort before words, numerically."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in text.split("."))


class Scheme:
    """A way of reading one vendor's version strings. Subclasses set ``name``,
    ``form`` (the expected form, for error messages) and implement ``_key``."""

    name: str = ""
    form: str = ""
    pattern: re.Pattern | None = None

    def parse(self, text: str, context: str = "") -> Version:
        if not isinstance(text, str) or not text or text != text.strip():
            raise self._error(text, context)
        key = self._key(text)
        if key is None:
            raise self._error(text, context)
        return Version(self.name, text, key)

    def accepts(self, text: str) -> bool:
        try:
            self.parse(text)
        except UnparsableVersion:
            return False
        return True

    def _error(self, text: object, context: str) -> UnparsableVersion:
        where = f" for {context}" if context else ""
        return UnparsableVersion(f"{text!r} is not a {self.name} version{where}; expected "
                                 f"{self.form}")

    def format(self, version: Version) -> str:
        """The canonical spelling of ``version``: ``parse(format(v)) == v``."""
        raise NotImplementedError  # pragma: no cover - every scheme overrides it

    def _key(self, text: str) -> tuple | None:  # pragma: no cover - abstract
        raise NotImplementedError


class SemverScheme(Scheme):
    """SemVer 2.0.0 through the ``semver`` library, with an optional ``v``/``V`` prefix.

    Precedence is SemVer's section 11; build metadata is ignored (section 10), so
    ``1.0.0+b1 == 1.0.0`` and both share one rank. ``text`` keeps the build, and
    :meth:`format` spells it, for display only."""

    name = "semver"
    form = "MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], optionally v-prefixed (2.4.1, v1.0.0-rc.1)"

    def _key(self, text: str) -> tuple | None:
        body = text[1:] if text[0] in "vV" else text
        try:
            v = semver.Version.parse(body)
        except ValueError:
            return None
        pre = (1,) if v.prerelease is None else (0, *_identifiers(v.prerelease))
        return (v.major, v.minor, v.patch, pre)

    def format(self, version: Version) -> str:
        return version.text[1:] if version.text[0] in "vV" else version.text


class Pep440Scheme(Scheme):
    """PEP 440 versions through ``packaging`` (``1.0.post2``, ``2.0rc1``, ``1!2.0``)."""

    name = "pep440"
    form = "a PEP 440 version (1.2.3, 2.0rc1, 1.0.post2)"

    def _key(self, text: str) -> tuple | None:
        try:
            return (packaging.version.Version(text),)
        except packaging.version.InvalidVersion:
            return None

    def format(self, version: Version) -> str:
        return str(version.key[0])


class DottedScheme(Scheme):
    """Any number of dot-separated integers, leading zeros allowed, optional ``v``:
    ``1.2.3.4567``, ``1.02.003``, ``v7.1``. Missing parts count as zero."""

    name = "dotted"
    form = "numbers separated by dots, optionally v-prefixed (1.2.3.4567, 1.02.003)"
    pattern = re.compile(r"[vV]?(\d+(?:\.\d+)*)")

    def _key(self, text: str) -> tuple | None:
        m = self.pattern.fullmatch(text)
        return _ints(m.group(1).split(".")) if m else None

    def format(self, version: Version) -> str:
        return ".".join(str(n) for n in version.key)


class CalverScheme(Scheme):
    """Calendar versions ``YYYY.MM[.N][-hotfixN]`` (``2024.05.01``, ``2023.10.1-hotfix2``).
    A hotfix sorts after its base release and before the next one."""

    name = "calver"
    form = "YYYY.MM[.N][-hotfixN] with a month 1..12 (2024.05.01, 2023.10.1-hotfix2)"
    pattern = re.compile(r"(\d{4})\.(\d{1,2})(?:\.(\d{1,3}))?(?:-hotfix(\d+))?")

    def _key(self, text: str) -> tuple | None:
        m = self.pattern.fullmatch(text)
        if not m or not 1 <= int(m.group(2)) <= 12 or m.group(4) == "0":
            return None
        return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0), int(m.group(4) or 0))

    def format(self, version: Version) -> str:
        year, month, n, hotfix = version.key
        return f"{year:04d}.{month:02d}.{n}" + (f"-hotfix{hotfix}" if hotfix else "")


class UnderscoreScheme(Scheme):
    """An upper-case word prefix and underscore-separated numbers: ``FW_3_2_1``."""

    name = "underscore"
    form = "PREFIX_N_N_N with an upper-case prefix (FW_3_2_1)"
    pattern = re.compile(r"([A-Z]+)_(\d+(?:_\d+)*)")

    def _key(self, text: str) -> tuple | None:
        m = self.pattern.fullmatch(text)
        return (m.group(1), *_ints(m.group(2).split("_"))) if m else None

    def format(self, version: Version) -> str:
        return "_".join(str(p) for p in version.key)


class BuildScheme(Scheme):
    """``V2.1.0_build45``: three numbers and an optional build number; no build
    sorts before any build of the same release."""

    name = "build"
    form = "[V]X.Y.Z[_buildN] (V2.1.0_build45)"
    pattern = re.compile(r"[vV]?(\d+)\.(\d+)\.(\d+)(?:_build(\d+))?")

    def _key(self, text: str) -> tuple | None:
        m = self.pattern.fullmatch(text)
        if not m:
            return None
        build = -1 if m.group(4) is None else int(m.group(4))
        return (int(m.group(1)), int(m.group(2)), int(m.group(3)), build)

    def format(self, version: Version) -> str:
        x, y, z, build = version.key
        return f"V{x}.{y}.{z}" + (f"_build{build}" if build >= 0 else "")


class LetterScheme(Scheme):
    """Release and revision letters: ``R12`` < ``R12A`` < ``R12Z`` < ``R12AA`` < ``R13``."""

    name = "letter"
    form = "R<release>[letters] (R12, R12B)"
    pattern = re.compile(r"R(\d+)([A-Z]{0,2})")

    def _key(self, text: str) -> tuple | None:
        m = self.pattern.fullmatch(text)
        return (int(m.group(1)), len(m.group(2)), m.group(2)) if m else None

    def format(self, version: Version) -> str:
        return f"R{version.key[0]}{version.key[2]}"


#: Every scheme by name.
SCHEMES: dict[str, Scheme] = {s.name: s for s in (
    SemverScheme(), Pep440Scheme(), DottedScheme(), CalverScheme(), UnderscoreScheme(),
    BuildScheme(), LetterScheme())}

#: The scheme used when a model has neither a configured scheme nor a catalog.
DEFAULT_SCHEME = "semver"

#: Order in which :func:`detect_scheme` tries schemes on a model's catalog:
#: the strictest first, so ``2023.10.1-hotfix2`` is calver (a later hotfix),
#: not SemVer (where ``-hotfix2`` would be an earlier pre-release).
DETECTION_ORDER = ("calver", "semver", "underscore", "dotted", "build", "letter", "pep440")


def format_version(version: Version) -> str:
    """The canonical spelling of a parsed version (``v1.02.0`` -> ``1.2`` under dotted).

    >>> format_version(parse("v2.1.0", "semver"))
    '2.1.0'
    """
    return get_scheme(version.scheme).format(version)


def get_scheme(name: str) -> Scheme:
    """The scheme called ``name``; :class:`InvalidParameter` for an unknown name."""
    try:
        return SCHEMES[name]
    except KeyError:
        raise InvalidParameter(f"unknown version scheme {name!r}; expected one of "
                               f"{', '.join(sorted(SCHEMES))}") from None


def parse(text: str, scheme: str = DEFAULT_SCHEME, context: str = "") -> Version:
    """Parse ``text`` with the scheme called ``scheme``.

    >>> parse("1.02.003", "dotted") == parse("1.2.3", "dotted")
    True
    """
    return get_scheme(scheme).parse(text, context)


def compare(a: str, b: str, scheme: str = DEFAULT_SCHEME) -> int:
    """-1, 0 or 1 as ``a`` is older than, the same as, or newer than ``b``.

    >>> compare("2023.10.1-hotfix2", "2023.10.1", "calver")
    1
    """
    va, vb = parse(a, scheme), parse(b, scheme)
    return (va > vb) - (va < vb)


def detect_scheme(versions: Iterable[str]) -> str | None:
    """The first scheme of :data:`DETECTION_ORDER` that reads every one of
    ``versions``, or None when none does (or there are none).

    >>> detect_scheme(["FW_3_2_1", "FW_3_10_0"])
    'underscore'
    """
    texts = list(versions)
    if not texts:
        return None
    for name in DETECTION_ORDER:
        if all(SCHEMES[name].accepts(t) for t in texts):
            return name
    return None


def rank(versions: Iterable[str], scheme: str) -> dict[str, int | None]:
    """Dense rank (1 = oldest) of each string; equal versions share a rank and
    an unparsable string gets None.

    >>> rank(["1.10.0", "1.9.2", "v1.9.2", "junk"], "semver")
    {'1.10.0': 2, '1.9.2': 1, 'v1.9.2': 1, 'junk': None}
    """
    s = get_scheme(scheme)
    parsed: dict[str, Version | None] = {}
    for t in versions:
        try:
            parsed[t] = s.parse(t)
        except UnparsableVersion:
            parsed[t] = None
    keys = sorted({v.key for v in parsed.values() if v is not None})
    order = {k: i + 1 for i, k in enumerate(keys)}
    return {t: (order[v.key] if v is not None else None) for t, v in parsed.items()}
