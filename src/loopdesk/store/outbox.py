"""Routing events: each customer's last outcome, and the outbox of events to send.

A customer is the set of normalized addresses an outcome was computed on; its key is
a hash of that set (sorted), so the same addresses in any order or case are one
customer (the addresses are kept in the lookup's order, primary first). The outbox
holds one row per event and URL, delivered until a 2xx.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk.store.dialect import dialect_name, insert, rowcount
from loopdesk.store.returns import normalize_emails
from loopdesk.store.schema import returns, routing_outbox, routing_outcome_emails, routing_outcomes

PENDING = "pending"
DELIVERED = "delivered"
OUTBOX_STATUSES = (PENDING, DELIVERED)
# Return states whose customers the scan visits (as `domain.facts.OPEN_STATES`).
SCANNED_STATES = ("open", "review")
# The advisory-lock space of customers, apart from returns' and reads' keys.
_CUSTOMERS = 0x4C45


def customer_emails(emails: Iterable[str]) -> list[str]:
    """A customer's addresses as stored: normalized, distinct, in the lookup's order
    (the first is the primary, under which the lookup stored the orders)."""
    return normalize_emails(emails)


def customer_key(emails: Iterable[str]) -> str:
    """The same addresses in any order or case are one customer."""
    return hashlib.sha256("\n".join(sorted(normalize_emails(emails))).encode()).hexdigest()


@dataclass(frozen=True)
class OutcomeRow:
    customer: str
    emails: list[str]
    queue: str
    priority: int
    rule: str
    tags: list[str]
    facts: dict[str, Any]
    decided_at: datetime


@dataclass(frozen=True)
class OutboxRow:
    id: int
    event_id: str
    url: str
    body: bytes
    created_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None


async def lock_customer(session: AsyncSession, key: str) -> None:
    """Serialize the deciders of one customer until the transaction ends (PostgreSQL:
    an advisory lock; SQLite's transactions already hold the write lock)."""
    if dialect_name(session) != "postgresql":
        return
    number = int(key[:8], 16) - 2**31  # 32 bits of the hash, signed
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:space, :key)"), {"space": _CUSTOMERS, "key": number}
    )


async def get_outcome(session: AsyncSession, key: str) -> OutcomeRow | None:
    row = (
        await session.execute(select(routing_outcomes).where(routing_outcomes.c.customer == key))
    ).one_or_none()
    return None if row is None else _outcome(row)


async def get_outcomes(session: AsyncSession, keys: Iterable[str]) -> dict[str, OutcomeRow]:
    """`get_outcome` of many customers in one query."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    query = select(routing_outcomes).where(routing_outcomes.c.customer.in_(wanted))
    return {row.customer: _outcome(row) for row in await session.execute(query)}


async def save_outcome(
    session: AsyncSession,
    *,
    emails: Sequence[str],
    queue: str,
    priority: int,
    rule: str,
    tags: Sequence[str],
    facts: dict[str, Any],
    at: datetime,
) -> str:
    """Make this the customer's last outcome; their key."""
    [key] = await save_outcomes(
        session,
        [
            {
                "emails": emails,
                "queue": queue,
                "priority": priority,
                "rule": rule,
                "tags": tags,
                "facts": facts,
                "at": at,
            }
        ],
    )
    return key


async def save_outcomes(session: AsyncSession, outcomes: Sequence[dict[str, Any]]) -> list[str]:
    """`save_outcome` of many customers (each a dict of its keyword arguments) in two
    statements; their keys."""
    rows: list[dict[str, Any]] = []
    links: list[dict[str, str]] = []
    for outcome in outcomes:
        addresses = customer_emails(outcome["emails"])
        key = customer_key(addresses)
        rows.append(
            {
                "customer": key,
                "emails": addresses,
                "queue": outcome["queue"],
                "priority": outcome["priority"],
                "rule": outcome["rule"],
                "tags": list(outcome["tags"]),
                "facts": outcome["facts"],
                "decided_at": outcome["at"],
            }
        )
        links.extend({"email": e, "customer": key} for e in addresses)
    if not rows:
        return []
    # Executed many times over one statement: compiled once, whatever the count.
    statement = insert(session, routing_outcomes)
    statement = statement.on_conflict_do_update(
        index_elements=[routing_outcomes.c.customer],
        set_={k: statement.excluded[k] for k in rows[0] if k != "customer"},
    )
    await session.execute(statement, rows)
    linked = insert(session, routing_outcome_emails).on_conflict_do_nothing()
    await session.execute(linked, links)
    return [row["customer"] for row in rows]


async def customers_with_email(session: AsyncSession, email: str) -> list[OutcomeRow]:
    """The customers (with a last outcome) one of whose addresses this is."""
    (address,) = normalize_emails([email]) or [""]
    query = (
        select(routing_outcomes)
        .join(
            routing_outcome_emails,
            routing_outcome_emails.c.customer == routing_outcomes.c.customer,
        )
        .where(routing_outcome_emails.c.email == address)
        .order_by(routing_outcomes.c.customer)
    )
    return [_outcome(row) for row in await session.execute(query)]


async def customers_with_emails(
    session: AsyncSession, emails: Iterable[str]
) -> dict[str, list[OutcomeRow]]:
    """`customers_with_email` of many addresses in one query, by normalized address."""
    addresses = normalize_emails(emails)
    if not addresses:
        return {}
    query = (
        select(routing_outcome_emails.c.email, routing_outcomes)
        .join(
            routing_outcome_emails,
            routing_outcome_emails.c.customer == routing_outcomes.c.customer,
        )
        .where(routing_outcome_emails.c.email.in_(addresses))
        .order_by(routing_outcomes.c.customer)
    )
    found: dict[str, list[OutcomeRow]] = {}
    for row in await session.execute(query):
        found.setdefault(row.email, []).append(_outcome(row))
    return found


