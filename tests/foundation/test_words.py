"""The one plural rule of every sentence tsfleet prints."""

from __future__ import annotations

from tsfleet.cliutil import plural as cli_plural
from tsfleet.words import plural


def test_one_is_singular_as_printed_and_the_cli_uses_the_same_rule():
    assert [plural(n, "day") for n in (0, 1, 2, 0.6, 1.4, 1.6)] == [
        "0 days", "1 day", "2 days", "1 day", "1 day", "2 days"]   # as "{:.0f}" prints it
    assert plural(2, "model version") == "2 model versions"
    assert plural(1_500, "entry", "entries") == "1,500 entries"
    assert cli_plural is plural
