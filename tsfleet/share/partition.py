"""The stable device-hash bucket that partitions readings in the export and shards the fleet.

``bucket = int(md5(device_id).hexdigest()[:8], 16) % buckets``: the first 32 bits
of the MD5 of the UTF-8 device id, modulo the bucket count. MD5 is used for its
stability (every language and engine computes it the same way, forever), not for
security. DuckDB's ``hash()`` is faster but may change between releases, which
would silently move devices between buckets.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

from tsfleet.errors import InvalidParameter

DEFAULT_BUCKETS = 16
MAX_BUCKETS = 4096

#: The same function in DuckDB SQL; the bucket count is the one ``?`` parameter.
BUCKET_SQL = "cast(('0x' || left(md5(device_id), 8)) as ubigint) % ?"


def device_bucket(device_id: str, buckets: int = DEFAULT_BUCKETS) -> int:
    """The bucket of ``device_id`` among ``buckets``; the same in Python and DuckDB (BUCKET_SQL).

    >>> device_bucket("th-00017", 16)
    8
    """
    check_buckets(buckets)
    return int(hashlib.md5(device_id.encode("utf-8")).hexdigest()[:8], 16) % buckets


def check_buckets(buckets: int) -> int:
    if isinstance(buckets, bool) or not isinstance(buckets, int) or not 1 <= buckets <= MAX_BUCKETS:
        raise InvalidParameter(f"buckets must be an integer within 1..{MAX_BUCKETS}, "
                               f"got {buckets!r}")
    return buckets


def parse_time(value: str | date | datetime | None, name: str) -> datetime | None:
    """A naive-UTC datetime from an ISO string, a date or a datetime (aware ones are converted).

    >>> parse_time("2026-03-01T10:00Z", "since")
    datetime.datetime(2026, 3, 1, 10, 0)
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidParameter(f"{name} must be an ISO date or time such as 2026-03-01 or "
                                   f"2026-03-01T10:00Z, got {value!r}") from None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    raise InvalidParameter(f"{name} must be an ISO string, a date or a datetime, got {value!r}")


def whole_days(since: datetime, until: datetime) -> tuple[date, date]:
    """The UTC days ``[first, end)`` covering ``[since, until)``: partitions are whole days.

    >>> whole_days(datetime(2026, 3, 1, 10), datetime(2026, 3, 3))
    (datetime.date(2026, 3, 1), datetime.date(2026, 3, 3))
    >>> whole_days(datetime(2026, 3, 1), datetime(2026, 3, 2, 0, 0, 1))
    (datetime.date(2026, 3, 1), datetime.date(2026, 3, 3))
    """
    if until <= since:
        raise InvalidParameter(f"until must be after since, got since={since.isoformat()} "
                               f"until={until.isoformat()}")
    end = until.date()
    if until != datetime(end.year, end.month, end.day):
        end += timedelta(days=1)
    return since.date(), end
