"""Webhook events: recorded once per dedupe key, then marked with their outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk.store.dialect import insert_or_get_id
from loopdesk.store.schema import webhook_events
from loopdesk.store.types import utcnow

EventStatus = Literal["received", "applied", "failed", "ignored"]
EVENT_STATUSES: tuple[str, ...] = get_args(EventStatus)


@dataclass(frozen=True)
class EventRow:
    id: int
    topic: str
    trigger: str
    body: bytes
    status: str
    error: str | None
    return_id: str | None = None
    received_at: datetime | None = None


async def record_event(
    session: AsyncSession,
    *,
    dedupe_key: str,
    topic: str,
    trigger: str,
    return_id: str | None,
    body: bytes,
) -> tuple[int, bool]:
    """Record a delivery: (event id, True) the first time, (same id, False) for a
    redelivery. Never raises on a duplicate, so Loop's retries are answered 200."""
    values = {
        "dedupe_key": dedupe_key,
        "topic": topic,
        "trigger": trigger,
        "return_id": return_id,
        "received_at": utcnow(),
        "body": body,
        "status": "received",
    }
    return await insert_or_get_id(session, webhook_events, values, ["dedupe_key"])


async def mark_event(
    session: AsyncSession, event_id: int, status: str, error: str | None = None
) -> None:
    """Set an event's outcome (one of `EVENT_STATUSES`, checked here, so callers may
    pass their own wider result type); `applied_at` is set when it is applied, and a later
    success clears the error of an earlier failure."""
    if status not in EVENT_STATUSES:
        raise ValueError(f"unknown event status {status!r}")
    await session.execute(
        update(webhook_events)
        .where(webhook_events.c.id == event_id)
        .values(status=status, error=error, applied_at=utcnow() if status == "applied" else None)
    )


async def failed_events(session: AsyncSession, limit: int = 100) -> list[EventRow]:
    """Failed events, oldest first: the order to replay them in."""
    query = (
        select(
            webhook_events.c.id,
            webhook_events.c.topic,
            webhook_events.c.trigger,
            webhook_events.c.body,
            webhook_events.c.status,
            webhook_events.c.error,
            webhook_events.c.return_id,
            webhook_events.c.received_at,
        )
        .where(webhook_events.c.status == "failed")
        .order_by(webhook_events.c.id)
        .limit(max(limit, 0))
    )
    return [
        EventRow(
            id=row.id,
            topic=row.topic,
            trigger=row.trigger,
            body=bytes(row.body),
            status=row.status,
            error=row.error,
            return_id=row.return_id,
            received_at=row.received_at,
        )
        for row in await session.execute(query)
    ]


async def event_counts(session: AsyncSession) -> dict[str, int]:
    """Events per status, every status present (0 when none), for metrics."""
    query = select(webhook_events.c.status, func.count()).group_by(webhook_events.c.status)
    counts = dict.fromkeys(EVENT_STATUSES, 0)
    for status, count in await session.execute(query):
        counts[status] = int(count)
    return counts
