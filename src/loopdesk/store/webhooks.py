"""Webhook events: recorded once per dedupe key, claimed by one applier, then marked
with their outcome in the applier's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk.store.dialect import insert_or_get_id, rowcount
from loopdesk.store.schema import webhook_events
from loopdesk.store.types import utcnow

# `received`: stored, not applied yet (a crash, an outage); applied by its redelivery,
# `webhooks replay` and at start-up. `applied` changed the store; `unchanged` and
# `stale` (older than what is stored) did not; `failed` can never be applied as sent
# (the error says why); `ignored`: a topic loopdesk does not use.
EventStatus = Literal["received", "applied", "unchanged", "stale", "failed", "ignored"]
EVENT_STATUSES: tuple[str, ...] = get_args(EventStatus)
# What `webhooks replay` applies again.
REPLAYABLE: tuple[str, ...] = ("received", "failed")


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
    status: str = "received",
    error: str | None = None,
) -> tuple[int, bool]:
    """Record a delivery: (event id, True) the first time, (same id, False) for a
    redelivery. Never raises on a duplicate, so Loop's retries are answered 200."""
    _check_status(status)
    values = {
        "dedupe_key": dedupe_key,
        "topic": topic,
        "trigger": trigger,
        "return_id": return_id,
        "received_at": utcnow(),
        "body": body,
        "status": status,
        "error": error,
    }
    return await insert_or_get_id(session, webhook_events, values, ["dedupe_key"])


async def event_status(session: AsyncSession, event_id: int) -> str | None:
    query = select(webhook_events.c.status).where(webhook_events.c.id == event_id)
    status: str | None = (await session.execute(query)).scalar_one_or_none()
    return status


async def claim_event(
    session: AsyncSession, event_id: int, statuses: tuple[str, ...] = ("received",)
) -> bool:
    """Take an event for applying in this transaction: False when it is not in one of
    `statuses` (another process applied it meanwhile).

    The UPDATE locks the row on PostgreSQL until the transaction ends, so a second
    applier waits and then finds it applied; SQLite's transactions hold the write lock.
    """
    statement = (
        update(webhook_events)
        .where(webhook_events.c.id == event_id, webhook_events.c.status.in_(statuses))
        .values(attempts=webhook_events.c.attempts + 1)
    )
    return await rowcount(session, statement) > 0


async def claim_events(
    session: AsyncSession, event_ids: Sequence[int], statuses: tuple[str, ...] = ("received",)
) -> set[int]:
    """`claim_event` of many events in one statement: the ids taken (the others were
    applied meanwhile)."""
    if not event_ids:
        return set()
    statement = (
        update(webhook_events)
        .where(webhook_events.c.id.in_(sorted(event_ids)), webhook_events.c.status.in_(statuses))
        .values(attempts=webhook_events.c.attempts + 1)
        .returning(webhook_events.c.id)
    )
    return {int(event_id) for event_id in (await session.execute(statement)).scalars()}


async def mark_events(session: AsyncSession, outcomes: dict[int, str]) -> None:
    """`mark_event` of many events, one statement per status."""
    by_status: dict[str, list[int]] = {}
    for event_id, status in outcomes.items():
        _check_status(status)
        by_status.setdefault(status, []).append(event_id)
    now = utcnow()
    for status, ids in sorted(by_status.items()):
        await session.execute(
            update(webhook_events)
            .where(webhook_events.c.id.in_(sorted(ids)))
            .values(status=status, error=None, applied_at=now if status == "applied" else None)
        )


async def mark_event(
    session: AsyncSession, event_id: int, status: str, error: str | None = None
) -> None:
    """Set an event's outcome (one of `EVENT_STATUSES`, checked here, so callers may
    pass their own wider result type); `applied_at` is set when it is applied, and a later
    success clears the error of an earlier failure."""
    _check_status(status)
    await session.execute(
        update(webhook_events)
        .where(webhook_events.c.id == event_id)
        .values(status=status, error=error, applied_at=utcnow() if status == "applied" else None)
    )


def _check_status(status: str) -> None:
    if status not in EVENT_STATUSES:
        raise ValueError(f"unknown event status {status!r}")


async def note_event_error(session: AsyncSession, event_id: int, error: str) -> None:
    """Say why a `received` event could not be applied yet, leaving it `received`."""
    await session.execute(
        update(webhook_events)
        .where(webhook_events.c.id == event_id, webhook_events.c.status == "received")
        .values(error=error)
    )


async def failed_events(session: AsyncSession, limit: int = 100) -> list[EventRow]:
    """Failed events, oldest first: the order to replay them in."""
    return await events_in(session, ("failed",), limit=limit)


async def events_in(
    session: AsyncSession,
    statuses: tuple[str, ...],
    *,
    limit: int = 100,
    after_id: int = 0,
    return_id: str | None = None,
    return_ids: Sequence[str] | None = None,
    received_before: datetime | None = None,
) -> list[EventRow]:
    """Events in one of `statuses` (and of one return, or of any of `return_ids`;
    received before a moment), oldest first."""
    conditions = [webhook_events.c.status.in_(statuses), webhook_events.c.id > after_id]
    if return_id is not None:
        conditions.append(webhook_events.c.return_id == return_id)
    if return_ids is not None:
        conditions.append(webhook_events.c.return_id.in_(list(return_ids)))
    if received_before is not None:
        conditions.append(webhook_events.c.received_at < received_before)
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
        .where(*conditions)
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
