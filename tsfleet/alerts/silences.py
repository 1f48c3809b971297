"""Silences: label matchers that mute alerts for a time window (as in Alertmanager).

>>> parse_matcher("site=plant-a"), parse_matcher("alertname=~Battery.*")
(('site', '=', 'plant-a'), ('alertname', '=~', 'Battery.*'))
"""

from __future__ import annotations

import re

from tsfleet.errors import InvalidParameter

_MATCHER_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


def parse_matcher(text: str) -> tuple[str, str, str]:
    """``label=value``, ``label!=value``, ``label=~regex`` or ``label!~regex``."""
    m = _MATCHER_RE.match(text)
    if not m:
        raise InvalidParameter(f"a silence matcher looks like label=value, label!=value, "
                               f"label=~regex or label!~regex, got {text!r}")
    label, op, value = m.groups()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise InvalidParameter(f"matcher {text!r}: not a regular expression: {exc}") from exc
    return label, op, value
