"""The exceptions ledger: every return-window exception decision, explained.

One row per decision, refusals included. A grant first claims its row as `pending`
with the order's `grant_key` (unique: a second claim for the order inserts nothing),
then settles it `granted` with the allowlist id, or `failed` (the key released, so a
later request can try again). A row left `pending` says Loop may or may not hold the
entry (the call's outcome is unknown, or the process stopped mid-grant).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk.store.dialect import dialect_name, insert
from loopdesk.store.returns import normalize_email, normalize_emails
from loopdesk.store.schema import exception_emails, exceptions

MAX_PAGE = 500
GRANTED = "granted"
PENDING = "pending"
FAILED = "failed"
# What the ledger says of a decision: the decision's own outcome for refusals and the
# like, the grant's progress for an eligible one.
LEDGER_OUTCOMES = (
    GRANTED,
    PENDING,
    FAILED,
    "refused",
    "unknown",
    "within_window",
    "already_granted",
)
GRANTING = (PENDING, GRANTED)
# The advisory-lock space of exception customers, apart from the others'.
_EXCEPTION_CUSTOMERS = 0x4C58


@dataclass(frozen=True)
class ExceptionRow:
    id: int
    decided_at: datetime
    customer_emails: list[str]
    order_name: str
    order_key: str
    outcome: str
    criteria: list[dict[str, Any]]
    reason: str | None
    details: dict[str, Any]
    vip: bool
    delivered_at: datetime | None
    allowlist_id: str | None
    conversation_id: str | None
    key_name: str
    grant_key: str | None
    settled_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """As `GET /v1/exceptions` and `loopdesk exceptions --json` show it."""
        return {
            "id": self.id,
            "decidedAt": self.decided_at.isoformat(),
            "emails": self.customer_emails,
            "orderName": self.order_name,
            "outcome": self.outcome,
            "criteria": self.criteria,
            "reason": self.reason,
            "vip": self.vip,
            "deliveredAt": self.delivered_at.isoformat() if self.delivered_at else None,
            "allowlistId": self.allowlist_id,
            "conversationId": self.conversation_id,
            "key": self.key_name,
            "settledAt": self.settled_at.isoformat() if self.settled_at else None,
            "details": self.details,
        }


async def record_exception(
    session: AsyncSession,
    *,
    decided_at: datetime,
    emails: Sequence[str],
    order_name: str,
    order_key: str,
    outcome: str,
    criteria: list[dict[str, Any]],
    reason: str | None,
    details: dict[str, Any],
    vip: bool,
    delivered_at: datetime | None,
    key_name: str,
    conversation_id: str | None = None,
    allowlist_id: str | None = None,
    grant_key: str | None = None,
) -> int | None:
    """Append a decision; its id. With a `grant_key` already held by another row
    (pending or granted), nothing is written and the answer is None."""
    if outcome not in LEDGER_OUTCOMES:
        raise ValueError(f"unknown ledger outcome {outcome!r}")
    addresses = normalize_emails(emails)
    values = {
        "decided_at": decided_at,
        "customer_emails": addresses,
        "order_name": order_name,
        "order_key": order_key,
        "outcome": outcome,
        "criteria": criteria,
        "reason": reason or None,
        "details": details,
        "vip": vip,
        "delivered_at": delivered_at,
        "allowlist_id": allowlist_id,
        "conversation_id": conversation_id,
        "key_name": key_name,
        "grant_key": grant_key,
        "settled_at": None if outcome == PENDING else decided_at,
    }
    statement = insert(session, exceptions).values(values)
    if grant_key is not None:
        statement = statement.on_conflict_do_nothing(index_elements=["grant_key"])
    new_id = (await session.execute(statement.returning(exceptions.c.id))).scalar_one_or_none()
    if new_id is None:
        return None
    if addresses:
        await session.execute(
            insert(session, exception_emails).values(
                [{"email": e, "exception_id": int(new_id)} for e in addresses]
            )
        )
    return int(new_id)


async def settle_grant(
    session: AsyncSession, entry_id: int, *, allowlist_id: str, at: datetime
) -> None:
    """A pending grant made: Loop holds the allowlist entry."""
    await session.execute(
        update(exceptions)
        .where(exceptions.c.id == entry_id)
        .values(outcome=GRANTED, allowlist_id=allowlist_id, settled_at=at)
    )


async def fail_grant(
    session: AsyncSession, entry_id: int, *, error: dict[str, Any], at: datetime
) -> None:
    """A pending grant Loop surely did not make: `failed`, its key released."""
    details = await _details(session, entry_id)
    await session.execute(
        update(exceptions)
        .where(exceptions.c.id == entry_id)
        .values(
            outcome=FAILED,
            grant_key=None,
            settled_at=at,
            details={**details, "upstreamError": error},
        )
    )


async def note_unsettled(
    session: AsyncSession, entry_id: int, *, error: dict[str, Any], at: datetime
) -> None:
    """A pending grant whose outcome at Loop is unknown: it stays pending (the key held,
    so it is never granted twice), with Loop's error kept."""
    details = await _details(session, entry_id)
    await session.execute(
        update(exceptions)
        .where(exceptions.c.id == entry_id)
        .values(
            details={
                **details,
                "upstreamError": error,
                "outcomeUnknown": True,
                "unsettledAt": at.isoformat(),
            }
        )
    )


