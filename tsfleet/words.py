"""Words shared by the analyses' sentences and the CLI (no dependency beyond the standard
library, so that every layer may use them)."""

from __future__ import annotations


def plural(n: int, one: str, many: str | None = None) -> str:
    """``plural(1, "gateway")`` -> "1 gateway"; ``plural(3, "gateway")`` -> "3 gateways".

    >>> plural(1, "day"), plural(2.0, "day"), plural(1_500, "device")
    ('1 day', '2 days', '1,500 devices')
    """
    return f"{n:,.0f} {one if round(n) == 1 else (many or one + 's')}"