async def outcomes_page(
    session: AsyncSession, *, after: str = "", limit: int = 200
) -> list[OutcomeRow]:
    """Customers with a last outcome, by key, after `after`."""
    query = (
        select(routing_outcomes)
        .where(routing_outcomes.c.customer > after)
        .order_by(routing_outcomes.c.customer)
        .limit(max(limit, 0))
    )
    return [_outcome(row) for row in await session.execute(query)]


async def open_return_emails(
    session: AsyncSession, *, after: str = "", limit: int = 200
) -> list[str]:
    """Addresses with a stored return in an open state, in order, after `after`."""
    state = func.lower(returns.c.normalized["state"].as_string())
    query = (
        select(returns.c.customer_email)
        .where(state.in_(SCANNED_STATES), returns.c.customer_email > after)
        .group_by(returns.c.customer_email)
        .order_by(returns.c.customer_email)
        .limit(max(limit, 0))
    )
    return [str(row[0]) for row in await session.execute(query)]


async def enqueue(
    session: AsyncSession, *, event_id: str, urls: Sequence[str], body: bytes, at: datetime
) -> int:
    """One pending row per URL (a URL listed twice is sent once); the rows written."""
    rows = [
        {
            "event_id": event_id,
            "url": url,
            "body": body,
            "created_at": at,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": at,
        }
        for url in dict.fromkeys(urls)
    ]
    if not rows:
        return 0
    statement = insert(session, routing_outbox).values(rows).on_conflict_do_nothing()
    return await rowcount(session, statement)


async def due_deliveries(
    session: AsyncSession, now: datetime, *, limit: int = 100
) -> list[OutboxRow]:
    """Pending rows whose next attempt is due, oldest first."""
    query = (
        select(routing_outbox)
        .where(routing_outbox.c.status == PENDING, routing_outbox.c.next_attempt_at <= now)
        .order_by(routing_outbox.c.next_attempt_at, routing_outbox.c.id)
        .limit(max(limit, 0))
    )
    return [_outbox(row) for row in await session.execute(query)]


async def claim_delivery(session: AsyncSession, row: OutboxRow, *, until: datetime) -> bool:
    """Take a due row for one attempt: its next attempt moves to `until` (the lease:
    a sender that dies mid-send lets another try after it) and attempts count one
    more. False when another sender took it first."""
    statement = (
        update(routing_outbox)
        .where(
            routing_outbox.c.id == row.id,
            routing_outbox.c.status == PENDING,
            routing_outbox.c.next_attempt_at == row.next_attempt_at,
        )
        .values(next_attempt_at=until, attempts=routing_outbox.c.attempts + 1)
    )
    return await rowcount(session, statement) > 0


async def mark_delivered(session: AsyncSession, row_id: int, at: datetime) -> None:
    await session.execute(
        update(routing_outbox)
        .where(routing_outbox.c.id == row_id)
        .values(status=DELIVERED, delivered_at=at, last_error=None)
    )


async def mark_retry(session: AsyncSession, row_id: int, *, at: datetime, error: str) -> None:
    await session.execute(
        update(routing_outbox)
        .where(routing_outbox.c.id == row_id, routing_outbox.c.status == PENDING)
        .values(next_attempt_at=at, last_error=error[:500])
    )


async def prune_delivered(session: AsyncSession, before: datetime) -> int:
    """Forget rows delivered before `before`; how many."""
    statement = delete(routing_outbox).where(
        routing_outbox.c.status == DELIVERED, routing_outbox.c.delivered_at < before
    )
    return await rowcount(session, statement)


async def outbox_rows(session: AsyncSession, *, event_id: str | None = None) -> list[OutboxRow]:
    query = select(routing_outbox).order_by(routing_outbox.c.id)
    if event_id is not None:
        query = query.where(routing_outbox.c.event_id == event_id)
    return [_outbox(row) for row in await session.execute(query)]


async def outbox_counts(session: AsyncSession) -> dict[str, int]:
    """Rows per status, every status present."""
    query = select(routing_outbox.c.status, func.count()).group_by(routing_outbox.c.status)
    counts = dict.fromkeys(OUTBOX_STATUSES, 0)
    for status, count in await session.execute(query):
        counts[status] = int(count)
    return counts


async def next_attempt(session: AsyncSession) -> datetime | None:
    """When the earliest pending row is due, or None when nothing is pending."""
    query = (
        select(routing_outbox.c.next_attempt_at)
        .where(routing_outbox.c.status == PENDING)
        .order_by(routing_outbox.c.next_attempt_at)
        .limit(1)
    )
    found: datetime | None = (await session.execute(query)).scalar_one_or_none()
    return found


def _outcome(row: Any) -> OutcomeRow:
    return OutcomeRow(
        customer=row.customer,
        emails=list(row.emails),
        queue=row.queue,
        priority=int(row.priority),
        rule=row.rule,
        tags=list(row.tags),
        facts=dict(row.facts),
        decided_at=row.decided_at,
    )


def _outbox(row: Any) -> OutboxRow:
    return OutboxRow(
        id=int(row.id),
        event_id=row.event_id,
        url=row.url,
        body=bytes(row.body),
        created_at=row.created_at,
        status=row.status,
        attempts=int(row.attempts),
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
    )
