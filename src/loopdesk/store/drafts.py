"""Draft returns made through loopdesk: one row per draft, Loop's last answer kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk.domain.shipments import order_key
from loopdesk.store.dialect import insert, rowcount
from loopdesk.store.schema import drafts
from loopdesk.store.types import utcnow

MAX_PAGE = 500


@dataclass(frozen=True)
class StoredDraft:
    id: str
    order_name: str
    key_name: str  # who started it: an API key's name, or `guide:<conversation>`
    conversation_id: str | None
    state: str | None
    body: dict[str, Any]  # Loop's last draft body
    return_id: str | None
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The summary the draft lists show (not Loop's body)."""
        return {
            "draftId": self.id,
            "orderName": self.order_name,
            "state": self.state,
            "returnId": self.return_id,
            "conversationId": self.conversation_id,
            "key": self.key_name,
            "createdAt": self.created_at.isoformat(),
            "updatedAt": self.updated_at.isoformat(),
        }


async def save_draft(
    session: AsyncSession,
    draft_id: str,
    *,
    order_name: str,
    key_name: str,
    conversation_id: str | None,
    state: str | None,
    body: dict[str, Any],
    return_id: str | None,
) -> None:
    """Insert the draft, or keep Loop's newer answer on the row (who started it, for
    which conversation and when stay as first recorded; a return id once known stays)."""
    now = utcnow()
    statement = insert(session, drafts).values(
        id=draft_id,
        order_name=order_name,
        key_name=key_name,
        conversation_id=conversation_id,
        state=state,
        body=body,
        return_id=return_id,
        created_at=now,
        updated_at=now,
    )
    changes: dict[str, Any] = {"state": state, "body": body, "updated_at": now}
    if return_id is not None:
        changes["return_id"] = return_id
    await session.execute(statement.on_conflict_do_update(index_elements=["id"], set_=changes))


async def update_draft(
    session: AsyncSession,
    draft_id: str,
    *,
    state: str | None,
    body: dict[str, Any],
    return_id: str | None,
) -> bool:
    """Loop's newer answer on a known draft; False when the draft is not stored."""
    changes: dict[str, Any] = {"state": state, "body": body, "updated_at": utcnow()}
    if return_id is not None:
        changes["return_id"] = return_id
    statement = update(drafts).where(drafts.c.id == draft_id).values(changes)
    return await rowcount(session, statement) == 1


async def get_draft(session: AsyncSession, draft_id: str) -> StoredDraft | None:
    row = (await session.execute(select(drafts).where(drafts.c.id == draft_id))).one_or_none()
    return None if row is None else _row(row)


async def list_drafts(
    session: AsyncSession,
    *,
    conversation_id: str | None = None,
    order_names: Sequence[str] | None = None,
    limit: int = 50,
) -> list[StoredDraft]:
    """Newest change first; of these orders only when `order_names` is given (compared
    as `order_key` compares them)."""
    query = select(drafts)
    if conversation_id is not None:
        query = query.where(drafts.c.conversation_id == conversation_id)
    if order_names is not None:
        keys = sorted({order_key(name) for name in order_names} - {""})
        stored = func.lower(func.trim(func.ltrim(func.trim(drafts.c.order_name), "#")))
        query = query.where(stored.in_(keys))
    query = query.order_by(drafts.c.updated_at.desc(), drafts.c.id.desc())
    query = query.limit(min(max(limit, 0), MAX_PAGE))
    return [_row(row) for row in await session.execute(query)]


def _row(row: Row[Any]) -> StoredDraft:
    return StoredDraft(
        id=row.id,
        order_name=row.order_name,
        key_name=row.key_name,
        conversation_id=row.conversation_id,
        state=row.state,
        body=dict(row.body),
        return_id=row.return_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
