"""Checkpoints: where a resumable job (the returns backfill) stopped."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from loopdesk.store.dialect import insert
from loopdesk.store.schema import checkpoints
from loopdesk.store.types import utcnow


async def get_checkpoint(session: AsyncSession, name: str) -> Any:
    """The JSON value saved under `name`, or None."""
    query = select(checkpoints.c.value).where(checkpoints.c.name == name)
    return (await session.execute(query)).scalar_one_or_none()


async def save_checkpoint(session: AsyncSession, name: str, value: Any) -> None:
    """Save `value` (JSON) under `name`; None removes the checkpoint (job finished).

    Saved in the caller's transaction, so a page of data and the checkpoint after
    it commit together.
    """
    if value is None:
        await session.execute(delete(checkpoints).where(checkpoints.c.name == name))
        return
    statement = insert(session, checkpoints).values(name=name, value=value, updated_at=utcnow())
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[checkpoints.c.name],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        )
    )
