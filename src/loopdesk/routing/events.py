"""The outbound `routing.changed` event: its settings, its body and its signature.

A receiver verifies `X-Loopdesk-Signature: sha256=<hex>`, the hex HMAC-SHA256 of the
exact body bytes under `LOOPDESK_ROUTING_WEBHOOK_SECRET`, with a constant-time compare
(`verify` below does it). The body carries the event's `id` and `at`, so they are
signed too: a receiver drops an `id` it has seen (a delivery may come twice when an
answer is lost) and may refuse an `at` too old for it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime
from random import Random
from typing import Any

from pydantic import SecretStr

from loopdesk.errors import ConfigError
from loopdesk.settings import Settings

EVENT_TYPE = "routing.changed"
SECRET_SETTING = "LOOPDESK_ROUTING_WEBHOOK_SECRET"  # noqa: S105 - a name, not a value
URLS_SETTING = "LOOPDESK_ROUTING_WEBHOOK_URLS"
# Public on purpose, as the sandbox's Loop webhook secret: never used with a Loop token.
SANDBOX_SECRET = "sandbox-routing-secret"  # noqa: S105
SIGNATURE_HEADER = "X-Loopdesk-Signature"
TIMESTAMP_HEADER = "X-Loopdesk-Timestamp"
EVENT_ID_HEADER = "X-Loopdesk-Event-Id"
EVENT_TYPE_HEADER = "X-Loopdesk-Event"


@dataclass(frozen=True)
class EventsConfig:
    """Where routing events go and how they are signed and retried."""

    urls: tuple[str, ...] = ()
    secret: SecretStr = field(default_factory=lambda: SecretStr(SANDBOX_SECRET))
    scan_interval_s: float = 300.0
    timeout_s: float = 10.0
    retry_base_s: float = 2.0
    retry_max_s: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> EventsConfig:
        """Refuses URLs without a secret outside sandbox mode: anyone could sign with
        the public default."""
        secret = settings.routing_webhook_secret
        if secret is None or not secret.get_secret_value():
            if settings.routing_webhook_urls and not settings.uses_sandbox:
                raise ConfigError(
                    f"{URLS_SETTING} is set but {SECRET_SETTING} is not: routing events "
                    "must be signed with a secret of your own"
                )
            secret = SecretStr(SANDBOX_SECRET)
        return cls(
            urls=settings.routing_webhook_urls,
            secret=secret,
            scan_interval_s=settings.routing_scan_interval_s,
            timeout_s=settings.routing_webhook_timeout_s,
            retry_base_s=settings.routing_webhook_retry_base_s,
            retry_max_s=settings.routing_webhook_retry_max_s,
        )


def encode(event: dict[str, Any]) -> bytes:
    """The body as sent and signed: compact JSON, keys sorted, UTF-8."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def sign(body: bytes, secret: str) -> str:
    """The `X-Loopdesk-Signature` value: `sha256=` and the hex HMAC-SHA256 of `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, presented: str | None, secret: str) -> bool:
    """What a receiver checks (constant time)."""
    return presented is not None and hmac.compare_digest(presented.strip(), sign(body, secret))


def headers(body: bytes, *, event_id: str, at: datetime, secret: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        EVENT_TYPE_HEADER: EVENT_TYPE,
        EVENT_ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(int(at.timestamp())),
        SIGNATURE_HEADER: sign(body, secret),
    }


def backoff_s(attempts: int, base_s: float, max_s: float, rng: Random) -> float:
    """Seconds before the next attempt after `attempts` failed ones: exponential
    (`base * 2**(attempts-1)`, at most `max_s`) with equal jitter, so receivers that
    come back are not met by every sender at once."""
    ceiling = min(max_s, base_s * 2.0 ** min(max(attempts - 1, 0), 60))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)
