"""What is worth retrying, and how long to wait: the decision stamina asks for.

Kept free of I/O so the rules (idempotency, Retry-After, caps) are tested directly.
"""

from __future__ import annotations

import datetime as dt
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

# A non-idempotent POST is repeated only when Loop surely did not apply it: the request
# never left (connection refused, connect or pool timeout) or Loop refused it by rate
# (429, handled by `rate_limit_pause`). A 502/503/504 may come from a gateway that
# timed out while Loop went on applying the write, so it is reported, not repeated.


class RetryableResponse(Exception):
    """A 429 or 5xx answer, raised inside the retry loop so stamina can decide.

    A 429 reaches stamina only once the key's pauses have outlasted the request's
    patience (`loop_rate_limit_max_wait_s`): it is then final.
    """

    def __init__(
        self, status: int, body: Any, reason: str, retry_after: float | None = None
    ) -> None:
        # The text shows up in stamina's retry log: status only, never the body.
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.reason = reason
        self.retry_after = retry_after


def is_retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def retry_decision(exc: Exception, *, idempotent: bool, max_retry_after: float) -> bool | float:
    """stamina backoff hook: False = give up, True = exponential backoff, float = wait."""
    if isinstance(exc, RetryableResponse):
        if exc.status == 429 or not idempotent:
            return False
        if exc.retry_after is not None and exc.status == 503:
            return min(exc.retry_after, max_retry_after)
        return True
    if isinstance(exc, httpx.TimeoutException):
        # Connect/pool timeouts happen before the request leaves; read/write ones may
        # follow a request the upstream already applied.
        return idempotent or isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
    if isinstance(exc, httpx.UnsupportedProtocol):
        return False  # a configuration error: repeating cannot help
    if isinstance(exc, httpx.TransportError):
        return idempotent or isinstance(exc, httpx.ConnectError)
    return False


def rate_limit_pause(
    level: int, retry_after: float | None, *, first_s: float, max_s: float, max_retry_after: float
) -> float:
    """How long a key pauses after a 429: Loop's `Retry-After` when it sends one (capped),
    else `first_s` doubled for each 429 in a row (`level` counts them from 1), up to `max_s`.

    Loop documents no `Retry-After` and counts a sliding minute, so the pauses grow until
    one lands after the oldest requests have left Loop's window.
    """
    if retry_after is not None:
        return min(retry_after, max_retry_after)
    return float(min(max_s, first_s * 2 ** max(0, level - 1)))


def request_never_sent(exc: Exception) -> bool:
    """True when the failure happened before any byte reached the upstream."""
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
