"""The action audit log: one entry per call to Loop, written as soon as Loop answered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk.store.dialect import insert
from loopdesk.store.schema import audit_log
from loopdesk.store.types import utcnow

MAX_PAGE = 500


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    key_name: str
    action: str
    inputs: Any
    result: Any
    ok: bool
    idempotency_key: str | None


async def record_audit(
    session: AsyncSession,
    *,
    key_name: str,
    action: str,
    inputs: Any,
    result: Any,
    ok: bool,
    idempotency_key: str | None = None,
) -> int:
    """Append an entry; its id. `idempotency_key` is kept for the trail: the keys
    themselves are deduplicated in `idempotency_keys`, not here."""
    values = {
        "at": utcnow(),
        "key_name": key_name,
        "action": action,
        "inputs": inputs,
        "result": result,
        "ok": ok,
        "idempotency_key": idempotency_key,
    }
    statement = insert(session, audit_log).values(values).returning(audit_log.c.id)
    return int((await session.execute(statement)).scalar_one())


async def get_audit(session: AsyncSession, entry_id: int) -> AuditRow | None:
    row = (await session.execute(select(audit_log).where(audit_log.c.id == entry_id))).one_or_none()
    return None if row is None else _audit_row(row)


async def list_audit(
    session: AsyncSession,
    *,
    action: str | None = None,
    key_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[AuditRow]:
    """Entries newest first, `since` inclusive, `until` exclusive. For the next page,
    pass the last entry's id as `before_id` (ids only grow, so pages never overlap)."""
    query = select(audit_log)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    if key_name is not None:
        query = query.where(audit_log.c.key_name == key_name)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if until is not None:
        query = query.where(audit_log.c.at < until)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    query = query.order_by(audit_log.c.id.desc()).limit(min(max(limit, 0), MAX_PAGE))
    return [_audit_row(row) for row in await session.execute(query)]


def _audit_row(row: Row[Any]) -> AuditRow:
    return AuditRow(
        id=row.id,
        at=row.at,
        key_name=row.key_name,
        action=row.action,
        inputs=row.inputs,
        result=row.result,
        ok=bool(row.ok),
        idempotency_key=row.idempotency_key,
    )
