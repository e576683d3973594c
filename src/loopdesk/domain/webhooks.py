"""Loop webhook facts: signature check, event identity, an event's version.

Loop signs the raw body: `X-Loop-Signature = base64(HMAC-SHA256(secret, body))`. It
sends no event id, so an event is identified by its topic, trigger and a hash of the
raw body: a redelivery sends the same bytes, any other event differs somewhere.

A `return` event's version, the first of these the payload carries:

1. `updated_at`: exact, Loop moves it on every change of the return;
2. `edited_at`: a lower bound (the return was edited then, and may have changed since);
3. none (Loop's documented payload has no `updated_at` and `edited_at: null`): the event
   only says "this return changed", and the return is read from Loop.

The label's time (`label_updated_at`, the newest `labels[].updated_at`) versions the
label fields only: those of a `label` event, and those inside a `return` event, which
never replace a newer stored label. Between equal times the trigger decides:
`created` < `updated` < `closed`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from loopdesk.domain.timestamps import checked_timestamp, parse_iso
from loopdesk.errors import InvalidInput, InvalidUpstreamData

# Loop's field names for a return's label, in label events and return objects alike.
LABEL_FIELDS = ("carrier", "tracking_number", "label_status", "label_updated_at")
# Column widths of the events table (store/schema.py): longer values are refused here.
MAX_LABEL = 64
MAX_EMAIL = 320
# Loop's bodies are a few levels deep; anything deeper is not a Loop event.
MAX_DEPTH = 32
# Versions outside this range are not Loop's: a year-9999 `updated_at` would pin a
# return forever, a year-1 one would put it out of every lookup window.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LABEL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TRIGGER_RANK = {
    "created": 1,
    "requested": 1,
    "issued": 1,
    "updated": 2,
    "processed": 2,
    "cancelled": 3,
    "closed": 3,
}


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


class Source(StrEnum):
    """Where a version comes from; only `updated_at` orders a return exactly."""

    UPDATED_AT = "updated_at"
    EDITED_AT = "edited_at"
    LABEL = "label"


@dataclass(frozen=True)
class Version:
    at: datetime
    source: Source
    rank: int = 0

    @property
    def exact(self) -> bool:
        return self.source is Source.UPDATED_AT


@dataclass(frozen=True)
class WebhookEvent:
    topic: str
    trigger: str
    return_id: str | None
    payload: dict[str, Any]
    dedupe_key: str
    # None: the event carries no version and the return must be read from Loop.
    version: Version | None


def dedupe_key(body: bytes, topic: str, trigger: str) -> str:
    """The event's identity: topic, trigger and the raw body's hash."""
    digest = hashlib.sha256(body).hexdigest()
    return hashlib.sha256("\x1f".join((topic, trigger, digest)).encode()).hexdigest()


def envelope(body: bytes) -> tuple[str, str, str | None]:
    """Topic, trigger and return id of any body, made safe to store (for an event
    that cannot be parsed): printable, within the column widths."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return "unknown", "", None
    if not isinstance(payload, dict):
        return "unknown", "", None

    def safe(value: Any) -> str:
        text = value if isinstance(value, str) else ""
        return "".join(c for c in text if c.isprintable())[:MAX_LABEL]

    rid = payload.get("return_id", payload.get("id"))
    return_id = safe(str(rid)) if isinstance(rid, str | int) and not isinstance(rid, bool) else ""
    return safe(payload.get("topic")) or "unknown", safe(payload.get("trigger")), return_id or None


