"""Loop webhook facts: signature check, event identity, what an event carries.

Loop signs the raw body: `X-Loop-Signature = base64(HMAC-SHA256(secret, body))`. It
sends no event id, so an event is identified by its topic, trigger, return id and the
payload's own timestamps: a redelivery of the same event has the same identity, a new
change to the same return has a newer timestamp.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loopdesk.errors import InvalidInput

TIMESTAMP_FIELDS = ("updated_at", "label_updated_at", "created_at", "edited_at")


def signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def signature_valid(body: bytes, presented: str | None, secret: str) -> bool:
    """Constant-time check of `X-Loop-Signature` over the exact bytes received."""
    if not presented or not secret:
        return False
    expected = signature(body, secret).encode()
    return hmac.compare_digest(expected, presented.strip().encode())


def signature_valid_any(body: bytes, presented: str | None, secrets: Sequence[str]) -> bool:
    """True when any of `secrets` signed `body` (one per subscription, two in a rotation).

    Every secret is checked, whatever matched first, so the time taken says nothing
    about which one did.
    """
    results = [signature_valid(body, presented, secret) for secret in secrets]
    return any(results)


# The subscriptions loopdesk applies (reference 7.1): `loopdesk webhooks subscribe`
# registers each pair. Label changes arrive under several triggers, all applied alike.
APPLIED_SUBSCRIPTIONS: tuple[tuple[str, str], ...] = (
    ("return", "return.created"),
    ("return", "return.updated"),
    ("return", "return.closed"),
    ("label", "label.created"),
    ("label", "label.updated"),
    ("label", "label.requested"),
    ("label", "label.closed"),
)


@dataclass(frozen=True)
class WebhookEvent:
    topic: str
    trigger: str
    return_id: str | None
    payload: dict[str, Any]
    dedupe_key: str


def parse_event(body: bytes) -> WebhookEvent:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("webhook body is not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidInput("webhook body is not a JSON object")
    topic = _text(payload.get("topic")) or "unknown"
    trigger = _text(payload.get("trigger")) or ""
    return_id = _text(payload.get("return_id")) if topic != "return" else None
    return_id = return_id or _text(payload.get("id")) or None
    parts = [topic, trigger, return_id or ""]
    stamps = [_text(payload.get(name)) for name in TIMESTAMP_FIELDS]
    parts += stamps
    if not any(stamps):  # nothing to tell two events apart but their content
        parts.append(hashlib.sha256(body).hexdigest())
    key = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return WebhookEvent(topic, trigger, return_id, payload, key)


def _text(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)
