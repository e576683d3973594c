"""Guide conversations: read one, write it back over the version that was read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk.store.dialect import insert, rowcount
from loopdesk.store.returns import normalize_emails
from loopdesk.store.schema import conversations


@dataclass(frozen=True)
class ConversationRow:
    id: str
    channel: str
    emails: list[str]
    state: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


async def get_conversation(session: AsyncSession, conversation_id: str) -> ConversationRow | None:
    row = (
        await session.execute(select(conversations).where(conversations.c.id == conversation_id))
    ).one_or_none()
    if row is None:
        return None
    return ConversationRow(
        id=row.id,
        channel=row.channel,
        emails=list(row.emails),
        state=dict(row.state),
        version=int(row.version),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def save_conversation(
    session: AsyncSession,
    conversation_id: str,
    *,
    channel: str,
    emails: Sequence[str],
    state: dict[str, Any],
    read_version: int,
    at: datetime,
) -> bool:
    """Write the state as version `read_version + 1`; False when another turn wrote
    first (the row is no longer at `read_version`, or was created meanwhile)."""
    values = {
        "channel": channel,
        "emails": normalize_emails(emails),
        "state": state,
        "version": read_version + 1,
        "updated_at": at,
    }
    if read_version == 0:
        statement = (
            insert(session, conversations)
            .values(id=conversation_id, created_at=at, **values)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        return await rowcount(session, statement) == 1
    changed = (
        update(conversations)
        .where(conversations.c.id == conversation_id, conversations.c.version == read_version)
        .values(values)
    )
    return await rowcount(session, changed) == 1