def parse_event(body: bytes) -> WebhookEvent:
    """The event a signed body describes; InvalidInput says why it is unusable."""
    try:
        payload = json.loads(body)
    except RecursionError:
        raise InvalidInput("webhook body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("webhook body is not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidInput("webhook body is not a JSON object")
    _check_values(payload)
    topic = _label(payload.get("topic"), "topic") or "unknown"
    trigger = _label(payload.get("trigger"), "trigger")
    if topic == "return":
        return_id = return_id_of(payload.get("id"), "id")
    else:
        raw_id = payload.get("return_id")
        return_id = return_id_of(raw_id if raw_id is not None else payload.get("id"), "return_id")
    if topic in ("return", "label") and return_id is None:
        raise InvalidInput(f"webhook `{topic}` event names no return")
    return WebhookEvent(
        topic,
        trigger,
        return_id,
        payload,
        dedupe_key(body, topic, trigger),
        event_version(payload, topic, trigger),
    )


def return_id_of(value: Any, name: str = "id") -> str | None:
    """A return id as text: Loop sends strings in older bodies, integers in newer ones."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(f"webhook `{name}` is not a return id")
    text = str(value).strip()
    if not _ID.match(text):
        raise InvalidInput(f"webhook `{name}` is not a return id (at most 64 letters or digits)")
    return text


def event_version(payload: dict[str, Any], topic: str, trigger: str) -> Version | None:
    """The version an event carries (the order is in the module's docstring)."""
    rank = trigger_rank(trigger)
    if topic not in ("return", "label"):
        return None  # a topic loopdesk does not apply: its times are not ours to judge
    if topic == "label":
        at = timestamp(payload.get("label_updated_at"), "label_updated_at")
        return Version(at, Source.LABEL, rank) if at else None
    updated = timestamp(payload.get("updated_at"), "updated_at")
    if updated:
        return Version(updated, Source.UPDATED_AT, rank)
    edited = timestamp(payload.get("edited_at"), "edited_at")
    return Version(edited, Source.EDITED_AT, rank) if edited else None


def label_time(payload: dict[str, Any]) -> datetime | None:
    """The newest of `label_updated_at` and `labels[].updated_at`."""
    times = [timestamp(payload.get("label_updated_at"), "label_updated_at")]
    labels = payload.get("labels")
    if isinstance(labels, list):
        times += [
            timestamp(item.get("updated_at"), "labels[].updated_at")
            for item in labels
            if isinstance(item, dict)
        ]
    found = [t for t in times if t is not None]
    return max(found) if found else None


def timestamp(value: Any, name: str) -> datetime | None:
    """An aware UTC time; None when absent or a placeholder (`"N/A"`, null).

    InvalidInput when it is a time outside [EARLIEST, LATEST) or one Python cannot
    represent in UTC (`9999-12-31T23:59:59-23:59`).
    """
    try:
        text = checked_timestamp(value)
        moment = parse_iso(text) if text else None
    except (InvalidUpstreamData, OverflowError, ValueError):
        raise InvalidInput(f"webhook `{name}` is out of range") from None
    if moment is None:
        return None
    if not EARLIEST <= moment < LATEST:
        raise InvalidInput(f"webhook `{name}` is out of range")
    return moment


def trigger_rank(trigger: str) -> int:
    """`return.closed` after `return.updated` after `return.created` at equal times."""
    return _TRIGGER_RANK.get(trigger.rsplit(".", 1)[-1], 0)


def check_return(raw: dict[str, Any]) -> None:
    """What the store needs of a return to keep it: InvalidInput names the field."""
    return_id_of(raw.get("id"))
    customer = raw.get("customer")
    if isinstance(customer, str) and len(customer) > MAX_EMAIL:
        raise InvalidInput("webhook `customer` is longer than an email address can be")
    for name in ("created_at", "updated_at", "edited_at", "label_updated_at"):
        timestamp(raw.get(name), name)


def _label(value: Any, name: str) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not _LABEL.match(value):
        raise InvalidInput(f"webhook `{name}` is not a Loop {name} (at most 64 characters)")
    return value


def _check_values(payload: Any) -> None:
    """No deep nesting, and only text every database column can hold: no NUL, no
    lone surrogate (`"\\ud800"` is valid JSON but not UTF-8)."""
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidInput(f"webhook body is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


def _check_text(value: str) -> None:
    if "\x00" in value:
        raise InvalidInput("webhook body holds a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("webhook body holds text that is not Unicode") from None


class Decision(StrEnum):
    APPLY = "apply"
    STALE = "stale"
    UNCHANGED = "unchanged"
    # The event cannot be ordered against what is stored: read the return from Loop.
    FETCH = "fetch"


def decide(event: Version | None, stored: Version | None, *, same: bool) -> Decision:
    """Whether a return event's payload replaces the stored return.

    `same`: writing it would change nothing. A lower bound (`edited_at`, label time)
    orders an event only when it is later than an exact stored version, or than a
    stored lower bound of the same kind; anything else that is not the same is read
    from Loop rather than guessed.
    """
    if event is None:
        return Decision.UNCHANGED if same else Decision.FETCH
    if stored is None:
        return Decision.APPLY
    newer = event.at > stored.at
    if same and not (event.exact and newer):
        return Decision.UNCHANGED
    if event.exact:
        if newer:
            return Decision.APPLY
        if event.at < stored.at:
            return Decision.STALE
        # A stored rank of 0 (a read from Loop, not an event) orders nothing.
        if stored.exact and stored.rank and event.rank != stored.rank:
            return Decision.APPLY if event.rank > stored.rank else Decision.STALE
        return Decision.FETCH
    if newer and (stored.exact or stored.source is event.source):
        return Decision.APPLY
    return Decision.FETCH


def decide_label(event: datetime | None, stored: datetime | None, *, same: bool) -> Decision:
    """Whether a label event's fields replace the stored return's label fields."""
    if same:
        return Decision.UNCHANGED
    if event is None:
        return Decision.FETCH
    if stored is None or event > stored:
        return Decision.APPLY
    return Decision.STALE if event < stored else Decision.FETCH
