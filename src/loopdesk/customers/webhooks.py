"""Loop's webhooks keep the store fresh: verify, store, acknowledge, apply.

An event is committed to the events table before anything else happens to it, so an
acknowledged event is never lost: one that fails to apply stays there marked `failed`
and `replay_failed` applies it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk import store as db
from loopdesk.domain.normalize import normalize_return
from loopdesk.domain.webhooks import WebhookEvent, parse_event, signature_valid_any
from loopdesk.errors import InvalidInput, LoopdeskError, Unauthorized

log = structlog.get_logger(__name__)

LABEL_FIELDS = ("carrier", "tracking_number", "label_status", "label_updated_at")
Applied = Literal["applied", "ignored", "failed"]
Result = Literal["applied", "duplicate", "ignored", "failed"]


@dataclass(frozen=True)
class Ingested:
    event_id: int
    result: Result


async def ingest(
    store: db.Store, body: bytes, presented_signature: str | None, secrets: Sequence[str]
) -> Ingested:
    if not signature_valid_any(body, presented_signature, secrets):
        raise Unauthorized("missing or invalid X-Loop-Signature")
    try:
        event: WebhookEvent | None = parse_event(body)
    except InvalidInput:
        event = None  # signed but unreadable: kept for a person to look at
    async with store.session() as session:
        event_id, new = await db.record_event(
            session,
            dedupe_key=event.dedupe_key if event else hashlib.sha256(body).hexdigest(),
            topic=event.topic if event else "unknown",
            trigger=event.trigger if event else "",
            return_id=event.return_id if event else None,
            body=body,
        )
    if not new:
        return Ingested(event_id, "duplicate")
    result = await _apply(store, event_id, event)
    return Ingested(event_id, result)


async def replay_failed(store: db.Store, *, limit: int = 100) -> dict[str, int]:
    async with store.session() as session:
        failed = await db.failed_events(session, limit=limit)
    counts: dict[str, int] = {}
    for row in failed:
        try:
            event: WebhookEvent | None = parse_event(bytes(row.body))
        except InvalidInput:
            event = None
        result = await _apply(store, row.id, event)
        counts[result] = counts.get(result, 0) + 1
    return counts


async def _apply(store: db.Store, event_id: int, event: WebhookEvent | None) -> Applied:
    """Apply and mark the event in one transaction; on failure, mark it failed."""
    try:
        if event is None:
            raise InvalidInput("webhook body is not a JSON object")
        async with store.session() as session:
            status = await _apply_event(session, event)
            await db.mark_event(session, event_id, status, None)
        return status
    except (LoopdeskError, ValueError, KeyError, TypeError) as exc:
        error = getattr(exc, "message", None) or str(exc)
        log.warning("webhook.apply_failed", event_id=event_id, error=error)
    async with store.session() as session:
        await db.mark_event(session, event_id, "failed", error)
    return "failed"


async def _apply_event(session: AsyncSession, event: WebhookEvent) -> Applied:
    payload = event.payload
    if event.topic == "return":
        raw = {k: v for k, v in payload.items() if k not in ("topic", "trigger")}
        await db.upsert_returns(session, [(raw, normalize_return(raw))])
        return "applied"
    if event.topic == "label" and event.return_id:
        fields: dict[str, Any] = {k: payload[k] for k in LABEL_FIELDS if k in payload}
        known = await db.apply_label_update(session, event.return_id, fields)
        return "applied" if known else "ignored"
    return "ignored"
