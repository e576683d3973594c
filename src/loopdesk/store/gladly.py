"""Gladly re-routing: its webhook events (stored first, applied once) and the
conversations it knows, each with its customer and the outcome it was placed by."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk.store.dialect import insert, insert_or_get_id, rowcount
from loopdesk.store.outbox import customer_emails, customer_key
from loopdesk.store.schema import gladly_conversations, gladly_events, routing_outcomes

RECEIVED = "received"
APPLIED = "applied"
FAILED = "failed"
GLADLY_EVENT_STATUSES = (RECEIVED, APPLIED, FAILED)
CLOSED = "CLOSED"


@dataclass(frozen=True)
class GladlyEventRow:
    id: int
    event_id: str
    type: str
    conversation_id: str | None
    received_at: datetime
    body: bytes
    status: str
    attempts: int
    next_attempt_at: datetime
    applied_at: datetime | None
    result: str | None
    error: str | None


@dataclass(frozen=True)
class GladlyConversationRow:
    id: str
    gladly_customer_id: str
    emails: list[str]
    customer: str
    inbox_id: str | None
    status: str
    outcome_at: datetime | None
    lease_until: datetime | None
    created_at: datetime
    updated_at: datetime


# --- events ---------------------------------------------------------------------------


async def record_gladly_event(
    session: AsyncSession,
    *,
    event_id: str,
    type: str,
    conversation_id: str | None,
    body: bytes,
    at: datetime,
    claim_until: datetime,
) -> tuple[int, bool]:
    """Store an event `received`, claimed until `claim_until` by whoever stored it:
    (its row id, new). A redelivery of a stored event is not new."""
    values = {
        "event_id": event_id,
        "type": type,
        "conversation_id": conversation_id,
        "received_at": at,
        "body": body,
        "status": RECEIVED,
        "attempts": 1,
        "next_attempt_at": claim_until,
    }
    return await insert_or_get_id(session, gladly_events, values, ["event_id"])


async def get_gladly_event(session: AsyncSession, row_id: int) -> GladlyEventRow | None:
    row = (
        await session.execute(select(gladly_events).where(gladly_events.c.id == row_id))
    ).one_or_none()
    return None if row is None else _event(row)


async def due_gladly_events(
    session: AsyncSession, now: datetime, *, limit: int = 100
) -> list[GladlyEventRow]:
    """Events still `received` whose next attempt is due, oldest first."""
    query = (
        select(gladly_events)
        .where(gladly_events.c.status == RECEIVED, gladly_events.c.next_attempt_at <= now)
        .order_by(gladly_events.c.next_attempt_at, gladly_events.c.id)
        .limit(max(limit, 0))
    )
    return [_event(row) for row in await session.execute(query)]


async def claim_gladly_event(
    session: AsyncSession, row: GladlyEventRow, *, until: datetime
) -> bool:
    """Take a due event for one attempt (its next attempt moves to `until`); False
    when another process took it first."""
    statement = (
        update(gladly_events)
        .where(
            gladly_events.c.id == row.id,
            gladly_events.c.status == RECEIVED,
            gladly_events.c.next_attempt_at == row.next_attempt_at,
        )
        .values(next_attempt_at=until, attempts=gladly_events.c.attempts + 1)
    )
    return await rowcount(session, statement) > 0


async def finish_gladly_event(
    session: AsyncSession,
    row_id: int,
    *,
    status: str,
    result: str | None,
    at: datetime,
    error: str | None = None,
) -> None:
    """`applied` (with what was done) or `failed` (with why): the event is settled."""
    await session.execute(
        update(gladly_events)
        .where(gladly_events.c.id == row_id)
        .values(
            status=status,
            result=result,
            applied_at=at,
            error=None if error is None else error[:500],
        )
    )


async def retry_gladly_event(
    session: AsyncSession, row_id: int, *, at: datetime, error: str
) -> None:
    """Still `received`: tried again at `at`."""
    await session.execute(
        update(gladly_events)
        .where(gladly_events.c.id == row_id, gladly_events.c.status == RECEIVED)
        .values(next_attempt_at=at, error=error[:500])
    )


async def gladly_event_counts(session: AsyncSession) -> dict[str, int]:
    """Events per status, every status present."""
    query = select(gladly_events.c.status, func.count()).group_by(gladly_events.c.status)
    counts = dict.fromkeys(GLADLY_EVENT_STATUSES, 0)
    for status, count in await session.execute(query):
        counts[status] = int(count)
    return counts


# --- conversations --------------------------------------------------------------------


async def save_gladly_conversation(
    session: AsyncSession,
    conversation_id: str,
    *,
    gladly_customer_id: str,
    emails: Sequence[str],
    inbox_id: str | None,
    status: str,
    at: datetime,
) -> GladlyConversationRow:
    """Record (or update) whose a conversation is and where it is now; the row. Its
    outcome mark and lease are kept."""
    addresses = customer_emails(emails)
    values = {
        "gladly_customer_id": gladly_customer_id,
        "emails": addresses,
        "customer": customer_key(addresses),
        "inbox_id": inbox_id,
        "status": status,
        "updated_at": at,
    }
    statement = insert(session, gladly_conversations).values(
        id=conversation_id, created_at=at, **values
    )
    statement = statement.on_conflict_do_update(
        index_elements=[gladly_conversations.c.id],
        set_={k: statement.excluded[k] for k in values},
    )
    await session.execute(statement)
    found = await get_gladly_conversation(session, conversation_id)
    assert found is not None
    return found


async def get_gladly_conversation(
    session: AsyncSession, conversation_id: str
) -> GladlyConversationRow | None:
    query = select(gladly_conversations).where(gladly_conversations.c.id == conversation_id)
    row = (await session.execute(query)).one_or_none()
    return None if row is None else _conversation(row)


async def lease_gladly_conversation(
    session: AsyncSession, conversation_id: str, *, now: datetime, until: datetime
) -> bool:
    """Hold a conversation while it is placed (one process moves it); False when another
    holds it. A lease left by a process that died lapses at its `until`."""
    statement = (
        update(gladly_conversations)
        .where(
            gladly_conversations.c.id == conversation_id,
            or_(
                gladly_conversations.c.lease_until.is_(None),
                gladly_conversations.c.lease_until <= now,
            ),
        )
        .values(lease_until=until)
    )
    return await rowcount(session, statement) > 0


async def release_gladly_conversation(
    session: AsyncSession,
    conversation_id: str,
    *,
    at: datetime,
    inbox_id: str | None = None,
    status: str | None = None,
    outcome_at: datetime | None = None,
) -> None:
    """Let the conversation go, with where it is now and the outcome it was placed by
    (each kept as it was when None)."""
    values: dict[str, Any] = {"lease_until": None, "updated_at": at}
    if inbox_id is not None:
        values["inbox_id"] = inbox_id
    if status is not None:
        values["status"] = status
    if outcome_at is not None:
        values["outcome_at"] = outcome_at
    await session.execute(
        update(gladly_conversations)
        .where(gladly_conversations.c.id == conversation_id)
        .values(values)
    )


async def close_gladly_conversation(
    session: AsyncSession, conversation_id: str, *, at: datetime
) -> bool:
    """Mark a conversation closed (Gladly said so), so no sweep looks at it again until
    it reopens; False when loopdesk never saw it."""
    statement = (
        update(gladly_conversations)
        .where(gladly_conversations.c.id == conversation_id)
        .values(status=CLOSED, updated_at=at)
    )
    return await rowcount(session, statement) > 0


async def gladly_conversations_to_check(
    session: AsyncSession, *, now: datetime, after: str = "", limit: int = 100
) -> list[tuple[GladlyConversationRow, datetime]]:
    """Open conversations whose customer's routing outcome changed since they were last
    placed (or that were never placed by one), not held by a process: each with its
    customer's outcome time, by id after `after`."""
    c, o = gladly_conversations, routing_outcomes
    query = (
        select(c, o.c.decided_at.label("outcome_decided_at"))
        .join(o, o.c.customer == c.c.customer)
        .where(
            c.c.status != CLOSED,
            c.c.id > after,
            or_(c.c.outcome_at.is_(None), c.c.outcome_at != o.c.decided_at),
            or_(c.c.lease_until.is_(None), c.c.lease_until <= now),
        )
        .order_by(c.c.id)
        .limit(max(limit, 0))
    )
    return [(_conversation(row), row.outcome_decided_at) for row in await session.execute(query)]


async def gladly_conversations_of(
    session: AsyncSession, customer: str, *, open_only: bool = True
) -> list[GladlyConversationRow]:
    """The conversations of one routing customer (its key), by id."""
    query = select(gladly_conversations).where(gladly_conversations.c.customer == customer)
    if open_only:
        query = query.where(gladly_conversations.c.status != CLOSED)
    query = query.order_by(gladly_conversations.c.id)
    return [_conversation(row) for row in await session.execute(query)]


def _event(row: Any) -> GladlyEventRow:
    return GladlyEventRow(
        id=int(row.id),
        event_id=row.event_id,
        type=row.type,
        conversation_id=row.conversation_id,
        received_at=row.received_at,
        body=bytes(row.body),
        status=row.status,
        attempts=int(row.attempts),
        next_attempt_at=row.next_attempt_at,
        applied_at=row.applied_at,
        result=row.result,
        error=row.error,
    )


def _conversation(row: Any) -> GladlyConversationRow:
    return GladlyConversationRow(
        id=row.id,
        gladly_customer_id=row.gladly_customer_id,
        emails=list(row.emails),
        customer=row.customer,
        inbox_id=row.inbox_id,
        status=row.status,
        outcome_at=row.outcome_at,
        lease_until=row.lease_until,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