async def _details(session: AsyncSession, entry_id: int) -> dict[str, Any]:
    found = await session.scalar(select(exceptions.c.details).where(exceptions.c.id == entry_id))
    return dict(found or {})


async def grant_for_order(session: AsyncSession, order_key: str) -> ExceptionRow | None:
    """The row holding this order's grant (pending or granted), if any."""
    row = (
        await session.execute(select(exceptions).where(exceptions.c.grant_key == order_key))
    ).one_or_none()
    return None if row is None else _row(row)


async def customer_grants(
    session: AsyncSession, emails: Iterable[str], *, since: datetime | None = None
) -> list[ExceptionRow]:
    """Exceptions granted (or being granted) to any of these addresses, newest first."""
    addresses = normalize_emails(emails)
    if not addresses:
        return []
    ids = select(exception_emails.c.exception_id).where(exception_emails.c.email.in_(addresses))
    query = select(exceptions).where(exceptions.c.id.in_(ids), exceptions.c.outcome.in_(GRANTING))
    if since is not None:
        query = query.where(exceptions.c.decided_at > since)
    query = query.order_by(exceptions.c.id.desc())
    return [_row(row) for row in await session.execute(query)]


async def count_granted(session: AsyncSession, emails: Iterable[str]) -> int:
    """How many exceptions were granted to any of these addresses (the
    `exceptions_granted` fact)."""
    addresses = normalize_emails(emails)
    if not addresses:
        return 0
    return int(await session.scalar(_COUNT_GRANTED, {"emails": addresses}) or 0)


# Built once (every lookup and routing decision asks): the addresses are bound per call.
_COUNT_GRANTED = (
    select(func.count())
    .select_from(exceptions)
    .where(
        exceptions.c.id.in_(
            select(exception_emails.c.exception_id).where(
                exception_emails.c.email.in_(bindparam("emails", expanding=True))
            )
        ),
        exceptions.c.outcome == GRANTED,
    )
)


async def granted_by_email(session: AsyncSession, emails: Iterable[str]) -> dict[str, set[int]]:
    """The granted exceptions of each of these addresses, in one query: a set of
    addresses' `count_granted` is the size of the union of theirs."""
    addresses = normalize_emails(emails)
    if not addresses:
        return {}
    query = (
        select(exception_emails.c.email, exception_emails.c.exception_id)
        .join(exceptions, exceptions.c.id == exception_emails.c.exception_id)
        .where(exception_emails.c.email.in_(addresses), exceptions.c.outcome == GRANTED)
    )
    found: dict[str, set[int]] = {}
    for row in await session.execute(query):
        found.setdefault(row.email, set()).add(int(row.exception_id))
    return found


async def get_exception(session: AsyncSession, entry_id: int) -> ExceptionRow | None:
    row = (
        await session.execute(select(exceptions).where(exceptions.c.id == entry_id))
    ).one_or_none()
    return None if row is None else _row(row)


async def list_exceptions(
    session: AsyncSession,
    *,
    email: str | None = None,
    order_key: str | None = None,
    outcome: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[ExceptionRow]:
    """Newest first. For the next page pass the last row's id as `before_id`."""
    query = select(exceptions)
    if email is not None:
        ids = select(exception_emails.c.exception_id).where(
            exception_emails.c.email == normalize_email(email)
        )
        query = query.where(exceptions.c.id.in_(ids))
    if order_key is not None:
        query = query.where(exceptions.c.order_key == order_key)
    if outcome is not None:
        query = query.where(exceptions.c.outcome == outcome)
    if before_id is not None:
        query = query.where(exceptions.c.id < before_id)
    query = query.order_by(exceptions.c.id.desc()).limit(min(max(limit, 0), MAX_PAGE))
    return [_row(row) for row in await session.execute(query)]


async def lock_exception_customer(session: AsyncSession, emails: Iterable[str]) -> None:
    """Serialize the grants of one customer until the transaction ends, so "once per
    period" holds across concurrent requests (PostgreSQL: an advisory lock per address,
    taken in a fixed order; SQLite's write transactions already run one at a time)."""
    if dialect_name(session) != "postgresql":
        return
    for email in sorted(normalize_emails(emails)):
        digest = hashlib.sha256(email.encode()).hexdigest()
        number = int(digest[:8], 16) - 2**31  # 32 bits of the hash, signed
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:space, :key)"),
            {"space": _EXCEPTION_CUSTOMERS, "key": number},
        )


def _row(row: Row[Any]) -> ExceptionRow:
    return ExceptionRow(
        id=int(row.id),
        decided_at=row.decided_at,
        customer_emails=list(row.customer_emails),
        order_name=row.order_name,
        order_key=row.order_key,
        outcome=row.outcome,
        criteria=list(row.criteria),
        reason=row.reason,
        details=dict(row.details),
        vip=bool(row.vip),
        delivered_at=row.delivered_at,
        allowlist_id=row.allowlist_id,
        conversation_id=row.conversation_id,
        key_name=row.key_name,
        grant_key=row.grant_key,
        settled_at=row.settled_at,
    )
