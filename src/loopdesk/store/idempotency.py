"""Idempotency keys: claimed by one request before Loop is called, then finished or released.

The unique constraint on (API key name, Idempotency-Key) is what makes one request
win: `INSERT .. ON CONFLICT DO NOTHING` never raises, and on PostgreSQL it waits for
a concurrent claim of the same key to commit (on SQLite writers queue anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk.store.dialect import insert, rowcount
from loopdesk.store.schema import idempotency_keys
from loopdesk.store.types import utcnow


@dataclass(frozen=True)
class IdempotencyRow:
    id: int
    key_name: str
    idempotency_key: str
    action: str
    fingerprint: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    response: Any
    audit_id: int | None


@dataclass(frozen=True)
class Claim:
    """The key's row, and whether this call just claimed it (False: it was taken)."""

    row: IdempotencyRow
    claimed: bool


async def claim_idempotency_key(
    session: AsyncSession,
    *,
    key_name: str,
    idempotency_key: str,
    action: str,
    fingerprint: str,
    expired_before: datetime,
) -> Claim:
    """Claim the key (status `in_progress`), or return the row that holds it.

    Keys started before `expired_before` are forgotten first, so an expired key can be
    used again as a new request.
    """
    # Rows another claim is deleting are skipped, not waited for (PostgreSQL; SQLite
    # writers queue anyway): purges never block or deadlock each other.
    expired = (
        select(idempotency_keys.c.id)
        .where(idempotency_keys.c.started_at < expired_before)
        .with_for_update(skip_locked=True)
    )
    await session.execute(delete(idempotency_keys).where(idempotency_keys.c.id.in_(expired)))
    values = {
        "key_name": key_name,
        "idempotency_key": idempotency_key,
        "action": action,
        "fingerprint": fingerprint,
        "status": "in_progress",
        "started_at": utcnow(),
    }
    statement = (
        insert(session, idempotency_keys)
        .values(values)
        .on_conflict_do_nothing(index_elements=["key_name", "idempotency_key"])
        .returning(idempotency_keys.c.id)
    )
    claimed = (await session.execute(statement)).scalar_one_or_none() is not None
    row = await get_idempotency_key(session, key_name, idempotency_key)
    assert row is not None  # inserted, or held by the conflicting row, in this transaction
    return Claim(row, claimed)


async def get_idempotency_key(
    session: AsyncSession, key_name: str, idempotency_key: str
) -> IdempotencyRow | None:
    query = select(idempotency_keys).where(
        idempotency_keys.c.key_name == key_name,
        idempotency_keys.c.idempotency_key == idempotency_key,
    )
    row = (await session.execute(query)).one_or_none()
    return None if row is None else _key_row(row)


async def finish_idempotency_key(
    session: AsyncSession, claim_id: int, *, response: Any, audit_id: int | None
) -> bool:
    """Keep the answer for replay; False when the claim is no longer held."""
    statement = (
        update(idempotency_keys)
        .where(idempotency_keys.c.id == claim_id, idempotency_keys.c.status == "in_progress")
        .values(status="done", response=response, audit_id=audit_id, finished_at=utcnow())
    )
    return await rowcount(session, statement) > 0


async def release_idempotency_key(session: AsyncSession, claim_id: int) -> bool:
    """Forget an unfinished claim, so the next request with the key runs afresh."""
    statement = delete(idempotency_keys).where(
        idempotency_keys.c.id == claim_id, idempotency_keys.c.status == "in_progress"
    )
    return await rowcount(session, statement) > 0


def _key_row(row: Row[Any]) -> IdempotencyRow:
    return IdempotencyRow(
        id=row.id,
        key_name=row.key_name,
        idempotency_key=row.idempotency_key,
        action=row.action,
        fingerprint=row.fingerprint,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        response=row.response,
        audit_id=row.audit_id,
    )
