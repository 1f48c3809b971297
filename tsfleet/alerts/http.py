"""POSTing JSON with bounded retries and exponential backoff (standard library only).

A connection error, a timeout, 408, 429 and any 5xx are retried; another 4xx is a
permanent rejection and is not. ``Retry-After`` (seconds) is honoured, within
``max_backoff_s``. The whole call is bounded: at most ``max_attempts`` requests of at
most ``timeout_s`` each, with at most ``max_backoff_s`` between two of them.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tsfleet.errors import InvalidParameter

RETRYABLE = {408, 429}


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one delivery."""

    max_attempts: int = 5
    timeout_s: float = 10.0
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.timeout_s <= 0 or self.backoff_s < 0:
            raise InvalidParameter(f"a retry policy needs max_attempts >= 1, timeout_s > 0 and "
                                   f"backoff_s >= 0, got {self}")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        wanted = self.backoff_s * 2 ** (attempt - 1)
        if retry_after is not None:
            wanted = max(wanted, retry_after)
        return min(wanted, self.max_backoff_s)


DEFAULT_POLICY = RetryPolicy()


@dataclass
class PostResult:
    """The outcome of one delivery: ``state`` is delivered, failed (retry later) or
    rejected (the endpoint refused the payload; retrying will not help)."""

    state: str
    attempts: int
    status: int | None = None
    error: str | None = None
    body: str | None = None


def post_json(url: str, payload: object, *, headers: Mapping[str, str] | None = None,
              policy: RetryPolicy = DEFAULT_POLICY,
              sleep: Callable[[float], None] = time.sleep) -> PostResult:
    """POST ``payload`` as JSON to ``url`` until it is accepted or the policy gives up."""
    if not url.startswith(("http://", "https://")):
        raise InvalidParameter(f"an endpoint must be an http:// or https:// URL, got {url!r}")
    data = json.dumps(payload, default=str, sort_keys=True).encode()
    base = {"Content-Type": "application/json", "User-Agent": "tsfleet-alerts"}
    base.update(headers or {})
    status, error = None, None
    for attempt in range(1, policy.max_attempts + 1):
        request = urllib.request.Request(url, data=data, headers=base, method="POST")
        retry_after = None
        try:
            with urllib.request.urlopen(request, timeout=policy.timeout_s) as response:
                body = response.read().decode("utf-8", "replace")
                return PostResult("delivered", attempt, response.status, None, body)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
            retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            exc.close()
            if status not in RETRYABLE and status < 500:
                return PostResult("rejected", attempt, status, error)
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            status = None
            reason = getattr(exc, "reason", exc)
            error = f"{type(exc).__name__}: {reason}"
        if attempt < policy.max_attempts:
            sleep(policy.delay(attempt, retry_after))
    return PostResult("failed", policy.max_attempts, status, error)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
