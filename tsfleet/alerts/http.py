"""POSTing JSON with bounded retries and exponential backoff (standard library only).

A connection error, a timeout, 408, 429 and any 5xx are retried; another 4xx is a
permanent rejection and is not. Only a 2xx answer to the POST is a delivery:
redirects are followed only when they keep the method and body (307, 308).
``Retry-After`` (seconds) is honoured, within ``max_backoff_s``. The whole call is
bounded: at most ``max_attempts`` requests of at most ``timeout_s`` each (plus at most
``MAX_REDIRECTS`` redirects each), with at most ``max_backoff_s`` between two of them.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
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
    """POST ``payload`` as JSON to ``url`` until it is accepted or the policy gives up.

    Delivered means a 2xx answer to the POST itself. A 307 or 308 redirect is
    followed with the same method and body (at most ``MAX_REDIRECTS`` times, to
    http(s) URLs only); 301, 302 and 303 would turn the POST into a GET without
    body, so they are a failure that names the new location (fix the URL), as is a
    redirect to another scheme. At most ``MAX_RESPONSE_BYTES`` of an answer are read.
    """
    _check_scheme(url, "an endpoint")
    data = json.dumps(payload, default=str, sort_keys=True).encode()
    base = {"Content-Type": "application/json", "User-Agent": "tsfleet-alerts"}
    base.update(headers or {})
    status, error = None, None
    for attempt in range(1, policy.max_attempts + 1):
        retry_after = None
        try:
            status, body = _post_once(url, data, base, policy.timeout_s)
            return PostResult("delivered", attempt, status, None, body)
        except _NotFollowed as exc:  # retrying the same URL cannot help
            return PostResult("failed", attempt, exc.status, str(exc))
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
            retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            exc.close()
            if status not in RETRYABLE and 400 <= status < 500:
                return PostResult("rejected", attempt, status, error)
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError,
                http.client.HTTPException) as exc:
            status = None
            reason = getattr(exc, "reason", exc)
            error = f"{type(exc).__name__}: {reason}"
        if attempt < policy.max_attempts:
            sleep(policy.delay(attempt, retry_after))
    return PostResult("failed", policy.max_attempts, status, error)


#: Redirects (307/308) followed for one POST.
MAX_REDIRECTS = 5
#: The most of an endpoint's answer that is read (the rest is not needed).
MAX_RESPONSE_BYTES = 64 * 1024


class _NotFollowed(Exception):
    """A redirect that a POST must not follow."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # every 3xx surfaces as an HTTPError, handled by _post_once


_OPENER = urllib.request.build_opener(_NoRedirect)


def _check_scheme(url: str, what: str) -> None:
    if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https"):
        raise InvalidParameter(f"{what} must be an http:// or https:// URL, got {url!r}")


def _post_once(url: str, data: bytes, headers: dict, timeout_s: float) -> tuple[int, str]:
    """One POST, following 307/308 only; returns (status, first bytes of the answer)."""
    for _ in range(MAX_REDIRECTS + 1):
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with _OPENER.open(request, timeout=timeout_s) as response:
                body = response.read(MAX_RESPONSE_BYTES).decode("utf-8", "replace")
                return response.status, body
        except urllib.error.HTTPError as exc:
            if not 300 <= exc.code < 400:
                raise
            location = exc.headers.get("Location") if exc.headers else None
            exc.close()
            if exc.code not in (307, 308) or not location:
                raise _NotFollowed(
                    f"HTTP {exc.code} {exc.reason} to {location or '(no Location)'}: a POST is "
                    "not re-sent after this redirect; fix the URL", exc.code) from None
            target = urllib.parse.urljoin(url, location)
            try:
                _check_scheme(target, "a redirect")
            except InvalidParameter as bad:
                raise _NotFollowed(f"HTTP {exc.code} {exc.reason}: {bad}", exc.code) from None
            url = target
    raise _NotFollowed(f"more than {MAX_REDIRECTS} redirects", 310)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
